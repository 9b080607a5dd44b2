package ethereum

// The EVM mempool. A MempoolSource is a Source that also follows the node's
// pending transactions (a WebSocket subscription, see mempool_feed.go) and
// offers the follower those that move watched funds, as a pending source:
// after each pass over the blocks the follower asks for them (Pending),
// delivers each new one as pending once, and retracts those that leave the
// mempool unmined with the reason Dropped gives. Their events are made by
// the block decoder's own code (native.go), so a transfer seen pending and
// the same transfer mined are the same events, under the same ids.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/keywatch/keywatch/chains"
)

// MempoolClient is what the mempool asks of a node besides Client: Pool
// satisfies it (the subscription needs a ws(s) endpoint).
type MempoolClient interface {
	SubscribePendingTransactions(ctx context.Context, ch chan<- NodeTx) (ethereum.Subscription, error)
	NodeTransaction(ctx context.Context, hash common.Hash) (*NodeTx, error)
	NonceAt(ctx context.Context, account common.Address, block *big.Int) (uint64, error)
}

// MempoolOptions configure a MempoolSource.
type MempoolOptions struct {
	Logger *slog.Logger
	Now    func() time.Time
	// DropGrace is how long the node must have forgotten a transaction
	// before it counts as dropped (default 30s), so that a node that
	// restarted (geth puts its local transactions back 10 s after it
	// starts) or a backup node that never saw it does not retract a theft
	// still under way. A replacement seen in the mempool counts at once.
	DropGrace time.Duration
}

// DefaultDropGrace is MempoolOptions.DropGrace's default.
const DefaultDropGrace = 30 * time.Second

// checkEvery is how often held transactions are looked up when no block was
// processed and no replacement seen meanwhile: to notice one the node
// dropped.
const checkEvery = 2 * time.Second

// goneFor is how long a transaction that left the mempool is remembered, to
// explain its departure and not take it for new.
const goneFor = time.Hour

// MempoolSource is a Source that also reads the node's mempool.
type MempoolSource struct {
	*Source
	mc   MempoolClient
	opts MempoolOptions
	log  *slog.Logger
	wake chan struct{} // a watched transaction arrived

	// Shared between the feed and the follower.
	mu       sync.Mutex
	feeding  bool
	arrived  []arrival
	interest interest
	lost     int // notifications left out because arrived was full

	// The follower's: held are the transactions offered as pending, gone
	// those that left the mempool (mined, replaced or dropped).
	pass      sync.Mutex
	held      map[common.Hash]*memTx
	gone      map[common.Hash]*goneTx
	nonces    map[senderNonce]common.Hash // held, by sender and nonce
	lastCheck time.Time
	// recheck asks the next pass to look the held transactions up: a block
	// was decoded (it may have mined some) or a replacement arrived.
	recheck atomic.Bool
}

// arrival is a notified transaction and when it arrived.
type arrival struct {
	tx NodeTx
	at time.Time
}

// interest is what the feed keeps besides the watched wallets' transactions:
// those of followed addresses, and of the senders of held transactions (to
// see a replacement, whatever it pays).
type interest struct {
	followed map[common.Address]bool
	senders  map[common.Address]bool
}

type senderNonce struct {
	from  common.Address
	nonce uint64
}

// memTx is a held transaction: in the node's mempool when last looked up.
type memTx struct {
	tx     NodeTx // Full is false for one recalled that the node no longer knew
	seen   time.Time
	events []chains.Event
	// replacedBy is a later transaction of the same sender and nonce.
	replacedBy common.Hash
	// missing is when the node was first found not to know it (zero: it
	// does).
	missing time.Time
}

// goneTx is a transaction that left the mempool, and how.
type goneTx struct {
	tx         NodeTx
	at         time.Time
	minedIn    *uint64
	replacedBy common.Hash
}

// NewMempoolSource reads the mempool of src's chain through mc. The
// subscription starts with the first Pending and lives as long as that
// call's context.
func NewMempoolSource(src *Source, mc MempoolClient, opts MempoolOptions) *MempoolSource {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.DropGrace <= 0 {
		opts.DropGrace = DefaultDropGrace
	}
	return &MempoolSource{
		Source: src, mc: mc, opts: opts, log: opts.Logger.With("part", "mempool"),
		wake: make(chan struct{}, 1),
		held: map[common.Hash]*memTx{}, gone: map[common.Hash]*goneTx{}, nonces: map[senderNonce]common.Hash{},
	}
}

