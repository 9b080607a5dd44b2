package config

import "regexp"

// nameRe is the form of the names that become part of NATS subjects, alert
// ids and consumer names: chains, policies, sinks, lists and instances.
var nameRe = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)

// validate fills in every section's defaults and checks it, section by
// section as they are laid out in the file, then orders the problems by line.
// Each section's type does its own part (see its validate method); this
// function decides the order and what the sections know of each other.
//
// A section that refers to another's entries (a wallet to its chain, a policy
// to its chains, a sink to chains, wallets and policies, holds and
// list_refresh to lists) resolves the names against an index of the whole
// file, made before any section is checked, at the point where it checks that
// field: problems reported on one line (a flow mapping such as
// {name: hot, chain: btc, role: hot}) keep the order of the fields' checks.
func (c *Config) validate(lookupEnv func(string) (string, bool)) Errors {
	v := &checker{cfg: c, lookupEnv: lookupEnv}
	known := c.names()
	c.Store.validate(v)
	c.NATS.validate(v)
	c.API.validate(v)
	c.Holds.validate(v, known.lists)
	validateChains(v, c.Chains)
	validateWallets(v, c.Wallets, known)
	validateLists(v, c.Lists)
	c.ListRefresh.validate(v, known.lists)
	validatePolicies(v, c.Policies, known)
	c.Alerts.validate(v, known)
	sortErrors(v.errs)
	return v.errs
}

// names indexes what the sections define, for the sections that refer to it.
type names struct {
	chains     map[string]string // chain name -> kind (of the last chain so named)
	chainNames []string          // every chain's name, in file order
	wallets    map[string]bool
	policies   map[string]bool
	lists      map[string][]string
}

func (c *Config) names() names {
	n := names{chains: map[string]string{}, wallets: map[string]bool{}, policies: map[string]bool{}, lists: c.Lists}
	for _, ch := range c.Chains {
		if ch.Name != "" {
			n.chains[ch.Name] = ch.Kind
		}
		n.chainNames = append(n.chainNames, ch.Name)
	}
	for _, w := range c.Wallets {
		n.wallets[w.Name] = true
	}
	for _, p := range c.Policies {
		n.policies[p.Name] = true
	}
	return n
}

// checker collects the problems found while checking a configuration, each
// at the line and column of its field.
type checker struct {
	cfg       *Config
	lookupEnv func(string) (string, bool)
	errs      Errors
}

// add reports a problem with the field at path (as in "chains[0].rpc[1]").
func (v *checker) add(path, format string, args ...any) {
	v.errs = append(v.errs, v.cfg.Errorf(path, format, args...))
}

// isSet reports whether the field at path was written with a value.
func (v *checker) isSet(path string) bool { return v.cfg.isSet(path) }

// env reads the environment variable name that the field at path names (no
// name, no secret). A variable that is unset or empty is a problem, whose
// message starts with who (a sink's name, or "").
func (v *checker) env(path, who, name string) Secret {
	if name == "" {
		return Secret{}
	}
	val, ok := v.lookupEnv(name)
	if !ok || val == "" {
		v.add(path, "%senvironment variable %s is not set", who, name)
	}
	return NewSecret(val)
}

// name checks the name of a chain, policy or sink (what) at path: it is
// required, of nameRe's form (why says what the name becomes), and must not
// be taken, which the caller knows.
func (v *checker) name(path, what, name, why string, taken bool) {
	switch {
	case name == "":
		v.add(path, "required")
	case !nameRe.MatchString(name):
		v.add(path, "%q: use lowercase letters, digits, - and _ (%s)", name, why)
	case taken:
		v.add(path, "%s %q is defined twice", what, name)
	}
}
