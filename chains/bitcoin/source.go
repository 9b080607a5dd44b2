package bitcoin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"

	"github.com/keywatch/keywatch/chains"
	"github.com/keywatch/keywatch/store"
)

// Node is the part of a node client the watcher uses; *Client satisfies it.
type Node interface {
	BlockCount(ctx context.Context) (int64, error)
	BlockHash(ctx context.Context, height int64) (*chainhash.Hash, error)
	BlockHeader(ctx context.Context, hash *chainhash.Hash) (*wire.BlockHeader, error)
	Block(ctx context.Context, hash *chainhash.Hash) (*wire.MsgBlock, error)
	Transaction(ctx context.Context, txid *chainhash.Hash) (*wire.MsgTx, error)
	Mempool(ctx context.Context) ([]*chainhash.Hash, error)
}

// notifier is implemented by clients that can push (btcd over WebSocket).
type notifier interface {
	Subscribe(ctx context.Context, addrs []btcutil.Address, ops []wire.OutPoint) (<-chan Notice, error)
	LoadTxFilter(ctx context.Context, reload bool, addrs []btcutil.Address, ops []wire.OutPoint) error
}

// Followed gives the addresses forwarding follows on a chain at a time (see
// package hops).
type Followed interface {
	Addresses(ctx context.Context, chain string, at time.Time) ([]string, error)
}

// gapped is implemented by nodes that lack some blocks (recorded files). It
// returns the lowest height at or above from that the node has. Missing
// blocks are passed over: the watched outputs stay as they are, so coins
// created or spent in them are unknown.
type gapped interface {
	NextHeight(from uint64) (uint64, bool)
}

// Options describe what to watch on one Bitcoin chain.
type Options struct {
	Chain        string // keywatch's name for the chain
	Network      *chaincfg.Params
	NativeSymbol string // default BTC
	NativeUSD    float64
	Wallets      []Wallet
	// Store keeps the watched unspent outputs (and their undo data).
	Store store.Store
	// ReorgDepth is how many blocks of undo data are kept (default 66).
	ReorgDepth uint64
	// Followed, when set, names the addresses whose coins are followed after
	// funds left a watched wallet for them: outputs paid to them are kept
	// with the watched outputs, and their spends are out events with
	// wallet_role "followed" (forwarding judges them).
	Followed Followed
	// UnknownSender is the detail of an inflow whose sender cannot be
	// found (default: the node has no transaction index).
	UnknownSender string
	Logger        *slog.Logger
	Now           func() time.Time
}

// Source reads one Bitcoin chain for a follower (package watchers): blocks (with
// reorgs undone through the undo data of the watched outputs) and the
// mempool. It is used from the follower's goroutine only, apart from the
// notifications it forwards.
type Source struct {
	node  Node
	opts  Options
	log   *slog.Logger
	dec   *decoder
	set   *utxoSet // nil until loaded
	dirty bool     // the node's transaction filter needs reloading

	// mempool state: decoded transactions by id (nil: moves no watched
	// funds), and what dropped ones spent, to explain retractions.
	mem  map[chainhash.Hash]*memEntry
	gone map[string]goneEntry

	mu         sync.Mutex
	pushed     map[chainhash.Hash]*wire.MsgTx // from notifications, not yet decoded
	subscribed bool
}

type memEntry struct {
	res  txResult
	seen time.Time
}

type goneEntry struct {
	spends []wire.OutPoint
	at     time.Time
}

