// Package ethereum reads Ethereum and other EVM chains through go-ethereum's
// ethclient and decodes their blocks into keywatch events: native value
// transfers to and from watched wallets, and ERC-20 Transfer and Approval logs
// of configured tokens, fetched with eth_getLogs topic filters.
package ethereum

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/keywatch/keywatch/chains"
	"github.com/keywatch/keywatch/watchers"
)

// Client is the part of an Ethereum JSON-RPC client the watcher uses. Both
// *ethclient.Client and go-ethereum's simulated.Client satisfy it.
type Client interface {
	ChainID(ctx context.Context) (*big.Int, error)
	BlockNumber(ctx context.Context) (uint64, error)
	HeaderByNumber(ctx context.Context, number *big.Int) (*types.Header, error)
	BlockByHash(ctx context.Context, hash common.Hash) (*types.Block, error)
	FilterLogs(ctx context.Context, q ethereum.FilterQuery) ([]types.Log, error)
	TransactionReceipt(ctx context.Context, txHash common.Hash) (*types.Receipt, error)
}

// senderReader is implemented by *ethclient.Client: it returns the sender
// the node reported with the block, without recovering the signature.
type senderReader interface {
	TransactionSender(ctx context.Context, tx *types.Transaction, block common.Hash, index uint) (common.Address, error)
}

// HeadSubscriber is implemented by clients connected over WebSocket.
type HeadSubscriber interface {
	SubscribeNewHead(ctx context.Context, ch chan<- *types.Header) (ethereum.Subscription, error)
}

// Event signatures decoded from logs.
var (
	TopicTransfer = crypto.Keccak256Hash([]byte("Transfer(address,address,uint256)"))
	TopicApproval = crypto.Keccak256Hash([]byte("Approval(address,address,uint256)"))
)

// Wallet is a watched address.
type Wallet struct {
	Name    string
	Address common.Address
	Role    string
	Owner   string
}

// Token is a followed ERC-20 contract.
type Token struct {
	Symbol   string
	Address  common.Address
	Decimals int
	USD      float64
}

// Options describe what to watch on one chain.
type Options struct {
	Chain        string // keywatch's name for the chain
	NativeSymbol string
	NativeUSD    float64
	Wallets      []Wallet
	Tokens       []Token
}

// Source decodes one EVM chain's blocks into events for watched wallets.
type Source struct {
	client  Client
	opts    Options
	wallets map[common.Address]Wallet
	tokens  map[common.Address]Token
	// topics holds the watched addresses as 32-byte topics for log filters.
	topics []common.Hash
	addrs  []common.Address // token contracts
}

// NewSource makes a Source over a connected client.
func NewSource(client Client, opts Options) *Source {
	s := &Source{client: client, opts: opts, wallets: map[common.Address]Wallet{}, tokens: map[common.Address]Token{}}
	for _, w := range opts.Wallets {
		s.wallets[w.Address] = w
		s.topics = append(s.topics, common.BytesToHash(w.Address.Bytes()))
	}
	for _, t := range opts.Tokens {
		s.tokens[t.Address] = t
		s.addrs = append(s.addrs, t.Address)
	}
	return s
}

var _ watchers.Source = (*Source)(nil)

// Head returns the node's newest block number.
func (s *Source) Head(ctx context.Context) (uint64, error) {
	return s.client.BlockNumber(ctx)
}

// BlockAt returns the canonical header at height n.
func (s *Source) BlockAt(ctx context.Context, n uint64) (watchers.Block, error) {
	h, err := s.client.HeaderByNumber(ctx, new(big.Int).SetUint64(n))
	if errors.Is(err, ethereum.NotFound) {
		return watchers.Block{}, watchers.ErrNoBlock
	}
	if err != nil {
		return watchers.Block{}, err
	}
	return watchers.Block{Number: h.Number.Uint64(), Hash: h.Hash().Hex(), Parent: h.ParentHash.Hex(), Time: time.Unix(int64(h.Time), 0).UTC()}, nil
}

