package policies

import (
	"context"
	"fmt"

	"github.com/keywatch/keywatch/chains"
	"github.com/keywatch/keywatch/config"
)

// offHours fires when a watched key signs outside its owner's working hours
// (the wallet's hours:, "Mon-Fri 09:00-18:00 America/New_York"). The signer is the
// event's initiator when the chain reports one (so an employee key that
// upgrades a contract or moves a vault's tokens is judged), else the
// wallet of an outflow; the owners whose signatures a Safe execution carried
// (signers) are judged too, each on its own hours. Parameters: hours (for
// keys whose wallet sets none).
// Default: outflows, approvals and admin changes (direction out): a transfer
// between two watched wallets is judged on its sender's event, not again on
// the recipient's.
type offHours struct {
	def    config.Hours
	hasDef bool
}

func buildOffHours(b *builder, path string, p config.Policy) Detector {
	b.unused(path, p, "hours")
	d := &offHours{}
	if p.Hours != "" {
		h, err := config.ParseHours(p.Hours)
		if err != nil {
			b.errorf(path+".hours", "%v", err)
		}
		d.def, d.hasDef = h, err == nil
	}
	return d
}

func (d *offHours) Detect(_ context.Context, ev *chains.Event, in *Input) (Finding, error) {
	var f Finding
	for _, w := range signingKeys(ev, in) {
		h, ok := in.hours[w.Name]
		spec := w.Hours
		if !ok {
			if !d.hasDef {
				continue
			}
			h = d.def
			spec = "policy hours " + h.String()
		}
		at := eventTime(ev, in)
		if h.Contains(at) {
			continue
		}
		f.Hit = true
		f.Reasons = append(f.Reasons, fmt.Sprintf("%s signed at %s, outside its working hours %s (%s %s %s)",
			describe(w), at.In(h.Loc).Format("Mon 15:04 MST"), spec, ev.Kind, ev.Direction, ev.Wallet))
	}
	return f, nil
}

// signingKeys are the watched keys that signed the event: its initiator
// when the chain reports one, else the wallet of an outflow; and the
// watched owners whose signatures a Safe execution carried (signers).
func signingKeys(ev *chains.Event, in *Input) []config.Wallet {
	var out []config.Wallet
	seen := map[string]bool{}
	add := func(w config.Wallet, ok bool) {
		if ok && !seen[w.Name] {
			seen[w.Name] = true
			out = append(out, w)
		}
	}
	if ev.Initiator != "" {
		add(in.WalletAt(ev.Chain, ev.Initiator))
	} else if ev.Direction == chains.Out {
		w, ok := in.Wallets[ev.Wallet]
		add(w, ok)
	}
	for _, a := range ev.Signers {
		add(in.WalletAt(ev.Chain, a))
	}
	return out
}
