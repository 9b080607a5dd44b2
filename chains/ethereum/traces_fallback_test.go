package ethereum_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/keywatch/keywatch/chains"
	kwe "github.com/keywatch/keywatch/chains/ethereum"
	"github.com/keywatch/keywatch/contracts"
	"github.com/keywatch/keywatch/internal/simchain"
)

// balanceID is the id of the balance check's outflow of addr in a block.
func balanceID(block common.Hash, addr common.Address) string {
	return "eth:" + block.Hex() + ":balance:" + lower(addr)
}

// TestAutoFallsBackToBalanceWithoutTraceAPIs: go-ethereum's simulated
// backend serves neither debug_traceBlockByHash nor trace_block. With
// traces: auto the source says so once and checks the vault by balance: a
// sweep by internal call is an outflow to "unknown", fail closed.
func TestAutoFallsBackToBalanceWithoutTraceAPIs(t *testing.T) {
	s := newSweepChain(t, false)
	var logs logBuffer
	counted := &traceCounter{Client: s.c.Client, raw: rawOf(t, s.c.Client)}
	src := s.source(counted, kwe.TracesAuto, func(o *kwe.Options) { o.Logger = slogTo(&logs) })
	thief := simchain.Addr("thief")

	t.Run("an unexplained fall is an outflow to unknown", func(t *testing.T) {
		r := s.send("outsider", s.caller, nil, contracts.NameSweepCaller, "sweepVia", s.sweeper, thief, simchain.Ether(500))
		evs := blockEvents(t, src, s.c, r)
		if len(evs) != 1 {
			t.Fatalf("want one event:%s", describe(evs))
		}
		e := evs[0]
		if e.ID != balanceID(r.BlockHash, s.sweeper) || e.Kind != chains.KindTransfer || e.Direction != chains.Out ||
			e.Wallet != "vault" || e.WalletRole != "contract" || e.Owner != "treasury@firm.example" ||
			e.Counterparty != kwe.CounterpartyUnknown || e.To != kwe.CounterpartyUnknown || e.From != lower(s.sweeper) ||
			e.Amount.String() != "500" || e.USD != 1_500_000 || e.Asset != "ETH" || e.Block != r.BlockNumber.Uint64() ||
			e.Detail[kwe.DetailBalanceBefore] != "600" || e.Detail[kwe.DetailBalanceAfter] != "100" ||
			!strings.Contains(e.Detail[kwe.DetailBalanceCheck], "neither debug_traceBlockByHash nor trace_block") {
			t.Fatalf("event %+v", e)
		}
	})

	t.Run("a rise is no event", func(t *testing.T) {
		r := must[*types.Receipt](t)(s.c.Send(s.ctx, "hot", &s.sweeper, simchain.Ether(5), nil))
		evs := blockEvents(t, src, s.c, r)
		if len(evs) != 2 || find(evs, "eth:"+r.TxHash.Hex()+":native") == nil || find(evs, "eth:"+r.TxHash.Hex()+":native:in") == nil {
			t.Fatalf("want the native transfer's two sides alone:%s", describe(evs))
		}
	})

	t.Run("an inflow seen in the same block does not hide a sweep", func(t *testing.T) {
		in := must[*types.Transaction](t)(s.c.Submit(s.ctx, "hot", &s.sweeper, simchain.Ether(7), nil))
		a := must[*contracts.Artifact](t)(contracts.Load(contracts.NameSweepCaller))
		sweep := must[*types.Transaction](t)(s.c.Submit(s.ctx, "outsider", &s.caller, nil,
			must[[]byte](t)(a.Pack("sweepVia", s.sweeper, thief, simchain.Ether(7)))))
		s.c.Backend.Commit()
		must[*types.Receipt](t)(s.c.Receipt(s.ctx, in))
		r := must[*types.Receipt](t)(s.c.Receipt(s.ctx, sweep))
		evs := blockEvents(t, src, s.c, r)
		e := find(evs, balanceID(r.BlockHash, s.sweeper))
		if e == nil || e.Amount.String() != "7" || e.Detail[kwe.DetailBalanceBefore] != e.Detail[kwe.DetailBalanceAfter] {
			t.Fatalf("want a 7 ETH outflow to unknown though the balance did not change:%s", describe(evs))
		}
	})

	t.Run("a reverted sweep is no event", func(t *testing.T) {
		r := s.send("outsider", s.caller, nil, contracts.NameSweepCaller, "sweepReverted", s.sweeper, thief, simchain.Ether(50))
		if evs := blockEvents(t, src, s.c, r); len(evs) != 0 {
			t.Fatalf("events:%s", describe(evs))
		}
	})

	if n := strings.Count(logs.String(), "falling back to balance"); n != 1 {
		t.Fatalf("the fallback should be logged once, got %d:\n%s", n, logs.String())
	}
	// Auto asked each method once, and then only read balances: one
	// eth_getBalance per block once the parent's balance is known.
	if n := counted.traces.Load(); n != 2 {
		t.Fatalf("%d trace calls, want 2 (debug_traceBlockByHash, then trace_block, once)", n)
	}
	if n := counted.balances.Load(); n != 5 {
		t.Fatalf("%d eth_getBalance calls for 4 blocks, want 5 (the first block's parent, then one a block)", n)
	}
}

