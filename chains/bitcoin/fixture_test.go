package bitcoin

import (
	"bytes"
	"compress/bzip2"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"

	"github.com/keywatch/keywatch/internal/testenv"
)

// readBlocks reads a file of serialized mainnet blocks as btcd's test data
// stores them: each block is network magic, length, block (bz2-compressed
// when the name ends in .bz2); a .blk file is one bare block.
func readBlocks(t testing.TB, rel string) []*wire.MsgBlock {
	t.Helper()
	path := testenv.Data(t, rel)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(path, ".bz2") {
		r = bzip2.NewReader(f)
	}
	if strings.HasSuffix(path, ".blk") {
		var b wire.MsgBlock
		if err := b.Deserialize(r); err != nil {
			t.Fatalf("%s: %v", rel, err)
		}
		return []*wire.MsgBlock{&b}
	}
	var out []*wire.MsgBlock
	for {
		var hdr [8]byte
		if _, err := io.ReadFull(r, hdr[:]); err == io.EOF {
			return out
		} else if err != nil {
			t.Fatalf("%s: %v", rel, err)
		}
		if binary.LittleEndian.Uint32(hdr[:4]) != uint32(wire.MainNet) {
			t.Fatalf("%s: block %d is not a mainnet block", rel, len(out))
		}
		raw := make([]byte, binary.LittleEndian.Uint32(hdr[4:]))
		if _, err := io.ReadFull(r, raw); err != nil {
			t.Fatalf("%s: %v", rel, err)
		}
		var b wire.MsgBlock
		if err := b.Deserialize(bytes.NewReader(raw)); err != nil {
			t.Fatalf("%s: block %d: %v", rel, len(out), err)
		}
		out = append(out, &b)
	}
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
