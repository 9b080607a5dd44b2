package bitcoin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
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
	node   Node
	opts   Options
	log    *slog.Logger
	dec    *decoder
	set    *utxoSet                // nil until loaded
	record store.Records[*utxoSet] // the set in the store (at key)
	dirty  bool                    // the node's transaction filter needs reloading

	// mempool state: decoded transactions by id (nil: moves no watched
	// funds), and what dropped ones spent, to explain retractions.
	mem  map[chainhash.Hash]*memEntry
	gone map[string]goneEntry

	mu         sync.Mutex
	pushed     map[chainhash.Hash]*wire.MsgTx // from notifications, not yet decoded
	subscribed bool
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
		record: store.NewRecords[*utxoSet](opts.Store, "set of watched outputs of chain "+opts.Chain),
		dec: &decoder{chain: opts.Chain, symbol: opts.NativeSymbol, nativeUSD: opts.NativeUSD, watch: ws,
			candidates: opts.Followed != nil, unknownSender: opts.UnknownSender},
		mem: map[chainhash.Hash]*memEntry{}, gone: map[string]goneEntry{}, pushed: map[chainhash.Hash]*wire.MsgTx{},
	}, nil
}

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
