package ethereum

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/big"
	"strings"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/keywatch/keywatch/chains"
	"github.com/keywatch/keywatch/internal/backoff"
)

// Storage that must not change: for every Safe and every wallet of role
// contract, slot 0 (a Safe proxy's singleton) and the EIP-1967
// implementation, admin and beacon slots are read at every block and at its
// parent, by block hash (EIP-1898), in JSON-RPC batches. A slot whose value
// differs is an admin event with detail.change "slot", whether or not the
// contract logged anything: the 2025 Bybit theft rewrote a Safe's slot 0
// through a delegatecall that logged nothing.
//
// The change is attributed to the transaction that made it when the node
// has the debug API (debug_traceBlockByHash with the prestate tracer in
// diff mode names, per transaction, the storage it changed), and to its
// block otherwise. Only blocks whose reads show a change are traced.

// The watched storage slots.
var (
	// SlotZero holds a Safe proxy's singleton (masterCopy).
	SlotZero = common.Hash{}
	// SlotImplementation is bytes32(uint256(keccak256("eip1967.proxy.implementation")) - 1).
	SlotImplementation = common.HexToHash("0x360894a13ba1a3210667c828492db98dca3e2076cc3735a920a3ca505d382bbc")
	// SlotAdmin is bytes32(uint256(keccak256("eip1967.proxy.admin")) - 1).
	SlotAdmin = common.HexToHash("0xb53127684a568b3173ae13b9f8a6016e243e63b6e8ee1178d6a717850b5d6103")
	// SlotBeacon is bytes32(uint256(keccak256("eip1967.proxy.beacon")) - 1).
	SlotBeacon = common.HexToHash("0xa3f0ad74e5423aebfd80d3ef4346578335a9a72aeaee59ff6cb3582b35133d50")
)

// watchedSlots are read in this order; the name is the event's
// detail.slot_name.
var watchedSlots = [numSlots]struct {
	slot common.Hash
	name string
}{
	{SlotZero, "slot-0"},
	{SlotImplementation, "eip1967-implementation"},
	{SlotAdmin, "eip1967-admin"},
	{SlotBeacon, "eip1967-beacon"},
}

const numSlots = 4

// Detail keys of slot events beside chains.DetailChange, DetailSlot,
// DetailOld and DetailNew.
const (
	// DetailSlotName names the slot: slot-0, eip1967-implementation,
	// eip1967-admin or eip1967-beacon.
	DetailSlotName = "slot_name"
	// DetailWhyNoTx says why a slot event carries its block and no
	// transaction.
	DetailWhyNoTx = "why_no_tx"
)

// ChangeSlot is detail.change of a slot event.
const ChangeSlot = "slot"

// storageByHash is implemented by *ethclient.Client and go-ethereum's
// simulated.Client, which hides its raw client: it reads one slot per call.
type storageByHash interface {
	StorageAtHash(ctx context.Context, account common.Address, key common.Hash, blockHash common.Hash) ([]byte, error)
}

// slotCacheSize is how many blocks' slot values are kept: the parent of the
// next block, and the blocks a rescan or a short reorg reads again.
const slotCacheSize = 8

// Retries of a failed trace before the change is attributed to its block.
const (
	traceAttempts = 3
	traceBackoff  = 250 * time.Millisecond
)

// slotWatch reads the watched slots of one chain's Safes and contracts.
type slotWatch struct {
	wallets []Wallet      // Safes and contracts, one per address, in configured order
	rpc     batchCaller   // nil when the client makes no raw calls
	single  storageByHash // reads one slot per call when rpc is nil
	trace   bool          // attribute changes with debug_traceBlockByHash

	mu       sync.Mutex
	cache    map[common.Hash]*slotBlock
	order    []common.Hash // of cache, oldest first
	noDebug  bool          // the node answered that it has no debug_traceBlockByHash
	noDebugE string
}

// slotBlock is what is known of one block's watched slots.
type slotBlock struct {
	values  [][numSlots]common.Hash // per wallet
	events  []chains.Event
	decoded bool // events is the block's slot events
}