// Pending returns the mempool transactions that move watched funds, with
// their events (block 0, the time they arrived). It starts the node's
// subscription under ctx when it is not running. After a block was decoded,
// a replacement arrived, or checkEvery passed, it looks each held
// transaction up to tell which are still pending: those the node mined or
// forgot are left out (the follower then retracts the forgotten ones).
func (m *MempoolSource) Pending(ctx context.Context) ([]chains.PendingTx, error) {
	m.pass.Lock()
	defer m.pass.Unlock()
	m.startFeed(ctx)
	now := m.opts.Now().UTC()
	followed, err := m.followed(ctx, now)
	if err != nil {
		return nil, fmt.Errorf("mempool: %w", err)
	}
	for _, a := range m.takeArrived() {
		m.admit(a, followed)
	}
	// The held transactions are looked up after a block (so that none it
	// mined is offered again) and a replacement, and every checkEvery; a
	// wake-up for a new arrival alone costs no look-up.
	if m.recheck.Swap(false) || now.Sub(m.lastCheck) >= checkEvery {
		if err := m.check(ctx, now); err != nil {
			m.recheck.Store(true)
			return nil, err
		}
		m.lastCheck = now
	}
	for h, g := range m.gone {
		if now.Sub(g.at) > goneFor {
			delete(m.gone, h)
		}
	}
	m.setInterest(followed)
	return m.snapshot(), nil
}

// takeArrived returns the transactions notified since the last pass.
func (m *MempoolSource) takeArrived() []arrival {
	m.mu.Lock()
	out, lost := m.arrived, m.lost
	m.arrived, m.lost = nil, 0
	m.mu.Unlock()
	if lost > 0 {
		m.log.Warn("watched mempool transactions arrived faster than they were judged; some are seen only in blocks", "left_out", lost)
	}
	return out
}

// admit holds a notified transaction when it moves watched funds, and
// notes which held one it replaces.
func (m *MempoolSource) admit(a arrival, followed map[common.Address]bool) {
	tx := a.tx
	if _, ok := m.held[tx.Hash]; ok {
		return
	}
	// Back after it left (rebroadcast, or put back by a reorg): new again.
	delete(m.gone, tx.Hash)
	key := senderNonce{tx.From, tx.Nonce}
	if prev, ok := m.nonces[key]; ok && prev != tx.Hash {
		if e := m.held[prev]; e != nil {
			e.replacedBy = tx.Hash
			m.recheck.Store(true)
		}
	}
	events := m.pendingEvents(tx, a.at, followed)
	if len(events) == 0 {
		return
	}
	m.held[tx.Hash] = &memTx{tx: tx, seen: a.at, events: events}
	m.nonces[key] = tx.Hash
}

// pendingEvents are the events the block decoder will give tx once mined,
// with block 0 and the time it arrived. Two things only a block tells are
// left as the mempool shows them: whether the transaction succeeds (one
// that fails is retracted when mined, see Dropped), and the pool behind a
// Tornado Cash router deposit, which the block decoder takes from the
// pool's own Deposit log and never from call data the sender wrote: a
// pending deposit's counterparty is the router it pays.
func (m *MempoolSource) pendingEvents(tx NodeTx, at time.Time, followed map[common.Address]bool) []chains.Event {
	if !m.watchesNative(tx.From, tx.To, tx.Value, followed) {
		return nil
	}
	dest := crypto.CreateAddress(tx.From, tx.Nonce) // what a creation's receipt will name
	if tx.To != nil {
		dest = *tx.To
	}
	base := chains.Event{Chain: m.Source.opts.Chain, Time: at.UTC(), Kind: chains.KindTransfer}
	return m.native(base, tx.Hash, tx.From, dest, tx.Value, followed)
}

// check looks every held transaction up: one the node mined or forgot
// leaves the mempool. A forgotten one leaves when a replacement was seen, or
// once it has been missing for DropGrace.
func (m *MempoolSource) check(ctx context.Context, now time.Time) error {
	for _, h := range m.heldHashes() {
		e := m.held[h]
		tx, err := m.mc.NodeTransaction(ctx, h)
		switch {
		case errors.Is(err, ethereum.NotFound):
			if e.missing.IsZero() {
				e.missing = now
			}
			if e.replacedBy != (common.Hash{}) || now.Sub(e.missing) >= m.opts.DropGrace {
				m.leave(h, now, nil)
			}
		case err != nil:
			return fmt.Errorf("look up mempool transaction %s: %w", h.Hex(), err)
		case tx.Block != nil:
			m.leave(h, now, tx.Block)
		default:
			e.missing = time.Time{}
			if !e.tx.Full {
				e.tx = *tx
				m.nonces[senderNonce{tx.From, tx.Nonce}] = h
			}
		}
	}
	return nil
}

// leave moves a held transaction to gone: mined in block minedIn, or
// forgotten by the node (minedIn nil).
func (m *MempoolSource) leave(h common.Hash, now time.Time, minedIn *uint64) {
	e := m.held[h]
	delete(m.held, h)
	if e.tx.Full {
		if key := (senderNonce{e.tx.From, e.tx.Nonce}); m.nonces[key] == h {
			delete(m.nonces, key)
		}
	}
	m.gone[h] = &goneTx{tx: e.tx, at: now, minedIn: minedIn, replacedBy: e.replacedBy}
}

func (m *MempoolSource) heldHashes() []common.Hash {
	out := make([]common.Hash, 0, len(m.held))
	for h := range m.held {
		out = append(out, h)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Hex() < out[j].Hex() })
	return out
}

