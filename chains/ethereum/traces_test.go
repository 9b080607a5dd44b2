package ethereum_test

import (
	"bytes"
	"context"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/keywatch/keywatch/chains"
	kwe "github.com/keywatch/keywatch/chains/ethereum"
	"github.com/keywatch/keywatch/contracts"
	"github.com/keywatch/keywatch/internal/simchain"
)

// sweepChain is a chain with a funded Sweeper (the watched contract
// "vault") and a SweepCaller that drives it from a contract.
type sweepChain struct {
	t       *testing.T
	ctx     context.Context
	c       *simchain.Chain
	sweeper common.Address // the vault
	caller  common.Address // SweepCaller
}

// newSweepChain starts a chain (with the debug tracer API when traced) and
// puts 600 ETH in the vault.
func newSweepChain(t *testing.T, traced bool) *sweepChain {
	t.Helper()
	funds := map[string]int64{"deployer": 1000, "outsider": 10, "hot": 100}
	var c *simchain.Chain
	if traced {
		var err error
		if c, err = simchain.NewTraced(funds, nil); err != nil {
			t.Fatal(err)
		}
	} else {
		c = simchain.New(funds, nil)
	}
	t.Cleanup(c.Close)
	s := &sweepChain{t: t, ctx: context.Background(), c: c}
	s.sweeper = must[common.Address](t)(c.Deploy(s.ctx, "deployer", contracts.NameSweeper))
	s.caller = must[common.Address](t)(c.Deploy(s.ctx, "deployer", contracts.NameSweepCaller))
	must[*types.Receipt](t)(c.Send(s.ctx, "deployer", &s.sweeper, simchain.Ether(600), nil))
	return s
}

// send calls method of the named artifact at to with value, from a named
// key, seals its block and checks that it succeeded.
func (s *sweepChain) send(from string, to common.Address, value *big.Int, artifact, method string, args ...any) *types.Receipt {
	s.t.Helper()
	a := must[*contracts.Artifact](s.t)(contracts.Load(artifact))
	data := must[[]byte](s.t)(a.Pack(method, args...))
	return must[*types.Receipt](s.t)(s.c.Send(s.ctx, from, &to, value, data))
}

func (s *sweepChain) wallets() []kwe.Wallet {
	return []kwe.Wallet{
		{Name: "vault", Address: s.sweeper, Role: "contract", Owner: "treasury@firm.example"},
		{Name: "hot", Address: simchain.Addr("hot"), Role: "hot"},
	}
}

func (s *sweepChain) source(client kwe.Client, traces string, more func(*kwe.Options)) *kwe.Source {
	opts := kwe.Options{Chain: "eth", NativeSymbol: "ETH", NativeUSD: 3000, Wallets: s.wallets(), Traces: traces}
	if more != nil {
		more(&opts)
	}
	return kwe.NewSource(client, opts)
}

// logBuffer collects a source's log lines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// internalID is the id of an internal movement of tx at a frame path.
func internalID(tx common.Hash, path string) string { return "eth:" + tx.Hex() + ":call:" + path }

func describe(evs []chains.Event) string {
	var b strings.Builder
	for _, e := range evs {
		b.WriteString("\n  " + e.ID + " " + string(e.Direction) + " " + e.Wallet + " " + e.Amount.String() + " " + e.Asset + " counterparty " + e.Counterparty)
	}
	return b.String()
}

