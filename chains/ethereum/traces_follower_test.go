package ethereum_test

import (
	"context"
	"fmt"
	"math/big"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/keywatch/keywatch/chains"
	kwe "github.com/keywatch/keywatch/chains/ethereum"
	"github.com/keywatch/keywatch/contracts"
	"github.com/keywatch/keywatch/internal/simchain"
	"github.com/keywatch/keywatch/store"
	"github.com/keywatch/keywatch/store/memory"
	"github.com/keywatch/keywatch/watchers"
)

// delivered collects what a follower delivers.
type delivered struct {
	mu     sync.Mutex
	events []chains.Event
}

func (d *delivered) deliver(_ context.Context, evs []chains.Event) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.events = append(d.events, evs...)
	return nil
}

func (d *delivered) count(id string, st chains.Status) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for _, e := range d.events {
		if e.ID == id && e.Status == st {
			n++
		}
	}
	return n
}

func (d *delivered) String() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := ""
	for _, e := range d.events {
		s += fmt.Sprintf("\n  %s %s @%d", e.Status, e.ID, e.Block)
	}
	return s
}

// TestInternalOutflowThroughTheFollower: an internal outflow goes through
// the follower as any event does: pending in its block, confirmed at depth
// from the checkpoint (by a follower started afresh on the same store),
// and retracted when a reorg drops its block.
func TestInternalOutflowThroughTheFollower(t *testing.T) {
	s := newSweepChain(t, true)
	st := memory.New()
	rec := &delivered{}
	start := must[uint64](t)(s.c.Client.BlockNumber(s.ctx)) + 1
	follower := func(t *testing.T, st store.Store) *watchers.Follower {
		t.Helper()
		src := s.source(s.c.Client, kwe.TracesAuto, nil)
		f, err := watchers.New(src, watchers.Options{Chain: "eth", Confirmations: 3, ReorgDepth: 20, StartBlock: &start,
			Store: st, Deliver: rec.deliver, PollInterval: 20 * time.Millisecond, MaxBackoff: 50 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	step := func(f *watchers.Follower) {
		t.Helper()
		if err := f.Step(s.ctx); err != nil {
			t.Fatal(err)
		}
	}
	thief := simchain.Addr("thief")

	f := follower(t, st)
	r := s.send("outsider", s.caller, nil, contracts.NameSweepCaller, "sweepVia", s.sweeper, thief, simchain.Ether(500))
	first := internalID(r.TxHash, "0.0")
	step(f)
	if rec.count(first, chains.StatusPending) != 1 || rec.count(first, chains.StatusConfirmed) != 0 {
		t.Fatalf("want the sweep pending in its block:%s", rec)
	}
	// A follower started afresh (a restart) confirms it from the
	// checkpoint, without delivering it again.
	f = follower(t, st)
	for range 3 {
		s.c.Backend.Commit()
	}
	step(f)
	if rec.count(first, chains.StatusConfirmed) != 1 || rec.count(first, chains.StatusPending) != 1 {
		t.Fatalf("want the sweep confirmed once at depth 3:%s", rec)
	}

	// A second sweep, and a reorg that drops its block.
	r = s.send("outsider", s.caller, nil, contracts.NameSweepCaller, "sweepVia", s.sweeper, thief, simchain.Ether(50))
	second := internalID(r.TxHash, "0.0")
	step(f)
	if rec.count(second, chains.StatusPending) != 1 {
		t.Fatalf("want the second sweep pending:%s", rec)
	}
	parent := must[*types.Header](t)(s.c.Client.HeaderByNumber(s.ctx, new(big.Int).Sub(r.BlockNumber, big.NewInt(1))))
	if err := s.c.Backend.Fork(parent.Hash()); err != nil {
		t.Fatal(err)
	}
	vendor := common.HexToAddress("0x000000000000000000000000000000000000beef")
	must[*types.Transaction](t)(s.c.Submit(s.ctx, "deployer", &vendor, simchain.Ether(1), nil))
	s.c.Backend.Commit()
	s.c.Backend.Commit()
	step(f)
	if rec.count(second, chains.StatusRetracted) != 1 {
		t.Fatalf("the sweep's block left the chain, want it retracted:%s", rec)
	}
	if rec.count(first, chains.StatusRetracted) != 0 {
		t.Fatalf("the confirmed sweep was retracted:%s", rec)
	}
	// If the new branch took the sweep again, it is pending again there,
	// under the same id.
	if nr, err := s.c.Client.TransactionReceipt(s.ctx, r.TxHash); err == nil && nr.BlockHash != r.BlockHash {
		if rec.count(second, chains.StatusPending) != 2 {
			t.Fatalf("the sweep was included again in block %d but not delivered there:%s", nr.BlockNumber, rec)
		}
	}
}
