package ethereum_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/keywatch/keywatch/chains"
	kwe "github.com/keywatch/keywatch/chains/ethereum"
	"github.com/keywatch/keywatch/contracts"
	"github.com/keywatch/keywatch/internal/simchain"
	"github.com/keywatch/keywatch/internal/testenv"
	"github.com/keywatch/keywatch/store/memory"
	"github.com/keywatch/keywatch/watchers"
)

// slotDriver sends transactions to a chain, simulated or geth --dev, and
// gives the client a Source reads it through.
type slotDriver struct {
	client kwe.Client
	deploy func(t *testing.T, from, name string, args ...any) common.Address
	send   func(t *testing.T, from string, to common.Address, value *big.Int, data []byte) *types.Receipt
}

func simDriver(c *simchain.Chain) slotDriver {
	return slotDriver{
		client: c.Client,
		deploy: func(t *testing.T, from, name string, args ...any) common.Address {
			t.Helper()
			return must[common.Address](t)(c.Deploy(context.Background(), from, name, args...))
		},
		send: func(t *testing.T, from string, to common.Address, value *big.Int, data []byte) *types.Receipt {
			t.Helper()
			return must[*types.Receipt](t)(c.Send(context.Background(), from, &to, value, data))
		},
	}
}

// gethDriver funds the named keys from geth's developer account; the
// source reads through a Pool over HTTP.
func gethDriver(t *testing.T, g *testenv.GethNode, names ...string) slotDriver {
	t.Helper()
	ctx := context.Background()
	for _, n := range names {
		if err := g.Fund(ctx, simchain.Addr(n), simchain.Ether(100)); err != nil {
			t.Fatal(err)
		}
	}
	ec := must[*ethclient.Client](t)(ethclient.Dial(g.HTTPURL))
	t.Cleanup(ec.Close)
	pool := kwe.NewPool([]string{g.HTTPURL}, 30*time.Second, nil)
	t.Cleanup(pool.Close)
	mined := func(t *testing.T, tx *types.Transaction) *types.Receipt {
		t.Helper()
		if _, err := g.WaitForReceipt(ctx, tx.Hash()); err != nil {
			t.Fatal(err)
		}
		r := must[*types.Receipt](t)(ec.TransactionReceipt(ctx, tx.Hash()))
		if r.Status != types.ReceiptStatusSuccessful {
			t.Fatalf("transaction %s failed", tx.Hash().Hex())
		}
		return r
	}
	return slotDriver{
		client: pool,
		deploy: func(t *testing.T, from, name string, args ...any) common.Address {
			t.Helper()
			addr, tx, err := contracts.Deploy(ctx, ec, simchain.Key(from), simchain.ChainID, name, args...)
			if err != nil {
				t.Fatal(err)
			}
			mined(t, tx)
			return addr
		},
		send: func(t *testing.T, from string, to common.Address, value *big.Int, data []byte) *types.Receipt {
			t.Helper()
			tx, err := contracts.Transact(ctx, ec, simchain.Key(from), simchain.ChainID, &to, value, data)
			if err != nil {
				t.Fatal(err)
			}
			return mined(t, tx)
		},
	}
}

func pack(t *testing.T, artifact, method string, args ...any) []byte {
	t.Helper()
	a := must[*contracts.Artifact](t)(contracts.Load(artifact))
	return must[[]byte](t)(a.Pack(method, args...))
}

// slotScene is the Bybit pattern and a proxy upgrade on one chain: a
// Safe-shaped wallet whose slot 0 holds its singleton, the attacker's
// contract whose delegatecalled transfer rewrites that slot, and an EIP-1967
// proxy in front of a vault, with its backdoored second version.
type slotScene struct {
	honest, wallet, attacker, impl, proxy, v2 common.Address
}

var slotKeys = []string{"deployer", "owner", "admin", "thief", "outsider"}

