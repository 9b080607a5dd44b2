// Package ethereum reads Ethereum and other EVM chains through go-ethereum's
// ethclient and decodes their blocks into keywatch events: native value
// transfers to and from watched wallets, ERC-20 Transfer logs of configured
// tokens, and approvals watched wallets grant on any contract (approvals.go),
// fetched with eth_getLogs topic filters; admin changes (EIP-1967 Upgraded, AdminChanged
// and BeaconUpgraded, OwnershipTransferred, RoleGranted) on watched contracts
// and in transactions signed by employee keys; the executions and admin
// changes of watched Safes (safes.go); and the outflows of addresses
// followed after funds left a watched wallet, Tornado Cash router deposits
// included. Value that moves by internal calls is read from the node's
// traces, or checked by balance (Options.Traces; traces.go).
package ethereum

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/keywatch/keywatch/chains"
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

// sender returns who sent the block's i-th transaction: as the node
// reported it with the block when the client keeps that, else recovered
// from the signature.
func (s *Source) sender(ctx context.Context, block *types.Block, i int) (common.Address, error) {
	tx := block.Transactions()[i]
	var from common.Address
	var err error
	if sr, ok := s.client.(senderReader); ok {
		from, err = sr.TransactionSender(ctx, tx, block.Hash(), uint(i))
	} else {
		from, err = types.Sender(types.LatestSignerForChainID(tx.ChainId()), tx)
	}
	if err != nil {
		return common.Address{}, fmt.Errorf("sender of tx %s: %w", tx.Hash().Hex(), err)
	}
	return from, nil
}

// headSubscriber is implemented by clients that can push new heads (Pool on
// a WebSocket endpoint, *ethclient.Client over WebSocket).
type headSubscriber interface {
	SubscribeNewHead(ctx context.Context, ch chan<- *types.Header) (ethereum.Subscription, error)
}

// Event signatures decoded from logs.
var (
	TopicTransfer       = crypto.Keccak256Hash([]byte("Transfer(address,address,uint256)"))
	TopicApproval       = crypto.Keccak256Hash([]byte("Approval(address,address,uint256)"))
	TopicApprovalForAll = crypto.Keccak256Hash([]byte("ApprovalForAll(address,address,bool)"))

	TopicUpgraded             = crypto.Keccak256Hash([]byte("Upgraded(address)"))
	TopicBeaconUpgraded       = crypto.Keccak256Hash([]byte("BeaconUpgraded(address)"))
	TopicAdminChanged         = crypto.Keccak256Hash([]byte("AdminChanged(address,address)"))
	TopicOwnershipTransferred = crypto.Keccak256Hash([]byte("OwnershipTransferred(address,address)"))
	TopicRoleGranted          = crypto.Keccak256Hash([]byte("RoleGranted(bytes32,address,address)"))

	adminTopics = []common.Hash{TopicUpgraded, TopicBeaconUpgraded, TopicAdminChanged, TopicOwnershipTransferred, TopicRoleGranted}
)

// RouterDepositSelector is the Tornado Cash router's
// deposit(address,bytes32,bytes): the first argument is the pool the value
// goes on to.
var RouterDepositSelector = crypto.Keccak256([]byte("deposit(address,bytes32,bytes)"))[:4]

// TopicPoolDeposit is the Deposit(bytes32,uint32,uint256) a Tornado Cash
// pool logs when it takes a deposit.
var TopicPoolDeposit = crypto.Keccak256Hash([]byte("Deposit(bytes32,uint32,uint256)"))

// Followed gives the addresses followed on a chain at a block's time (see
// package hops).
type Followed interface {
	Addresses(ctx context.Context, chain string, at time.Time) ([]string, error)
}