// setInterest tells the feed which addresses' transactions to keep besides
// the watched wallets'.
func (m *MempoolSource) setInterest(followed map[common.Address]bool) {
	senders := map[common.Address]bool{}
	for _, e := range m.held {
		if e.tx.Full {
			senders[e.tx.From] = true
		}
	}
	m.mu.Lock()
	m.interest = interest{followed: followed, senders: senders}
	m.mu.Unlock()
}

// snapshot is the held transactions, oldest first.
func (m *MempoolSource) snapshot() []chains.PendingTx {
	hs := m.heldHashes()
	sort.SliceStable(hs, func(i, j int) bool { return m.held[hs[i]].seen.Before(m.held[hs[j]].seen) })
	out := make([]chains.PendingTx, len(hs))
	for i, h := range hs {
		out[i] = chains.PendingTx{Tx: h.Hex(), Events: m.held[h].events}
	}
	return out
}

// Recall takes over the transactions the follower delivered as pending and
// has not settled, which this source may never have seen (keywatch
// restarted, or took the chain over from another instance): each one it
// does not know is looked up, so that one still pending is held (and not
// taken for dropped) and one mined or forgotten is explained.
func (m *MempoolSource) Recall(ctx context.Context, tracked []chains.PendingTx) error {
	m.pass.Lock()
	defer m.pass.Unlock()
	now := m.opts.Now().UTC()
	for _, p := range tracked {
		h, err := hexHash(p.Tx)
		if err != nil {
			continue // not an EVM transaction: nothing to look up
		}
		if m.held[h] != nil || m.gone[h] != nil {
			continue
		}
		tx, err := m.mc.NodeTransaction(ctx, h)
		switch {
		case errors.Is(err, ethereum.NotFound):
			m.held[h] = &memTx{tx: NodeTx{Hash: h}, seen: now, events: p.Events, missing: now}
		case err != nil:
			return fmt.Errorf("look up mempool transaction %s: %w", p.Tx, err)
		case tx.Block != nil:
			m.gone[h] = &goneTx{tx: *tx, at: now, minedIn: tx.Block}
		default:
			m.held[h] = &memTx{tx: *tx, seen: now, events: p.Events}
			m.nonces[senderNonce{tx.From, tx.Nonce}] = h
		}
	}
	return nil
}

// hexHash parses a 0x-prefixed 32-byte hex hash.
func hexHash(s string) (common.Hash, error) {
	var h common.Hash
	if len(s) != 66 {
		return h, fmt.Errorf("%q is not a transaction hash", s)
	}
	err := h.UnmarshalText([]byte(s))
	return h, err
}

// Dropped says why a transaction left the mempool without its movement
// being mined: replaced by another of the same sender and nonce (named when
// the mempool showed it), mined but failed, or dropped by the node.
func (m *MempoolSource) Dropped(ctx context.Context, tx string) string {
	m.pass.Lock()
	defer m.pass.Unlock()
	h, _ := hexHash(tx)
	g := m.gone[h]
	switch {
	case g == nil:
	case g.replacedBy != (common.Hash{}):
		return fmt.Sprintf("transaction %s was replaced in the mempool by %s, from the same sender %s with the same nonce %d",
			tx, g.replacedBy.Hex(), lower(g.tx.From), g.tx.Nonce)
	case g.minedIn != nil:
		if r, err := m.client.TransactionReceipt(ctx, h); err == nil && !succeeded(r) {
			return fmt.Sprintf("transaction %s was mined in block %d but failed: it moved nothing", tx, *g.minedIn)
		}
		return fmt.Sprintf("transaction %s was mined in block %d without the movement the mempool showed", tx, *g.minedIn)
	case g.tx.Full:
		if n, err := m.mc.NonceAt(ctx, g.tx.From, nil); err == nil && n > g.tx.Nonce {
			return fmt.Sprintf("transaction %s was replaced: another transaction from the same sender %s with the same nonce %d was mined (the mempool did not show it)",
				tx, lower(g.tx.From), g.tx.Nonce)
		}
	}
	return fmt.Sprintf("transaction %s left the node's mempool without being mined (dropped or evicted)", tx)
}

// Events decodes block b as the Source does, and has the next pass look the
// held transactions up: the block may have mined some.
func (m *MempoolSource) Events(ctx context.Context, b chains.Block) ([]chains.Event, error) {
	evs, err := m.Source.Events(ctx, b)
	m.recheck.Store(true)
	return evs, err
}

// SubscribeHeads pushes new heads as the Source does, and also wakes the
// follower when a watched transaction enters the mempool.
func (m *MempoolSource) SubscribeHeads(ctx context.Context) (<-chan uint64, error) {
	heads, err := m.Source.SubscribeHeads(ctx)
	if heads == nil || err != nil {
		return heads, err
	}
	out := make(chan uint64, 1)
	go func() {
		defer close(out)
		for {
			var n uint64
			select {
			case <-ctx.Done():
				return
			case h, ok := <-heads:
				if !ok {
					return
				}
				n = h
			case <-m.wake:
			}
			select {
			case out <- n:
			default: // a wake-up is already pending
			}
		}
	}()
	return out, nil
}
