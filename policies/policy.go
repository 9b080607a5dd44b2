// Package policies judges events: each configured policy pairs a detector
// (list-match, threshold, honeytoken, ...) with a severity and actions, and
// the engine evaluates every policy, in order, on every event.
package policies

import (
	"context"
	"fmt"
	"strings"

	"github.com/keywatch/keywatch/alerts"
	"github.com/keywatch/keywatch/chains"
	"github.com/keywatch/keywatch/config"
	"github.com/keywatch/keywatch/policies/lists"
)

// Finding is a detector's verdict on one event.
type Finding struct {
	Hit     bool
	Reasons []string // human-readable evidence, shown in the alert
}

// Detector decides whether an event is suspicious. Detectors are built once
// from their policy's parameters and must be safe for concurrent use.
type Detector interface {
	Detect(ctx context.Context, ev *chains.Event, in *Input) (Finding, error)
}

// Input is what a detector may consult besides the event.
type Input struct {
	Lists   *lists.Set
	Wallets map[string]config.Wallet
	Chains  map[string]config.Chain
}

// Policy is one built rule.
type Policy struct {
	Name     string
	Severity alerts.Severity
	Actions  []alerts.Action
	Detector Detector

	direction chains.Direction // "" = any
	kinds     map[chains.Kind]bool
	chains    map[string]bool
	roles     map[string]bool
}

// applies reports whether the policy's filters admit the event.
func (p *Policy) applies(ev *chains.Event) bool {
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

// Input returns what the set's detectors consult.
func (s *Set) Input() *Input { return &s.input }

// detectorSpec describes a built-in detector: the direction and kinds it
// judges by default and how to build it from its policy's parameters.
type detectorSpec struct {
	direction chains.Direction
	kinds     []chains.Kind
	build     func(b *builder, path string, p config.Policy) Detector
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

// detectors is the table of built-in detectors.
func detectors() map[string]detectorSpec {
	return map[string]detectorSpec{
		"list-match": {kinds: []chains.Kind{chains.KindTransfer, chains.KindApproval}, build: buildListMatch},
		"threshold":  {direction: chains.Out, kinds: []chains.Kind{chains.KindTransfer}, build: buildThreshold},
		"honeytoken": {build: buildHoneytoken},
	}
}

// Build checks and builds the configuration's policies over loaded lists.
// Every problem is reported, each naming its policy and field.
func Build(cfg *config.Config, ls *lists.Set) (*Set, error) {
	b := &builder{cfg: cfg, lists: ls}
	specs := detectors()
	set := &Set{input: Input{Lists: ls, Wallets: map[string]config.Wallet{}, Chains: map[string]config.Chain{}}}
	for _, w := range cfg.Wallets {
		set.input.Wallets[w.Name] = w
	}
	for _, c := range cfg.Chains {
		set.input.Chains[c.Name] = c
	}
	for i, pc := range cfg.Policies {
		path := fmt.Sprintf("policies[%d]", i)
		p := &Policy{Name: pc.Name}
		sev, err := alerts.ParseSeverity(pc.Severity)
		if pc.Severity == "" {
			b.errorf(path+".severity", "required: critical, high, medium, low or info")
		} else if err != nil {
			b.errorf(path+".severity", "%v", err)
		}
		p.Severity = sev
		for j, a := range pc.Actions {
			act, err := alerts.ParseAction(a)
			if err != nil {
				b.errorf(fmt.Sprintf("%s.actions[%d]", path, j), "%v", err)
			}
			p.Actions = append(p.Actions, act)
		}
		if len(pc.Actions) == 0 {
			p.Actions = []alerts.Action{alerts.ActionAlert}
		}
		if pc.When != "" {
			b.errorf(path+".when", "rule expressions are not supported by this version of keywatch yet")
		}
		switch {
		case pc.Detector == "" && pc.When == "":
			b.errorf(path+".detector", "required (one of %s), or a when: expression", strings.Join(detectorNames(specs), ", "))
		case pc.Detector != "":
			spec, ok := specs[pc.Detector]
			if !ok {
				b.errorf(path+".detector", "unknown detector %q (want one of %s)", pc.Detector, strings.Join(detectorNames(specs), ", "))
				break
			}
			p.Detector = spec.build(b, path, pc)
			p.direction = spec.direction
			if len(spec.kinds) > 0 {
				p.kinds = map[chains.Kind]bool{}
				for _, k := range spec.kinds {
					p.kinds[k] = true
				}
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
	sortStrings(names)
	return names
}