// NewSource checks the wallets (a malformed address or key, or one for
// another network, is an error naming the wallet) and makes a Source.
func NewSource(node Node, opts Options) (*Source, error) {
	if opts.Network == nil {
		return nil, errors.New("bitcoin source: no network")
	}
	if opts.Store == nil {
		return nil, errors.New("bitcoin source: no store")
	}
	if opts.NativeSymbol == "" {
		opts.NativeSymbol = "BTC"
	}
	if opts.ReorgDepth == 0 {
		opts.ReorgDepth = 66
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	ws, err := newWatchSet(opts.Network, opts.Wallets)
	if err != nil {
		return nil, err
	}
	return &Source{
		node: node, opts: opts, log: opts.Logger.With("chain", opts.Chain),
		dec: &decoder{chain: opts.Chain, symbol: opts.NativeSymbol, nativeUSD: opts.NativeUSD, watch: ws,
			candidates: opts.Followed != nil, unknownSender: opts.UnknownSender},
		mem: map[chainhash.Hash]*memEntry{}, gone: map[string]goneEntry{}, pushed: map[chainhash.Hash]*wire.MsgTx{},
	}, nil
}

func (s *Source) key() string { return "watch:" + s.opts.Chain + ":utxo" }

// Reset forgets what was read from the store and the mempool, so the next
// call reads the watched outputs again: another instance may have moved them
// on while this one stood by.
func (s *Source) Reset() {
	s.set, s.dirty = nil, true
	s.mem, s.gone = map[chainhash.Hash]*memEntry{}, map[string]goneEntry{}
	s.mu.Lock()
	s.pushed = map[chainhash.Hash]*wire.MsgTx{}
	s.mu.Unlock()
}

// load reads the watched outputs from the store once, and brings them in
// line with the configured wallets.
func (s *Source) load(ctx context.Context) error {
	if s.set != nil {
		return nil
	}
	set := newUTXOSet()
	b, err := s.opts.Store.Get(ctx, s.key())
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return fmt.Errorf("read watched outputs: %w", err)
	default:
		if err := json.Unmarshal(b, set); err != nil {
			return fmt.Errorf("watched outputs of chain %s are corrupt: %w", s.opts.Chain, err)
		}
	}
	if err := s.dec.watch.restoreUsed(set.Used); err != nil {
		return err
	}
	s.set = set
	s.dirty = true
	if set.Hash != "" {
		if err := s.reconcileWallets(ctx); err != nil {
			s.set = nil
			return err
		}
	}
	return nil
}

func (s *Source) save(ctx context.Context) error {
	s.set.Used = s.dec.watch.used()
	b, err := json.Marshal(s.set)
	if err != nil {
		return err
	}
	if err := s.opts.Store.Set(ctx, s.key(), b, 0); err != nil {
		return fmt.Errorf("write watched outputs: %w", err)
	}
	return nil
}

// Head returns the height of the node's best block.
func (s *Source) Head(ctx context.Context) (uint64, error) {
	n, err := s.node.BlockCount(ctx)
	if err != nil {
		return 0, err
	}
	return uint64(n), nil
}

// BlockAt returns the header of the best chain's block at height n.
func (s *Source) BlockAt(ctx context.Context, n uint64) (chains.Block, error) {
	hash, err := s.node.BlockHash(ctx, int64(n))
	if errors.Is(err, ErrNoBlock) {
		return chains.Block{}, chains.ErrNoBlock
	}
	if err != nil {
		return chains.Block{}, err
	}
	h, err := s.node.BlockHeader(ctx, hash)
	if err != nil {
		return chains.Block{}, err
	}
	return chains.Block{Number: n, Hash: hash.String(), Parent: h.PrevBlock.String(), Time: h.Timestamp.UTC()}, nil
}

// Events applies block b to the watched outputs and returns its events. The
// outputs are first brought to b's parent: blocks of another branch are
// undone, and missing blocks (the first time: from the wallets' birthday)
// are applied without events.
func (s *Source) Events(ctx context.Context, b chains.Block) ([]chains.Event, error) {
	if b.Number == 0 {
		return nil, nil // the genesis block's output cannot be spent
	}
	if err := s.load(ctx); err != nil {
		return nil, err
	}
	if err := s.refreshFollowed(ctx, b.Time); err != nil {
		return nil, fmt.Errorf("block %d: %w", b.Number, err)
	}
	if evs, ok := s.set.tipEvents(b.Hash); ok {
		return evs, nil // applied before a crash or a failed delivery
	}
	if err := s.reach(ctx, b); err != nil {
		return nil, err
	}
	hash, err := chainhash.NewHashFromStr(b.Hash)
	if err != nil {
		return nil, fmt.Errorf("block %d: bad hash %q", b.Number, b.Hash)
	}
	blk, err := s.node.Block(ctx, hash)
	if err != nil {
		return nil, fmt.Errorf("get block %d (%s): %w", b.Number, b.Hash, err)
	}
	if blk.Header.PrevBlock.String() != s.set.Hash {
		return nil, fmt.Errorf("block %d (%s) does not follow block %s: the chain moved, retrying", b.Number, b.Hash, s.set.Hash)
	}
	a, err := s.applyBlock(ctx, blk, b.Number, live)
	if err != nil {
		return nil, err
	}
	if err := s.save(ctx); err != nil {
		return nil, err
	}
	return a.Events, nil
}

