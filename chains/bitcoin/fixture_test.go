package bitcoin

import (
	"context"
	"fmt"
	"testing"

	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"

	"github.com/keywatch/keywatch/internal/testenv"
)

// readBlocks reads a file of the shared test data holding mainnet blocks
// (framed as btcd's test data stores them, bzip2-compressed or not, or one
// bare .blk block), as a recorded replay reads it.
func readBlocks(t testing.TB, rel string) []*wire.MsgBlock {
	t.Helper()
	bs, notBlocks, err := readRecordedFile(testenv.Data(t, rel), &chaincfg.MainNetParams)
	if err != nil || notBlocks != "" {
		t.Fatalf("%s: %v%s", rel, err, notBlocks)
	}
	out := make([]*wire.MsgBlock, len(bs))
	for i, b := range bs {
		out[i] = b.blk
	}
	return out
}

// fixtureNode serves a run of consecutive real mainnet blocks the way a node
// with a transaction index would: the chain ends at the last block, and the
// block below the first is known by hash only.
type fixtureNode struct {
	base   int64 // height of blocks[0]
	blocks []*wire.MsgBlock
	byHash map[chainhash.Hash]*wire.MsgBlock
	txs    map[chainhash.Hash]*wire.MsgTx
}

func newFixtureNode(base int64, blocks []*wire.MsgBlock) *fixtureNode {
	n := &fixtureNode{base: base, blocks: blocks, byHash: map[chainhash.Hash]*wire.MsgBlock{}, txs: map[chainhash.Hash]*wire.MsgTx{}}
	for _, b := range blocks {
		n.byHash[b.BlockHash()] = b
		for _, tx := range b.Transactions {
			n.txs[tx.TxHash()] = tx
		}
	}
	return n
}

func (n *fixtureNode) BlockCount(context.Context) (int64, error) {
	return n.base + int64(len(n.blocks)) - 1, nil
}

func (n *fixtureNode) BlockHash(_ context.Context, h int64) (*chainhash.Hash, error) {
	switch {
	case h == n.base-1:
		p := n.blocks[0].Header.PrevBlock
		return &p, nil
	case h < n.base || h >= n.base+int64(len(n.blocks)):
		return nil, fmt.Errorf("block %d: %w", h, ErrNoBlock)
	}
	hash := n.blocks[h-n.base].BlockHash()
	return &hash, nil
}

func (n *fixtureNode) BlockHeader(_ context.Context, h *chainhash.Hash) (*wire.BlockHeader, error) {
	b, ok := n.byHash[*h]
	if !ok {
		return nil, fmt.Errorf("block %s not found", h)
	}
	return &b.Header, nil
}

func (n *fixtureNode) Block(_ context.Context, h *chainhash.Hash) (*wire.MsgBlock, error) {
	b, ok := n.byHash[*h]
	if !ok {
		return nil, fmt.Errorf("block %s not found", h)
	}
	return b, nil
}

func (n *fixtureNode) Transaction(_ context.Context, h *chainhash.Hash) (*wire.MsgTx, error) {
	tx, ok := n.txs[*h]
	if !ok {
		return nil, fmt.Errorf("No information available about transaction %s", h)
	}
	return tx, nil
}

func (n *fixtureNode) Mempool(context.Context) ([]*chainhash.Hash, error) { return nil, nil }