func newSlotScene(t *testing.T, d slotDriver) slotScene {
	t.Helper()
	var s slotScene
	s.honest = d.deploy(t, "deployer", contracts.NameVault)
	s.wallet = d.deploy(t, "deployer", contracts.NameSingletonWallet, s.honest, simchain.Addr("owner"))
	s.attacker = d.deploy(t, "thief", contracts.NameSlotZeroTakeover)
	s.impl = d.deploy(t, "deployer", contracts.NameVault)
	s.proxy = d.deploy(t, "deployer", contracts.NameUpgradeableProxy, s.impl, simchain.Addr("admin"))
	s.v2 = d.deploy(t, "thief", contracts.NameVaultV2)
	d.send(t, "deployer", s.wallet, simchain.Ether(5), nil)
	return s
}

func (s slotScene) wallets() []kwe.Wallet {
	return []kwe.Wallet{
		{Name: "treasury-safe", Address: s.wallet, Role: "contract", Owner: "ops@firm.example"},
		{Name: "vault-proxy", Address: s.proxy, Role: "contract"},
		{Name: "treasury-hot", Address: simchain.Addr("owner"), Role: "hot"},
	}
}

// wantSlot is one slot event a step must make.
type wantSlot struct {
	wallet, addr   string
	slot, old, new common.Hash
	counterparty   string
}

func word(a common.Address) common.Hash { return common.BytesToHash(a.Bytes()) }

// slotOnly keeps the events of slot changes.
func slotOnly(evs []chains.Event) []chains.Event {
	var out []chains.Event
	for _, e := range evs {
		if e.Detail[chains.DetailChange] == kwe.ChangeSlot {
			out = append(out, e)
		}
	}
	return out
}

