package bitcoin

import (
	"context"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"
)

// applyMode says what applying a block is for.
type applyMode int

const (
	live     applyMode = iota // a block the follower delivers: with events
	replay                    // a block delivered before (a crash window): no events
	birthday                  // looking for existing coins: no events, only wallets born by then
)

// applyBlock decodes a block against the watched outputs and applies it.
// When a payment moved an xpub wallet's window of watched addresses, the
// block is decoded again with the wider window.
func (s *Source) applyBlock(ctx context.Context, blk *wire.MsgBlock, height uint64, mode applyMode) (*applied, error) {
	wantEvents := mode == live
	hash := blk.BlockHash()
	meta := txMeta{block: height, blockHash: hash.String(), time: blk.Header.Timestamp.UTC()}
	var inBlock map[chainhash.Hash]*wire.MsgTx
	sender := func(op wire.OutPoint) ([]byte, bool) {
		if inBlock == nil {
			inBlock = make(map[chainhash.Hash]*wire.MsgTx, len(blk.Transactions))
			for _, tx := range blk.Transactions {
				inBlock[tx.TxHash()] = tx
			}
		}
		return s.prevScript(ctx, inBlock, op)
	}
	for {
		a := s.set.begin(height, hash.String(), blk.Header.PrevBlock.String())
		extended := false
		for _, tx := range blk.Transactions {
			if len(a.Candidates) > 0 {
				// A candidate spent in its own block is gone before anyone
				// could follow it.
				for _, in := range tx.TxIn {
					delete(a.Candidates, in.PreviousOutPoint)
				}
			}
			r := s.dec.decodeTx(tx, meta, s.lookup, sender, s.confirmedBalance, wantEvents)
			if len(r.spends) > 0 {
				by := tx.TxHash().String()
				for _, op := range r.spends {
					s.set.spend(a, op, by)
				}
			}
			if mode != birthday {
				for _, c := range r.candidates {
					if a.Candidates == nil {
						a.Candidates = map[wire.OutPoint]utxo{}
					}
					a.Candidates[c.op] = c.u
				}
			}
			for _, c := range r.creates {
				if mode == birthday && (c.u.Followed || !bornBy(c.h.wallet, height)) {
					continue
				}
				s.set.create(a, c.op, c.u)
				more, err := s.dec.watch.use(c.h)
				if err != nil {
					return nil, err
				}
				extended = extended || more
			}
			a.Events = append(a.Events, r.events...)
		}
		if extended {
			// Addresses past the old window may have been paid earlier in
			// this block: decode it again with the new window.
			s.set.revert(a)
			s.dirty = true
			continue
		}
		if !wantEvents {
			a.Events = nil
		}
		s.set.commit(a, int(s.opts.ReorgDepth))
		return a, nil
	}
}

// prevScript finds the script an outpoint pays to: in the same block, else
// from the node (which knows mempool transactions, and confirmed ones when
// it keeps a transaction index).
func (s *Source) prevScript(ctx context.Context, inBlock map[chainhash.Hash]*wire.MsgTx, op wire.OutPoint) ([]byte, bool) {
	if tx := inBlock[op.Hash]; tx != nil && int(op.Index) < len(tx.TxOut) {
		return tx.TxOut[op.Index].PkScript, true
	}
	tx, err := s.node.Transaction(ctx, &op.Hash)
	if err != nil || int(op.Index) >= len(tx.TxOut) {
		return nil, false
	}
	return tx.TxOut[op.Index].PkScript, true
}
