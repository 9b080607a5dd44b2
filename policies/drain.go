package policies

import (
	"context"
	"fmt"
	"math/big"

	"github.com/keywatch/keywatch/chains"
	"github.com/keywatch/keywatch/config"
)

// drain fires when one outflow takes more than a share of what the wallet
// held, read from the chain's node just before the outflow's block. When the
// node cannot answer, the policy cannot decide and fires (fail closed).
// Parameters: percent_over (50). Default: outflows.
type drain struct{ percent *big.Rat }

func buildDrain(b *builder, path string, p config.Policy) Detector {
	b.unused(path, p, "percent_over")
	d := &drain{percent: big.NewRat(50, 1)}
	if p.PercentOver != nil {
		if *p.PercentOver <= 0 || *p.PercentOver > 100 {
			b.errorf(path+".percent_over", "must be over 0 and at most 100")
		}
		d.percent = decRat(*p.PercentOver)
	}
	return d
}

func (d *drain) Detect(ctx context.Context, ev *chains.Event, in *Input) (Finding, error) {
	r, ok := in.Balances[ev.Chain]
	if !ok || r == nil {
		return Finding{}, fmt.Errorf("no balance reader for chain %s", ev.Chain)
	}
	bal, err := r.BalanceBefore(ctx, ev)
	if err != nil {
		return Finding{}, fmt.Errorf("read balance of %s from the node: %w", ev.Wallet, err)
	}
	amt := ev.Amount.Rat()
	if bal.IsZero() {
		if amt.Sign() == 0 {
			return Finding{}, nil
		}
		return Finding{Hit: true, Reasons: []string{fmt.Sprintf("outflow of %s %s from %s: the wallet held no %s before block %d, so it moved all it had",
			ev.Amount, ev.Asset, ev.Wallet, ev.Asset, ev.Block)}}, nil
	}
	share := new(big.Rat).Quo(new(big.Rat).Mul(amt, big.NewRat(100, 1)), bal.Rat())
	if share.Cmp(d.percent) <= 0 {
		return Finding{}, nil
	}
	return Finding{Hit: true, Reasons: []string{fmt.Sprintf("outflow of %s %s is %s%% of the %s %s %s held before block %d, over %s%%",
		ev.Amount, ev.Asset, share.FloatString(1), bal, ev.Asset, ev.Wallet, ev.Block, ratString(d.percent))}}, nil
}
