// Package watchers follows a chain's head and turns blocks into events that
// are safe to act on: it waits for confirmations, undoes reorgs, and keeps a
// checkpoint in the store so that a restart or an unreachable node skips no
// block and raises nothing twice.
//
// A Follower is chain-neutral; a chain package supplies a Source that reads
// blocks and decodes the events in them (source.go), and may offer its
// mempool (mempool.go). Several instances share a chain through a lease
// (lease.go).
package watchers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/keywatch/keywatch/chains"
	"github.com/keywatch/keywatch/internal/backoff"
	"github.com/keywatch/keywatch/store"
)

// DeliverFunc hands events to the policy engine. Delivery must be idempotent:
// after a crash, events of the last block may be delivered again.
type DeliverFunc func(ctx context.Context, events []chains.Event) error

// Options configure a Follower.
type Options struct {
	Chain         string
	Confirmations uint64
	ReorgDepth    uint64        // processed blocks remembered for reorgs (≥ Confirmations)
	PollInterval  time.Duration // how often to ask for the head without a push
	StartBlock    *uint64       // first block when there is no checkpoint (default: head)
	Store         store.Store
	Deliver       DeliverFunc
	Logger        *slog.Logger
	Metrics       *Metrics // may be nil
	// MaxBackoff caps the wait between retries after errors (default 30s).
	MaxBackoff time.Duration
	// Lease, when set, makes this follower one of several instances sharing
	// the chain: only the holder of the chain's lease in the store follows it
	// (see LeaseOptions). Nil follows unconditionally.
	Lease *LeaseOptions
}

// Follower follows one chain.
type Follower struct {
	src  Source
	opts Options
	log  *slog.Logger

	checkpoints store.Records[checkpoint]
	mempool     store.Records[mempoolState]
	leases      store.Records[lease]

	mu    sync.Mutex
	until time.Time // when this instance's lease runs out, by its own clock
}