// fallbacks records OnTraceFallback calls.
type fallbacks struct {
	mu     sync.Mutex
	blocks []uint64
	errs   []error
	fail   error // returned to the source
}

func (f *fallbacks) report(_ context.Context, b chains.Block, err error) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.blocks = append(f.blocks, b.Number)
	f.errs = append(f.errs, err)
	return f.fail
}

func (f *fallbacks) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.blocks)
}

// TestTracerFailureIsRetriedThenFallsBack: a node whose tracer errors on a
// block is asked again with backoff; after the last try the block's watched
// contracts are checked by balance, OnTraceFallback is told, and the block
// is never skipped.
func TestTracerFailureIsRetriedThenFallsBack(t *testing.T) {
	s := newSweepChain(t, true)
	var logs logBuffer
	counted := &traceCounter{Client: s.c.Client, raw: rawOf(t, s.c.Client)}
	fb := &fallbacks{}
	src := s.source(counted, kwe.TracesAuto, func(o *kwe.Options) {
		o.Logger = slogTo(&logs)
		o.TraceRetry = kwe.TraceRetry{Attempts: 3, Backoff: time.Millisecond}
		o.OnTraceFallback = fb.report
	})
	thief := simchain.Addr("thief")
	sweep := func() *types.Receipt {
		return s.send("outsider", s.caller, nil, contracts.NameSweepCaller, "sweepVia", s.sweeper, thief, simchain.Ether(10))
	}

	t.Run("two failures, then the trace", func(t *testing.T) {
		counted.traces.Store(0)
		counted.failing.Store(2)
		r := sweep()
		evs := blockEvents(t, src, s.c, r)
		if len(evs) != 1 || evs[0].ID != internalID(r.TxHash, "0.0") {
			t.Fatalf("want the traced outflow:%s", describe(evs))
		}
		if n := counted.traces.Load(); n != 3 || fb.count() != 0 {
			t.Fatalf("%d trace calls and %d fallbacks, want 3 and none", n, fb.count())
		}
	})

	t.Run("every try fails: balance check and the callback", func(t *testing.T) {
		counted.traces.Store(0)
		counted.failing.Store(100)
		retries := strings.Count(logs.String(), "trying again")
		r := sweep()
		b := must[chains.Block](t)(src.BlockAt(s.ctx, r.BlockNumber.Uint64()))
		evs := must[[]chains.Event](t)(src.Events(s.ctx, b))
		if len(evs) != 1 || evs[0].ID != balanceID(r.BlockHash, s.sweeper) || evs[0].Counterparty != kwe.CounterpartyUnknown ||
			evs[0].Amount.String() != "10" || !strings.Contains(evs[0].Detail[kwe.DetailBalanceCheck], "execution timeout") {
			t.Fatalf("want the balance check's outflow to unknown:%s", describe(evs))
		}
		if n := counted.traces.Load(); n != 3 {
			t.Fatalf("%d trace calls, want 3", n)
		}
		if fb.count() != 1 || fb.blocks[0] != r.BlockNumber.Uint64() || !strings.Contains(fb.errs[0].Error(), "execution timeout") {
			t.Fatalf("fallbacks %v %v", fb.blocks, fb.errs)
		}
		if n := strings.Count(logs.String(), "trying again") - retries; n != 2 {
			t.Fatalf("want two retries logged, got %d:\n%s", n, logs.String())
		}
		// Decoding the block again (a rescan) neither traces it again nor
		// reports it twice.
		again := must[[]chains.Event](t)(src.Events(s.ctx, b))
		if len(again) != 1 || again[0].ID != evs[0].ID || counted.traces.Load() != 3 || fb.count() != 1 {
			t.Fatalf("second decode: %d trace calls, %d fallbacks:%s", counted.traces.Load(), fb.count(), describe(again))
		}
	})

	t.Run("a fallback that cannot be reported fails the block", func(t *testing.T) {
		counted.failing.Store(100)
		fb.fail = errors.New("outbox unavailable")
		r := sweep()
		b := must[chains.Block](t)(src.BlockAt(s.ctx, r.BlockNumber.Uint64()))
		if _, err := src.Events(s.ctx, b); err == nil || !strings.Contains(err.Error(), "outbox unavailable") {
			t.Fatalf("want the block's decoding to fail, got %v", err)
		}
		fb.fail = nil
		counted.failing.Store(0)
		evs := must[[]chains.Event](t)(src.Events(s.ctx, b))
		if len(evs) != 1 || evs[0].ID != internalID(r.TxHash, "0.0") {
			t.Fatalf("decoded again once the tracer works:%s", describe(evs))
		}
	})
}