// Rewound undoes block b, which left the chain.
func (s *Source) Rewound(ctx context.Context, b chains.Block) error {
	if err := s.load(ctx); err != nil {
		return err
	}
	if s.set.Hash != b.Hash {
		return nil // not applied, or undone already
	}
	if !s.set.undo() {
		return nil
	}
	s.dirty = true
	return s.save(ctx)
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

// bornBy reports whether a wallet's existing coins are looked for in the
// block at height: only from its birthday on, and not at all without one.
func bornBy(w *wallet, height uint64) bool { return w.Birthday > 0 && w.Birthday <= height }

// confirmedBalance is what a wallet holds in the watched outputs as applied
// so far (in a block being applied: before the transaction at hand).
func (s *Source) confirmedBalance(wallet string) int64 {
	var sum int64
	for _, u := range s.set.UTXOs {
		if u.Wallet == wallet && !u.Followed {
			sum += u.Value
		}
	}
	return sum
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

func (s *Source) lookup(op wire.OutPoint) (utxo, bool) {
	u, ok := s.set.UTXOs[op]
	return u, ok
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
		own := map[wire.OutPoint]utxo{}
		dec := &decoder{chain: s.opts.Chain, symbol: s.opts.NativeSymbol, watch: ws}
		lookup := func(op wire.OutPoint) (utxo, bool) { u, ok := own[op]; return u, ok }
		for h := from; h <= s.set.Height; h++ {
			hash, err := s.node.BlockHash(ctx, int64(h))
			if err != nil {
				return fmt.Errorf("block %d: %w", h, err)
			}
			blk, err := s.node.Block(ctx, hash)
			if err != nil {
				return fmt.Errorf("get block %d: %w", h, err)
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
						return err
					}
				}
			}
		}
		for op, u := range own {
			s.set.UTXOs[op] = u
		}
		// The new wallets' windows join the main watch set.
		for _, w := range ws.wallets {
			if main := s.dec.watch.byName[w.Name]; main != nil && main.account != nil {
				for b := Receive; b <= Change; b++ {
					if err := s.dec.watch.deriveTo(main, b, w.derived[b]); err != nil {
						return err
					}
				}
			}
		}
	}
	for _, w := range fresh {
		s.set.Wallets[w.Name] = w.fingerprint()
	}
	s.dirty = true
	return s.save(ctx)
}

// SubscribeHeads registers for btcd's notifications (blocks connected and
// disconnected, and mempool transactions that touch the watched addresses
// and outputs) and turns them into wake-ups for the follower. It returns
// nil, nil on an HTTP endpoint, which is polled.
func (s *Source) SubscribeHeads(ctx context.Context) (<-chan uint64, error) {
	n, ok := s.node.(notifier)
	if !ok {
		return nil, nil
	}
	if err := s.load(ctx); err != nil {
		return nil, err
	}
	notes, err := n.Subscribe(ctx, s.filterAddresses(), s.outpoints())
	if err != nil || notes == nil {
		return nil, err
	}
	s.mu.Lock()
	s.subscribed = true
	s.mu.Unlock()
	s.dirty = false
	out := make(chan uint64, 1)
	go func() {
		defer close(out)
		defer func() {
			s.mu.Lock()
			s.subscribed = false
			s.mu.Unlock()
		}()
		for {
			select {
			case <-ctx.Done():
				return
			case note, ok := <-notes:
				if !ok {
					return
				}
				if note.Kind == TxAccepted && note.Tx != nil {
					s.mu.Lock()
					s.pushed[note.Tx.TxHash()] = note.Tx
					s.mu.Unlock()
				}
				select {
				case out <- 0:
				default: // a wake-up is already pending
				}
			}
		}
	}()
	return out, nil
}

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