// Wallet is a watched address.
type Wallet struct {
	Name    string
	Address common.Address
	Role    string
	Owner   string
	// Safe marks a Safe multisig (wallets[].account: safe).
	Safe bool
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
	// Followed, when set, names addresses whose outflows are decoded as
	// events with wallet_role "followed" (forwarding follows stolen funds).
	Followed Followed
	// Traces is how internal value movements are read (chains[].traces:
	// auto, debug, parity, balance or off; "" is off). See traces.go.
	Traces string
	// SafeCalls, when set, finds the calls another contract made to a
	// watched Safe in place of the block's call traces, which the Source
	// reads for them otherwise (Traces; see tracesafecalls.go).
	SafeCalls SafeCalls
	// TraceRetry bounds the tries of a trace call on one block (default 3
	// tries, 1s then 2s apart).
	TraceRetry TraceRetry
	// OnTraceFallback is called when the tracer failed on a block after
	// the retries and the block's watched contracts are checked by balance
	// instead (daemon raises a trace-fallback system alert). An error fails
	// the block's decoding, so it is decoded again later.
	OnTraceFallback func(ctx context.Context, b chains.Block, err error) error
	// Logger receives what the source decides on its own (how traces are
	// read); nil discards it.
	Logger *slog.Logger
}

// Source decodes one EVM chain's blocks into events for watched wallets.
type Source struct {
	client  Client
	opts    Options
	wallets map[common.Address]Wallet
	tokens  map[common.Address]Token
	// topics holds the watched addresses as 32-byte topics for log filters.
	topics    []common.Hash
	addrs     []common.Address // token contracts
	contracts []common.Address // watched contracts, for admin logs
	approvals approvalState    // standards of collections (approvals.go)
	slots     *slotWatch       // storage slots of Safes and contracts (slots.go)
	safes     *safeWatch       // watched Safes (safes.go)

	// trace reads internal value movements (traces.go).
	trace *traceReader

	// The followed addresses the last block was decoded with, for Rescan.
	mu           sync.Mutex
	lastHash     string
	lastFollowed map[common.Address]bool
}

// NewSource makes a Source over a connected client.
func NewSource(client Client, opts Options) *Source {
	s := &Source{client: client, opts: opts, wallets: map[common.Address]Wallet{}, tokens: map[common.Address]Token{}, slots: newSlotWatch(client, opts)}
	s.safes = newSafeWatch(opts.Wallets)
	for _, w := range opts.Wallets {
		s.wallets[w.Address] = w
		s.topics = append(s.topics, common.BytesToHash(w.Address.Bytes()))
		if w.Role == "contract" {
			s.contracts = append(s.contracts, w.Address)
		}
	}
	for _, t := range opts.Tokens {
		s.tokens[t.Address] = t
		s.addrs = append(s.addrs, t.Address)
	}
	s.trace = newTraceReader(client, opts)
	return s
}

// Head returns the node's newest block number.
func (s *Source) Head(ctx context.Context) (uint64, error) {
	return s.client.BlockNumber(ctx)
}

// BlockAt returns the canonical header at height n.
func (s *Source) BlockAt(ctx context.Context, n uint64) (chains.Block, error) {
	h, err := s.client.HeaderByNumber(ctx, new(big.Int).SetUint64(n))
	if errors.Is(err, ethereum.NotFound) {
		return chains.Block{}, chains.ErrNoBlock
	}
	if err != nil {
		return chains.Block{}, err
	}
	return chains.Block{Number: h.Number.Uint64(), Hash: h.Hash().Hex(), Parent: h.ParentHash.Hex(), Time: time.Unix(int64(h.Time), 0).UTC()}, nil
}