func newSlotWatch(client Client, opts Options) *slotWatch {
	single, _ := client.(storageByHash)
	w := &slotWatch{rpc: batchCallerOf(client), single: single, cache: map[common.Hash]*slotBlock{},
		trace: opts.Traces == "auto" || opts.Traces == "debug"}
	seen := map[common.Address]bool{}
	for _, wl := range opts.Wallets {
		if (wl.Safe || wl.Role == "contract") && !seen[wl.Address] {
			seen[wl.Address] = true
			w.wallets = append(w.wallets, wl)
		}
	}
	return w
}

// WithoutSlotReads stops the storage reads, for replays of recorded
// responses, which hold no state. It returns how many wallets' slots go
// unchecked, for the caller to say so.
func (s *Source) WithoutSlotReads() int {
	n := len(s.slots.wallets)
	s.slots.wallets = nil
	return n
}

// slotEvents returns the slot events of block: for each watched slot whose
// value at the block differs from its value at the parent.
func (s *Source) slotEvents(ctx context.Context, block *types.Block) ([]chains.Event, error) {
	w := s.slots
	if len(w.wallets) == 0 || block.NumberU64() == 0 {
		return nil, nil
	}
	if w.rpc == nil && w.single == nil {
		return nil, errors.New("read storage slots of Safes and contracts: the node client makes no raw JSON-RPC calls and has no StorageAtHash")
	}
	hash, parent := block.Hash(), block.ParentHash()
	cur, prev, evs, done := w.cached(hash, parent)
	if done {
		out := make([]chains.Event, len(evs))
		for i, e := range evs {
			e.Detail = maps.Clone(e.Detail) // the cached events stay as they were made
			out[i] = e
		}
		return out, nil
	}
	var need []common.Hash
	if cur == nil {
		need = append(need, hash)
	}
	if prev == nil {
		need = append(need, parent)
	}
	if len(need) > 0 {
		read, err := w.read(ctx, need)
		if err != nil {
			return nil, fmt.Errorf("read storage slots of %d Safes and contracts at block %d (%s): %w", len(w.wallets), block.NumberU64(), hash.Hex(), err)
		}
		if cur == nil {
			cur, read = read[0], read[1:]
		}
		if prev == nil {
			prev = read[0]
			w.store(parent, &slotBlock{values: prev})
		}
	}
	var changes []slotChange
	for i, wl := range w.wallets {
		for j := range numSlots {
			if cur[i][j] != prev[i][j] {
				changes = append(changes, slotChange{wallet: wl, slot: j, old: prev[i][j], new: cur[i][j]})
			}
		}
	}
	if len(changes) > 0 {
		var err error
		if evs, err = s.changeEvents(ctx, block, changes); err != nil {
			return nil, err
		}
	}
	w.store(hash, &slotBlock{values: cur, events: evs, decoded: true})
	return evs, nil
}

// cached returns what the cache holds of a block and its parent; done when
// the block's slot events were made before (a rescan).
func (w *slotWatch) cached(hash, parent common.Hash) (cur, prev [][numSlots]common.Hash, evs []chains.Event, done bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if b := w.cache[hash]; b != nil {
		if b.decoded {
			return b.values, nil, b.events, true
		}
		cur = b.values
	}
	if b := w.cache[parent]; b != nil {
		prev = b.values
	}
	return cur, prev, nil, false
}

// store caches what is known of a block, dropping the oldest entry when
// full. Values at a block hash never change, so a hit is exact.
func (w *slotWatch) store(hash common.Hash, b *slotBlock) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, ok := w.cache[hash]; !ok {
		w.order = append(w.order, hash)
	}
	w.cache[hash] = b
	for len(w.order) > slotCacheSize {
		delete(w.cache, w.order[0])
		w.order = w.order[1:]
	}
}

