package watchers

import (
	"context"
	"fmt"

	"github.com/keywatch/keywatch/chains"
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
// nothing twice and still retracts what left the mempool meanwhile (see
// mempool.go).
type PendingSource interface {
	Pending(ctx context.Context) ([]chains.PendingTx, error)
	// Dropped says why a transaction left the mempool unmined, for the
	// retraction's evidence.
	Dropped(ctx context.Context, tx string) string
}

// Resetter is implemented by sources that cache what they read from the
// store (the Bitcoin set of watched outputs). The follower calls Reset when it
// takes over a chain another instance was following, so the cache is read
// again.
type Resetter interface {
	Reset()
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