// TestDebugTracesDecodeInternalMovements runs on a simulated chain that
// serves debug_traceBlockByHash (go-ethereum's simulated backend does not
// register the tracer API; simchain.NewTraced does, as geth does).
func TestDebugTracesDecodeInternalMovements(t *testing.T) {
	s := newSweepChain(t, true)
	var logs logBuffer
	src := s.source(s.c.Client, kwe.TracesAuto, func(o *kwe.Options) { o.Logger = slogTo(&logs) })
	thief, outsider, hot := simchain.Addr("thief"), simchain.Addr("outsider"), simchain.Addr("hot")

	t.Run("500 ETH swept two frames deep", func(t *testing.T) {
		r := s.send("outsider", s.caller, nil, contracts.NameSweepCaller, "sweepVia", s.sweeper, thief, simchain.Ether(500))
		evs := blockEvents(t, src, s.c, r)
		if len(evs) != 1 {
			t.Fatalf("want one event, got %d:%s", len(evs), describe(evs))
		}
		e := evs[0]
		if e.ID != internalID(r.TxHash, "0.0") || e.Kind != chains.KindTransfer || e.Direction != chains.Out ||
			e.Wallet != "vault" || e.WalletRole != "contract" || e.Owner != "treasury@firm.example" ||
			e.From != lower(s.sweeper) || e.To != lower(thief) || e.Counterparty != lower(thief) ||
			e.Initiator != lower(outsider) || e.Asset != "ETH" || e.Token != "" || e.Amount.String() != "500" ||
			e.USD != 1_500_000 || e.Tx != r.TxHash.Hex() || e.Block != r.BlockNumber.Uint64() || e.BlockHash != r.BlockHash.Hex() ||
			e.Detail[kwe.DetailInternal] != "call" {
			t.Fatalf("event %+v", e)
		}
		if !strings.Contains(logs.String(), "debug_traceBlockByHash") {
			t.Fatalf("the log does not say how traces are read:\n%s", logs.String())
		}
	})

	t.Run("a sweep under a reverted frame moves nothing", func(t *testing.T) {
		r := s.send("outsider", s.caller, nil, contracts.NameSweepCaller, "sweepReverted", s.sweeper, thief, simchain.Ether(50))
		if evs := blockEvents(t, src, s.c, r); len(evs) != 0 {
			t.Fatalf("a reverted inner call raised events:%s", describe(evs))
		}
	})

	t.Run("a failed transaction moves nothing", func(t *testing.T) {
		a := must[*contracts.Artifact](t)(contracts.Load(contracts.NameSweepCaller))
		data := must[[]byte](t)(a.Pack("sweepThenFail", s.sweeper, thief, simchain.Ether(50)))
		r := s.sendFailing("outsider", s.caller, data)
		if evs := blockEvents(t, src, s.c, r); len(evs) != 0 {
			t.Fatalf("a failed transaction raised events:%s", describe(evs))
		}
	})

	t.Run("a direct sweep is frame 0", func(t *testing.T) {
		r := s.send("outsider", s.sweeper, nil, contracts.NameSweeper, "sweep", thief, simchain.Ether(1))
		evs := blockEvents(t, src, s.c, r)
		if len(evs) != 1 || evs[0].ID != internalID(r.TxHash, "0") || evs[0].Amount.String() != "1" {
			t.Fatalf("events:%s", describe(evs))
		}
	})

	t.Run("an internal inflow to a watched address", func(t *testing.T) {
		r := s.send("outsider", s.caller, simchain.Ether(2), contracts.NameSweepCaller, "forward", hot)
		evs := blockEvents(t, src, s.c, r)
		if len(evs) != 1 {
			t.Fatalf("events:%s", describe(evs))
		}
		e := evs[0]
		if e.ID != internalID(r.TxHash, "0") || e.Direction != chains.In || e.Wallet != "hot" ||
			e.Counterparty != lower(s.caller) || e.Initiator != lower(outsider) || e.Amount.String() != "2" {
			t.Fatalf("event %+v", e)
		}
	})

	t.Run("the transaction's own call is not counted twice", func(t *testing.T) {
		r := s.send("hot", s.caller, simchain.Ether(3), contracts.NameSweepCaller, "forward", s.sweeper)
		evs := blockEvents(t, src, s.c, r)
		native, internal := find(evs, "eth:"+r.TxHash.Hex()+":native"), find(evs, internalID(r.TxHash, "0"))
		if len(evs) != 2 || native == nil || internal == nil {
			t.Fatalf("want the native outflow of hot and the internal inflow of the vault:%s", describe(evs))
		}
		if native.Wallet != "hot" || native.Direction != chains.Out || native.Counterparty != lower(s.caller) ||
			internal.Wallet != "vault" || internal.Direction != chains.In || internal.Counterparty != lower(s.caller) || internal.Initiator != lower(hot) {
			t.Fatalf("events:%s", describe(evs))
		}
	})

	t.Run("selfdestruct sends the whole balance", func(t *testing.T) {
		left := must[*big.Int](t)(s.c.Client.BalanceAt(s.ctx, s.sweeper, nil))
		r := s.send("outsider", s.sweeper, nil, contracts.NameSweeper, "destroy", thief)
		evs := blockEvents(t, src, s.c, r)
		if len(evs) != 1 || evs[0].ID != internalID(r.TxHash, "0") || evs[0].Detail[kwe.DetailInternal] != "selfdestruct" ||
			evs[0].Amount.Units.Cmp(left) != 0 || evs[0].Counterparty != lower(thief) {
			t.Fatalf("want the vault's %s wei out to the thief:%s", left, describe(evs))
		}
	})

	if n := strings.Count(logs.String(), "traces:"); n != 1 {
		t.Fatalf("the way traces are read should be logged once, got %d lines:\n%s", n, logs.String())
	}
}

