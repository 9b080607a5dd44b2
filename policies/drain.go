package policies

import (
	"context"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/keywatch/keywatch/chains"
	"github.com/keywatch/keywatch/config"
	"github.com/keywatch/keywatch/store"
)

// drain fires when one transaction's outflows from a wallet, in one asset,
// sum to more than a share of what the wallet held before it: a Bitcoin
// spend paying two outputs of 50% each, or an EVM transaction moving value
// several times (a batch call's internal movements, several Transfer logs of
// one token). The balance is read from the chain's node just before the
// outflow's block. When the node cannot answer, the policy cannot decide and
// fires (fail closed).
//
// The outflows of a transaction are summed in the store, by event id, so an
// event delivered again (pending, then confirmed; a rescan) counts once. The
// alert is raised on the outflow whose addition crosses the share, and only
// on it: one alert per transaction and policy. A retracted outflow leaves
// the sum. Parameters: percent_over (50). Default: outflows.
type drain struct {
	name    string
	percent *big.Rat
}

// drainKeep is how long a transaction's outflows are remembered: longer
// than a transaction waits in a mempool or a rescan reaches back.
const drainKeep = 30 * 24 * time.Hour

// drainListed is how many of a transaction's movements an alert lists (a
// batch payout may have hundreds); the sum and count cover them all.
const drainListed = 20

func buildDrain(b *builder, path string, p config.Policy) Detector {
	b.unused(path, p, "percent_over")
	d := &drain{name: p.Name, percent: big.NewRat(50, 1)}
	if p.PercentOver != nil {
		if *p.PercentOver <= 0 || *p.PercentOver > 100 {
			b.errorf(path+".percent_over", "must be over 0 and at most 100")
		}
		d.percent = decRat(*p.PercentOver)
	}
	return d
}

// drainOutflow is one outflow of a transaction, as summed.
type drainOutflow struct {
	Event  string `json:"event"`
	Amount string `json:"amount"`
	To     string `json:"to"`
}

// drainTx is what drain remembers of one transaction's outflows from one
// wallet in one asset: each outflow once, in the order first seen, and the
// outflow whose addition crossed the share (the one that carries the alert).
type drainTx struct {
	Outflows []drainOutflow `json:"outflows"`
	Crossed  string         `json:"crossed,omitempty"`
}

// with returns t with o recorded (replacing an earlier record of the same
// event) and its sum.
func (t drainTx) with(o drainOutflow) (drainTx, *big.Rat, error) {
	out := drainTx{Crossed: t.Crossed}
	seen := false
	for _, p := range t.Outflows {
		if p.Event == o.Event {
			p, seen = o, true
		}
		out.Outflows = append(out.Outflows, p)
	}
	if !seen {
		out.Outflows = append(out.Outflows, o)
	}
	sum, err := out.sum()
	return out, sum, err
}

func (t drainTx) sum() (*big.Rat, error) {
	sum := new(big.Rat)
	for _, o := range t.Outflows {
		a, ok := new(big.Rat).SetString(o.Amount)
		if !ok {
			return nil, fmt.Errorf("outflow %s holds a malformed amount %q", o.Event, o.Amount)
		}
		sum.Add(sum, a)
	}
	return sum, nil
}

// drainKey names the sum of ev's transaction: one per policy, chain, wallet,
// transaction and asset (the token contract when there is one).
func (d *drain) key(ev *chains.Event) string {
	asset := ev.Asset
	if ev.Token != "" {
		asset = chains.NormaliseAddress(ev.Token)
	}
	return "drain:" + d.name + ":" + ev.Chain + ":" + ev.Wallet + ":" + ev.Tx + ":" + asset
}

func (d *drain) record(ev *chains.Event, st store.Store) store.Records[drainTx] {
	return store.NewRecords[drainTx](st, "drain sum of transaction "+ev.Tx+" from "+ev.Wallet)
}

