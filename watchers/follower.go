// Package watchers follows a chain's head and turns blocks into events that
// are safe to act on: it waits for confirmations, undoes reorgs, and keeps a
// checkpoint in the store so that a restart or an unreachable node skips no
// block and raises nothing twice.
//
// A Follower is chain-neutral; a chain package supplies a Source that reads
// blocks and decodes the events in them.
package watchers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/keywatch/keywatch/chains"
	"github.com/keywatch/keywatch/store"
)

// Source reads one chain.
type Source interface {
	// Head returns the number of the newest block the node knows.
	Head(ctx context.Context) (uint64, error)
	// BlockAt returns the header of the canonical block at height n.
	BlockAt(ctx context.Context, n uint64) (chains.Block, error)
	// Events decodes the watched movements in block b (identified by hash,
	// so a reorg between calls cannot mix two branches).
	Events(ctx context.Context, b chains.Block) ([]chains.Event, error)
}

// HeadNotifier is implemented by sources that can push new heads (WebSocket
// subscriptions). The channel is closed when the subscription ends.
type HeadNotifier interface {
	SubscribeHeads(ctx context.Context) (<-chan uint64, error)
}

// Rewinder is implemented by sources that keep state per block (the Bitcoin
// set of watched unspent outputs): the follower tells them when a processed
// block left the chain, after its events were retracted. It must be
// idempotent: after a crash the same block may be rewound again.
type Rewinder interface {
	Rewound(ctx context.Context, b chains.Block) error
}

// PendingSource is implemented by chains with a mempool (Bitcoin). After each
// pass over the blocks the follower asks for the unconfirmed transactions
// that move watched funds and delivers their events as pending, once per
// transaction; when one leaves the mempool without being mined (replaced,
// double-spent, evicted) its events are delivered as retracted. Which
// transactions were delivered is kept in the store, so a restart delivers
// nothing twice and still retracts what left the mempool meanwhile.
type PendingSource interface {
	Pending(ctx context.Context) ([]chains.PendingTx, error)
	// Dropped says why a transaction left the mempool unmined, for the
	// retraction's evidence.
	Dropped(ctx context.Context, tx string) string
}

// Rescanner is implemented by sources whose decoding depends on state that
// judging a block's events can change: forwarding starts following an
// address an outflow paid, and that address may pass the funds on later in
// the same block. After a block's events were delivered, Rescan returns the
// events of block b that are not among known and that the source sees now
// (nil when nothing it decodes with changed). Complete asks until nothing
// new comes.
type Rescanner interface {
	Rescan(ctx context.Context, b chains.Block, known []chains.Event) ([]chains.Event, error)
}

// maxRescans bounds the passes over one block; each can add one hop.
const maxRescans = 16

// Complete delivers what the delivery of block b's events made visible in
// the same block (see Rescanner) and returns every event of the block. The
// events of a pass are delivered before the next pass is asked for.
func Complete(ctx context.Context, src Source, b chains.Block, events []chains.Event, deliver func(context.Context, []chains.Event) error) ([]chains.Event, error) {
	rs, ok := src.(Rescanner)
	if !ok || len(events) == 0 {
		return events, nil
	}
	for range maxRescans {
		more, err := rs.Rescan(ctx, b, events)
		if err != nil {
			return events, fmt.Errorf("rescan block %d: %w", b.Number, err)
		}
		if len(more) == 0 {
			break
		}
		if err := deliver(ctx, more); err != nil {
			return events, err
		}
		events = append(events, more...)
	}
	return events, nil
}

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
	return &Follower{src: src, opts: opts, log: opts.Logger.With("chain", opts.Chain)}, nil
}

// record is a processed block as the checkpoint remembers it.
type record struct {
	chains.Block
	Confirmed bool           `json:"confirmed"`
	Events    []chains.Event `json:"events,omitempty"`
}

// checkpoint is the follower's durable state: the processed blocks still
// within reorg depth, oldest first. Height is the last processed block.
type checkpoint struct {
	Height  uint64   `json:"height"`
	Started bool     `json:"started"`
	Blocks  []record `json:"blocks"`
}

