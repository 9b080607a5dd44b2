package bitcoin

import (
	"context"
	"errors"
	"fmt"

	"github.com/btcsuite/btcd/wire"

	"github.com/keywatch/keywatch/chains"
)

// Catch-up brings the watched outputs to the parent of the block the
// follower delivers: it applies the blocks in between (without events),
// undoes blocks of another branch, passes over blocks a recorded node
// lacks, and looks for wallets' existing coins from their birthday, on the
// first start and when a wallet is added.

// gapped is implemented by nodes that lack some blocks (recorded files). It
// returns the lowest height at or above from that the node has. Missing
// blocks are passed over: the watched outputs stay as they are, so coins
// created or spent in them are unknown.
type gapped interface {
	NextHeight(from uint64) (uint64, bool)
}

// saveEvery is how many blocks a long catch-up (a far birthday) applies
// between saves, so it resumes where it was after a restart.
const saveEvery = 100

// reach brings the watched outputs to b's parent.
func (s *Source) reach(ctx context.Context, b chains.Block) error {
	parent := b.Number - 1
	if s.set.Hash == "" {
		from := b.Number
		for _, w := range s.dec.watch.wallets {
			if w.Birthday > 0 && w.Birthday < from {
				from = w.Birthday
			}
		}
		if from < 1 {
			from = 1
		}
		if g, ok := s.node.(gapped); ok {
			if n, found := g.NextHeight(from); found && n < b.Number {
				from = n
			} else {
				from = b.Number
			}
		}
		hash, err := s.node.BlockHash(ctx, int64(from-1))
		if err != nil {
			return fmt.Errorf("block %d: %w", from-1, err)
		}
		s.set.Height, s.set.Hash = from-1, hash.String()
		for _, w := range s.dec.watch.wallets {
			s.set.Wallets[w.Name] = w.fingerprint()
		}
		if from < b.Number {
			s.set.ScanUntil = parent
			s.log.Info("looking for the watched wallets' existing coins from their birthday", "from_block", from, "to_block", parent)
		}
	}
	applied := 0
	for guard := 0; s.set.Hash != b.Parent; guard++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		if guard > 100000 {
			return fmt.Errorf("cannot line the watched outputs up with block %d: the chain keeps moving", b.Number)
		}
		if s.set.Height >= parent {
			if !s.undoOrJump(b) {
				return nil
			}
			continue
		}
		g, gaps := s.node.(gapped)
		canon, err := s.node.BlockHash(ctx, int64(s.set.Height))
		gap := gaps && errors.Is(err, ErrNoBlock) // the tip is known by hash only
		if err != nil && !gap {
			return fmt.Errorf("block %d: %w", s.set.Height, err)
		}
		if !gap && canon.String() != s.set.Hash {
			if !s.undoOrJump(b) {
				return nil
			}
			continue
		}
		next, err := s.node.BlockHash(ctx, int64(s.set.Height+1))
		if gaps && errors.Is(err, ErrNoBlock) {
			// Missing blocks: go on from the next block there is, or from
			// b's parent, the watched outputs as they are.
			n, found := g.NextHeight(s.set.Height + 1)
			if !found || n > parent {
				s.set.Height, s.set.Hash = parent, b.Parent
				return nil
			}
			h, err := s.node.BlockHash(ctx, int64(n-1))
			if err != nil {
				return fmt.Errorf("block %d: %w", n-1, err)
			}
			s.set.Height, s.set.Hash = n-1, h.String()
			continue
		}
		if err != nil {
			return fmt.Errorf("block %d: %w", s.set.Height+1, err)
		}
		blk, err := s.node.Block(ctx, next)
		if err != nil {
			return fmt.Errorf("get block %d: %w", s.set.Height+1, err)
		}
		mode := replay
		if s.set.Height+1 <= s.set.ScanUntil {
			mode = birthday
		}
		if _, err := s.applyBlock(ctx, blk, s.set.Height+1, mode); err != nil {
			return err
		}
		if applied++; applied%saveEvery == 0 {
			s.log.Info("scanning for existing coins", "block", s.set.Height, "target", parent, "watched_outputs", len(s.set.UTXOs))
			if err := s.save(ctx); err != nil {
				return err
			}
		}
	}
	return nil
}