// sendFailing sends data to `to` with a fixed gas limit (estimation would
// refuse a reverting call), seals its block and checks that it failed.
func (s *sweepChain) sendFailing(from string, to common.Address, data []byte) *types.Receipt {
	s.t.Helper()
	r := s.sendWithGas(from, to, data)
	if r.Status != types.ReceiptStatusFailed {
		s.t.Fatal("the transaction should have failed")
	}
	return r
}

// sendWithGas sends data to `to` with a gas limit of 300,000 and seals its
// block.
func (s *sweepChain) sendWithGas(from string, to common.Address, data []byte) *types.Receipt {
	s.t.Helper()
	tip := must[*big.Int](s.t)(s.c.Client.SuggestGasTipCap(s.ctx))
	tx := types.MustSignNewTx(simchain.Key(from), types.LatestSignerForChainID(simchain.ChainID), &types.DynamicFeeTx{
		ChainID: simchain.ChainID, Nonce: must[uint64](s.t)(s.c.Client.PendingNonceAt(s.ctx, simchain.Addr(from))), To: &to,
		Gas: 300_000, GasFeeCap: new(big.Int).Add(tip, big.NewInt(100_000_000_000)), GasTipCap: tip, Data: data,
	})
	if err := s.c.Client.SendTransaction(s.ctx, tx); err != nil {
		s.t.Fatal(err)
	}
	s.c.Backend.Commit()
	return must[*types.Receipt](s.t)(s.c.Client.TransactionReceipt(s.ctx, tx.Hash()))
}

// laterFollowed is a followed set that forwarding fills as it judges.
type laterFollowed struct {
	mu    sync.Mutex
	addrs []string
}

func (f *laterFollowed) Addresses(context.Context, string, time.Time) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.addrs...), nil
}

func (f *laterFollowed) follow(a common.Address) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.addrs = append(f.addrs, a.Hex())
}

