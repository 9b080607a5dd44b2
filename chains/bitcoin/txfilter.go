package bitcoin

import (
	"context"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"
)

// btcd's transaction filter: the addresses and outputs whose mempool
// transactions btcd pushes (see SubscribeHeads), reloaded when they change.

// filterAddresses are the watched and followed addresses, for btcd's
// transaction filter.
func (s *Source) filterAddresses() []btcutil.Address {
	out := s.dec.watch.addresses()
	for script := range s.dec.followed {
		_, addrs, _, err := txscript.ExtractPkScriptAddrs([]byte(script), s.opts.Network)
		if err == nil && len(addrs) == 1 {
			out = append(out, addrs[0])
		}
	}
	return out
}

func (s *Source) outpoints() []wire.OutPoint {
	ops := make([]wire.OutPoint, 0, len(s.set.UTXOs))
	for op := range s.set.UTXOs {
		ops = append(ops, op)
	}
	return ops
}

// refreshFilter reloads btcd's transaction filter when the watched
// addresses or outputs changed in ways btcd does not follow by itself (new
// derived addresses, coins found by a scan, undone blocks).
func (s *Source) refreshFilter(ctx context.Context) error {
	n, ok := s.node.(notifier)
	s.mu.Lock()
	sub := s.subscribed
	s.mu.Unlock()
	if !ok || !sub || !s.dirty {
		return nil
	}
	if err := n.LoadTxFilter(ctx, true, s.filterAddresses(), s.outpoints()); err != nil {
		return err
	}
	s.dirty = false
	return nil
}
