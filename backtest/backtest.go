// Package backtest replays a chain's history through a policy set: blocks
// are read and decoded exactly as the watcher reads them (from a node, or
// from recorded responses), every event goes through a fresh policy engine
// over a memory store, and the alerts that would have fired are written as
// JSON lines. Nothing is published and no shared state is touched.
//
// Replay is chain-neutral: it reads blocks through watchers.Source, the
// interface every chain package implements for the watcher.
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

	"github.com/keywatch/keywatch/alerts"
	"github.com/keywatch/keywatch/chains"
	"github.com/keywatch/keywatch/policies"
	"github.com/keywatch/keywatch/store/memory"
	"github.com/keywatch/keywatch/watchers"
)

// Options describe one replay.
type Options struct {
	Set    *policies.Set
	Source watchers.Source
	// From and To bound the replay (inclusive).
	From, To uint64
	// Heights, when set, are the only blocks replayed (those within From and
	// To): recorded files hold some blocks of a range, not all.
	Heights []uint64
	// Out receives one JSON alert a line.
	Out    io.Writer
	Logger *slog.Logger
}

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

// Run replays the blocks. Each event is judged as the watcher delivers a
// block already at confirmation depth: once, with status confirmed. The
// engine's clock is the block's time, so windows and business hours are
// judged as they would have been then.
func Run(ctx context.Context, opts Options) (Summary, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.To < opts.From {
		return Summary{}, fmt.Errorf("the range %d..%d is empty: -to is below -from", opts.From, opts.To)
	}
	sum := Summary{ByPolicy: map[string]int{}}
	clock := &blockClock{}
	enc := json.NewEncoder(opts.Out)
	notify := func(_ context.Context, as ...alerts.Alert) error {
		for _, a := range as {
			if err := enc.Encode(a); err != nil {
				return fmt.Errorf("write alert: %w", err)
			}
			sum.Alerts++
			sum.ByPolicy[a.Policy]++
		}
		return nil
	}
	st := memory.New()
	defer st.Close()
	engine := policies.New(opts.Set, policies.Options{Store: st, Notify: notify, Now: clock.now, Logger: opts.Logger})

	heights := opts.Heights
	if heights == nil {
		for n := opts.From; n <= opts.To; n++ {
			if err := replayBlock(ctx, opts, engine, clock, n, &sum); err != nil {
				return sum, err
			}
			if n == opts.To { // opts.To may be the largest uint64
				break
			}
		}
		return sum, nil
	}
	for _, n := range heights {
		if n < opts.From || n > opts.To {
			continue
		}
		if err := replayBlock(ctx, opts, engine, clock, n, &sum); err != nil {
			return sum, err
		}
	}
	return sum, nil
}

func replayBlock(ctx context.Context, opts Options, engine *policies.Engine, clock *blockClock, n uint64, sum *Summary) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b, err := opts.Source.BlockAt(ctx, n)
	if errors.Is(err, watchers.ErrNoBlock) {
		return fmt.Errorf("block %d: the node has no such block (its head is lower)", n)
	}
	if err != nil {
		return fmt.Errorf("block %d: %w", n, err)
	}
	evs, err := opts.Source.Events(ctx, b)
	if err != nil {
		return fmt.Errorf("block %d: %w", n, err)
	}
	clock.set(b.Time)
	for i := range evs {
		evs[i].Status = chains.StatusConfirmed
	}
	if err := engine.Process(ctx, evs); err != nil {
		return fmt.Errorf("block %d: %w", n, err)
	}
	sum.Blocks++
	sum.Events += len(evs)
	if sum.Blocks%1000 == 0 {
		opts.Logger.Info("backtest progress", "block", n, "blocks", sum.Blocks, "events", sum.Events, "alerts", sum.Alerts)
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