func (c *checkpoint) tip() *record {
	if len(c.Blocks) == 0 {
		return nil
	}
	return &c.Blocks[len(c.Blocks)-1]
}

func (f *Follower) key() string { return "watch:" + f.opts.Chain + ":checkpoint" }

func (f *Follower) load(ctx context.Context) (*checkpoint, error) {
	b, err := f.opts.Store.Get(ctx, f.key())
	if errors.Is(err, store.ErrNotFound) {
		return &checkpoint{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read checkpoint: %w", err)
	}
	var c checkpoint
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("checkpoint of chain %s is corrupt: %w", f.opts.Chain, err)
	}
	return &c, nil
}

func (f *Follower) save(ctx context.Context, c *checkpoint) error {
	if !f.owned() {
		return ErrLeaseLost
	}
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	if err := f.opts.Store.Set(ctx, f.key(), b, 0); err != nil {
		return fmt.Errorf("write checkpoint: %w", err)
	}
	return nil
}

// Checkpoint reports the last processed block height (false when the chain
// has never been processed).
func (f *Follower) Checkpoint(ctx context.Context) (uint64, bool, error) {
	c, err := f.load(ctx)
	if err != nil {
		return 0, false, err
	}
	return c.Height, c.Started, nil
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
	backoff := time.Second
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
			f.log.Warn("chain step failed; will retry from the checkpoint", "err", err, "retry_in", backoff)
			wait = backoff
			backoff = min(backoff*2, f.opts.MaxBackoff)
		} else {
			backoff = time.Second
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

func (f *Follower) mempoolKey() string { return "watch:" + f.opts.Chain + ":mempool" }

func (f *Follower) loadMempool(ctx context.Context) (map[string][]chains.Event, error) {
	tracked := map[string][]chains.Event{}
	b, err := f.opts.Store.Get(ctx, f.mempoolKey())
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return nil, fmt.Errorf("read mempool state: %w", err)
	default:
		if err := json.Unmarshal(b, &tracked); err != nil {
			return nil, fmt.Errorf("mempool state of chain %s is corrupt: %w", f.opts.Chain, err)
		}
	}
	return tracked, nil
}

func (f *Follower) saveMempool(ctx context.Context, tracked map[string][]chains.Event) error {
	b, err := json.Marshal(tracked)
	if err != nil {
		return err
	}
	if err := f.opts.Store.Set(ctx, f.mempoolKey(), b, 0); err != nil {
		return fmt.Errorf("write mempool state: %w", err)
	}
	return nil
}

// mined forgets the mempool transactions a processed block mined: they are
// the block's now, and leaving the mempool is no drop. (Done per block, not
// from the remembered blocks, so a long outage cannot mistake a transaction
// mined long ago for a dropped one.)
func (f *Follower) mined(ctx context.Context, events []chains.Event) error {
	if _, ok := f.src.(PendingSource); !ok {
		return nil
	}
	tracked, err := f.loadMempool(ctx)
	if err != nil || len(tracked) == 0 {
		return err
	}
	changed := false
	for _, ev := range events {
		if _, ok := tracked[ev.Tx]; ok {
			delete(tracked, ev.Tx)
			changed = true
		}
	}
	if !changed {
		return nil
	}
	return f.saveMempool(ctx, tracked)
}

