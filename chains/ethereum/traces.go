package ethereum

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/keywatch/keywatch/chains"
	"github.com/keywatch/keywatch/internal/backoff"
)

// How Options.Traces reads the value that moves by internal calls (CALL,
// CREATE, CREATE2 and SELFDESTRUCT inside a transaction), which neither the
// block's transactions nor its logs show.
const (
	// TracesAuto is debug, else parity, else balance: decided by what the
	// node answers to the first block traced, and again when it stops
	// serving the method decided (an endpoint without it took over).
	TracesAuto = "auto"
	// TracesDebug is geth's debug_traceBlockByHash with its callTracer.
	TracesDebug = "debug"
	// TracesParity is trace_block in the parity trace format (Erigon,
	// Nethermind, Reth, OpenEthereum).
	TracesParity = "parity"
	// TracesBalance reads each watched contract's balance at every block
	// and its parent, by block hash: a fall the block's events do not
	// explain is an outflow to "unknown".
	TracesBalance = "balance"
	// TracesOff reads no internal movements ("" is off too).
	TracesOff = "off"
)

// The node methods behind TracesDebug and TracesParity.
const (
	methodDebugTrace  = "debug_traceBlockByHash"
	methodParityTrace = "trace_block"
)

// DetailInternal is the Detail key of a movement made by an internal call:
// the frame that moved the value (call, create, create2 or selfdestruct).
const DetailInternal = "internal"

// CounterpartyUnknown is the counterparty of an outflow the balance check
// found: the balance fell, and nothing read says where the value went.
const CounterpartyUnknown = "unknown"

// TraceRetry bounds the tries of a trace call on one block. After the last
// failure the block's watched contracts are checked by balance instead, and
// Options.OnTraceFallback is told.
type TraceRetry struct {
	// Attempts is the number of tries in all (default 3).
	Attempts int
	// Backoff is the wait after the first failure, doubled after each
	// further one up to MaxBackoff (defaults 1s and 10s).
	Backoff, MaxBackoff time.Duration
}

func (r TraceRetry) withDefaults() TraceRetry {
	if r.Attempts <= 0 {
		r.Attempts = 3
	}
	if r.Backoff <= 0 {
		r.Backoff = time.Second
	}
	if r.MaxBackoff < r.Backoff {
		r.MaxBackoff = max(10*time.Second, r.Backoff)
	}
	return r
}

// valueFrame is one internal movement of native value a trace shows: a frame
// below the transaction's own call that moved value > 0 and did not revert.
type valueFrame struct {
	tx     common.Hash
	signer common.Address // who signed the outer transaction
	path   string         // the frame's place under the transaction's call: "0.2.1"
	kind   string         // call, create, create2 or selfdestruct
	from   common.Address
	to     common.Address
	value  *big.Int
}

// framePath formats a trace address ([0 2 1]) as "0.2.1".
func framePath(addr []int) string {
	var b strings.Builder
	for i, n := range addr {
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(strconv.Itoa(n))
	}
	return b.String()
}

// traced is what reading one block's internal movements gave.
type traced struct {
	hash   common.Hash
	frames []valueFrame
	calls  []safeCall // calls to watched Safes (tracesafecalls.go)
	// balance: the block's watched contracts are checked by balance (the
	// chosen way, or the tracer failed with cause).
	balance bool
	cause   error
}

// recentTraces is how many blocks' traces are kept, so that Rescan (which
// decodes a block again once forwarding follows a new address) does not
// trace it again.
const recentTraces = 4

// traceReader reads internal movements for a Source.
type traceReader struct {
	mode       string
	raw        RawCaller
	retry      TraceRetry
	log        *slog.Logger
	onFallback func(ctx context.Context, b chains.Block, err error) error
	// contracts are the watched wallets the balance check reads: role
	// contract and Safes.
	contracts []Wallet
	// safes are the watched Safes whose calls a trace keeps.
	safes map[common.Address]bool

	mu sync.Mutex
	// decided is what auto found the node serves ("" until a trace
	// succeeded or both methods were refused); missing lists the methods
	// it refused on the way.
	decided   string
	missing   []string
	announced string
	noted     map[string]bool
	recent    []traced
	balances  []blockBalances
	// withCode are addresses seen to hold code (tracefilter.go).
	withCode map[common.Address]bool
}