// SubscribeHeads pushes new head numbers when the client can subscribe.
func (s *Source) SubscribeHeads(ctx context.Context) (<-chan uint64, error) {
	hs, ok := s.client.(headSubscriber)
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
func (s *Source) Events(ctx context.Context, b chains.Block) ([]chains.Event, error) {
	hash := common.HexToHash(b.Hash)
	block, err := s.client.BlockByHash(ctx, hash)
	if err != nil {
		return nil, fmt.Errorf("get block %d (%s): %w", b.Number, b.Hash, err)
	}
	followed, err := s.followed(ctx, time.Unix(int64(block.Time()), 0).UTC())
	if err != nil {
		return nil, fmt.Errorf("block %d: %w", b.Number, err)
	}
	s.mu.Lock()
	s.lastHash, s.lastFollowed = b.Hash, followed
	s.mu.Unlock()
	from := s.topics
	if len(followed) > 0 {
		from = append(append([]common.Hash(nil), s.topics...), topicsOf(followed)...)
	}
	var queries []ethereum.FilterQuery
	if len(s.addrs) > 0 && len(from) > 0 {
		// One filter cannot say "topic1 OR topic2": movements from watched
		// and followed addresses, then movements to
		// watched wallets. Long address lists (a theft fanned out to many
		// followed addresses) are split so no request outgrows what nodes
		// and providers accept; a log matches one address of a list, so the
		// parts do not overlap.
		for _, part := range chunks(from, maxTopicsPerQuery) {
			queries = append(queries, ethereum.FilterQuery{BlockHash: &hash, Addresses: s.addrs, Topics: [][]common.Hash{{TopicTransfer}, part}})
		}
		for _, part := range chunks(s.topics, maxTopicsPerQuery) {
			queries = append(queries, ethereum.FilterQuery{BlockHash: &hash, Addresses: s.addrs, Topics: [][]common.Hash{{TopicTransfer}, nil, part}})
		}
	}
	queries = append(queries, s.approvalQueries(hash)...) // any contract
	if len(s.contracts) > 0 {
		queries = append(queries, ethereum.FilterQuery{BlockHash: &hash, Addresses: s.contracts, Topics: [][]common.Hash{adminTopics}})
	}
	queries = append(queries, s.safeQueries(hash)...)
	var logs []types.Log
	for _, q := range queries {
		ls, err := s.client.FilterLogs(ctx, q)
		if err != nil {
			return nil, fmt.Errorf("get logs of block %d: %w", b.Number, err)
		}
		logs = append(logs, ls...)
	}
	evs, err := s.decode(ctx, block, logs, followed)
	if err != nil {
		return nil, err
	}
	slotEvs, err := s.slotEvents(ctx, block)
	if err != nil {
		return nil, err
	}
	return s.withInternal(ctx, b, block, followed, append(evs, slotEvs...))
}

// maxTopicsPerQuery bounds the addresses of one eth_getLogs topic list.
const maxTopicsPerQuery = 500

// chunks splits hs into parts of at most n.
func chunks(hs []common.Hash, n int) [][]common.Hash {
	var out [][]common.Hash
	for len(hs) > n {
		out = append(out, hs[:n])
		hs = hs[n:]
	}
	if len(hs) > 0 {
		out = append(out, hs)
	}
	return out
}

// Rescan returns the events of block b, not among known, that addresses
// followed since b was decoded add: a fresh address paid by a watched wallet
// that passes the funds on in the same block. Nil when the followed set did
// not change.
func (s *Source) Rescan(ctx context.Context, b chains.Block, known []chains.Event) ([]chains.Event, error) {
	if s.opts.Followed == nil {
		return nil, nil
	}
	s.mu.Lock()
	before, decoded := s.lastFollowed, s.lastHash == b.Hash
	s.mu.Unlock()
	if decoded {
		now, err := s.followed(ctx, b.Time)
		if err != nil {
			return nil, fmt.Errorf("block %d: %w", b.Number, err)
		}
		added := false
		for a := range now {
			if !before[a] {
				added = true
				break
			}
		}
		if !added {
			return nil, nil
		}
	}
	evs, err := s.Events(ctx, b)
	if err != nil {
		return nil, err
	}
	seen := make(map[string]bool, len(known))
	for _, ev := range known {
		seen[ev.ID] = true
	}
	var out []chains.Event
	for _, ev := range evs {
		if !seen[ev.ID] {
			out = append(out, ev)
		}
	}
	return out, nil
}

// followed reads the addresses followed at the block's time, leaving out
// watched wallets (whose events are the firm's).
func (s *Source) followed(ctx context.Context, at time.Time) (map[common.Address]bool, error) {
	if s.opts.Followed == nil {
		return nil, nil
	}
	as, err := s.opts.Followed.Addresses(ctx, s.opts.Chain, at)
	if err != nil {
		return nil, fmt.Errorf("read followed addresses: %w", err)
	}
	out := map[common.Address]bool{}
	for _, a := range as {
		if !common.IsHexAddress(a) {
			continue
		}
		addr := common.HexToAddress(a)
		if _, watched := s.wallets[addr]; !watched {
			out[addr] = true
		}
	}
	return out, nil
}

func topicsOf(m map[common.Address]bool) []common.Hash {
	out := make([]common.Hash, 0, len(m))
	for a := range m {
		out = append(out, common.BytesToHash(a.Bytes()))
	}
	return out
}

// routerPool returns the pool of a Tornado Cash router deposit. The call
// data names the pool, and whoever sends the transaction writes it: the pool
// is taken only when it logged a Deposit in the transaction, so that call
// data sent to any other address cannot make the funds seem to go to an
// address of the sender's choosing.
func routerPool(data []byte, rcpt *types.Receipt) (common.Address, bool) {
	if len(data) < 4+32 || !bytes.Equal(data[:4], RouterDepositSelector) {
		return common.Address{}, false
	}
	pool := common.BytesToAddress(data[4+12 : 4+32])
	for _, l := range rcpt.Logs {
		if l != nil && l.Address == pool && len(l.Topics) > 0 && l.Topics[0] == TopicPoolDeposit {
			return pool, true
		}
	}
	return common.Address{}, false
}

// Decode turns a block and its (already filtered) logs into events. It asks
// the node for receipts only of native transfers that touch watched or
// followed addresses (to skip failed transactions) and of transactions
// employee keys signed (for admin changes on contracts keywatch does not
// watch).
func (s *Source) decode(ctx context.Context, block *types.Block, logs []types.Log, followed map[common.Address]bool) ([]chains.Event, error) {
	base := chains.Event{
		Chain:     s.opts.Chain,
		Block:     block.NumberU64(),
		BlockHash: block.Hash().Hex(),
		Time:      time.Unix(int64(block.Time()), 0).UTC(),
		Kind:      chains.KindTransfer,
	}
	senders := map[common.Hash]common.Address{}
	var out []chains.Event
	for i, tx := range block.Transactions() {
		from, err := s.sender(ctx, block, i)
		if err != nil {
			return nil, err
		}
		senders[tx.Hash()] = from
		to := tx.To()
		sender, fromWatched := s.wallets[from]
		employee := fromWatched && sender.Role == "employee-key"
		moves := s.watchesNative(from, to, tx.Value(), followed)
		if !moves && !employee {
			continue
		}
		rcpt, err := s.client.TransactionReceipt(ctx, tx.Hash())
		if err != nil {
			return nil, fmt.Errorf("receipt of tx %s: %w", tx.Hash().Hex(), err)
		}
		if !succeeded(rcpt) {
			continue // a failed transaction moved nothing
		}
		if employee {
			out = append(out, s.employeeAdmin(base, tx, from, sender, rcpt)...)
		}
		if !moves {
			continue
		}
		dest := rcpt.ContractAddress
		if to != nil {
			dest = *to
		}
		sides := s.native(base, tx.Hash(), from, dest, tx.Value(), followed)
		if pool, ok := routerPool(tx.Data(), rcpt); ok && to != nil {
			// The router passes the value on to the pool: the pool is where
			// the funds went.
			for i := range sides {
				if sides[i].Direction == chains.Out {
					sides[i].Counterparty = lower(pool)
					sides[i].Detail = map[string]string{chains.DetailVia: lower(*to)}
				}
			}
		}
		out = append(out, sides...)
	}
	for _, l := range logs {
		if l.Removed || len(l.Topics) == 0 || s.isSafeLog(l) {
			continue // Safe logs: safeEvents below
		}
		ev := base
		ev.Tx = l.TxHash.Hex()
		ev.Initiator = lower(senders[l.TxHash])
		if isApprovalLog(l) {
			if e, ok := s.approval(ctx, ev, l); ok {
				out = append(out, e)
			}
			continue
		}
		if w, ok := s.wallets[l.Address]; ok && w.Role == "contract" {
			if e, ok := adminEvent(ev, l); ok {
				out = append(out, s.attribute(e, w, chains.Out, common.HexToAddress(e.To)))
				continue
			}
		}
		tok, ok := s.tokens[l.Address]
		if !ok {
			continue
		}
		ev.Asset, ev.Token = tok.Symbol, lower(l.Address)
		switch {
		case l.Topics[0] == TopicTransfer && len(l.Topics) == 3 && len(l.Data) == 32:
			from, to := common.BytesToAddress(l.Topics[1].Bytes()), common.BytesToAddress(l.Topics[2].Bytes())
			ev.From, ev.To = lower(from), lower(to)
			ev.Amount = chains.NewAmount(new(big.Int).SetBytes(l.Data), tok.Decimals)
			ev.USD = ev.Amount.Float64() * tok.USD
			out = append(out, s.sides(ev, from, to, l.Index, followed)...)
		}
	}
	safeEvs, err := s.safeEvents(ctx, base, block, logs, senders)
	if err != nil {
		return nil, err
	}
	out = append(out, safeEvs...)
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

// adminEvent decodes an admin change log: the counterparty is who gains
// control (the new implementation, beacon, admin, owner or role holder).
func adminEvent(ev chains.Event, l types.Log) (chains.Event, bool) {
	addrTopic := func(i int) string { return lower(common.BytesToAddress(l.Topics[i].Bytes())) }
	word := func(i int) string { return lower(common.BytesToAddress(l.Data[32*i : 32*i+32])) }
	d := map[string]string{"contract": lower(l.Address)}
	var gains string
	switch {
	case l.Topics[0] == TopicUpgraded && len(l.Topics) == 2:
		d["event"], d["implementation"] = "Upgraded", addrTopic(1)
		gains = d["implementation"]
	case l.Topics[0] == TopicBeaconUpgraded && len(l.Topics) == 2:
		d["event"], d["beacon"] = "BeaconUpgraded", addrTopic(1)
		gains = d["beacon"]
	case l.Topics[0] == TopicAdminChanged && len(l.Topics) == 1 && len(l.Data) == 64:
		d["event"], d["previous_admin"], d["new_admin"] = "AdminChanged", word(0), word(1)
		gains = d["new_admin"]
	case l.Topics[0] == TopicOwnershipTransferred && len(l.Topics) == 3:
		d["event"], d["previous_owner"], d["new_owner"] = "OwnershipTransferred", addrTopic(1), addrTopic(2)
		gains = d["new_owner"]
	case l.Topics[0] == TopicRoleGranted && len(l.Topics) == 4:
		d["event"], d["role"], d["account"], d["sender"] = "RoleGranted", l.Topics[1].Hex(), addrTopic(2), addrTopic(3)
		gains = d["account"]
	default:
		return ev, false
	}
	ev.Kind = chains.KindAdmin
	ev.ID = chains.EventID(ev.Chain, ev.Tx, l.Index)
	ev.From, ev.To = lower(l.Address), gains
	ev.Amount = chains.NewAmount(new(big.Int), 0)
	ev.Detail = d
	return ev, true
}

// employeeAdmin decodes admin changes on contracts keywatch does not watch
// in a transaction an employee key signed (changes on watched contracts come
// through the contract's own log filter).
func (s *Source) employeeAdmin(base chains.Event, tx *types.Transaction, from common.Address, w Wallet, rcpt *types.Receipt) []chains.Event {
	var out []chains.Event
	for _, l := range rcpt.Logs {
		if l == nil || len(l.Topics) == 0 {
			continue
		}
		if cw, ok := s.wallets[l.Address]; ok && cw.Role == "contract" {
			continue
		}
		ev := base
		ev.Tx = tx.Hash().Hex()
		ev.Initiator = lower(from)
		if e, ok := adminEvent(ev, *l); ok {
			out = append(out, s.attribute(e, w, chains.Out, common.HexToAddress(e.To)))
		}
	}
	return out
}

// sides makes the out event of a watched sender and the in event of a
// watched recipient. When both are watched the in event's id takes ":in".
//
// An outflow of a followed address is an out event with wallet_role
// "followed" and the address as wallet.
func (s *Source) sides(ev chains.Event, from, to common.Address, index any, followed map[common.Address]bool) []chains.Event {
	var out []chains.Event
	id := chains.EventID(s.opts.Chain, ev.Tx, index)
	w, fromWatched := s.wallets[from]
	if !fromWatched && followed[from] {
		w, fromWatched = Wallet{Name: lower(from), Address: from, Role: chains.RoleFollowed}, true
	}
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