// pending delivers the events of unconfirmed transactions new to the
// mempool as pending, and retracts those of transactions that left it
// without being mined.
func (f *Follower) pending(ctx context.Context, ps PendingSource, c *checkpoint) error {
	tracked, err := f.loadMempool(ctx)
	if err != nil {
		return err
	}
	cur, err := ps.Pending(ctx)
	if err != nil {
		return fmt.Errorf("read mempool: %w", err)
	}
	save := func() error { return f.saveMempool(ctx, tracked) }
	inPool := make(map[string]bool, len(cur))
	for _, p := range cur {
		inPool[p.Tx] = true
		if _, ok := tracked[p.Tx]; ok || len(p.Events) == 0 {
			continue
		}
		out := make([]chains.Event, len(p.Events))
		for i, ev := range p.Events {
			out[i] = ev.WithStatus(chains.StatusPending)
		}
		if err := f.opts.Deliver(ctx, out); err != nil {
			return fmt.Errorf("deliver mempool transaction %s: %w", p.Tx, err)
		}
		f.opts.Metrics.events(f.opts.Chain, len(out))
		tracked[p.Tx] = p.Events
		if err := save(); err != nil {
			return err
		}
	}
	// A transaction that left the mempool was mined, or dropped. Mined ones
	// were forgotten as their block was processed (and appear in the
	// remembered blocks); when the node's head moved past what was
	// processed, the answer may be in a block not read yet: wait.
	head, err := f.src.Head(ctx)
	if err != nil {
		return fmt.Errorf("read head: %w", err)
	}
	caughtUp := head == c.Height
	mined := map[string]bool{}
	for _, r := range c.Blocks {
		for _, ev := range r.Events {
			mined[ev.Tx] = true
		}
	}
	gone := make([]string, 0)
	for tx := range tracked {
		if !inPool[tx] {
			gone = append(gone, tx)
		}
	}
	sort.Strings(gone)
	changed := false
	for _, tx := range gone {
		if mined[tx] {
			delete(tracked, tx)
			changed = true
			continue
		}
		if !caughtUp {
			continue
		}
		reason := ps.Dropped(ctx, tx)
		out := make([]chains.Event, len(tracked[tx]))
		for i, ev := range tracked[tx] {
			ev = ev.WithStatus(chains.StatusRetracted)
			detail := make(map[string]string, len(ev.Detail)+1)
			for k, v := range ev.Detail {
				detail[k] = v
			}
			detail[chains.DetailRetracted] = reason
			ev.Detail = detail
			out[i] = ev
		}
		f.log.Warn("mempool transaction dropped: retracting its events", "tx", tx, "reason", reason, "events", len(out))
		if err := f.opts.Deliver(ctx, out); err != nil {
			return fmt.Errorf("deliver retraction of mempool transaction %s: %w", tx, err)
		}
		delete(tracked, tx)
		if err := save(); err != nil {
			return err
		}
	}
	if changed {
		return save()
	}
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

// Metrics are a follower's Prometheus series, and what it last knew of its
// chain for heartbeats (Status); nil disables them.
type Metrics struct {
	headHeight, processedHeight, lag *prometheus.GaugeVec
	eventsTotal, errorsTotal, reorgs *prometheus.CounterVec
	lastProgress, following          *prometheus.GaugeVec

	now    func() time.Time
	mu     sync.Mutex
	status map[string]*ChainStatus
}

// ChainStatus is what a watcher last knew about its chain. Zero times mean
// "not since the process started".
type ChainStatus struct {
	Chain     string
	Head      uint64 // newest block the node reported
	Processed uint64 // last block processed into events
	// HeadAdvancedAt is when the node last reported a higher head.
	HeadAdvancedAt time.Time
	// ProcessedAt is when processing last advanced or was caught up.
	ProcessedAt time.Time
	// LastOKAt is when the node last answered.
	LastOKAt time.Time
	// Errors counts failed passes since the last good one.
	Errors uint64
	// Standby says another instance holds the chain's lease and follows it:
	// FollowedBy names it. FollowingSince is when this instance last took
	// the chain over (zero: it has followed it since it started, or never).
	Standby        bool
	FollowedBy     string
	FollowingSince time.Time
}

// Lag is how many blocks processing is behind the head.
func (s ChainStatus) Lag() uint64 {
	if s.Head > s.Processed {
		return s.Head - s.Processed
	}
	return 0
}

// Status returns what each watcher last knew, by chain name.
func (m *Metrics) Status() []ChainStatus {
	if m == nil {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]ChainStatus, 0, len(m.status))
	for _, s := range m.status {
		out = append(out, *s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Chain < out[j].Chain })
	return out
}

func (m *Metrics) track(chain string) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.chain(chain)
}

// chain returns the status of chain; m.mu is held.
func (m *Metrics) chain(chain string) *ChainStatus {
	s, ok := m.status[chain]
	if !ok {
		s = &ChainStatus{Chain: chain}
		m.status[chain] = s
	}
	return s
}