// SubscribeHeads pushes new head numbers when the client can subscribe.
func (s *Source) SubscribeHeads(ctx context.Context) (<-chan uint64, error) {
	hs, ok := s.client.(HeadSubscriber)
	if !ok {
		return nil, nil
	}
	raw := make(chan *types.Header, 16)
	sub, err := hs.SubscribeNewHead(ctx, raw)
	if errors.Is(err, errNoPush) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	out := make(chan uint64, 1)
	go func() {
		defer close(out)
		defer sub.Unsubscribe()
		for {
			select {
			case <-ctx.Done():
				return
			case <-sub.Err():
				return
			case h := <-raw:
				select {
				case out <- h.Number.Uint64():
				default: // a wake-up is already pending
				}
			}
		}
	}()
	return out, nil
}

// Events decodes the block with hash b.Hash.
func (s *Source) Events(ctx context.Context, b watchers.Block) ([]chains.Event, error) {
	hash := common.HexToHash(b.Hash)
	block, err := s.client.BlockByHash(ctx, hash)
	if err != nil {
		return nil, fmt.Errorf("get block %d (%s): %w", b.Number, b.Hash, err)
	}
	var logs []types.Log
	if len(s.addrs) > 0 && len(s.topics) > 0 {
		// Two queries because one filter cannot say "topic1 OR topic2":
		// movements from (and approvals by) watched wallets, then movements to them.
		for _, topics := range [][][]common.Hash{
			{{TopicTransfer, TopicApproval}, s.topics},
			{{TopicTransfer}, nil, s.topics},
		} {
			ls, err := s.client.FilterLogs(ctx, ethereum.FilterQuery{BlockHash: &hash, Addresses: s.addrs, Topics: topics})
			if err != nil {
				return nil, fmt.Errorf("get logs of block %d: %w", b.Number, err)
			}
			logs = append(logs, ls...)
		}
	}
	return s.decode(ctx, block, logs)
}

// Decode turns a block and its (already filtered) logs into events. It asks
// the node for receipts only of native transfers that touch watched wallets,
// to skip failed transactions.
func (s *Source) decode(ctx context.Context, block *types.Block, logs []types.Log) ([]chains.Event, error) {
	base := chains.Event{
		Chain:     s.opts.Chain,
		Block:     block.NumberU64(),
		BlockHash: block.Hash().Hex(),
		Time:      time.Unix(int64(block.Time()), 0).UTC(),
		Kind:      chains.KindTransfer,
	}
	senders := map[common.Hash]common.Address{}
	var out []chains.Event
	sr, _ := s.client.(senderReader)
	for i, tx := range block.Transactions() {
		var from common.Address
		var err error
		if sr != nil {
			from, err = sr.TransactionSender(ctx, tx, block.Hash(), uint(i))
		} else {
			from, err = types.Sender(types.LatestSignerForChainID(tx.ChainId()), tx)
		}
		if err != nil {
			return nil, fmt.Errorf("sender of tx %s: %w", tx.Hash().Hex(), err)
		}
		senders[tx.Hash()] = from
		if tx.Value().Sign() == 0 {
			continue
		}
		to := tx.To()
		_, fromWatched := s.wallets[from]
		toWatched := false
		if to != nil {
			_, toWatched = s.wallets[*to]
		}
		if !fromWatched && !toWatched {
			continue
		}
		rcpt, err := s.client.TransactionReceipt(ctx, tx.Hash())
		if err != nil {
			return nil, fmt.Errorf("receipt of tx %s: %w", tx.Hash().Hex(), err)
		}
		if !succeeded(rcpt) {
			continue // a failed transaction moved nothing
		}
		dest := rcpt.ContractAddress
		if to != nil {
			dest = *to
		}
		amount := chains.NewAmount(tx.Value(), 18)
		ev := base
		ev.Tx = tx.Hash().Hex()
		ev.Initiator = lower(from)
		ev.From, ev.To = lower(from), lower(dest)
		ev.Asset, ev.Token = s.opts.NativeSymbol, ""
		ev.Amount = amount
		ev.USD = amount.Float64() * s.opts.NativeUSD
		out = append(out, s.sides(ev, from, dest, "native")...)
	}
	for _, l := range logs {
		if l.Removed || len(l.Topics) == 0 {
			continue
		}
		tok, ok := s.tokens[l.Address]
		if !ok {
			continue
		}
		ev := base
		ev.Tx = l.TxHash.Hex()
		ev.Initiator = lower(senders[l.TxHash])
		ev.Asset, ev.Token = tok.Symbol, lower(l.Address)
		switch {
		case l.Topics[0] == TopicTransfer && len(l.Topics) == 3 && len(l.Data) == 32:
			from, to := common.BytesToAddress(l.Topics[1].Bytes()), common.BytesToAddress(l.Topics[2].Bytes())
			ev.From, ev.To = lower(from), lower(to)
			ev.Amount = chains.NewAmount(new(big.Int).SetBytes(l.Data), tok.Decimals)
			ev.USD = ev.Amount.Float64() * tok.USD
			out = append(out, s.sides(ev, from, to, l.Index)...)
		case l.Topics[0] == TopicApproval && len(l.Topics) == 3 && len(l.Data) == 32:
			owner, spender := common.BytesToAddress(l.Topics[1].Bytes()), common.BytesToAddress(l.Topics[2].Bytes())
			w, ok := s.wallets[owner]
			if !ok {
				continue
			}
			ev.Kind = chains.KindApproval
			ev.ID = chains.EventID(s.opts.Chain, ev.Tx, l.Index)
			ev.From, ev.To = lower(owner), lower(spender)
			ev.Amount = chains.NewAmount(new(big.Int).SetBytes(l.Data), tok.Decimals)
			ev.USD = ev.Amount.Float64() * tok.USD
			out = append(out, s.attribute(ev, w, chains.Out, spender))
		}
	}
	return dedupe(out), nil
}

