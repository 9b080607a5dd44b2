// Package policies judges events: each configured policy pairs a detector
// (list-match, threshold, velocity, forwarding, ...) and/or a CEL rule
// (when:) with a severity and actions, and the engine evaluates every policy,
// in order, on every event.
package policies

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/keywatch/keywatch/alertmodel"
	"github.com/keywatch/keywatch/chains"
	"github.com/keywatch/keywatch/config"
	"github.com/keywatch/keywatch/policies/lists"
	"github.com/keywatch/keywatch/store"
)

// Finding is a detector's verdict on one event.
type Finding struct {
	Hit     bool
	Reasons []string // human-readable evidence, shown in the alert
	// Wallet, when set, is the alert's wallet instead of the event's: a
	// forwarding alert names the watched wallet the funds left.
	Wallet string
}

// Detector decides whether an event is suspicious. Detectors are built once
// from their policy's parameters and must be safe for concurrent use.
type Detector interface {
	Detect(ctx context.Context, ev *chains.Event, in *Input) (Finding, error)
}

// Retractor is implemented by detectors that keep state about events
// (window sums, seen counterparties, matched intents, followed addresses):
// when a reorg retracts an event, the engine asks them to forget it.
type Retractor interface {
	Retract(ctx context.Context, ev *chains.Event, in *Input) error
}

// BalanceReader reads a wallet's balance from its chain's node.
type BalanceReader interface {
	// BalanceBefore returns what the event's wallet held, in the event's
	// asset, just before the event's block.
	BalanceBefore(ctx context.Context, ev *chains.Event) (chains.Amount, error)
}

// Input is what a detector may consult besides the event: the set's lists
// and inventory, and the engine's store, registries, node readers and clock.
type Input struct {
	Lists   *lists.Set
	Wallets map[string]config.Wallet
	Chains  map[string]config.Chain

	Store    store.Store
	Intents  Intents
	Hops     Hops
	Balances map[string]BalanceReader // by chain name
	Now      func() time.Time

	hours     map[string]config.Hours             // wallet name -> working hours
	byAddress map[string]map[string]config.Wallet // chain -> normalised address -> wallet
}

// WalletAt returns the watched wallet at addr on chain.
func (in *Input) WalletAt(chain, addr string) (config.Wallet, bool) {
	w, ok := in.byAddress[chain][chains.NormaliseAddress(addr)]
	return w, ok
}

// Policy is one built rule.
type Policy struct {
	Name     string
	Severity alertmodel.Severity
	Actions  []alertmodel.Action
	Detector Detector
	// When, if set, must hold for the policy to fire.
	When *Rule

	direction chains.Direction // "" = any
	kinds     map[chains.Kind]bool
	chains    map[string]bool
	roles     map[string]bool
	followed  bool // judges events of followed addresses (forwarding)
}

// applies reports whether the policy's filters admit the event.
func (p *Policy) applies(ev *chains.Event) bool {
	if ev.WalletRole == chains.RoleFollowed && !p.followed {
		return false
	}
	if p.direction != "" && ev.Direction != p.direction {
		return false
	}
	if len(p.kinds) > 0 && !p.kinds[ev.Kind] {
		return false
	}
	if len(p.chains) > 0 && !p.chains[ev.Chain] {
		return false
	}
	if len(p.roles) > 0 && !p.roles[ev.WalletRole] {
		return false
	}
	return true
}

// Set is a complete, built policy set with the lists it reads. The engine
// swaps whole sets on reload.
type Set struct {
	Policies []*Policy
	input    Input
}

// Input returns what the set's detectors consult (without the engine's
// store and readers).
func (s *Set) Input() *Input { return &s.input }

// detectorSpec describes a built-in detector: the direction and kinds it
// judges by default and how to build it from its policy's parameters.
type detectorSpec struct {
	direction chains.Direction
	kinds     []chains.Kind
	// ownRoles: the detector applies roles: itself (unapproved-outflow judges
	// any wallet's spend signed by an employee key).
	ownRoles bool
	followed bool // also judges events of followed addresses
	// severity, when set, is the policy's severity when it names none.
	severity alertmodel.Severity
	build    func(b *builder, path string, p config.Policy) Detector
}