// playSlotScene runs the scene's transactions one block each and checks
// the slot events of each block: with byTx, each carries the transaction
// that made the change and its sender; otherwise its block, and
// detail.why_no_tx says why (containing why). Finally every block from the
// first step to the head is decoded again by a fresh source: the slot
// events are exactly the steps' own.
func playSlotScene(t *testing.T, d slotDriver, s slotScene, traces string, byTx bool, why string) {
	ctx := context.Background()
	opts := kwe.Options{Chain: "eth", NativeSymbol: "ETH", Wallets: s.wallets(), Traces: traces}
	src := kwe.NewSource(d.client, opts)
	vendor := simchain.Addr("vendor")
	exec := func(to common.Address, value *big.Int, data []byte, op uint8) []byte {
		return pack(t, contracts.NameSingletonWallet, "execTransaction", to, value, data, op)
	}
	steps := []struct {
		name  string
		from  string
		to    common.Address
		value *big.Int
		data  []byte
		want  []wantSlot
	}{
		{name: "the owner pays from the wallet: no slot changes", from: "owner", to: s.wallet,
			data: exec(vendor, simchain.Ether(1), nil, 0)},
		{name: "an unrelated transfer", from: "outsider", to: vendor, value: simchain.Ether(1)},
		{name: "the delegatecall rewrites slot 0 and logs nothing", from: "owner", to: s.wallet,
			data: exec(s.attacker, new(big.Int), pack(t, contracts.NameSlotZeroTakeover, "transfer", s.attacker, new(big.Int)), 1),
			want: []wantSlot{{"treasury-safe", lower(s.wallet), kwe.SlotZero, word(s.honest), word(s.attacker), lower(s.attacker)}}},
		{name: "the sweep runs the new singleton: slot 0 stays", from: "thief", to: s.wallet,
			data: pack(t, contracts.NameSlotZeroTakeover, "sweepETH", simchain.Addr("thief"))},
		{name: "the proxy is upgraded", from: "admin", to: s.proxy,
			data: pack(t, contracts.NameUpgradeableProxy, "upgradeTo", s.v2),
			want: []wantSlot{{"vault-proxy", lower(s.proxy), kwe.SlotImplementation, word(s.impl), word(s.v2), lower(s.v2)}}},
		{name: "the proxy admin is handed over", from: "admin", to: s.proxy,
			data: pack(t, contracts.NameUpgradeableProxy, "changeAdmin", simchain.Addr("thief")),
			want: []wantSlot{{"vault-proxy", lower(s.proxy), kwe.SlotAdmin, word(simchain.Addr("admin")), word(simchain.Addr("thief")), lower(simchain.Addr("thief"))}}},
	}
	var first uint64
	var wantIDs []string
	for i, st := range steps {
		r := d.send(t, st.from, st.to, st.value, st.data)
		if i == 0 {
			first = r.BlockNumber.Uint64()
		}
		t.Run(st.name, func(t *testing.T) {
			b := must[chains.Block](t)(src.BlockAt(ctx, r.BlockNumber.Uint64()))
			got := slotOnly(must[[]chains.Event](t)(src.Events(ctx, b)))
			if len(got) != len(st.want) {
				t.Fatalf("%d slot events, want %d: %+v", len(got), len(st.want), got)
			}
			for j, w := range st.want {
				e := got[j]
				ref, tx, initiator := r.BlockHash.Hex(), "", ""
				if byTx {
					ref, tx, initiator = r.TxHash.Hex(), r.TxHash.Hex(), lower(simchain.Addr(st.from))
				}
				wantID := "eth:" + ref + ":slot:" + w.addr + ":" + w.slot.Hex()
				wantIDs = append(wantIDs, wantID)
				if e.ID != wantID || e.Tx != tx || e.Initiator != initiator || e.Block != r.BlockNumber.Uint64() || e.BlockHash != r.BlockHash.Hex() {
					t.Errorf("id %s tx %q initiator %q block %d %s\nwant id %s tx %q initiator %q block %d %s",
						e.ID, e.Tx, e.Initiator, e.Block, e.BlockHash, wantID, tx, initiator, r.BlockNumber.Uint64(), r.BlockHash.Hex())
				}
				if e.Kind != chains.KindAdmin || e.Direction != chains.Out || e.Wallet != w.wallet || e.WalletRole != "contract" ||
					e.From != w.addr || e.Counterparty != w.counterparty || e.To != w.counterparty || e.Amount.String() != "0" || e.Time.IsZero() {
					t.Errorf("event %+v: want an admin out event of %s from %s to %s", e, w.wallet, w.addr, w.counterparty)
				}
				if w.wallet == "treasury-safe" && e.Owner != "ops@firm.example" {
					t.Errorf("owner %q, want the wallet's", e.Owner)
				}
				d := e.Detail
				if d[chains.DetailSlot] != w.slot.Hex() || d[chains.DetailOld] != w.old.Hex() || d[chains.DetailNew] != w.new.Hex() || d["contract"] != w.addr {
					t.Errorf("detail %v: want slot %s, old %s, new %s", d, w.slot.Hex(), w.old.Hex(), w.new.Hex())
				}
				if byTx && d[kwe.DetailWhyNoTx] != "" || !byTx && !strings.Contains(d[kwe.DetailWhyNoTx], why) {
					t.Errorf("why_no_tx %q, want %q", d[kwe.DetailWhyNoTx], why)
				}
			}
		})
	}
	head := must[uint64](t)(d.client.BlockNumber(ctx))
	fresh := kwe.NewSource(d.client, opts)
	var all []string
	for n := first; n <= head; n++ {
		b := must[chains.Block](t)(fresh.BlockAt(ctx, n))
		for _, e := range slotOnly(must[[]chains.Event](t)(fresh.Events(ctx, b))) {
			all = append(all, e.ID)
		}
	}
	sort.Strings(all)
	sort.Strings(wantIDs)
	if strings.Join(all, "\n") != strings.Join(wantIDs, "\n") {
		t.Errorf("blocks %d..%d gave slot events\n%s\nwant\n%s", first, head, strings.Join(all, "\n"), strings.Join(wantIDs, "\n"))
	}
}

