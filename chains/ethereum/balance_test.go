package ethereum_test

import (
	"context"
	"testing"

	"github.com/keywatch/keywatch/chains"
	kwe "github.com/keywatch/keywatch/chains/ethereum"
	"github.com/keywatch/keywatch/internal/simchain"
)

// The drain detector's balance before an outflow: for a mined outflow, at
// the end of the block before it; for a mempool outflow (block 0), at the
// head, which the pending transaction has not spent yet.
func TestBalanceBeforeAMinedAndAPendingOutflow(t *testing.T) {
	ctx := context.Background()
	c := simchain.New(map[string]int64{"hot": 100}, nil)
	defer c.Close()
	to := simchain.Addr("vendor")
	r, err := c.Send(ctx, "hot", &to, simchain.Ether(40), nil) // block 1: 100 -> ~60
	if err != nil {
		t.Fatal(err)
	}
	b := kwe.NewBalances(c.Client, nil)
	from := lower(simchain.Addr("hot"))

	mined, err := b.BalanceBefore(ctx, &chains.Event{From: from, Block: r.BlockNumber.Uint64()})
	if err != nil {
		t.Fatal(err)
	}
	if mined.String() != "100" {
		t.Errorf("before the mined outflow of block %d: %s ETH, want 100", r.BlockNumber, mined)
	}
	pending, err := b.BalanceBefore(ctx, &chains.Event{From: from, Block: 0})
	if err != nil {
		t.Fatalf("a mempool outflow's balance: %v", err)
	}
	if got := pending.Rat(); got.Cmp(mined.Rat()) >= 0 || got.Sign() <= 0 {
		t.Errorf("before a mempool outflow: %s ETH, want what hot holds at the head (a little under 60)", pending)
	}
}