func newTraceReader(client Client, opts Options) *traceReader {
	t := &traceReader{mode: opts.Traces, raw: rawCallerOf(client), retry: opts.TraceRetry.withDefaults(),
		log: opts.Logger, onFallback: opts.OnTraceFallback, noted: map[string]bool{}, withCode: map[common.Address]bool{},
		safes: safeAddrs(opts.Wallets)}
	if t.mode == "" {
		t.mode = TracesOff
	}
	if t.log == nil {
		t.log = slog.New(slog.DiscardHandler)
	}
	t.log = t.log.With("chain", opts.Chain)
	for _, w := range opts.Wallets {
		if w.Role == "contract" || w.Safe {
			t.contracts = append(t.contracts, w)
		}
	}
	return t
}

// withInternal adds the internal movements of block to the events decoded
// from its transactions and logs (seen).
//
// A block without transactions is not traced: value moves by a call only
// inside a transaction, and neither a block reward nor a withdrawal can make
// a balance fall. Nor is a block none of whose transactions can run code
// (runsNoCode). Every other block is traced whole, in one call: an internal
// call can reach a watched address from any transaction that runs code, and
// nothing in a block short of its trace tells which (see README, "Internal
// value movements", for what was measured).
func (s *Source) withInternal(ctx context.Context, b chains.Block, block *types.Block, followed map[common.Address]bool, seen []chains.Event) ([]chains.Event, error) {
	t := s.trace
	if t.mode == TracesOff || len(block.Transactions()) == 0 {
		return seen, nil
	}
	if t.raw == nil {
		t.note("noraw", slog.LevelWarn, "traces: the node client makes no raw JSON-RPC calls; internal value movements are not read")
		return seen, nil
	}
	res, err := t.read(ctx, b, block)
	if err != nil {
		return nil, err
	}
	var internal []chains.Event
	if res.balance {
		if internal, err = s.balanceCheck(ctx, block, seen, res.cause); err != nil {
			return nil, err
		}
	} else {
		internal = s.frameEvents(block, res.frames, followed)
	}
	if len(internal) == 0 {
		return seen, nil
	}
	return dedupe(append(seen, internal...)), nil
}

// frameEvents turns value frames into events: every frame from a watched
// or followed address, or to a watched one. The transaction's own call is
// never a frame (it is decoded as the native transfer), so nothing is
// counted twice.
func (s *Source) frameEvents(block *types.Block, frames []valueFrame, followed map[common.Address]bool) []chains.Event {
	var out []chains.Event
	for _, f := range frames {
		_, fromWatched := s.wallets[f.from]
		_, toWatched := s.wallets[f.to]
		if !fromWatched && !toWatched && !followed[f.from] {
			continue
		}
		amount := chains.NewAmount(f.value, 18)
		ev := chains.Event{
			Chain: s.opts.Chain, Block: block.NumberU64(), BlockHash: block.Hash().Hex(),
			Time: time.Unix(int64(block.Time()), 0).UTC(), Kind: chains.KindTransfer,
			Tx: f.tx.Hex(), Initiator: lower(f.signer), From: lower(f.from), To: lower(f.to),
			Asset: s.opts.NativeSymbol, Amount: amount, USD: amount.Float64() * s.opts.NativeUSD,
			Detail: map[string]string{DetailInternal: f.kind},
		}
		out = append(out, s.sides(ev, f.from, f.to, "call:"+f.path, followed)...)
	}
	return out
}

// read returns the block's traced movements: from the recent blocks when
// it was read already, else from the node. When the tracer fails on the
// block after the retries, the result says to check it by balance and
// OnTraceFallback is told (its error fails the read, so the block is decoded
// again later and never skipped).
func (t *traceReader) read(ctx context.Context, b chains.Block, block *types.Block) (traced, error) {
	if r, ok := t.cached(block.Hash()); ok {
		return r, nil
	}
	if t.method() != TracesBalance && t.runsNoCode(ctx, block) {
		res := traced{hash: block.Hash()}
		t.keep(res)
		return res, nil
	}
	bt, method, err := t.trace(ctx, block)
	res := traced{hash: block.Hash(), frames: bt.frames, calls: bt.calls, balance: method == TracesBalance}
	if err != nil {
		if ctx.Err() != nil {
			return traced{}, ctx.Err()
		}
		t.log.Warn("traces: the tracer failed on the block; its watched contracts are checked by balance instead",
			"block", block.NumberU64(), "hash", block.Hash().Hex(), "method", method, "tries", t.retry.Attempts, "err", err)
		if t.onFallback != nil {
			if ferr := t.onFallback(ctx, b, err); ferr != nil {
				return traced{}, fmt.Errorf("report the trace fallback of block %d: %w", block.NumberU64(), ferr)
			}
		}
		res = traced{hash: block.Hash(), balance: true, cause: err}
	}
	t.keep(res)
	return res, nil
}

