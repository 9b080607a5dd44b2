package watchers

import (
	"context"

	"github.com/keywatch/keywatch/chains"
	"github.com/keywatch/keywatch/store"
)

// record is a processed block as the checkpoint remembers it.
type record struct {
	chains.Block
	Confirmed bool           `json:"confirmed"`
	Events    []chains.Event `json:"events,omitempty"`
}

// checkpoint is the follower's durable state: the processed blocks still
// within reorg depth, oldest first. Height is the last processed block. It is
// kept at watch:<chain>:checkpoint.
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

// checkpoints is the codec of the chain's checkpoint in the store.
func checkpoints(st store.Store, chain string) store.Records[checkpoint] {
	return store.NewRecords[checkpoint](st, "checkpoint of chain "+chain)
}

func (f *Follower) key() string { return "watch:" + f.opts.Chain + ":checkpoint" }

// load reads the checkpoint; a chain never processed has the zero one.
func (f *Follower) load(ctx context.Context) (*checkpoint, error) {
	c, _, err := f.checkpoints.Get(ctx, f.key())
	if err != nil {
		return nil, err
	}
	return &c, nil
}

// save writes the checkpoint while this instance may still act on the chain.
func (f *Follower) save(ctx context.Context, c *checkpoint) error {
	if !f.owned() {
		return ErrLeaseLost
	}
	return f.checkpoints.Put(ctx, f.key(), *c, 0)
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