// TestDebugModeOnANodeWithoutTheDebugAPI: traces: debug asked explicitly of
// a node that does not serve it. The node's answer is final (not retried);
// each block is checked by balance and reported.
func TestDebugModeOnANodeWithoutTheDebugAPI(t *testing.T) {
	s := newSweepChain(t, false)
	counted := &traceCounter{Client: s.c.Client, raw: rawOf(t, s.c.Client)}
	fb := &fallbacks{}
	src := s.source(counted, kwe.TracesDebug, func(o *kwe.Options) {
		o.TraceRetry = kwe.TraceRetry{Attempts: 3, Backoff: time.Millisecond}
		o.OnTraceFallback = fb.report
	})
	r := s.send("outsider", s.caller, nil, contracts.NameSweepCaller, "sweepVia", s.sweeper, simchain.Addr("thief"), simchain.Ether(1))
	evs := blockEvents(t, src, s.c, r)
	if len(evs) != 1 || evs[0].ID != balanceID(r.BlockHash, s.sweeper) {
		t.Fatalf("want the balance check's outflow:%s", describe(evs))
	}
	if n := counted.traces.Load(); n != 1 || fb.count() != 1 || !strings.Contains(fb.errs[0].Error(), "debug_traceBlockByHash") {
		t.Fatalf("%d trace calls (want 1), fallbacks %v", n, fb.errs)
	}
}

// rpcError is an error a node answers, with its JSON-RPC code.
type rpcError struct {
	code int
	msg  string
}

func (e rpcError) Error() string  { return e.msg }
func (e rpcError) ErrorCode() int { return e.code }

// parityNode answers like an Erigon or Nethermind node: no debug API, and
// trace_block from answers (by block number, JSON text).
type parityNode struct {
	kwe.Client
	raw     kwe.RawCaller
	answers map[uint64]string
	debug   atomic.Int32
}