// New makes a Follower.
func New(src Source, opts Options) (*Follower, error) {
	if opts.Chain == "" || opts.Store == nil || opts.Deliver == nil {
		return nil, errors.New("watchers: Chain, Store and Deliver are required")
	}
	if opts.ReorgDepth < opts.Confirmations {
		opts.ReorgDepth = opts.Confirmations
	}
	if opts.ReorgDepth == 0 {
		opts.ReorgDepth = 1
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = 2 * time.Second
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = 30 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if l := opts.Lease; l != nil {
		if l.Instance == "" {
			return nil, errors.New("watchers: a lease needs the instance's name")
		}
		lo := *l
		if lo.TTL <= 0 {
			lo.TTL = 15 * time.Second
		}
		if lo.Now == nil {
			lo.Now = time.Now
		}
		opts.Lease = &lo
	}
	opts.Metrics.track(opts.Chain)
	return &Follower{
		src: src, opts: opts, log: opts.Logger.With("chain", opts.Chain),
		checkpoints: checkpoints(opts.Store, opts.Chain),
		mempool:     mempools(opts.Store, opts.Chain),
		leases:      leases(opts.Store, opts.Chain),
	}, nil
}

// Run follows the chain until ctx ends. Errors from the node or the store are
// logged and retried with backoff; the checkpoint only moves forward after a
// block's events were delivered. With a lease, Run stands by while another
// instance follows the chain.
func (f *Follower) Run(ctx context.Context) error {
	if f.opts.Lease != nil {
		return f.runLeased(ctx)
	}
	f.follow(ctx)
	return nil
}

// follow follows the chain until ctx ends.
func (f *Follower) follow(ctx context.Context) {
	var heads <-chan uint64
	subscribed := true // log the first failure of a subscription, not every retry
	retry := backoff.New(time.Second, f.opts.MaxBackoff)
	for {
		if heads == nil {
			var err error
			heads, err = f.subscribe(ctx)
			if err != nil && subscribed {
				f.log.Warn("head subscription failed; polling until it can be restored", "err", err)
			}
			subscribed = err == nil
		}
		err := f.Step(ctx)
		if ctx.Err() != nil {
			return
		}
		wait := f.opts.PollInterval
		if err != nil {
			f.opts.Metrics.error(f.opts.Chain)
			wait = retry.Next()
			f.log.Warn("chain step failed; will retry from the checkpoint", "err", err, "retry_in", wait)
		} else {
			retry.Reset()
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case _, ok := <-heads:
			if !ok {
				heads = nil // resubscribe on the next turn
			}
		case <-timer.C:
		}
		timer.Stop()
	}
}

// subscribe establishes the head subscription when the source offers one; a
// nil channel means polling only.
func (f *Follower) subscribe(ctx context.Context) (<-chan uint64, error) {
	hn, ok := f.src.(HeadNotifier)
	if !ok {
		return nil, nil
	}
	return hn.SubscribeHeads(ctx)
}

// Step brings the checkpoint up to the node's head once: it undoes any reorg,
// processes new blocks in order, and confirms blocks that reached depth.
func (f *Follower) Step(ctx context.Context) error {
	if !f.owned() {
		return ErrLeaseLost
	}
	c, err := f.load(ctx)
	if err != nil {
		return err
	}
	head, err := f.src.Head(ctx)
	if err != nil {
		return fmt.Errorf("read head: %w", err)
	}
	f.opts.Metrics.head(f.opts.Chain, head)
	if !c.Started {
		start := head
		if f.opts.StartBlock != nil {
			start = *f.opts.StartBlock
		}
		if start == 0 {
			start = 1 // the genesis block moves nothing
		}
		c.Height, c.Started = start-1, true
		f.log.Info("no checkpoint: starting", "block", start)
		if err := f.save(ctx, c); err != nil {
			return err
		}
	}
	// The tip we processed may have been replaced at the same height.
	if err := f.checkTip(ctx, c); err != nil {
		return err
	}
	for c.Height < head {
		if err := ctx.Err(); err != nil {
			return err
		}
		b, err := f.src.BlockAt(ctx, c.Height+1)
		if err != nil {
			return fmt.Errorf("read block %d: %w", c.Height+1, err)
		}
		if tip := c.tip(); tip != nil && b.Parent != tip.Hash {
			if err := f.rewind(ctx, c); err != nil {
				return err
			}
			continue
		}
		if err := f.process(ctx, c, b, head); err != nil {
			return err
		}
	}
	if err := f.confirm(ctx, c, head); err != nil {
		return err
	}
	if ps, ok := f.src.(PendingSource); ok {
		if err := f.pending(ctx, ps, c); err != nil {
			return err
		}
	}
	f.opts.Metrics.processed(f.opts.Chain, c.Height, head)
	return nil
}

// checkTip undoes blocks at the top of the checkpoint that are no longer
// canonical.
func (f *Follower) checkTip(ctx context.Context, c *checkpoint) error {
	for tip := c.tip(); tip != nil; tip = c.tip() {
		b, err := f.src.BlockAt(ctx, tip.Number)
		if errors.Is(err, chains.ErrNoBlock) {
			// The node's chain is now shorter than ours: our tip is gone.
		} else if err != nil {
			return fmt.Errorf("recheck block %d: %w", tip.Number, err)
		} else if b.Hash == tip.Hash {
			return nil
		}
		if err := f.rewind(ctx, c); err != nil {
			return err
		}
	}
	return nil
}

// rewind drops the checkpoint's tip block, retracting its events.
func (f *Follower) rewind(ctx context.Context, c *checkpoint) error {
	if !f.owned() {
		return ErrLeaseLost // the chain may be another instance's to judge now
	}
	tip := c.tip()
	if len(c.Blocks) == 1 && tip.Number > 0 {
		// Reorg deeper than the remembered window: the events of older blocks
		// cannot be retracted any more. Say so loudly; keep going.
		f.log.Error("reorg deeper than reorg_depth; older blocks cannot be checked", "block", tip.Number, "reorg_depth", f.opts.ReorgDepth)
	}
	retracted := make([]chains.Event, len(tip.Events))
	for i, ev := range tip.Events {
		retracted[i] = ev.WithStatus(chains.StatusRetracted)
	}
	f.log.Warn("reorg: block left the chain", "block", tip.Number, "hash", tip.Hash, "retracted_events", len(retracted))
	f.opts.Metrics.reorg(f.opts.Chain)
	if len(retracted) > 0 {
		if err := f.opts.Deliver(ctx, retracted); err != nil {
			return fmt.Errorf("deliver retractions of block %d: %w", tip.Number, err)
		}
	}
	if rw, ok := f.src.(Rewinder); ok {
		if err := rw.Rewound(ctx, tip.Block); err != nil {
			return fmt.Errorf("rewind block %d: %w", tip.Number, err)
		}
	}
	c.Blocks = c.Blocks[:len(c.Blocks)-1]
	c.Height = tip.Number - 1
	return f.save(ctx, c)
}

// process decodes block b and delivers its events: as pending when the block
// is shallower than the confirmation depth, as confirmed otherwise.
func (f *Follower) process(ctx context.Context, c *checkpoint, b chains.Block, head uint64) error {
	events, err := f.src.Events(ctx, b)
	if err != nil {
		return fmt.Errorf("decode block %d: %w", b.Number, err)
	}
	confirmed := f.deep(b.Number, head)
	status := chains.StatusPending
	if confirmed {
		status = chains.StatusConfirmed
	}
	deliver := func(ctx context.Context, evs []chains.Event) error {
		out := make([]chains.Event, len(evs))
		for i, ev := range evs {
			out[i] = ev.WithStatus(status)
		}
		if err := f.opts.Deliver(ctx, out); err != nil {
			return fmt.Errorf("deliver events of block %d: %w", b.Number, err)
		}
		return f.mined(ctx, evs)
	}
	if len(events) > 0 {
		if err := deliver(ctx, events); err != nil {
			return err
		}
	}
	if events, err = Complete(ctx, f.src, b, events, deliver); err != nil {
		return err
	}
	c.Blocks = append(c.Blocks, record{Block: b, Confirmed: confirmed, Events: events})
	if over := len(c.Blocks) - int(f.opts.ReorgDepth); over > 0 {
		c.Blocks = append([]record(nil), c.Blocks[over:]...)
	}
	c.Height = b.Number
	f.opts.Metrics.events(f.opts.Chain, len(events))
	return f.save(ctx, c)
}

// deep reports whether block n has the configured confirmations at head.
func (f *Follower) deep(n, head uint64) bool {
	if f.opts.Confirmations == 0 {
		return true
	}
	return head >= n && head-n+1 >= f.opts.Confirmations
}

// confirm delivers the confirmed state of events in blocks that reached depth.
func (f *Follower) confirm(ctx context.Context, c *checkpoint, head uint64) error {
	for i := range c.Blocks {
		r := &c.Blocks[i]
		if r.Confirmed || !f.deep(r.Number, head) {
			continue
		}
		if len(r.Events) > 0 {
			out := make([]chains.Event, len(r.Events))
			for j, ev := range r.Events {
				out[j] = ev.WithStatus(chains.StatusConfirmed)
			}
			if err := f.opts.Deliver(ctx, out); err != nil {
				return fmt.Errorf("deliver confirmations of block %d: %w", r.Number, err)
			}
		}
		r.Confirmed = true
		if err := f.save(ctx, c); err != nil {
			return err
		}
	}
	return nil
}