// succeeded reports whether a transaction's receipt says it succeeded.
// Receipts of blocks before Byzantium (Ethereum mainnet block 4,370,000)
// carry no status, only the post-transaction state root; nodes return
// "status": null or no status at all for them. Such a transaction is taken as
// successful: a failed one moved nothing, but no status can tell, and a
// watcher that cannot tell judges the movement rather than drop it.
func succeeded(r *types.Receipt) bool {
	return r.Status == types.ReceiptStatusSuccessful || len(r.PostState) > 0
}

// sides makes the out event of a watched sender and the in event of a
// watched recipient. When both are watched the in event's id takes ":in".
func (s *Source) sides(ev chains.Event, from, to common.Address, index any) []chains.Event {
	var out []chains.Event
	id := chains.EventID(s.opts.Chain, ev.Tx, index)
	w, fromWatched := s.wallets[from]
	if fromWatched {
		e := s.attribute(ev, w, chains.Out, to)
		e.ID = id
		out = append(out, e)
	}
	if w, ok := s.wallets[to]; ok {
		e := s.attribute(ev, w, chains.In, from)
		e.ID = id
		if fromWatched {
			e.ID = id + ":in"
		}
		out = append(out, e)
	}
	return out
}

func (s *Source) attribute(ev chains.Event, w Wallet, dir chains.Direction, counterparty common.Address) chains.Event {
	ev.Direction = dir
	ev.Wallet, ev.WalletRole, ev.Owner = w.Name, w.Role, w.Owner
	ev.Counterparty = lower(counterparty)
	return ev
}

// dedupe drops events seen twice (a self-transfer log matches both filters).
func dedupe(evs []chains.Event) []chains.Event {
	seen := make(map[string]bool, len(evs))
	out := evs[:0]
	for _, e := range evs {
		if seen[e.ID] {
			continue
		}
		seen[e.ID] = true
		out = append(out, e)
	}
	return out
}

// lower formats an address in lowercase hex (no EIP-55 checksum, which
// would cost a keccak hash per address).
func lower(a common.Address) string { return hexutil.Encode(a[:]) }