func (p *parityNode) CallContext(ctx context.Context, result any, method string, args ...any) error {
	switch method {
	case "debug_traceBlockByHash":
		p.debug.Add(1)
		return rpcError{-32601, "the method debug_traceBlockByHash does not exist/is not available"}
	case "trace_block":
		n, ok := args[0].(hexutil.Uint64)
		if !ok {
			return fmt.Errorf("trace_block argument %T, want a block number", args[0])
		}
		return json.Unmarshal([]byte(p.answers[uint64(n)]), result)
	}
	return p.raw.CallContext(ctx, result, method, args...)
}

// TestAutoUsesTraceBlockWithoutTheDebugAPI: a node without the debug API
// that serves trace_block (parity format, written here as Erigon answers
// it for a sweep two frames deep) is read with trace_block, said once.
func TestAutoUsesTraceBlockWithoutTheDebugAPI(t *testing.T) {
	s := newSweepChain(t, false)
	var logs logBuffer
	node := &parityNode{Client: s.c.Client, raw: rawOf(t, s.c.Client), answers: map[uint64]string{}}
	src := s.source(node, kwe.TracesAuto, func(o *kwe.Options) { o.Logger = slogTo(&logs) })
	thief, outsider := simchain.Addr("thief"), simchain.Addr("outsider")
	for range 2 {
		r := s.send("outsider", s.caller, nil, contracts.NameSweepCaller, "sweepVia", s.sweeper, thief, simchain.Ether(5))
		node.answers[r.BlockNumber.Uint64()] = strings.NewReplacer(
			"{{block}}", r.BlockHash.Hex(), "{{tx}}", r.TxHash.Hex(), "{{n}}", r.BlockNumber.String(),
			"{{outsider}}", lower(outsider), "{{caller}}", lower(s.caller), "{{sweeper}}", lower(s.sweeper), "{{thief}}", lower(thief),
		).Replace(`[
 {"action": {"callType": "call", "from": "{{outsider}}", "gas": "0x9b52", "input": "0x0e6a5c2c", "to": "{{caller}}", "value": "0x0"},
  "blockHash": "{{block}}", "blockNumber": {{n}}, "result": {"gasUsed": "0x99e4", "output": "0x"},
  "subtraces": 1, "traceAddress": [], "transactionHash": "{{tx}}", "transactionPosition": 0, "type": "call"},
 {"action": {"callType": "call", "from": "{{caller}}", "gas": "0x40c6", "input": "0x6ea056a9", "to": "{{sweeper}}", "value": "0x0"},
  "blockHash": "{{block}}", "blockNumber": {{n}}, "result": {"gasUsed": "0x4022", "output": "0x"},
  "subtraces": 1, "traceAddress": [0], "transactionHash": "{{tx}}", "transactionPosition": 0, "type": "call"},
 {"action": {"callType": "call", "from": "{{sweeper}}", "gas": "0x8fc", "input": "0x", "to": "{{thief}}", "value": "0x4563918244f40000"},
  "blockHash": "{{block}}", "blockNumber": {{n}}, "result": {"gasUsed": "0x0", "output": "0x"},
  "subtraces": 0, "traceAddress": [0, 0], "transactionHash": "{{tx}}", "transactionPosition": 0, "type": "call"}
]`)
		evs := blockEvents(t, src, s.c, r)
		if len(evs) != 1 || evs[0].ID != internalID(r.TxHash, "0.0") || evs[0].Initiator != lower(outsider) ||
			evs[0].Counterparty != lower(thief) || evs[0].Amount.String() != "5" {
			t.Fatalf("want the sweep from trace_block:%s", describe(evs))
		}
	}
	if n := node.debug.Load(); n != 1 {
		t.Fatalf("debug_traceBlockByHash asked %d times, want once", n)
	}
	if n := strings.Count(logs.String(), "falling back to trace_block"); n != 1 {
		t.Fatalf("want the fallback to trace_block logged once, got %d:\n%s", n, logs.String())
	}
}
