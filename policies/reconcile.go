package policies

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/keywatch/keywatch/alertmodel"
	"github.com/keywatch/keywatch/chains"
	"github.com/keywatch/keywatch/config"
	"github.com/keywatch/keywatch/intents"
)

// unapproved fires on an outflow that no approved withdrawal intent explains:
// same chain, wallet, destination and asset, an amount within tolerance,
// inside the intent's window. It judges outflows of wallets with the given
// roles (hot and employee-key), and any outflow of company funds signed by
// an employee key that is not the wallet itself (transferFrom, or a contract
// call that moves a vault's tokens). A matched intent's id is written into
// the event's intent field. Parameters: tolerance (0.01), window (24h),
// roles (hot, employee-key).
type unapproved struct {
	roles map[string]bool
	match intents.Match
}

func buildUnapproved(b *builder, path string, p config.Policy) Detector {
	b.unused(path, p, "tolerance", "window")
	d := &unapproved{roles: map[string]bool{"hot": true, "employee-key": true},
		match: intents.Match{Tolerance: 0.01, Window: b.windowOr(path, p, 24*time.Hour)}}
	if len(p.Roles) > 0 {
		d.roles = map[string]bool{}
		for _, r := range p.Roles {
			d.roles[r] = true
		}
	}
	if p.Tolerance != nil {
		d.match.Tolerance = *p.Tolerance
		if d.match.Tolerance < 0 || d.match.Tolerance >= 1 {
			b.errorf(path+".tolerance", "must be between 0 and 1 (0.01: the amount may differ by 1%%)")
		}
	}
	return d
}

// signer is the employee key that signed a spend of another wallet's funds.
func (d *unapproved) signer(ev *chains.Event, in *Input) (config.Wallet, bool) {
	if ev.Initiator == "" || strings.EqualFold(ev.Initiator, ev.From) {
		return config.Wallet{}, false
	}
	w, ok := in.WalletAt(ev.Chain, ev.Initiator)
	return w, ok && w.Role == "employee-key"
}

func (d *unapproved) Detect(ctx context.Context, ev *chains.Event, in *Input) (Finding, error) {
	if Screening(ctx) {
		return Finding{}, nil // the screening request is the approval path itself
	}
	signer, bySigner := d.signer(ev, in)
	if !d.roles[ev.WalletRole] && !bySigner {
		return Finding{}, nil
	}
	if in.Intents == nil {
		return Finding{}, errNoStore
	}
	it, ok, err := in.Intents.Reconcile(ctx, ev, d.match)
	if err != nil {
		return Finding{}, err
	}
	if ok {
		ev.Intent = it.ID
		return Finding{}, nil
	}
	open, err := in.Intents.CountOpen(ctx, ev.Chain, ev.Wallet)
	if err != nil {
		return Finding{}, err
	}
	usd := ""
	if ev.USD > 0 {
		usd = " (" + alertmodel.USD(ev.USD) + " USD)"
	}
	why := "no approved withdrawal is open for this wallet"
	if open > 0 {
		why = fmt.Sprintf("none of the %d open approved withdrawal%s of this wallet has this destination, asset and amount (within %s%%) inside %s",
			open, plural(open), ratString(decRat(d.match.Tolerance*100)), fmtDuration(d.match.Window))
	}
	f := Finding{Hit: true, Reasons: []string{fmt.Sprintf("outflow of %s %s%s from %s to %s matches no approved withdrawal intent: %s",
		ev.Amount, ev.Asset, usd, ev.Wallet, ev.To, why)}}
	if bySigner {
		f.Reasons = append(f.Reasons, fmt.Sprintf("the transaction was signed by %s (%s), not by %s", describe(signer), ev.Initiator, ev.Wallet))
	}
	return f, nil
}

// Retract frees the intent a retracted outflow had used.
func (d *unapproved) Retract(ctx context.Context, ev *chains.Event, in *Input) error {
	if in.Intents == nil || ev.Direction != chains.Out || ev.Kind != chains.KindTransfer {
		return nil
	}
	return in.Intents.Release(ctx, ev)
}