// TestSlotChangesOnANodeWithoutTraces: the simulated backend has no debug
// API. With traces auto, each change is one admin event carrying its block,
// and detail.why_no_tx says why: through its raw JSON-RPC client (batches),
// the node answers that debug_traceBlockByHash does not exist; through the
// simulated client, which hides its raw client, slots are read one call
// each and nothing can be traced.
func TestSlotChangesOnANodeWithoutTraces(t *testing.T) {
	tests := []struct {
		name string
		raw  bool
		why  string
	}{
		{"batches through the raw client", true, "the node has no debug API (the method debug_traceBlockByHash does not exist"},
		{"a client without raw calls, one read per call", false, "the node client makes no raw JSON-RPC calls"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			funds := map[string]int64{}
			for _, k := range slotKeys {
				funds[k] = 100
			}
			c := simchain.New(funds, nil)
			defer c.Close()
			d := simDriver(c)
			if tt.raw {
				d.client = newRawNode(c)
			} else {
				d.client = storageOnly{Client: c.Client, s: c.Client.(storageReader)}
			}
			playSlotScene(t, d, newSlotScene(t, d), "auto", false, tt.why)
		})
	}
}

// TestSlotChangesCarryTheirTransaction: on geth --dev with the debug API,
// the prestate tracer names the transaction of each change; with traces
// off, the same changes carry their block.
func TestSlotChangesCarryTheirTransaction(t *testing.T) {
	g := testenv.Geth(t, testenv.GethDevPeriod(0))
	d := gethDriver(t, g, slotKeys...)
	s := newSlotScene(t, d)
	t.Run("traces auto", func(t *testing.T) { playSlotScene(t, d, s, "auto", true, "") })
	s = newSlotScene(t, d)
	t.Run("traces off", func(t *testing.T) { playSlotScene(t, d, s, "off", false, "traces are off") })
}

// rawNode wraps the simulated chain's client, passing JSON-RPC batches to
// its raw client: it counts them, and fails them while broken says so.
type rawNode struct {
	kwe.Client
	rpc     *rpc.Client
	batches atomic.Int32
	reads   atomic.Int32

	mu     sync.Mutex
	broken func(b []rpc.BatchElem) error // nil: the node answers
}

// newRawNode reaches the simulated client's raw client by reflection: the
// simulated client embeds an *ethclient.Client in a field named Client,
// which hides the method of that name.
// storageOnly is a node client that reads storage one slot per call and
// makes no raw JSON-RPC calls (hiding those of the simulated client).
type storageOnly struct {
	kwe.Client
	s storageReader
}

type storageReader interface {
	StorageAtHash(ctx context.Context, account common.Address, key common.Hash, blockHash common.Hash) ([]byte, error)
}

func (c storageOnly) StorageAtHash(ctx context.Context, a common.Address, k, h common.Hash) ([]byte, error) {
	return c.s.StorageAtHash(ctx, a, k, h)
}

func newRawNode(c *simchain.Chain) *rawNode {
	ec := reflect.ValueOf(c.Client).FieldByName("Client").Interface().(*ethclient.Client)
	return &rawNode{Client: c.Client, rpc: ec.Client()}
}

func (n *rawNode) BatchCallContext(ctx context.Context, b []rpc.BatchElem) error {
	n.batches.Add(1)
	n.reads.Add(int32(len(b)))
	n.mu.Lock()
	broken := n.broken
	n.mu.Unlock()
	if broken != nil {
		return broken(b)
	}
	return n.rpc.BatchCallContext(ctx, b)
}

func (n *rawNode) breakWith(f func(b []rpc.BatchElem) error) {
	n.mu.Lock()
	n.broken = f
	n.mu.Unlock()
}

// setResult puts a node's raw JSON answer into a batch element.
func setResult(t *testing.T, e *rpc.BatchElem, raw string) {
	t.Helper()
	if err := json.Unmarshal([]byte(raw), e.Result); err != nil {
		t.Fatal(err)
	}
}

// nodeError is an error a node answers.
type nodeError struct {
	code int
	msg  string
}

func (e nodeError) Error() string  { return e.msg }
func (e nodeError) ErrorCode() int { return e.code }