// trace reads the block's value frames (and calls to watched Safes) with
// the method in force, and in auto mode moves on to the next method when
// the node says it does not serve one. It returns the method used (balance
// when auto found neither).
func (t *traceReader) trace(ctx context.Context, block *types.Block) (blockTrace, string, error) {
	for {
		m := t.method()
		if m == TracesBalance {
			return blockTrace{}, m, nil
		}
		bt, err := t.tries(ctx, m, block)
		if err == nil {
			t.settle(m)
			return bt, m, nil
		}
		if t.mode != TracesAuto || !methodMissing(err, nodeMethod(m)) {
			return blockTrace{}, m, err
		}
		t.refused(m)
	}
}

// tries calls the trace method up to Attempts times, with backoff. A node
// that says it does not serve the method is not asked again.
func (t *traceReader) tries(ctx context.Context, m string, block *types.Block) (blockTrace, error) {
	wait := backoff.New(t.retry.Backoff, t.retry.MaxBackoff)
	for attempt := 1; ; attempt++ {
		bt, err := t.call(ctx, m, block)
		if err == nil {
			return bt, nil
		}
		if ctx.Err() != nil || methodMissing(err, nodeMethod(m)) || attempt >= t.retry.Attempts {
			return blockTrace{}, err
		}
		d := wait.Next()
		t.log.Warn("traces: tracing the block failed; trying again", "block", block.NumberU64(), "method", nodeMethod(m),
			"attempt", attempt, "err", err, "retry_in", d)
		if err := backoff.Sleep(ctx, d); err != nil {
			return blockTrace{}, err
		}
	}
}

func (t *traceReader) call(ctx context.Context, m string, block *types.Block) (blockTrace, error) {
	switch m {
	case TracesDebug:
		return debugTrace(ctx, t.raw, block, t.safes)
	case TracesParity:
		return parityTrace(ctx, t.raw, block, t.safes)
	}
	return blockTrace{}, fmt.Errorf("traces: %q is not a way to trace (auto, debug, parity, balance or off)", m)
}

func nodeMethod(m string) string {
	switch m {
	case TracesDebug:
		return methodDebugTrace
	case TracesParity:
		return methodParityTrace
	}
	return m
}

// method is the way to read internal movements now: the configured one, or
// in auto mode what was found (debug until the node says otherwise).
func (t *traceReader) method() string {
	if t.mode != TracesAuto {
		return t.mode
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.decided == "" {
		return TracesDebug
	}
	return t.decided
}

// refused records, in auto mode, that the node does not serve method m and
// moves on: debug to parity, parity to balance (said once in the log).
func (t *traceReader) refused(m string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.missing = append(t.missing, nodeMethod(m))
	if m == TracesDebug {
		t.decided = TracesParity
		return
	}
	t.decided = TracesBalance
	t.announce(TracesBalance)
}

// settle records that method m answered.
func (t *traceReader) settle(m string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.mode == TracesAuto {
		t.decided = m
	}
	t.announce(m)
}

// announce says in the log, once for each change, how internal movements
// are read. Called with mu held.
func (t *traceReader) announce(m string) {
	if t.announced == m {
		return
	}
	t.announced = m
	missing := strings.Join(t.missing, " and ")
	t.missing = nil
	switch {
	case m == TracesBalance && t.mode == TracesAuto:
		t.log.Warn("traces: the node has no debug API; falling back to balance checks of watched contracts (an unexplained fall is an outflow to unknown)",
			"refused", missing, "contracts", len(t.contracts))
	case m == TracesParity && missing != "":
		t.log.Warn("traces: the node has no debug API; falling back to trace_block (parity traces)", "refused", missing)
	case m == TracesDebug:
		t.log.Info("traces: internal value movements are read with debug_traceBlockByHash (callTracer)")
	case m == TracesParity:
		t.log.Info("traces: internal value movements are read with trace_block (parity traces)")
	}
}

// note logs a message once per key.
func (t *traceReader) note(key string, level slog.Level, msg string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.noted[key] {
		return
	}
	t.noted[key] = true
	t.log.Log(context.Background(), level, msg)
}

func (t *traceReader) cached(h common.Hash) (traced, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, r := range t.recent {
		if r.hash == h {
			return r, true
		}
	}
	return traced{}, false
}

func (t *traceReader) keep(r traced) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.recent = append(t.recent, r)
	if over := len(t.recent) - recentTraces; over > 0 {
		t.recent = append([]traced(nil), t.recent[over:]...)
	}
}

// errTraceShape is a trace answer that does not fit the block asked about.
var errTraceShape = errors.New("the trace does not match the block")
