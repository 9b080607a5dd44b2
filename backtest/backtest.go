// Package backtest replays a chain's history through a policy set: blocks
// are read and decoded exactly as the watcher reads them (from a node, or
// from recorded responses), every event goes through a fresh policy engine
// over a memory store, and the alerts that would have fired are written as
// JSON lines. Nothing is published and no shared state is touched.
//
// Replay is chain-neutral: it reads blocks through watchers.Source, the
// interface every chain package implements for the watcher (Ethereum and
// Bitcoin, from a node or from recorded files).
package backtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/keywatch/keywatch/alertmodel"
	"github.com/keywatch/keywatch/chains"
	"github.com/keywatch/keywatch/hops"
	"github.com/keywatch/keywatch/intents"
	"github.com/keywatch/keywatch/policies"
	"github.com/keywatch/keywatch/store"
	"github.com/keywatch/keywatch/store/memory"
	"github.com/keywatch/keywatch/watchers"
)

// Options describe a replay.
type Options struct {
	Set *policies.Set
	// Intents are the approved withdrawals known to the replay (the
	// configuration's intents files): registered as approved just before the
	// first replayed block.
	Intents []intents.Intent
	// Balances read wallet balances (for drain), by chain name; may be nil.
	Balances map[string]policies.BalanceReader
	// Out receives one JSON alert a line.
	Out    io.Writer
	Logger *slog.Logger
}

// Range says which blocks to replay.
type Range struct {
	// From and To bound the replay (inclusive).
	From, To uint64
	// Heights, when set, are the only blocks replayed (those within From and
	// To): recorded files hold some blocks of a range, not all.
	Heights []uint64
}

// Replay is one backtest: a policy engine over a memory store of its own,
// its clock at the time of the block being replayed.
type Replay struct {
	opts    Options
	st      *memory.Store
	hops    *hops.Registry
	intents *intents.Registry
	clock   *blockClock
	engine  *policies.Engine
	sum     Summary
	started bool
}

// New prepares a replay. Build the chain's source with Hops, so that it
// decodes the outflows of the addresses forwarding follows, as the watcher
// does.
func New(opts Options) *Replay {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	r := &Replay{opts: opts, st: memory.New(), clock: &blockClock{}, sum: Summary{ByPolicy: map[string]int{}}}
	r.hops = hops.New(r.st)
	r.intents = intents.New(r.st, r.clock.now)
	enc := json.NewEncoder(opts.Out)
	notify := func(_ context.Context, as ...alertmodel.Alert) error {
		for _, a := range as {
			if err := enc.Encode(a); err != nil {
				return fmt.Errorf("write alert: %w", err)
			}
			r.sum.Alerts++
			r.sum.ByPolicy[a.Policy]++
		}
		return nil
	}
	r.engine = policies.New(opts.Set, policies.Options{
		Store: r.st, Intents: r.intents, Hops: r.hops, Balances: opts.Balances,
		Notify: notify, Now: r.clock.now, Logger: opts.Logger,
	})
	return r
}

// Hops are the addresses the replay's forwarding policies follow.
func (r *Replay) Hops() *hops.Registry { return r.hops }

// Store is the replay's own memory store, for sources that keep state (the
// Bitcoin watched outputs).
func (r *Replay) Store() store.Store { return r.st }

// Close releases the replay's store.
func (r *Replay) Close() { r.st.Close() }

// Summary counts what a replay saw.
type Summary struct {
	Blocks   int
	Events   int
	Alerts   int
	ByPolicy map[string]int
}

// String is the one-line account printed after a replay.
func (s Summary) String() string {
	out := fmt.Sprintf("%d block%s, %d event%s: %d alert%s", s.Blocks, plural(s.Blocks), s.Events, plural(s.Events), s.Alerts, plural(s.Alerts))
	if len(s.ByPolicy) > 0 {
		names := make([]string, 0, len(s.ByPolicy))
		for n := range s.ByPolicy {
			names = append(names, n)
		}
		sort.Strings(names)
		out += " ("
		for i, n := range names {
			if i > 0 {
				out += ", "
			}
			out += fmt.Sprintf("%s %d", n, s.ByPolicy[n])
		}
		out += ")"
	}
	return out
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// Run replays the blocks of rng from src. Each event is judged as the
// watcher delivers a block already at confirmation depth: once, with status
// confirmed. The engine's clock is the block's time, so windows and business
// hours are judged as they would have been then.
func (r *Replay) Run(ctx context.Context, src watchers.Source, rng Range) (Summary, error) {
	if rng.To < rng.From {
		return r.sum, fmt.Errorf("the range %d..%d is empty: -to is below -from", rng.From, rng.To)
	}
	if rng.Heights == nil {
		for n := rng.From; ; n++ {
			if err := r.block(ctx, src, n); err != nil {
				return r.sum, err
			}
			if n == rng.To { // rng.To may be the largest uint64
				return r.sum, nil
			}
		}
	}
	for _, n := range rng.Heights {
		if n < rng.From || n > rng.To {
			continue
		}
		if err := r.block(ctx, src, n); err != nil {
			return r.sum, err
		}
	}
	return r.sum, nil
}

func (r *Replay) block(ctx context.Context, src watchers.Source, n uint64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b, err := src.BlockAt(ctx, n)
	if errors.Is(err, chains.ErrNoBlock) {
		return fmt.Errorf("block %d: the node has no such block (its head is lower)", n)
	}
	if err != nil {
		return fmt.Errorf("block %d: %w", n, err)
	}
	r.clock.set(b.Time)
	if !r.started {
		r.started = true
		for _, in := range r.opts.Intents {
			in.CreatedAt = b.Time
			if err := r.intents.Register(ctx, in); err != nil {
				return fmt.Errorf("intent %s: %w", in.ID, err)
			}
		}
	}
	evs, err := src.Events(ctx, b)
	if err != nil {
		return fmt.Errorf("block %d: %w", n, err)
	}
	judge := func(ctx context.Context, evs []chains.Event) error {
		for i := range evs {
			evs[i].Status = chains.StatusConfirmed
		}
		if err := r.engine.Process(ctx, evs); err != nil {
			return fmt.Errorf("block %d: %w", n, err)
		}
		return nil
	}
	if err := judge(ctx, evs); err != nil {
		return err
	}
	// Hops made later in the same block, through addresses just followed.
	if evs, err = watchers.Complete(ctx, src, b, evs, judge); err != nil {
		return fmt.Errorf("block %d: %w", n, err)
	}
	r.sum.Blocks++
	r.sum.Events += len(evs)
	if r.sum.Blocks%1000 == 0 {
		r.opts.Logger.Info("backtest progress", "block", n, "blocks", r.sum.Blocks, "events", r.sum.Events, "alerts", r.sum.Alerts)
	}
	return nil
}

// blockClock is the engine's clock during a replay: the time of the block
// being replayed.
type blockClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *blockClock) set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

func (c *blockClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}