// takeoverScene is a simulated chain with the scene deployed and a source
// watching it through a rawNode.
func takeoverScene(t *testing.T) (*simchain.Chain, slotScene, *rawNode, *kwe.Source) {
	t.Helper()
	funds := map[string]int64{}
	for _, k := range slotKeys {
		funds[k] = 100
	}
	c := simchain.New(funds, nil)
	t.Cleanup(c.Close)
	s := newSlotScene(t, simDriver(c))
	node := newRawNode(c)
	return c, s, node, kwe.NewSource(node, kwe.Options{Chain: "eth", NativeSymbol: "ETH", Wallets: s.wallets()})
}

func (s slotScene) takeover(t *testing.T, c *simchain.Chain) *types.Receipt {
	t.Helper()
	data := pack(t, contracts.NameSingletonWallet, "execTransaction", s.attacker, new(big.Int),
		pack(t, contracts.NameSlotZeroTakeover, "transfer", s.attacker, new(big.Int)), uint8(1))
	return must[*types.Receipt](t)(c.Send(context.Background(), "owner", &s.wallet, nil, data))
}

// TestSlotReadsAreOneBatchPerBlock: the two watched contracts' 4 slots at a
// block are one batch of 8 reads when the parent's values are cached from
// the block before, 16 when they are not; a block decoded again (a rescan)
// costs no read.
func TestSlotReadsAreOneBatchPerBlock(t *testing.T) {
	ctx := context.Background()
	c, _, node, src := takeoverScene(t)
	c.Backend.Commit()
	c.Backend.Commit()
	head := must[uint64](t)(c.Client.BlockNumber(ctx))
	decode := func(n uint64) {
		t.Helper()
		b := must[chains.Block](t)(src.BlockAt(ctx, n))
		must[[]chains.Event](t)(src.Events(ctx, b))
	}
	tests := []struct {
		name           string
		block          uint64
		batches, reads int32
	}{
		{"first block: the parent is read too", head - 1, 1, 16},
		{"next block: the parent is cached", head, 1, 8},
		{"the same block again", head, 0, 0},
	}
	for _, tt := range tests {
		b0, r0 := node.batches.Load(), node.reads.Load()
		decode(tt.block)
		if b, r := node.batches.Load()-b0, node.reads.Load()-r0; b != tt.batches || r != tt.reads {
			t.Errorf("%s: %d batches of %d reads, want %d of %d", tt.name, b, r, tt.batches, tt.reads)
		}
	}
}

