package bitcoin

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"

	"github.com/keywatch/keywatch/chains"
)

// The mempool: Pending decodes, once each, the node's mempool transactions
// that move watched funds; Dropped explains those that left unmined.

// memEntry is a decoded mempool transaction and when it was first seen.
type memEntry struct {
	res  txResult
	seen time.Time
}

// goneEntry is what a transaction that left the mempool spent, and when it
// left.
type goneEntry struct {
	spends []wire.OutPoint
	at     time.Time
}

// Pending returns the mempool transactions that move watched funds, with
// their events. New mempool transactions are decoded once, parents before
// children, against the watched outputs and the watched outputs of
// unconfirmed parents.
func (s *Source) Pending(ctx context.Context) ([]chains.PendingTx, error) {
	if err := s.load(ctx); err != nil {
		return nil, err
	}
	now := s.opts.Now().UTC()
	if err := s.refreshFollowed(ctx, now); err != nil {
		return nil, err
	}
	if err := s.refreshFilter(ctx); err != nil {
		s.log.Warn("cannot reload the node's transaction filter; the mempool is still read in full", "err", err)
	}
	ids, err := s.node.Mempool(ctx)
	if err != nil {
		return nil, err
	}
	inPool := make(map[chainhash.Hash]bool, len(ids))
	for _, id := range ids {
		inPool[*id] = true
	}
	for h, e := range s.mem {
		if !inPool[h] {
			if e != nil {
				s.gone[h.String()] = goneEntry{spends: e.res.spends, at: now}
			}
			delete(s.mem, h)
		}
	}
	for tx, g := range s.gone {
		if now.Sub(g.at) > time.Hour {
			delete(s.gone, tx)
		}
	}
	s.mu.Lock()
	pushed := s.pushed
	s.pushed = map[chainhash.Hash]*wire.MsgTx{}
	s.mu.Unlock()

	fresh := map[chainhash.Hash]*wire.MsgTx{}
	for _, id := range ids {
		if _, known := s.mem[*id]; known {
			continue
		}
		tx := pushed[*id]
		if tx == nil {
			if tx, err = s.node.Transaction(ctx, id); err != nil {
				if isNotFound(err) {
					continue // left the mempool meanwhile
				}
				return nil, fmt.Errorf("mempool transaction %s: %w", id, err)
			}
		}
		fresh[*id] = tx
	}
	for _, id := range order(fresh) {
		tx := fresh[id]
		meta := txMeta{time: now}
		r := s.dec.decodeTx(tx, meta, s.memLookup, func(op wire.OutPoint) ([]byte, bool) {
			if parent := fresh[op.Hash]; parent != nil && int(op.Index) < len(parent.TxOut) {
				return parent.TxOut[op.Index].PkScript, true
			}
			return s.prevScript(ctx, nil, op)
		}, s.pendingBalance, true)
		if len(r.spends) == 0 && len(r.creates) == 0 {
			s.mem[id] = nil
			continue
		}
		s.mem[id] = &memEntry{res: r, seen: now}
	}
	type pendingTx struct {
		id chainhash.Hash
		e  *memEntry
	}
	var moving []pendingTx
	for id, e := range s.mem {
		if e != nil && len(e.res.events) > 0 {
			moving = append(moving, pendingTx{id, e})
		}
	}
	sort.Slice(moving, func(i, j int) bool {
		a, b := moving[i], moving[j]
		if !a.e.seen.Equal(b.e.seen) {
			return a.e.seen.Before(b.e.seen)
		}
		return a.id.String() < b.id.String()
	})
	out := make([]chains.PendingTx, len(moving))
	for i, p := range moving {
		out[i] = chains.PendingTx{Tx: p.id.String(), Events: p.e.res.events}
	}
	return out, nil
}

// memLookup finds a watched output among the confirmed ones and those
// unconfirmed transactions in the mempool create.
func (s *Source) memLookup(op wire.OutPoint) (utxo, bool) {
	if u, ok := s.set.UTXOs[op]; ok {
		return u, true
	}
	if e := s.mem[op.Hash]; e != nil {
		for _, c := range e.res.creates {
			if c.op == op {
				return c.u, true
			}
		}
		// An output of an unconfirmed outflow whose address forwarding has
		// followed since the transaction was decoded.
		for _, c := range e.res.candidates {
			if addr, ok := s.dec.followed[string(c.u.Script)]; ok && c.op == op {
				u := c.u
				u.Wallet = addr
				return u, true
			}
		}
	}
	return utxo{}, false
}

// Dropped explains why a mempool transaction left without being mined: the
// transaction that now spends the same watched outputs, in the mempool (a
// replacement) or in a block (a double spend).
func (s *Source) Dropped(ctx context.Context, tx string) string {
	g, ok := s.gone[tx]
	if ok {
		for _, op := range g.spends {
			for id, e := range s.mem {
				if e == nil || id.String() == tx {
					continue
				}
				for _, sp := range e.res.spends {
					if sp == op {
						return fmt.Sprintf("transaction %s was replaced in the mempool by %s, which spends the same coins (%s)", tx, id, op)
					}
				}
			}
			if by, height, found := s.set.spender(op); found && by != tx {
				return fmt.Sprintf("transaction %s was double-spent: %s in block %d spends the same coins (%s)", tx, by, height, op)
			}
		}
	}
	return fmt.Sprintf("transaction %s left the mempool without being mined (replaced, double-spent, expired or evicted)", tx)
}

// order sorts transactions so that parents come before their children.
func order(txs map[chainhash.Hash]*wire.MsgTx) []chainhash.Hash {
	ids := make([]chainhash.Hash, 0, len(txs))
	for id := range txs {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i].String() < ids[j].String() })
	out := make([]chainhash.Hash, 0, len(ids))
	state := map[chainhash.Hash]int{} // 1 visiting, 2 done
	var visit func(id chainhash.Hash)
	visit = func(id chainhash.Hash) {
		if state[id] != 0 {
			return
		}
		state[id] = 1
		for _, in := range txs[id].TxIn {
			if _, ok := txs[in.PreviousOutPoint.Hash]; ok {
				visit(in.PreviousOutPoint.Hash)
			}
		}
		state[id] = 2
		out = append(out, id)
	}
	for _, id := range ids {
		visit(id)
	}
	return out
}

// pendingBalance is what a wallet holds counting the mempool transactions
// decoded so far: confirmed outputs not spent by them, plus the outputs they
// pay it.
func (s *Source) pendingBalance(wallet string) int64 {
	spentInPool := map[wire.OutPoint]bool{}
	var sum int64
	for _, e := range s.mem {
		if e == nil {
			continue
		}
		for _, op := range e.res.spends {
			spentInPool[op] = true
		}
	}
	for op, u := range s.set.UTXOs {
		if u.Wallet == wallet && !u.Followed && !spentInPool[op] {
			sum += u.Value
		}
	}
	for _, e := range s.mem {
		if e == nil {
			continue
		}
		for _, c := range e.res.creates {
			if c.u.Wallet == wallet && !c.u.Followed && !spentInPool[c.op] {
				sum += c.u.Value
			}
		}
	}
	return sum
}
