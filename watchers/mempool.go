package watchers

// The mempool: events of unconfirmed transactions a PendingSource reports,
// delivered as pending once per transaction, forgotten when a processed block
// mines the transaction, and retracted when it leaves the mempool unmined.
// What was delivered is kept at watch:<chain>:mempool.

import (
	"context"
	"fmt"
	"sort"

	"github.com/keywatch/keywatch/chains"
	"github.com/keywatch/keywatch/store"
)

// mempoolState is the events delivered as pending, by transaction, of the
// transactions neither mined nor retracted yet.
type mempoolState map[string][]chains.Event

// mempools is the codec of the chain's mempool state in the store.
func mempools(st store.Store, chain string) store.Records[mempoolState] {
	return store.NewRecords[mempoolState](st, "mempool state of chain "+chain)
}

func (f *Follower) mempoolKey() string { return "watch:" + f.opts.Chain + ":mempool" }

func (f *Follower) loadMempool(ctx context.Context) (mempoolState, error) {
	tracked, _, err := f.mempool.Get(ctx, f.mempoolKey())
	if err != nil {
		return nil, err
	}
	if tracked == nil {
		tracked = mempoolState{}
	}
	return tracked, nil
}

func (f *Follower) saveMempool(ctx context.Context, tracked mempoolState) error {
	return f.mempool.Put(ctx, f.mempoolKey(), tracked, 0)
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

// PendingRecaller is implemented by pending sources that learn the mempool
// from the node's notifications (EVM nodes) rather than by reading it
// whole. Before each Pending the follower hands them the transactions it
// delivered as pending and has not settled, so that after a restart, or on
// taking over a chain another instance followed, they look up those they
// never saw instead of reporting them gone. An error (the node cannot say)
// fails the pass: nothing is retracted on a guess.
type PendingRecaller interface {
	Recall(ctx context.Context, tracked []chains.PendingTx) error
}

// pending delivers the events of unconfirmed transactions new to the
// mempool as pending, and retracts those of transactions that left it
// without being mined.
func (f *Follower) pending(ctx context.Context, ps PendingSource, c *checkpoint) error {
	tracked, err := f.loadMempool(ctx)
	if err != nil {
		return err
	}
	if r, ok := ps.(PendingRecaller); ok && len(tracked) > 0 {
		txs := make([]chains.PendingTx, 0, len(tracked))
		for tx, evs := range tracked {
			txs = append(txs, chains.PendingTx{Tx: tx, Events: evs})
		}
		sort.Slice(txs, func(i, j int) bool { return txs[i].Tx < txs[j].Tx })
		if err := r.Recall(ctx, txs); err != nil {
			return fmt.Errorf("recall mempool transactions: %w", err)
		}
	}
	cur, err := ps.Pending(ctx)
	if err != nil {
		return fmt.Errorf("read mempool: %w", err)
	}
	inPool, err := f.admit(ctx, tracked, cur)
	if err != nil {
		return err
	}
	return f.settle(ctx, ps, c, tracked, inPool)
}

// admit delivers as pending the events of the transactions in cur that are
// not tracked yet, and tracks them. It returns the transactions in the
// mempool.
func (f *Follower) admit(ctx context.Context, tracked mempoolState, cur []chains.PendingTx) (map[string]bool, error) {
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
			return nil, fmt.Errorf("deliver mempool transaction %s: %w", p.Tx, err)
		}
		f.opts.Metrics.events(f.opts.Chain, len(out))
		tracked[p.Tx] = p.Events
		if err := f.saveMempool(ctx, tracked); err != nil {
			return nil, err
		}
	}
	return inPool, nil
}

// settle resolves the tracked transactions no longer in the mempool: a mined
// one is forgotten, a dropped one has its events retracted.
func (f *Follower) settle(ctx context.Context, ps PendingSource, c *checkpoint, tracked mempoolState, inPool map[string]bool) error {
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
			out[i] = dropped(ev, reason)
		}
		f.log.Warn("mempool transaction dropped: retracting its events", "tx", tx, "reason", reason, "events", len(out))
		if err := f.opts.Deliver(ctx, out); err != nil {
			return fmt.Errorf("deliver retraction of mempool transaction %s: %w", tx, err)
		}
		delete(tracked, tx)
		if err := f.saveMempool(ctx, tracked); err != nil {
			return err
		}
	}
	if changed {
		return f.saveMempool(ctx, tracked)
	}
	return nil
}

// dropped is the retraction of ev, whose transaction left the mempool
// unmined for reason; ev's Detail is copied, not changed.
func dropped(ev chains.Event, reason string) chains.Event {
	ev = ev.WithStatus(chains.StatusRetracted)
	detail := make(map[string]string, len(ev.Detail)+1)
	for k, v := range ev.Detail {
		detail[k] = v
	}
	detail[chains.DetailRetracted] = reason
	ev.Detail = detail
	return ev
}
