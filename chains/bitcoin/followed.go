package bitcoin

import (
	"context"
	"fmt"
	"time"

	"github.com/keywatch/keywatch/chains/bitcoin/btcaddr"
)

// refreshFollowed reads the addresses forwarding follows at time at (a
// block's time, or now for the mempool) and brings the followed outputs in
// line with them:
//
//   - an output an earlier outflow paid to an address that is followed now
//     (the movement that made forwarding follow it, judged after its block
//     was decoded) becomes a followed output, created in that block so that
//     undoing the block removes it;
//   - followed outputs of addresses no longer followed (the window passed,
//     or the event that led there was retracted) are dropped.
//
// Watched scripts are never followed: those coins are the firm's.
func (s *Source) refreshFollowed(ctx context.Context, at time.Time) error {
	if s.opts.Followed == nil {
		return nil
	}
	addrs, err := s.opts.Followed.Addresses(ctx, s.opts.Chain, at)
	if err != nil {
		return fmt.Errorf("read followed addresses: %w", err)
	}
	m := make(map[string]string, len(addrs))
	for _, a := range addrs {
		script, err := btcaddr.ScriptOf(a)
		if err != nil {
			s.log.Warn("followed address is not a Bitcoin address; not followed", "address", a, "err", err)
			continue
		}
		if _, watched := s.dec.watch.scripts[string(script)]; watched {
			continue
		}
		m[string(script)] = a
	}
	changed := len(m) != len(s.dec.followed)
	for k := range m {
		if _, ok := s.dec.followed[k]; !ok {
			changed = true
		}
	}
	s.dec.followed = m
	for op, u := range s.set.UTXOs {
		if _, ok := m[string(u.Script)]; u.Followed && !ok {
			delete(s.set.UTXOs, op)
			changed = true
		}
	}
	if len(m) > 0 {
		for i := range s.set.Journal {
			a := &s.set.Journal[i]
			for op, c := range a.Candidates {
				addr, ok := m[string(c.Script)]
				if !ok {
					continue
				}
				c.Wallet = addr
				s.set.UTXOs[op] = c
				a.Created = append(a.Created, op)
				delete(a.Candidates, op)
				changed = true
			}
		}
	}
	if changed {
		s.dirty = true // btcd's transaction filter
	}
	return nil
}