// read reads every watched slot at each of the blocks, in batches of at
// most maxBatch requests (one call per slot on a client without raw calls).
// Any error, of the batch or of one request, fails the whole read: a block
// is never judged on part of its slots.
func (w *slotWatch) read(ctx context.Context, blocks []common.Hash) ([][][numSlots]common.Hash, error) {
	if w.rpc == nil {
		return w.readEach(ctx, blocks)
	}
	type req struct{ block, wallet, slot int }
	var reqs []req
	var elems []rpc.BatchElem
	for bi, h := range blocks {
		at := rpc.BlockNumberOrHashWithHash(h, false)
		for wi, wl := range w.wallets {
			for si := range numSlots {
				reqs = append(reqs, req{bi, wi, si})
				elems = append(elems, rpc.BatchElem{Method: "eth_getStorageAt",
					Args: []any{wl.Address, watchedSlots[si].slot, at}, Result: new(json.RawMessage)})
			}
		}
	}
	for start := 0; start < len(elems); start += maxBatch {
		if err := w.rpc.BatchCallContext(ctx, elems[start:min(start+maxBatch, len(elems))]); err != nil {
			return nil, err
		}
	}
	out := make([][][numSlots]common.Hash, len(blocks))
	for i := range out {
		out[i] = make([][numSlots]common.Hash, len(w.wallets))
	}
	for i, e := range elems {
		r := reqs[i]
		if e.Error != nil {
			return nil, fmt.Errorf("%s: %w", w.what(r.wallet, r.slot, blocks[r.block]), e.Error)
		}
		v, err := parseWord(*e.Result.(*json.RawMessage))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", w.what(r.wallet, r.slot, blocks[r.block]), err)
		}
		out[r.block][r.wallet][r.slot] = v
	}
	return out, nil
}

// readEach reads the slots one call each.
func (w *slotWatch) readEach(ctx context.Context, blocks []common.Hash) ([][][numSlots]common.Hash, error) {
	out := make([][][numSlots]common.Hash, len(blocks))
	for bi, h := range blocks {
		out[bi] = make([][numSlots]common.Hash, len(w.wallets))
		for wi, wl := range w.wallets {
			for si := range numSlots {
				v, err := w.single.StorageAtHash(ctx, wl.Address, watchedSlots[si].slot, h)
				if err != nil {
					return nil, fmt.Errorf("%s: %w", w.what(wi, si, h), err)
				}
				if len(v) > 32 {
					return nil, fmt.Errorf("%s: the node answered %d bytes, want at most 32", w.what(wi, si, h), len(v))
				}
				out[bi][wi][si] = common.BytesToHash(v)
			}
		}
	}
	return out, nil
}

// what names one slot read in errors.
func (w *slotWatch) what(wallet, slot int, block common.Hash) string {
	return fmt.Sprintf("eth_getStorageAt of %s (%s) slot %s at block %s", w.wallets[wallet].Name,
		lower(w.wallets[wallet].Address), watchedSlots[slot].name, block.Hex())
}

// parseWord decodes a storage word as nodes return it: a JSON string of 0x
// and up to 64 hex digits (leading zeros may be left out).
func parseWord(raw json.RawMessage) (common.Hash, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return common.Hash{}, fmt.Errorf("the node answered %s, want a 32-byte hex string", clip(string(raw), 80))
	}
	digits, ok := strings.CutPrefix(s, "0x")
	if !ok || len(digits) == 0 || len(digits) > 64 {
		return common.Hash{}, fmt.Errorf("the node answered %q, want 0x and at most 64 hex digits", clip(s, 80))
	}
	v, ok := new(big.Int).SetString(digits, 16)
	if !ok {
		return common.Hash{}, fmt.Errorf("the node answered %q, which is not hex", clip(s, 80))
	}
	return common.BigToHash(v), nil
}

// slotChange is a watched slot whose value differs between a block and its
// parent (or, from a trace, before and after one transaction).
type slotChange struct {
	wallet   Wallet
	slot     int
	old, new common.Hash
}

// txChange is one transaction's part in a slot change.
type txChange struct {
	index    int // in the block
	tx       common.Hash
	old, new common.Hash
}