// TestInternalHopIsFollowedOnRescan: the hot wallet pays a contract, which
// passes the ETH on by an internal call in the same transaction. Once
// forwarding follows the contract (after judging the hot wallet's outflow),
// Rescan decodes the block again and finds the contract's internal outflow,
// from the trace read the first time.
func TestInternalHopIsFollowedOnRescan(t *testing.T) {
	s := newSweepChain(t, true)
	followed := &laterFollowed{}
	counted := &traceCounter{Client: s.c.Client, raw: rawOf(t, s.c.Client)}
	src := s.source(counted, kwe.TracesDebug, func(o *kwe.Options) { o.Followed = followed })
	mule := simchain.Addr("mule")
	r := s.send("hot", s.caller, simchain.Ether(4), contracts.NameSweepCaller, "forward", mule)
	b := must[chains.Block](t)(src.BlockAt(s.ctx, r.BlockNumber.Uint64()))
	first := must[[]chains.Event](t)(src.Events(s.ctx, b))
	if len(first) != 1 || first[0].ID != "eth:"+r.TxHash.Hex()+":native" {
		t.Fatalf("before the contract is followed, want the hot wallet's outflow alone:%s", describe(first))
	}
	followed.follow(s.caller)
	more := must[[]chains.Event](t)(src.Rescan(s.ctx, b, first))
	if len(more) != 1 {
		t.Fatalf("rescan: want the followed contract's internal outflow:%s", describe(more))
	}
	e := more[0]
	if e.ID != internalID(r.TxHash, "0") || e.WalletRole != chains.RoleFollowed || e.Wallet != lower(s.caller) ||
		e.Counterparty != lower(mule) || e.Initiator != lower(simchain.Addr("hot")) || e.Amount.String() != "4" {
		t.Fatalf("hop %+v", e)
	}
	if n := counted.traces.Load(); n != 1 {
		t.Fatalf("the block was traced %d times, want once (the rescan reuses the trace)", n)
	}
}

// TestBlocksThatRunNoCodeAreNotTraced: a block whose transactions all pay
// addresses without code makes no internal call, so it is not traced (the
// code of its recipients at the parent block says so); a block with a
// transaction to a contract is traced, and a contract seen once is known
// without asking again. When the code cannot be read, the block is traced.
func TestBlocksThatRunNoCodeAreNotTraced(t *testing.T) {
	s := newSweepChain(t, true)
	counted := &traceCounter{Client: s.c.Client, raw: rawOf(t, s.c.Client)}
	src := s.source(counted, kwe.TracesDebug, nil)
	hot := simchain.Addr("hot")
	reset := func() { counted.traces.Store(0); counted.codes.Store(0) }

	r := must[*types.Receipt](t)(s.c.Send(s.ctx, "outsider", &hot, simchain.Ether(1), nil))
	evs := blockEvents(t, src, s.c, r)
	if len(evs) != 1 || evs[0].ID != "eth:"+r.TxHash.Hex()+":native" {
		t.Fatalf("want the plain inflow:%s", describe(evs))
	}
	if counted.traces.Load() != 0 || counted.codes.Load() != 1 {
		t.Fatalf("a block of plain transfers to an EOA: %d traces, %d eth_getCode, want 0 and 1", counted.traces.Load(), counted.codes.Load())
	}

	reset()
	r = s.send("outsider", s.caller, nil, contracts.NameSweepCaller, "sweepVia", s.sweeper, simchain.Addr("thief"), simchain.Ether(1))
	if evs := blockEvents(t, src, s.c, r); len(evs) != 1 || counted.traces.Load() != 1 || counted.codes.Load() != 1 {
		t.Fatalf("a call to a contract: %d traces, %d eth_getCode (want 1 and 1):%s", counted.traces.Load(), counted.codes.Load(), describe(evs))
	}
	reset()
	r = s.send("outsider", s.caller, nil, contracts.NameSweepCaller, "sweepVia", s.sweeper, simchain.Addr("thief"), simchain.Ether(1))
	if evs := blockEvents(t, src, s.c, r); len(evs) != 1 || counted.traces.Load() != 1 || counted.codes.Load() != 0 {
		t.Fatalf("a contract seen before: %d traces, %d eth_getCode (want 1 and 0):%s", counted.traces.Load(), counted.codes.Load(), describe(evs))
	}

	reset()
	counted.codeFails.Store(true)
	r = must[*types.Receipt](t)(s.c.Send(s.ctx, "outsider", &hot, simchain.Ether(1), nil))
	blockEvents(t, src, s.c, r)
	if counted.traces.Load() != 1 {
		t.Fatalf("the code could not be read: %d traces, want 1", counted.traces.Load())
	}
}