// NewMetrics registers the watcher series on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		headHeight:      prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "keywatch_chain_head_height", Help: "Newest block the node reports."}, []string{"chain"}),
		processedHeight: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "keywatch_chain_processed_height", Help: "Last block processed into events."}, []string{"chain"}),
		lag:             prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "keywatch_chain_lag_blocks", Help: "Blocks between the node's head and the last processed block."}, []string{"chain"}),
		lastProgress:    prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "keywatch_chain_last_progress_timestamp_seconds", Help: "When the watcher last completed a pass over the chain."}, []string{"chain"}),
		eventsTotal:     prometheus.NewCounterVec(prometheus.CounterOpts{Name: "keywatch_chain_events_total", Help: "Events decoded from blocks."}, []string{"chain"}),
		errorsTotal:     prometheus.NewCounterVec(prometheus.CounterOpts{Name: "keywatch_chain_errors_total", Help: "Failed passes (node or store errors), retried."}, []string{"chain"}),
		reorgs:          prometheus.NewCounterVec(prometheus.CounterOpts{Name: "keywatch_chain_reorged_blocks_total", Help: "Processed blocks that left the chain."}, []string{"chain"}),
		following:       prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "keywatch_chain_following", Help: "1 while this instance follows the chain, 0 while it stands by for another instance that holds the chain's lease."}, []string{"chain"}),
	}
	if reg != nil {
		reg.MustRegister(m.headHeight, m.processedHeight, m.lag, m.lastProgress, m.eventsTotal, m.errorsTotal, m.reorgs, m.following)
	}
	m.now, m.status = time.Now, map[string]*ChainStatus{}
	return m
}

func (m *Metrics) head(chain string, h uint64) {
	if m == nil {
		return
	}
	m.headHeight.WithLabelValues(chain).Set(float64(h))
	m.mu.Lock()
	defer m.mu.Unlock()
	s, now := m.chain(chain), m.now()
	s.LastOKAt = now
	if h > s.Head || s.HeadAdvancedAt.IsZero() {
		s.HeadAdvancedAt = now
	}
	s.Head = h
}

func (m *Metrics) processed(chain string, h, head uint64) {
	if m == nil {
		return
	}
	m.processedHeight.WithLabelValues(chain).Set(float64(h))
	m.lag.WithLabelValues(chain).Set(float64(head) - float64(h))
	m.lastProgress.WithLabelValues(chain).SetToCurrentTime()
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.chain(chain)
	if h != s.Processed || h >= head || s.ProcessedAt.IsZero() {
		s.ProcessedAt = m.now()
	}
	s.Processed, s.Errors = h, 0
}

// standby records that holder follows the chain instead of this instance.
func (m *Metrics) standby(chain, holder string) {
	if m == nil {
		return
	}
	m.following.WithLabelValues(chain).Set(0)
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.chain(chain)
	s.Standby, s.FollowedBy = true, holder
}

// lead records that this instance (again) follows the chain. What it knew
// of the chain before is stale; the monitor counts from now.
func (m *Metrics) lead(chain string) {
	if m == nil {
		return
	}
	m.following.WithLabelValues(chain).Set(1)
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.chain(chain)
	*s = ChainStatus{Chain: chain, FollowingSince: m.now()}
}

// stopped records that this instance stopped following the chain without
// knowing who follows it now (its lease ran out or ctx ended). Its status is
// left as it was, so a chain nobody follows still looks stale and pages.
func (m *Metrics) stopped(chain string) {
	if m != nil {
		m.following.WithLabelValues(chain).Set(0)
	}
}

func (m *Metrics) events(chain string, n int) {
	if m != nil {
		m.eventsTotal.WithLabelValues(chain).Add(float64(n))
	}
}

func (m *Metrics) error(chain string) {
	if m == nil {
		return
	}
	m.errorsTotal.WithLabelValues(chain).Inc()
	m.mu.Lock()
	m.chain(chain).Errors++
	m.mu.Unlock()
}

func (m *Metrics) reorg(chain string) {
	if m != nil {
		m.reorgs.WithLabelValues(chain).Inc()
	}
}