// changeEvents makes the events of a block's slot changes: one per
// transaction that made it when the trace accounts for the change, else one
// for the block.
func (s *Source) changeEvents(ctx context.Context, block *types.Block, changes []slotChange) ([]chains.Event, error) {
	byTx, why, err := s.slots.attribute(ctx, block, changes)
	if err != nil {
		return nil, err
	}
	base := chains.Event{Chain: s.opts.Chain, Block: block.NumberU64(), BlockHash: block.Hash().Hex(),
		Time: time.Unix(int64(block.Time()), 0).UTC(), Kind: chains.KindAdmin}
	var out []chains.Event
	for i, c := range changes {
		if len(byTx[i]) == 0 {
			out = append(out, s.slotEvent(base, c, "", why[i]))
			continue
		}
		for _, t := range byTx[i] {
			ev := base
			ev.Tx = t.tx.Hex()
			from, err := s.txSender(ctx, block, t.index)
			if err != nil {
				return nil, err
			}
			ev.Initiator = lower(from)
			out = append(out, s.slotEvent(ev, slotChange{wallet: c.wallet, slot: c.slot, old: t.old, new: t.new}, ev.Tx, ""))
		}
	}
	return out, nil
}

// slotEvent makes the admin event of one slot change; tx is "" when it is
// attributed to its block.
func (s *Source) slotEvent(ev chains.Event, c slotChange, tx, why string) chains.Event {
	addr := lower(c.wallet.Address)
	slot := watchedSlots[c.slot].slot.Hex()
	ref := tx
	if ref == "" {
		ref = ev.BlockHash
	}
	ev.ID = chains.EventID(s.opts.Chain, ref, "slot:"+addr+":"+slot)
	ev.From = addr
	ev.Amount = chains.NewAmount(new(big.Int), 0)
	ev.Detail = map[string]string{
		chains.DetailChange: ChangeSlot,
		chains.DetailSlot:   slot,
		chains.DetailOld:    c.old.Hex(),
		chains.DetailNew:    c.new.Hex(),
		DetailSlotName:      watchedSlots[c.slot].name,
		"contract":          addr,
	}
	if why != "" {
		ev.Detail[DetailWhyNoTx] = why
	}
	gains := "unknown"
	if a, ok := wordAddress(c.new); ok {
		gains = lower(a)
	}
	ev.Direction = chains.Out
	ev.Wallet, ev.WalletRole, ev.Owner = c.wallet.Name, c.wallet.Role, c.wallet.Owner
	ev.To, ev.Counterparty = gains, gains
	return ev
}

// wordAddress reads a storage word as an address: a non-zero value in the
// low 20 bytes, the high 12 bytes zero (how Solidity stores an address).
func wordAddress(w common.Hash) (common.Address, bool) {
	for _, b := range w[:12] {
		if b != 0 {
			return common.Address{}, false
		}
	}
	a := common.BytesToAddress(w[12:])
	return a, a != (common.Address{})
}

// txSender returns the sender of the block's i-th transaction, as the node
// reports it when it can.
func (s *Source) txSender(ctx context.Context, block *types.Block, i int) (common.Address, error) {
	tx := block.Transactions()[i]
	if sr, ok := s.client.(senderReader); ok {
		from, err := sr.TransactionSender(ctx, tx, block.Hash(), uint(i))
		if err != nil {
			return common.Address{}, fmt.Errorf("sender of tx %s: %w", tx.Hash().Hex(), err)
		}
		return from, nil
	}
	from, err := types.Sender(types.LatestSignerForChainID(tx.ChainId()), tx)
	if err != nil {
		return common.Address{}, fmt.Errorf("sender of tx %s: %w", tx.Hash().Hex(), err)
	}
	return from, nil
}

// prestateDiff is one transaction's result of debug_traceBlockByHash with
// the prestate tracer in diff mode: the storage it changed, before and
// after (a slot left out of post became zero; one left out of pre was zero).
type prestateDiff struct {
	TxHash *common.Hash `json:"txHash"` // absent from older geth: results are in transaction order
	Result struct {
		Pre  map[common.Address]storageDiff `json:"pre"`
		Post map[common.Address]storageDiff `json:"post"`
	} `json:"result"`
	Error string `json:"error"`
}

type storageDiff struct {
	Storage map[common.Hash]common.Hash `json:"storage"`
}