// TestSlotReadErrorsFailTheBlock: the block is never judged on part of its
// slots. A batch the node does not answer, an error answered for one read,
// or a value that is no storage word makes Events fail, naming the wallet
// and slot where one is to blame.
func TestSlotReadErrorsFailTheBlock(t *testing.T) {
	ctx := context.Background()
	c, s, node, src := takeoverScene(t)
	r := s.takeover(t, c)
	b := must[chains.Block](t)(src.BlockAt(ctx, r.BlockNumber.Uint64()))
	// Each case breaks the read of the wallet's slot 0 at the block (the
	// first request of the batch), passing the rest to the node.
	passRest := func(b []rpc.BatchElem, first func(e *rpc.BatchElem)) error {
		if err := node.rpc.BatchCallContext(ctx, b); err != nil {
			return err
		}
		first(&b[0])
		return nil
	}
	tests := []struct {
		name   string
		broken func(b []rpc.BatchElem) error
		want   []string
	}{
		{"the batch gets no answer", func([]rpc.BatchElem) error { return errors.New("connection reset by peer") },
			[]string{"read storage slots of 2 Safes and contracts at block", "connection reset by peer"}},
		{"the node answers an error for one read", func(b []rpc.BatchElem) error {
			return passRest(b, func(e *rpc.BatchElem) { e.Error = nodeError{-32000, "missing trie node"} })
		}, []string{"treasury-safe (" + lower(s.wallet) + ") slot slot-0", "missing trie node"}},
		{"a response is missing from the batch", func(b []rpc.BatchElem) error {
			return passRest(b, func(e *rpc.BatchElem) { e.Error = rpc.ErrMissingBatchResponse })
		}, []string{"treasury-safe", "did not contain a response"}},
		{"a value is not hex", func(b []rpc.BatchElem) error {
			return passRest(b, func(e *rpc.BatchElem) { setResult(t, e, `"0xzz"`) })
		}, []string{"treasury-safe", `"0xzz", which is not hex`}},
		{"a value is null", func(b []rpc.BatchElem) error {
			return passRest(b, func(e *rpc.BatchElem) { setResult(t, e, `null`) })
		}, []string{"treasury-safe", "want 0x and at most 64 hex digits"}},
		{"a value is longer than a word", func(b []rpc.BatchElem) error {
			return passRest(b, func(e *rpc.BatchElem) { setResult(t, e, `"0x`+strings.Repeat("1", 65)+`"`) })
		}, []string{"treasury-safe", "at most 64 hex digits"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			node.breakWith(tt.broken)
			evs, err := src.Events(ctx, b)
			if err == nil {
				t.Fatalf("Events succeeded with %d events", len(evs))
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
	node.breakWith(nil)
	if got := slotOnly(must[[]chains.Event](t)(src.Events(ctx, b))); len(got) != 1 || got[0].Detail[chains.DetailNew] != word(s.attacker).Hex() {
		t.Fatalf("once the node answers: %+v, want the slot 0 change", got)
	}
}

// TestSlotReadsNeedARawClient: a client that cannot make raw JSON-RPC
// calls cannot read the slots; with Safes or contracts to watch, Events
// fails rather than judge the block without them.
func TestSlotReadsNeedARawClient(t *testing.T) {
	ctx := context.Background()
	c, s, _, _ := takeoverScene(t)
	src := kwe.NewSource(&countingClient{Client: c.Client}, kwe.Options{Chain: "eth", Wallets: s.wallets()})
	b := must[chains.Block](t)(src.BlockAt(ctx, must[uint64](t)(c.Client.BlockNumber(ctx))))
	if _, err := src.Events(ctx, b); err == nil || !strings.Contains(err.Error(), "makes no raw JSON-RPC calls") {
		t.Fatalf("Events: %v, want an error saying the client makes no raw calls", err)
	}
	hot := kwe.NewSource(&countingClient{Client: c.Client}, kwe.Options{Chain: "eth", Wallets: s.wallets()[2:]})
	if _, err := hot.Events(ctx, b); err != nil {
		t.Fatalf("without Safes or contracts nothing is read: %v", err)
	}
}

// slotRecorder collects what a follower delivers.
type slotRecorder struct {
	mu     sync.Mutex
	events []chains.Event
}

func (r *slotRecorder) deliver(_ context.Context, evs []chains.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, evs...)
	return nil
}

// slot lists "<status> <id>" of the delivered slot events.
func (r *slotRecorder) slot() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range slotOnly(r.events) {
		out = append(out, fmt.Sprintf("%s %s", e.Status, e.ID))
	}
	return out
}

func slotFollower(t *testing.T, src *kwe.Source, from uint64, rec *slotRecorder) *watchers.Follower {
	t.Helper()
	f, err := watchers.New(src, watchers.Options{Chain: "eth", Confirmations: 3, ReorgDepth: 13, StartBlock: &from,
		Store: memory.New(), Deliver: rec.deliver})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestFollowerRetriesABlockWhoseSlotsCannotBeRead: while the node fails
// the slot reads, the follower stops at the takeover's block; once the node
// answers, the block is decoded and its slot event delivered: the block is
// never skipped.
func TestFollowerRetriesABlockWhoseSlotsCannotBeRead(t *testing.T) {
	ctx := context.Background()
	c, s, node, src := takeoverScene(t)
	start := must[uint64](t)(c.Client.BlockNumber(ctx)) + 1
	rec := &slotRecorder{}
	f := slotFollower(t, src, start, rec)
	node.breakWith(func([]rpc.BatchElem) error { return errors.New("503 service unavailable") })
	r := s.takeover(t, c)
	c.Backend.Commit()
	for range 3 {
		if err := f.Step(ctx); err == nil || !strings.Contains(err.Error(), "503 service unavailable") {
			t.Fatalf("Step: %v, want the node's failure", err)
		}
	}
	if h, _, _ := f.Checkpoint(ctx); h >= r.BlockNumber.Uint64() {
		t.Fatalf("checkpoint %d moved past the unread block %d", h, r.BlockNumber.Uint64())
	}
	node.breakWith(nil)
	if err := f.Step(ctx); err != nil {
		t.Fatal(err)
	}
	want := "pending eth:" + r.BlockHash.Hex() + ":slot:" + lower(s.wallet) + ":" + kwe.SlotZero.Hex()
	if got := rec.slot(); len(got) != 1 || got[0] != want {
		t.Fatalf("delivered %v, want [%s]", got, want)
	}
}

// TestSlotEventOfAReorgedBlockIsRetracted: the block holding the takeover
// leaves the chain; its slot event is retracted. When the new branch holds
// the takeover again, its slot event comes in the new block; when the owner
// replaced the transaction there (same nonce), the new blocks carry none:
// slot 0 never changed on that branch.
func TestSlotEventOfAReorgedBlockIsRetracted(t *testing.T) {
	for _, replaced := range []bool{false, true} {
		t.Run(fmt.Sprintf("takeover replaced on the new branch: %v", replaced), func(t *testing.T) {
			ctx := context.Background()
			c, s, _, src := takeoverScene(t)
			start := must[uint64](t)(c.Client.BlockNumber(ctx)) + 1
			rec := &slotRecorder{}
			f := slotFollower(t, src, start, rec)
			r := s.takeover(t, c)
			if err := f.Step(ctx); err != nil {
				t.Fatal(err)
			}
			id := "eth:" + r.BlockHash.Hex() + ":slot:" + lower(s.wallet) + ":" + kwe.SlotZero.Hex()
			if got := rec.slot(); len(got) != 1 || got[0] != "pending "+id {
				t.Fatalf("before the reorg: %v", got)
			}
			parent := must[*types.Header](t)(c.Client.HeaderByNumber(ctx, new(big.Int).Sub(r.BlockNumber, big.NewInt(1))))
			takeover, _, err := c.Client.TransactionByHash(ctx, r.TxHash)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Backend.Fork(parent.Hash()); err != nil {
				t.Fatal(err)
			}
			if replaced {
				replaceTx(t, c, "owner", takeover)
			}
			vendor := simchain.Addr("vendor")
			must[*types.Transaction](t)(c.Submit(ctx, "outsider", &vendor, simchain.Ether(1), nil))
			c.Backend.Commit()
			c.Backend.Commit()
			if err := f.Step(ctx); err != nil {
				t.Fatal(err)
			}
			got := rec.slot()
			if len(got) < 2 || got[1] != "retracted "+id {
				t.Fatalf("after the reorg: %v, want the slot event retracted", got)
			}
			slot0 := common.BytesToHash(must[[]byte](t)(c.Client.StorageAt(ctx, s.wallet, kwe.SlotZero, nil)))
			if replaced {
				if len(got) != 2 || slot0 != word(s.honest) {
					t.Fatalf("after the reorg: %v and slot 0 %s; want nothing more and slot 0 still the singleton", got, slot0.Hex())
				}
				return
			}
			nr := must[*types.Receipt](t)(c.Client.TransactionReceipt(ctx, r.TxHash))
			again := "pending eth:" + nr.BlockHash.Hex() + ":slot:" + lower(s.wallet) + ":" + kwe.SlotZero.Hex()
			if len(got) != 3 || got[2] != again || slot0 != word(s.attacker) {
				t.Fatalf("after the reorg: %v, want the takeover's slot event in its new block %d", got, nr.BlockNumber)
			}
		})
	}
}

// replaceTx sends, from the named key, a plain transfer with the nonce of
// transaction old and twice its fees, so that old cannot be mined any more.
func replaceTx(t *testing.T, c *simchain.Chain, from string, old *types.Transaction) {
	t.Helper()
	ctx := context.Background()
	two := big.NewInt(2)
	to := simchain.Addr("vendor")
	tx := types.MustSignNewTx(simchain.Key(from), types.LatestSignerForChainID(simchain.ChainID), &types.DynamicFeeTx{
		ChainID: simchain.ChainID, Nonce: old.Nonce(), To: &to, Value: big.NewInt(1), Gas: 21_000,
		GasTipCap: new(big.Int).Mul(old.GasTipCap(), two), GasFeeCap: new(big.Int).Mul(old.GasFeeCap(), two),
	})
	// The pool moves to the new head in the background: until it does, the
	// nonce is taken.
	testenv.WaitFor(t, 10*time.Second, func() bool { return c.Client.SendTransaction(ctx, tx) == nil },
		"the pool to take the replacement of "+old.Hash().Hex())
}

// storageService answers eth_getStorageAt over a real go-ethereum RPC
// server: a fixed word, or a node error.
type storageService struct {
	word  string
	err   error
	calls atomic.Int32
}

func (s *storageService) GetStorageAt(common.Address, common.Hash, rpc.BlockNumberOrHash) (string, error) {
	s.calls.Add(1)
	return s.word, s.err
}

func storageNode(t *testing.T, svc *storageService) string {
	t.Helper()
	srv := rpc.NewServer()
	if err := srv.RegisterName("eth", svc); err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(func() { hs.Close(); srv.Stop() })
	return hs.URL
}

// TestPoolBatchesFailOver: a batch the endpoint does not answer (HTTP 502
// from a gateway) moves the pool to the next endpoint, as other calls do;
// an error the node answers for one request stays in that request and the
// pool stays where it is.
func TestPoolBatchesFailOver(t *testing.T) {
	ctx := context.Background()
	gateway := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "bad gateway", http.StatusBadGateway)
	}))
	defer gateway.Close()
	good := &storageService{word: word(simchain.Addr("singleton")).Hex()}
	pruned := &storageService{err: errors.New("missing trie node")}
	read := func(p *kwe.Pool) ([]rpc.BatchElem, error) {
		b := []rpc.BatchElem{{Method: "eth_getStorageAt", Args: []any{common.Address{}, kwe.SlotZero, rpc.BlockNumberOrHashWithHash(common.Hash{1}, false)}, Result: new(string)}}
		return b, p.BatchCallContext(ctx, b)
	}

	p := kwe.NewPool([]string{gateway.URL, storageNode(t, good)}, 5*time.Second, nil)
	defer p.Close()
	if _, err := read(p); err == nil || !strings.Contains(err.Error(), "502") {
		t.Fatalf("batch through the failing gateway: %v, want its 502", err)
	}
	b, err := read(p)
	if err != nil || b[0].Error != nil || *b[0].Result.(*string) != good.word {
		t.Fatalf("batch after the failover: %v, %v, %v; want %s from the second endpoint", err, b[0].Error, *b[0].Result.(*string), good.word)
	}

	spare := &storageService{word: good.word}
	q := kwe.NewPool([]string{storageNode(t, pruned), storageNode(t, spare)}, 5*time.Second, nil)
	defer q.Close()
	for range 2 {
		if b, err := read(q); err != nil || b[0].Error == nil || !strings.Contains(b[0].Error.Error(), "missing trie node") {
			t.Fatalf("batch: %v, element error %v; want the node's answer in the element", err, b[0].Error)
		}
	}
	if pruned.calls.Load() != 2 || spare.calls.Load() != 0 {
		t.Fatalf("calls: first endpoint %d, second %d; want the pool to stay on the first", pruned.calls.Load(), spare.calls.Load())
	}
}
