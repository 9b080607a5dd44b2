package policies

import (
	"context"
	"fmt"
	"strings"

	"github.com/keywatch/keywatch/chains"
	"github.com/keywatch/keywatch/chains/ethereum/safe"
	"github.com/keywatch/keywatch/config"
	"github.com/keywatch/keywatch/policies/lists"
)

// delegatecall fires on a Safe execution (kind execution) with operation
// delegatecall to a target not in allow: a delegatecall runs the target's
// code with the Safe's storage and funds, so it can rewrite the Safe's
// singleton, owners or modules without logging anything (the 2025 Bybit
// theft). An execution whose operation could not be read (called through
// another contract without traces) may be one: it fires too, saying so.
// Parameters: allow, list names or addresses (default safe-libraries:
// Safe's own MultiSend, MultiSendCallOnly and SignMessageLib deployments of
// 1.3.0 and 1.4.1). Default severity: critical.
type delegatecall struct {
	libraries bool
	lists     []string
	addrs     map[string]bool
	allow     []string // as configured, for reasons
}

func buildDelegatecall(b *builder, path string, p config.Policy) Detector {
	b.unused(path, p, "allow")
	d := &delegatecall{addrs: map[string]bool{}, allow: p.Allow}
	if len(d.allow) == 0 {
		d.allow = []string{config.AllowSafeLibraries}
	}
	for j, a := range d.allow {
		switch {
		case a == config.AllowSafeLibraries:
			d.libraries = true
		case strings.HasPrefix(a, "0x") || strings.HasPrefix(a, "0X"):
			if err := config.CheckEVMAddress(a); err != nil {
				b.errorf(fmt.Sprintf("%s.allow[%d]", path, j), "%v", err)
			}
			d.addrs[chains.NormaliseAddress(a)] = true
		default:
			if _, ok := b.cfg.Lists[a]; !ok {
				b.errorf(fmt.Sprintf("%s.allow[%d]", path, j), "no list named %q under lists: (or write an address, or %s)", a, config.AllowSafeLibraries)
			}
			d.lists = append(d.lists, a)
		}
	}
	return d
}

func (d *delegatecall) Detect(_ context.Context, ev *chains.Event, in *Input) (Finding, error) {
	if ev.Kind != chains.KindExecution {
		return Finding{}, nil
	}
	var reason string
	switch ev.Operation {
	case "call":
		return Finding{}, nil
	case "delegatecall":
		ok, err := d.allowed(ev.Target, in)
		if err != nil {
			return Finding{}, err
		}
		if ok {
			return Finding{}, nil
		}
		reason = fmt.Sprintf("%s ran a delegatecall to %s, which is not in allow (%s): the target's code runs with the Safe's storage and funds",
			safeName(ev, in), ev.Target, strings.Join(d.allow, ", "))
	default:
		what := ev.Detail["unresolved"]
		if what == "" {
			what = fmt.Sprintf("operation %q", ev.Operation)
		}
		reason = fmt.Sprintf("%s ran an execution keywatch could not read (%s): it may be a delegatecall", safeName(ev, in), what)
	}
	f := Finding{Hit: true, Reasons: []string{reason + executionFacts(ev)}}
	if s := signersReason(ev, in); s != "" {
		f.Reasons = append(f.Reasons, s)
	}
	return f, nil
}

// allowed says whether target is in the policy's allow.
func (d *delegatecall) allowed(target string, in *Input) (bool, error) {
	if d.libraries {
		if _, ok := safe.LibraryAt(target); ok {
			return true, nil
		}
	}
	if d.addrs[chains.NormaliseAddress(target)] {
		return true, nil
	}
	for _, name := range d.lists {
		l, ok := in.Lists.Get(name)
		if !ok {
			return false, fmt.Errorf("list %s is not loaded", name)
		}
		if _, ok := l.Lookup(lists.EVM, target); ok {
			return true, nil
		}
	}
	return false, nil
}

// safeName names the Safe of an event for reasons: "Safe treasury-safe
// (warm wallet of ops@firm.example) 0x…".
func safeName(ev *chains.Event, in *Input) string {
	if w, ok := in.Wallets[ev.Wallet]; ok {
		return "Safe " + describe(w) + " " + ev.From
	}
	return "Safe " + ev.From
}

// executionFacts lists an execution's selector, value, nonce, module and
// whether it succeeded, as a parenthesis for reasons.
func executionFacts(ev *chains.Event) string {
	var parts []string
	if ev.Selector != "" {
		parts = append(parts, "selector "+ev.Selector)
	}
	if ev.Value != "" && ev.Value != "0" {
		parts = append(parts, "value "+ev.Value+" wei")
	}
	if ev.SafeNonce != nil {
		parts = append(parts, fmt.Sprintf("safe nonce %d", *ev.SafeNonce))
	}
	if ev.Module != "" {
		parts = append(parts, "by module "+ev.Module)
	}
	if ev.Detail["success"] == "false" {
		parts = append(parts, "the call failed")
	}
	if ev.Tx != "" {
		parts = append(parts, "tx "+ev.Tx)
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

// signersReason names the owners whose signatures a Safe execution (or the
// change it made) carried, and who sent it.
func signersReason(ev *chains.Event, in *Input) string {
	var names []string
	for _, a := range ev.Signers {
		if w, ok := in.WalletAt(ev.Chain, a); ok {
			names = append(names, describe(w)+" "+a)
		} else {
			names = append(names, a)
		}
	}
	var parts []string
	if len(names) > 0 {
		parts = append(parts, "signed by "+strings.Join(names, ", "))
	}
	if ev.Initiator != "" {
		sender := ev.Initiator
		if w, ok := in.WalletAt(ev.Chain, ev.Initiator); ok {
			sender = describe(w) + " " + ev.Initiator
		}
		parts = append(parts, "executed by "+sender)
	}
	return strings.Join(parts, "; ")
}