// attribute names, per change, the transactions that made it, in block
// order, or says why it cannot (why[i]). The transactions are taken only
// when they account for the whole change: the first one's old value is the
// parent's, each one's new value the next one's old, and the last one's new
// value the block's.
func (w *slotWatch) attribute(ctx context.Context, block *types.Block, changes []slotChange) (byTx [][]txChange, why []string, err error) {
	byTx, why = make([][]txChange, len(changes)), make([]string, len(changes))
	reason := func(r string) ([][]txChange, []string, error) {
		for i := range why {
			why[i] = r
		}
		return byTx, why, nil
	}
	if !w.trace {
		return reason("traces are off for this chain")
	}
	if w.rpc == nil {
		return reason("the node client makes no raw JSON-RPC calls, so no debug_traceBlockByHash")
	}
	w.mu.Lock()
	noDebug, noDebugE := w.noDebug, w.noDebugE
	w.mu.Unlock()
	if noDebug {
		return reason("the node has no debug API (" + noDebugE + ")")
	}
	diffs, err := w.traceBlock(ctx, block)
	if err != nil {
		if ctx.Err() != nil {
			return nil, nil, err
		}
		var rerr rpc.Error
		if errors.As(err, &rerr) && rerr.ErrorCode() == -32601 {
			w.mu.Lock()
			w.noDebug, w.noDebugE = true, rerr.Error()
			w.mu.Unlock()
			return reason("the node has no debug API (" + rerr.Error() + ")")
		}
		return reason("debug_traceBlockByHash failed: " + clip(err.Error(), 80))
	}
	txs := block.Transactions()
	if len(diffs) != len(txs) {
		return reason(fmt.Sprintf("the trace has %d results for %d transactions", len(diffs), len(txs)))
	}
	index := make(map[common.Hash]int, len(txs))
	for i, tx := range txs {
		index[tx.Hash()] = i
	}
	for i, c := range changes {
		slot := watchedSlots[c.slot].slot
		var made []txChange
		for j, d := range diffs {
			if d.Error != "" {
				return reason("the trace of a transaction failed: " + clip(d.Error, 80))
			}
			pre, inPre := d.Result.Pre[c.wallet.Address].Storage[slot]
			post, inPost := d.Result.Post[c.wallet.Address].Storage[slot]
			if !inPre && !inPost || pre == post {
				continue
			}
			k := j
			if d.TxHash != nil {
				var ok bool
				if k, ok = index[*d.TxHash]; !ok {
					return reason("the trace names transaction " + d.TxHash.Hex() + ", which is not in the block")
				}
			}
			made = append(made, txChange{index: k, tx: txs[k].Hash(), old: pre, new: post})
		}
		at, chained := c.old, true
		for _, m := range made {
			chained = chained && m.old == at
			at = m.new
		}
		if len(made) == 0 || !chained || at != c.new {
			why[i] = "the trace does not account for the change"
			continue
		}
		byTx[i] = made
	}
	return byTx, why, nil
}

// traceBlock runs the prestate tracer in diff mode over the block, retrying
// a failure a few times; a node without the method fails at once.
func (w *slotWatch) traceBlock(ctx context.Context, block *types.Block) ([]prestateDiff, error) {
	cfg := map[string]any{"tracer": "prestateTracer", "tracerConfig": map[string]any{"diffMode": true, "disableCode": true}}
	wait := backoff.New(traceBackoff, 4*traceBackoff)
	var err error
	for attempt := range traceAttempts {
		if attempt > 0 {
			if serr := backoff.Sleep(ctx, wait.Next()); serr != nil {
				return nil, serr
			}
		}
		var out []prestateDiff
		b := []rpc.BatchElem{{Method: "debug_traceBlockByHash", Args: []any{block.Hash(), cfg}, Result: &out}}
		if err = w.rpc.BatchCallContext(ctx, b); err == nil {
			err = b[0].Error
		}
		if err == nil {
			return out, nil
		}
		var rerr rpc.Error
		if errors.As(err, &rerr) && rerr.ErrorCode() == -32601 {
			return nil, err
		}
	}
	return nil, err
}
