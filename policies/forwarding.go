package policies

import (
	"context"
	"fmt"
	"time"

	"github.com/keywatch/keywatch/chains"
	"github.com/keywatch/keywatch/config"
	"github.com/keywatch/keywatch/hops"
)

// forwarding follows funds that leave a watched wallet for an address
// outside the address book, for a number of hops and a time, and fires when
// they reach an address on the lists (a mixer, a sanctioned address), with
// the whole path in the reasons.
//
// Hop 1 is the outflow from the watched wallet; an address it reaches is
// followed (the chain watcher decodes its outflows as events with
// wallet_role "followed", which only this detector judges). An outflow of a
// followed address at depth d is hop d+1: it fires when it reaches a listed
// address and hop d+1 <= hops, and its destination is followed in turn while
// d+1 < hops. A listed address at hop 1 is list-match's to report.
// Parameters: lists (mixers and sanctioned), hops (3), window (72h).
// Addresses on the list named address_book, and the firm's own wallets, are
// not followed.
type forwarding struct {
	policy string
	lists  []string
	hops   int
	window time.Duration
}

func buildForwarding(b *builder, path string, p config.Policy) Detector {
	b.unused(path, p, "lists", "hops", "window")
	d := &forwarding{policy: p.Name, hops: 3, window: b.windowOr(path, p, 72*time.Hour),
		lists: b.listNames(path, p, []string{"mixers", "sanctioned"}, "of destinations to raise on")}
	if p.Hops != 0 {
		d.hops = p.Hops
		if d.hops < 2 || d.hops > 10 {
			b.errorf(path+".hops", "must be between 2 and 10 (hop 1, straight from the wallet, is list-match's)")
		}
	}
	return d
}

func step(ev *chains.Event) hops.Step {
	return hops.Step{From: ev.From, To: ev.Counterparty, Via: ev.Detail[chains.DetailVia], Tx: ev.Tx, Event: ev.ID,
		Asset: ev.Asset, Amount: ev.Amount, Time: ev.Time}
}

// follows reports whether funds reaching addr are worth following: not
// back in the firm, and not to an address of the address book.
func (d *forwarding) follows(ev *chains.Event, in *Input, addr string) bool {
	if addr == "" {
		return false
	}
	if _, ok := in.WalletAt(ev.Chain, addr); ok {
		return false
	}
	if book, ok := in.Lists.Get("address_book"); ok {
		if _, ok := book.Lookup(familyOf(ev, in), addr); ok {
			return false
		}
	}
	return true
}

func (d *forwarding) Detect(ctx context.Context, ev *chains.Event, in *Input) (Finding, error) {
	if Screening(ctx) {
		return Finding{}, nil // nothing has moved yet: nothing to follow
	}
	if in.Hops == nil {
		return Finding{}, errNoStore
	}
	at := eventTime(ev, in)
	if ev.WalletRole != chains.RoleFollowed {
		// Hop 1: funds leave a watched wallet.
		if _, listed, err := lookup(ev, in, d.lists); err != nil || listed {
			return Finding{}, err
		}
		if !d.follows(ev, in, ev.Counterparty) {
			return Finding{}, nil
		}
		return Finding{}, in.Hops.Follow(ctx, hops.Hop{Policy: d.policy, Chain: ev.Chain, Address: ev.Counterparty, Depth: 1,
			Root: ev.Wallet, RootEvent: ev.ID, Path: []hops.Step{step(ev)}, Until: at.Add(d.window)})
	}
	h, ok, err := in.Hops.Get(ctx, ev.Chain, d.policy, ev.From)
	if err != nil || !ok || at.After(h.Until) {
		return Finding{}, err
	}
	depth := h.Depth + 1
	if depth > d.hops {
		return Finding{}, nil
	}
	path := append(append([]hops.Step(nil), h.Path...), step(ev))
	hit, listed, err := lookup(ev, in, d.lists)
	if err != nil {
		return Finding{}, err
	}
	if listed {
		started := h.Path[0].Time
		reasons := []string{fmt.Sprintf("funds that left %s reached %s, on list %s (%s), in %d hops and %s",
			h.Root, hit.address, hit.list, hit.entry.Evidence(), depth, fmtDuration(at.Sub(started).Round(time.Second)))}
		for i, s := range path {
			reasons = append(reasons, describeStep(i+1, s, h.Root))
		}
		return Finding{Hit: true, Reasons: reasons, Wallet: h.Root}, nil
	}
	if depth < d.hops {
		if !d.follows(ev, in, ev.Counterparty) {
			return Finding{}, nil
		}
		return Finding{}, in.Hops.Follow(ctx, hops.Hop{Policy: d.policy, Chain: ev.Chain, Address: ev.Counterparty, Depth: depth,
			Root: h.Root, RootEvent: h.RootEvent, Path: path, Until: h.Until})
	}
	return Finding{}, nil
}

func describeStep(n int, s hops.Step, root string) string {
	from := s.From
	if n == 1 {
		from = root + " " + s.From
	}
	via := ""
	if s.Via != "" {
		via = " through " + s.Via
	}
	return fmt.Sprintf("hop %d: %s sent %s %s to %s%s (tx %s, %s)", n, from, s.Amount, s.Asset, s.To, via, s.Tx, s.Time.UTC().Format(time.RFC3339))
}

// Retract stops following addresses a retracted event led to.
func (d *forwarding) Retract(ctx context.Context, ev *chains.Event, in *Input) error {
	if in.Hops == nil || ev.Direction != chains.Out {
		return nil
	}
	return in.Hops.Forget(ctx, ev.Chain, ev.ID)
}