// undoOrJump undoes the tip block; when the undo data ran out (a reorg
// deeper than reorg_depth) it says so and takes b's parent as the tip, the
// watched outputs as they are. It reports whether the caller should go on.
func (s *Source) undoOrJump(b chains.Block) bool {
	if s.set.undo() {
		s.dirty = true
		return true
	}
	s.log.Error("reorg deeper than the undo data of the watched outputs (reorg_depth): continuing with the outputs as they are",
		"block", b.Number, "reorg_depth", s.opts.ReorgDepth)
	s.set.Height, s.set.Hash = b.Number-1, b.Parent
	return false
}

// bornBy reports whether a wallet's existing coins are looked for in the
// block at height: only from its birthday on, and not at all without one.
func bornBy(w *wallet, height uint64) bool { return w.Birthday > 0 && w.Birthday <= height }

// reconcileWallets brings the stored outputs in line with the configured
// wallets: a wallet no longer configured loses its outputs; a new wallet
// (or one whose key changed) with a birthday has its existing coins looked
// for from that height up to the blocks already processed.
func (s *Source) reconcileWallets(ctx context.Context) error {
	configured := map[string]string{}
	var fresh []Wallet
	for _, w := range s.dec.watch.wallets {
		fp := w.fingerprint()
		configured[w.Name] = fp
		if s.set.Wallets[w.Name] != fp {
			fresh = append(fresh, w.Wallet)
		}
	}
	for op, u := range s.set.UTXOs {
		if u.Followed {
			continue
		}
		if fp, ok := configured[u.Wallet]; !ok || fp != s.set.Wallets[u.Wallet] {
			delete(s.set.UTXOs, op)
		}
	}
	for name := range s.set.Wallets {
		if _, ok := configured[name]; !ok {
			delete(s.set.Wallets, name)
		}
	}
	if len(fresh) == 0 {
		return nil
	}
	var born []Wallet
	from := s.set.Height + 1
	for _, w := range fresh {
		if w.Birthday == 0 {
			s.log.Warn("new wallet has no birthday: only coins it receives from now on are known", "wallet", w.Name, "block", s.set.Height)
			continue
		}
		born = append(born, w)
		from = min(from, w.Birthday)
	}
	ws, err := newWatchSet(s.opts.Network, born)
	if err != nil {
		return err
	}
	if from <= s.set.Height {
		s.log.Info("new wallets: looking for their existing coins", "from_block", from, "to_block", s.set.Height, "wallets", len(fresh))
		own, err := s.existingCoins(ctx, ws, from, s.set.Height)
		if err != nil {
			return err
		}
		for op, u := range own {
			s.set.UTXOs[op] = u
		}
		if err := s.dec.watch.widenTo(ws); err != nil {
			return err
		}
	}
	for _, w := range fresh {
		s.set.Wallets[w.Name] = w.fingerprint()
	}
	s.dirty = true
	return s.save(ctx)
}

// existingCoins returns the unspent outputs that blocks from to to (both
// included) leave to the wallets of ws born by then. Paid addresses move the
// windows of ws's xpub wallets as they would live.
func (s *Source) existingCoins(ctx context.Context, ws *watchSet, from, to uint64) (map[wire.OutPoint]utxo, error) {
	own := map[wire.OutPoint]utxo{}
	dec := &decoder{chain: s.opts.Chain, symbol: s.opts.NativeSymbol, watch: ws}
	lookup := func(op wire.OutPoint) (utxo, bool) { u, ok := own[op]; return u, ok }
	for h := from; h <= to; h++ {
		hash, err := s.node.BlockHash(ctx, int64(h))
		if err != nil {
			return nil, fmt.Errorf("block %d: %w", h, err)
		}
		blk, err := s.node.Block(ctx, hash)
		if err != nil {
			return nil, fmt.Errorf("get block %d: %w", h, err)
		}
		for _, tx := range blk.Transactions {
			r := dec.decodeTx(tx, txMeta{}, lookup, nil, nil, false)
			for _, op := range r.spends {
				delete(own, op)
			}
			for _, c := range r.creates {
				if !bornBy(c.h.wallet, h) {
					continue
				}
				own[c.op] = c.u
				if _, err := ws.use(c.h); err != nil {
					return nil, err
				}
			}
		}
	}
	return own, nil
}