// builder collects errors while a policy set is built.
type builder struct {
	cfg   *config.Config
	lists *lists.Set
	errs  config.Errors
}

func (b *builder) errorf(path, format string, args ...any) {
	b.errs = append(b.errs, b.cfg.Errorf(path, format, args...))
}

// listNames checks the lists a policy names, or takes its default (those of
// def that are defined) when it names none, and returns them. what completes
// "the lists ..." in the message when there are none.
func (b *builder) listNames(path string, p config.Policy, def []string, what string) []string {
	names := p.Lists
	if len(names) == 0 {
		for _, d := range def {
			if _, ok := b.cfg.Lists[d]; ok {
				names = append(names, d)
			}
		}
		switch {
		case len(names) > 0:
		case len(def) == 0:
			b.errorf(path+".lists", "required: the lists %s", what)
		default:
			b.errorf(path+".lists", "required: the lists %s (by default %s, which is not defined under lists:)", what, strings.Join(def, " and "))
		}
		return names
	}
	for j, name := range p.Lists {
		if _, ok := b.cfg.Lists[name]; !ok {
			b.errorf(fmt.Sprintf("%s.lists[%d]", path, j), "no list named %q under lists:", name)
		}
	}
	return names
}

// unused reports parameters a detector does not read, so a misplaced one
// is not silently ignored.
func (b *builder) unused(path string, p config.Policy, allowed ...string) {
	set := map[string]bool{
		"usd_over": p.USDOver != nil, "amount_over": p.AmountOver != "", "asset": p.Asset != "",
		"scope": p.Scope != "", "window": p.Window != 0, "tolerance": p.Tolerance != nil,
		"percent_over": p.PercentOver != nil, "count": p.Count != 0, "margin": p.Margin != nil,
		"hops": p.Hops != 0, "hours": p.Hours != "", "lists": len(p.Lists) > 0,
		"allow": len(p.Allow) > 0,
	}
	ok := map[string]bool{}
	for _, a := range allowed {
		ok[a] = true
	}
	var keys []string
	for k, v := range set {
		if v && !ok[k] {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		want := "none"
		if len(allowed) > 0 {
			want = strings.Join(allowed, ", ")
		}
		if p.Detector == "" {
			b.errorf(path+"."+k, "a policy with only a when: rule takes no detector parameters (%s is one)", k)
			continue
		}
		b.errorf(path+"."+k, "detector %s does not use %s (its parameters: %s)", p.Detector, k, want)
	}
}

// detectors is the table of built-in detectors.
func detectors() map[string]detectorSpec {
	transfers := []chains.Kind{chains.KindTransfer}
	return map[string]detectorSpec{
		"list-match":         {kinds: []chains.Kind{chains.KindTransfer, chains.KindApproval}, build: buildListMatch},
		"threshold":          {direction: chains.Out, kinds: transfers, build: buildThreshold},
		"honeytoken":         {build: buildHoneytoken},
		"velocity":           {direction: chains.Out, kinds: transfers, build: buildVelocity},
		"structuring":        {direction: chains.Out, kinds: transfers, build: buildStructuring},
		"unapproved-outflow": {direction: chains.Out, kinds: transfers, ownRoles: true, build: buildUnapproved},
		"new-counterparty":   {direction: chains.Out, kinds: transfers, build: buildNewCounterparty},
		"off-hours":          {direction: chains.Out, build: buildOffHours},
		"drain":              {direction: chains.Out, kinds: transfers, build: buildDrain},
		"admin-change":       {kinds: []chains.Kind{chains.KindAdmin}, build: buildAdminChange},
		"approval":           {kinds: []chains.Kind{chains.KindApproval}, build: buildApproval},
		"forwarding":         {direction: chains.Out, kinds: transfers, followed: true, build: buildForwarding},
		"delegatecall":       {kinds: []chains.Kind{chains.KindExecution}, severity: alertmodel.Critical, build: buildDelegatecall},
		"safe-hash":          {kinds: []chains.Kind{chains.KindExecution}, severity: alertmodel.Critical, build: buildSafeHash},
	}
}

// Build checks and builds the configuration's policies over loaded lists.
// Every problem is reported, each naming its policy and field.
func Build(cfg *config.Config, ls *lists.Set) (*Set, error) {
	b := &builder{cfg: cfg, lists: ls}
	specs := detectors()
	set := &Set{input: Input{Lists: ls, Wallets: map[string]config.Wallet{}, Chains: map[string]config.Chain{},
		hours: map[string]config.Hours{}, byAddress: map[string]map[string]config.Wallet{}}}
	for _, w := range cfg.Wallets {
		set.input.Wallets[w.Name] = w
		if w.Address != "" {
			if set.input.byAddress[w.Chain] == nil {
				set.input.byAddress[w.Chain] = map[string]config.Wallet{}
			}
			set.input.byAddress[w.Chain][chains.NormaliseAddress(w.Address)] = w
		}
		if h, err := config.ParseHours(w.Hours); err == nil {
			set.input.hours[w.Name] = h
		}
	}
	for _, c := range cfg.Chains {
		set.input.Chains[c.Name] = c
	}
	var rules *ruleEnv
	for i, pc := range cfg.Policies {
		path := fmt.Sprintf("policies[%d]", i)
		p := &Policy{Name: pc.Name}
		sev, err := alertmodel.ParseSeverity(pc.Severity)
		if def := specs[pc.Detector].severity; pc.Severity == "" && def != "" {
			sev = def
		} else if pc.Severity == "" {
			b.errorf(path+".severity", "required: critical, high, medium, low or info")
		} else if err != nil {
			b.errorf(path+".severity", "%v", err)
		}
		p.Severity = sev
		for j, a := range pc.Actions {
			act, err := alertmodel.ParseAction(a)
			if err != nil {
				b.errorf(fmt.Sprintf("%s.actions[%d]", path, j), "%v", err)
			}
			p.Actions = append(p.Actions, act)
		}
		if len(pc.Actions) == 0 {
			p.Actions = []alertmodel.Action{alertmodel.ActionAlert}
		}
		if pc.When != "" {
			if rules == nil {
				rules, err = newRuleEnv(cfg)
				if err != nil {
					return nil, err
				}
			}
			p.When = rules.compile(b, path+".when", pc.Name, pc.When)
		}
		switch {
		case pc.Detector == "" && pc.When == "":
			b.errorf(path+".detector", "required (one of %s), or a when: expression", strings.Join(detectorNames(specs), ", "))
		case pc.Detector == "":
			b.unused(path, pc)
		default:
			spec, ok := specs[pc.Detector]
			if !ok {
				b.errorf(path+".detector", "unknown detector %q (want one of %s)", pc.Detector, strings.Join(detectorNames(specs), ", "))
				break
			}
			p.Detector = spec.build(b, path, pc)
			p.direction = spec.direction
			p.followed = spec.followed
			if len(spec.kinds) > 0 {
				p.kinds = map[chains.Kind]bool{}
				for _, k := range spec.kinds {
					p.kinds[k] = true
				}
			}
			if spec.ownRoles {
				pc.Roles = nil // the detector reads them itself
			}
		}
		switch pc.Direction {
		case "":
		case "any":
			p.direction = ""
		case "in", "out":
			p.direction = chains.Direction(pc.Direction)
		default:
			b.errorf(path+".direction", "unknown direction %q (want in, out or any)", pc.Direction)
		}
		if len(pc.Chains) > 0 {
			p.chains = map[string]bool{}
			for _, c := range pc.Chains {
				p.chains[c] = true
			}
		}
		if len(pc.Roles) > 0 {
			p.roles = map[string]bool{}
			for _, r := range pc.Roles {
				p.roles[r] = true
			}
		}
		set.Policies = append(set.Policies, p)
	}
	if len(b.errs) > 0 {
		return nil, b.errs
	}
	return set, nil
}

func detectorNames(specs map[string]detectorSpec) []string {
	names := make([]string, 0, len(specs))
	for n := range specs {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// windowOr returns the policy's window, or def when it sets none; a
// negative window is an error.
func (b *builder) windowOr(path string, p config.Policy, def time.Duration) time.Duration {
	if p.Window < 0 {
		b.errorf(path+".window", "must be positive")
	}
	if p.Window == 0 {
		return def
	}
	return p.Window.D()
}
