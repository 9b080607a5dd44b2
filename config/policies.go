package config

import (
	"fmt"
	"slices"
	"strings"
)

// Policy is one rule. Detector parameters sit on the policy; each detector
// documents the ones it reads and their defaults.
type Policy struct {
	Name     string   `yaml:"name"`
	Detector string   `yaml:"detector"`
	When     string   `yaml:"when"`
	Severity string   `yaml:"severity"`
	Actions  []string `yaml:"actions"`
	Lists    []string `yaml:"lists"`
	// Direction limits the policy to out, in or any movements (detector default).
	Direction string `yaml:"direction"`
	// Chains limits the policy to these chains (default: all).
	Chains []string `yaml:"chains"`
	// Roles limits the policy to wallets with these roles (default: all).
	Roles []string `yaml:"roles"`

	// threshold, velocity and structuring
	USDOver    *float64 `yaml:"usd_over"`
	AmountOver string   `yaml:"amount_over"`
	Asset      string   `yaml:"asset"`
	// velocity and structuring: what is summed or counted together
	// (wallet, owner, chain or all).
	Scope string `yaml:"scope"`
	// Window: velocity's sliding window, structuring's, forwarding's
	// following time, unapproved-outflow's intent lifetime.
	Window Duration `yaml:"window"`
	// unapproved-outflow: accepted relative difference between an intent's
	// amount and the outflow's (0.01 = 1%).
	Tolerance *float64 `yaml:"tolerance"`
	// drain: share of the wallet's balance, in percent, over which one
	// outflow fires.
	PercentOver *float64 `yaml:"percent_over"`
	// structuring: how many outflows just under the threshold fire, and how
	// far under counts as "just" (0.1 = within 10% of it).
	Count  int      `yaml:"count"`
	Margin *float64 `yaml:"margin"`
	// forwarding: how many movements from the watched wallet are followed.
	Hops int `yaml:"hops"`
	// off-hours: working hours for keys whose wallet sets none.
	Hours string `yaml:"hours"`
	// delegatecall: the targets a Safe may delegatecall (see allow.go).
	Allow []string `yaml:"allow"`
}

// validatePolicies checks the policies' names, unique, and what limits them;
// known holds the chains they may name. Detectors, lists and expressions are
// checked by the policy engine when it builds the policies.
func validatePolicies(v *checker, policies []Policy, known names) {
	seen := map[string]bool{}
	for i, pol := range policies {
		p := fmt.Sprintf("policies[%d]", i)
		v.name(p+".name", "policy", pol.Name, "it becomes part of alert ids", seen[pol.Name])
		seen[pol.Name] = true
		for j, ch := range pol.Chains {
			if _, ok := known.chains[ch]; !ok {
				v.add(fmt.Sprintf("%s.chains[%d]", p, j), "no chain named %q", ch)
			}
		}
		pol.check(v, p)
		pol.checkAllow(v, p, known)
	}
}

// check checks the wallet roles the policy is limited to; p is its path.
func (pol Policy) check(v *checker, p string) {
	for j, r := range pol.Roles {
		if !slices.Contains(walletRoles, r) {
			v.add(fmt.Sprintf("%s.roles[%d]", p, j), "unknown role %q (want one of %s)", r, strings.Join(walletRoles, ", "))
		}
	}
}
