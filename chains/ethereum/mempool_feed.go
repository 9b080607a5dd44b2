package ethereum

// The mempool feed: the node's newPendingTransactions subscription, kept up
// by one goroutine that the first Pending call's context owns. It keeps the
// transactions of watched wallets (and of followed addresses and the senders
// of held transactions), wakes the follower for them, and resubscribes with
// backoff when the node drops. A node that notifies hashes only has each
// one looked up.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"golang.org/x/sync/errgroup"

	"github.com/keywatch/keywatch/internal/backoff"
)

const (
	// maxArrived bounds the watched transactions waiting for the next pass.
	maxArrived = 10_000
	// lookupQueue bounds the hashes waiting to be looked up (nodes that
	// notify hashes only).
	lookupQueue = 4096
	// noteBuffer is the subscription's channel; the client buffers more.
	noteBuffer = 256
	// stableFor is how long a subscription must have lasted for the next
	// failure to be retried at once again.
	stableFor = 30 * time.Second
)

// startFeed runs the feed under ctx unless it runs already.
func (m *MempoolSource) startFeed(ctx context.Context) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.feeding || ctx.Err() != nil {
		return
	}
	m.feeding = true
	go func() {
		defer func() {
			m.mu.Lock()
			m.feeding = false
			m.mu.Unlock()
		}()
		m.feed(ctx)
	}()
}

// feed keeps the subscription up until ctx ends.
func (m *MempoolSource) feed(ctx context.Context) {
	retry := backoff.New(time.Second, 30*time.Second)
	down, polled := false, false
	for {
		var since time.Time
		err := m.subscribe(ctx, func() {
			if down {
				m.log.Info("mempool subscription restored")
			} else {
				m.log.Info("subscribed to the node's pending transactions")
			}
			down, polled, since = false, false, time.Now()
		})
		if ctx.Err() != nil {
			return
		}
		if !since.IsZero() && time.Since(since) >= stableFor {
			retry.Reset() // a node that drops at once keeps backing off
		}
		wait := retry.Next()
		switch {
		case errors.Is(err, errNoPush):
			// The pool is on an http(s) endpoint: no feed until it is back
			// on a ws(s) one.
			if !polled {
				m.log.Warn("the node in use is http(s): no mempool feed; transfers are seen in blocks until a ws(s) node is in use")
			}
			polled, down = true, true
		case !down:
			m.log.Warn("mempool subscription failed; transfers are seen in blocks until it is restored", "err", err, "retry_in", wait)
			down = true
		}
		if backoff.Sleep(ctx, wait) != nil {
			return
		}
	}
}

// subscribe reads one subscription until it ends; up is called once it is
// established.
func (m *MempoolSource) subscribe(ctx context.Context, up func()) error {
	notes := make(chan NodeTx, noteBuffer)
	sub, err := m.mc.SubscribePendingTransactions(ctx, notes)
	if err != nil {
		return err
	}
	defer sub.Unsubscribe()
	up()
	g, gctx := errgroup.WithContext(ctx)
	lookups := make(chan common.Hash, lookupQueue)
	g.Go(func() error {
		m.lookUp(gctx, lookups)
		return nil
	})
	g.Go(func() error {
		defer close(lookups)
		hashesOnly := false
		for {
			select {
			case <-gctx.Done():
				return nil
			case err := <-sub.Err():
				if err == nil {
					err = errors.New("the node ended the subscription")
				}
				return fmt.Errorf("pending transactions subscription: %w", err)
			case n := <-notes:
				switch {
				case n.Hash == (common.Hash{}):
					m.log.Debug("unreadable pending transaction notification skipped")
				case n.Full:
					m.consider(n)
				default:
					if !hashesOnly {
						m.log.Info("the node notifies pending transaction hashes only: each is looked up")
						hashesOnly = true
					}
					select {
					case lookups <- n.Hash:
					default:
						m.leftOut()
					}
				}
			}
		}
	})
	return g.Wait()
}

// lookUp fetches the transactions whose hashes were notified.
func (m *MempoolSource) lookUp(ctx context.Context, hashes <-chan common.Hash) {
	for h := range hashes {
		if ctx.Err() != nil {
			continue // drain: the reader closes the channel
		}
		tx, err := m.mc.NodeTransaction(ctx, h)
		if err != nil || tx.Block != nil {
			// Gone or mined already, or the node did not answer: the
			// block shows it.
			continue
		}
		m.consider(*tx)
	}
}

// consider keeps a notified transaction for the next pass when it concerns
// a watched wallet, a followed address or the sender of a held transaction,
// and wakes the follower.
func (m *MempoolSource) consider(tx NodeTx) {
	if !m.interesting(tx) {
		return
	}
	m.mu.Lock()
	if len(m.arrived) >= maxArrived {
		m.lost++
		m.mu.Unlock()
		return
	}
	m.arrived = append(m.arrived, arrival{tx: tx, at: m.opts.Now()})
	m.mu.Unlock()
	select {
	case m.wake <- struct{}{}:
	default: // a wake-up is already pending
	}
}

func (m *MempoolSource) leftOut() {
	m.mu.Lock()
	m.lost++
	m.mu.Unlock()
}

// interesting reports whether the feed keeps tx.
func (m *MempoolSource) interesting(tx NodeTx) bool {
	if _, ok := m.wallets[tx.From]; ok {
		return true
	}
	if tx.To != nil {
		if _, ok := m.wallets[*tx.To]; ok {
			return true
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.interest.followed[tx.From] || m.interest.senders[tx.From]
}