func (d *drain) Detect(ctx context.Context, ev *chains.Event, in *Input) (Finding, error) {
	if in.Store == nil {
		return Finding{}, errNoStore
	}
	r, ok := in.Balances[ev.Chain]
	if !ok || r == nil {
		return Finding{}, fmt.Errorf("no balance reader for chain %s", ev.Chain)
	}
	bal, err := r.BalanceBefore(ctx, ev)
	if err != nil {
		return Finding{}, fmt.Errorf("read balance of %s from the node: %w", ev.Wallet, err)
	}
	over := func(sum *big.Rat) bool {
		if bal.IsZero() {
			return sum.Sign() > 0
		}
		share := new(big.Rat).Quo(new(big.Rat).Mul(sum, big.NewRat(100, 1)), bal.Rat())
		return share.Cmp(d.percent) > 0
	}
	this := drainOutflow{Event: ev.ID, Amount: ev.Amount.Rat().RatString(), To: ev.Counterparty}
	rec := d.record(ev, in.Store)
	key := d.key(ev)
	var tx drainTx
	var sum *big.Rat
	hit := false
	if Screening(ctx) {
		// An intended withdrawal is judged with what its transaction has
		// already moved, but not recorded: the outflow, if it happens, will be.
		cur, _, err := rec.Get(ctx, key)
		if err != nil {
			return Finding{}, err
		}
		if tx, sum, err = cur.with(this); err != nil {
			return Finding{}, err
		}
		hit = over(sum) && (cur.Crossed == "" || cur.Crossed == ev.ID)
	} else {
		// The record is made with its lifetime first; Update keeps it.
		if _, err := rec.PutNew(ctx, key, drainTx{}, drainKeep); err != nil {
			return Finding{}, err
		}
		err := rec.Update(ctx, key, func(cur drainTx, _ bool) (drainTx, error) {
			next, s, err := cur.with(this)
			if err != nil {
				return drainTx{}, err
			}
			if over(s) && next.Crossed == "" {
				next.Crossed = ev.ID
			}
			tx, sum = next, s
			return next, nil
		})
		if err != nil {
			return Finding{}, fmt.Errorf("record outflow in its transaction's sum: %w", err)
		}
		hit = over(sum) && tx.Crossed == ev.ID
	}
	if !hit {
		return Finding{}, nil
	}
	return Finding{Hit: true, Reasons: d.reasons(ev, bal, tx, sum)}, nil
}

func (d *drain) reasons(ev *chains.Event, bal chains.Amount, tx drainTx, sum *big.Rat) []string {
	what, is := fmt.Sprintf("outflow of %s %s", ev.Amount, ev.Asset), " is "
	if len(tx.Outflows) > 1 {
		what, is = fmt.Sprintf("outflows of transaction %s sum to %s %s over %d movements", ev.Tx, ratString(sum), ev.Asset, len(tx.Outflows)), ": "
	}
	var rs []string
	if bal.IsZero() {
		rs = []string{fmt.Sprintf("%s from %s: the wallet held no %s before block %d, so it moved all it had",
			what, ev.Wallet, ev.Asset, ev.Block)}
	} else {
		share := new(big.Rat).Quo(new(big.Rat).Mul(sum, big.NewRat(100, 1)), bal.Rat())
		rs = []string{fmt.Sprintf("%s%s%s%% of the %s %s %s held before block %d, over %s%%",
			what, is, share.FloatString(1), bal, ev.Asset, ev.Wallet, ev.Block, ratString(d.percent))}
	}
	if len(tx.Outflows) > 1 {
		var each []string
		for i, o := range tx.Outflows {
			if i == drainListed {
				each = append(each, fmt.Sprintf("and %d more", len(tx.Outflows)-drainListed))
				break
			}
			a, _ := new(big.Rat).SetString(o.Amount)
			each = append(each, fmt.Sprintf("%s %s to %s (%s)", ratString(a), ev.Asset, o.To, o.Event))
		}
		rs = append(rs, "movements: "+strings.Join(each, ", "))
	}
	return rs
}

// Retract removes a retracted outflow from its transaction's sum; when it
// carried the alert, the next outflow to cross the share carries it.
func (d *drain) Retract(ctx context.Context, ev *chains.Event, in *Input) error {
	if in.Store == nil {
		return nil
	}
	return d.record(ev, in.Store).Update(ctx, d.key(ev), func(cur drainTx, found bool) (drainTx, error) {
		if !found {
			return cur, store.ErrUnchanged
		}
		next := drainTx{Crossed: cur.Crossed}
		for _, o := range cur.Outflows {
			if o.Event != ev.ID {
				next.Outflows = append(next.Outflows, o)
			}
		}
		if len(next.Outflows) == len(cur.Outflows) {
			return cur, store.ErrUnchanged
		}
		if next.Crossed == ev.ID {
			next.Crossed = ""
		}
		return next, nil
	})
}
