package ethereum_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/keywatch/keywatch/chains"
	kwe "github.com/keywatch/keywatch/chains/ethereum"
	"github.com/keywatch/keywatch/chains/ethereum/safe"
	"github.com/keywatch/keywatch/contracts"
	"github.com/keywatch/keywatch/internal/safetest"
	"github.com/keywatch/keywatch/internal/simchain"
)

// safeScene is a watched Safe on a simulated chain: owners alice, bob and
// the employee key dev-kim (kim@firm.example), threshold 2.
type safeScene struct {
	t      testing.TB
	c      *simchain.Chain
	chain  *safetest.Chain
	dep    *safetest.Deployment
	safe   *safetest.Safe
	src    *kwe.Source
	opts   kwe.Options
	owners []*ecdsa.PrivateKey
}

// safeSceneFunds are the accounts a safe scene's chain funds at genesis.
var safeSceneFunds = map[string]int64{"deployer": 100, "alice": 10, "bob": 10, "dev-kim": 10, "relayer": 10, "module": 10}

func newSafeScene(t testing.TB, version string, l2 bool, calls kwe.SafeCalls) *safeScene {
	t.Helper()
	c := simchain.New(safeSceneFunds, safetest.DeployerAlloc())
	t.Cleanup(c.Close)
	return newSafeSceneOn(t, c, version, l2, calls)
}

// newSafeSceneOn is newSafeScene on a given chain (simchain.NewTraced, say).
func newSafeSceneOn(t testing.TB, c *simchain.Chain, version string, l2 bool, calls kwe.SafeCalls) *safeScene {
	t.Helper()
	ctx := context.Background()
	chain := safetest.Sim(c)
	dep := must[*safetest.Deployment](t)(safetest.Deploy(ctx, chain, simchain.Key("deployer"), version))
	for _, lib := range []common.Address{dep.MultiSend, dep.MultiSendCallOnly} {
		if _, ok := safe.LibraryAt(lib.Hex()); !ok {
			t.Fatalf("Safe %s library deployed at %s, not at Safe's canonical address", version, lib.Hex())
		}
	}
	owners := []*ecdsa.PrivateKey{simchain.Key("alice"), simchain.Key("bob"), simchain.Key("dev-kim")}
	addrs := []common.Address{simchain.Addr("alice"), simchain.Addr("bob"), simchain.Addr("dev-kim")}
	s := must[*safetest.Safe](t)(dep.NewSafe(ctx, chain, simchain.Key("deployer"), addrs, 2, l2, 1))
	must[*types.Receipt](t)(chain.Send(ctx, simchain.Key("deployer"), &s.Address, simchain.Ether(5), nil))
	opts := kwe.Options{
		Chain: "eth", NativeSymbol: "ETH", NativeUSD: 3000, SafeCalls: calls,
		Wallets: []kwe.Wallet{
			{Name: "treasury-safe", Address: s.Address, Role: "warm", Owner: "treasury@firm.example", Safe: true},
			{Name: "dev-kim", Address: simchain.Addr("dev-kim"), Role: "employee-key", Owner: "kim@firm.example"},
		},
	}
	return &safeScene{t: t, c: c, chain: chain, dep: dep, safe: s, src: kwe.NewSource(c.Client, opts), opts: opts, owners: owners}
}

// events decodes the block of r and returns the events of kind k.
func (sc *safeScene) events(r *types.Receipt, k chains.Kind) []chains.Event {
	sc.t.Helper()
	var out []chains.Event
	ctx := context.Background()
	b := must[chains.Block](sc.t)(sc.src.BlockAt(ctx, r.BlockNumber.Uint64()))
	for _, ev := range must[[]chains.Event](sc.t)(sc.src.Events(ctx, b)) {
		if ev.Kind == k {
			out = append(out, ev)
		}
	}
	return out
}

// one returns the single event of kind k in r's block.
func (sc *safeScene) one(r *types.Receipt, k chains.Kind) chains.Event {
	sc.t.Helper()
	evs := sc.events(r, k)
	if len(evs) != 1 {
		sc.t.Fatalf("block of tx %s: %d %s events, want 1: %+v", r.TxHash.Hex(), len(evs), k, evs)
	}
	return evs[0]
}

func sortedLower(as ...common.Address) []string {
	var out []string
	for _, a := range as {
		out = append(out, lower(a))
	}
	slices.Sort(out)
	return out
}

func logIndex(t *testing.T, r *types.Receipt, topic common.Hash) uint {
	t.Helper()
	for _, l := range r.Logs {
		if len(l.Topics) > 0 && l.Topics[0] == topic {
			return l.Index
		}
	}
	t.Fatalf("tx %s logged no %s", r.TxHash.Hex(), topic.Hex())
	return 0
}

func TestSafeEventsOnRealSafes(t *testing.T) {
	for _, version := range []string{"1.3.0", "1.4.1"} {
		for _, l2 := range []bool{false, true} {
			name := version
			if l2 {
				name += "-L2"
			}
			t.Run(name, func(t *testing.T) { testSafeEvents(t, version, l2) })
		}
	}
}

func testSafeEvents(t *testing.T, version string, l2 bool) {
	ctx := context.Background()
	sc := newSafeScene(t, version, l2, nil)
	s := sc.safe
	alice, bob, kim := sc.owners[0], sc.owners[1], sc.owners[2]
	relayer := simchain.Key("relayer")
	mustR := must[*types.Receipt](t)
	id := func(r *types.Receipt, topic common.Hash) string {
		return fmt.Sprintf("eth:%s:%d", r.TxHash.Hex(), logIndex(t, r, topic))
	}
	checkExec := func(ev chains.Event, r *types.Receipt, op, target, value, selector string, nonce uint64, signers []string) {
		t.Helper()
		if ev.ID != id(r, safe.TopicExecutionSuccess) || ev.Kind != chains.KindExecution || ev.Wallet != "treasury-safe" || ev.Direction != chains.Out {
			t.Errorf("execution event: id %s kind %s wallet %s direction %s", ev.ID, ev.Kind, ev.Wallet, ev.Direction)
		}
		if ev.Operation != op || ev.Target != target || ev.Value != value || ev.Selector != selector {
			t.Errorf("execution: operation %q target %s value %s selector %q, want %q %s %s %q (detail %v)", ev.Operation, ev.Target, ev.Value, ev.Selector, op, target, value, selector, ev.Detail)
		}
		if ev.SafeNonce == nil || *ev.SafeNonce != nonce {
			t.Errorf("safe_nonce %v, want %d", ev.SafeNonce, nonce)
		}
		if !slices.Equal(ev.Signers, signers) {
			t.Errorf("signers %v, want %v", ev.Signers, signers)
		}
		if ev.Initiator != lower(simchain.Addr("relayer")) || ev.Tx != r.TxHash.Hex() || (ev.Detail["version"] != version && ev.Detail["version_error"] == "") {
			t.Errorf("initiator %s tx %s version %s", ev.Initiator, ev.Tx, ev.Detail["version"])
		}
	}
	checkAdmin := func(r *types.Receipt, topic common.Hash, change, arg, value string) chains.Event {
		t.Helper()
		ev := sc.one(r, chains.KindAdmin)
		if ev.ID != id(r, topic) || ev.Detail[chains.DetailChange] != change || ev.Detail[arg] != value || ev.Wallet != "treasury-safe" || ev.From != lower(s.Address) {
			t.Errorf("admin event %s: %+v, want change %s %s %s", ev.ID, ev.Detail, change, arg, value)
		}
		return ev
	}

	// An owner added, signed by alice and the employee key: the admin
	// event and the execution carry the signers and the employee's owner.
	carol := simchain.Addr("carol")
	r := mustR(s.Admin(ctx, relayer, []*ecdsa.PrivateKey{alice, kim}, "addOwnerWithThreshold", carol, big.NewInt(2)))
	ev := checkAdmin(r, safe.TopicAddedOwner, "added-owner", "owner", lower(carol))
	if ev.Owner != "kim@firm.example" || !slices.Equal(ev.Signers, sortedLower(simchain.Addr("alice"), simchain.Addr("dev-kim"))) || ev.Counterparty != lower(carol) {
		t.Errorf("added-owner: owner %q signers %v counterparty %s", ev.Owner, ev.Signers, ev.Counterparty)
	}
	x := sc.one(r, chains.KindExecution)
	checkExec(x, r, "call", lower(s.Address), "0", "0x0d582f13", 0, sortedLower(simchain.Addr("alice"), simchain.Addr("dev-kim")))
	// An L2 singleton's own log, which carries the nonce, is read first.
	wantSource := map[bool]string{false: "input", true: "l2-event"}[l2]
	if x.Owner != "kim@firm.example" || x.Detail["signer_wallets"] != "dev-kim" || x.Detail["source"] != wantSource {
		t.Errorf("execution signed by an employee key: owner %q, detail %v", x.Owner, x.Detail)
	}

	// Removed again, signed by alice and bob: no employee key signed, so
	// the event has the Safe's own owner.
	prev := must[common.Address](t)(s.PrevOwner(ctx, carol))
	r = mustR(s.Admin(ctx, relayer, []*ecdsa.PrivateKey{bob, alice}, "removeOwner", prev, carol, big.NewInt(2)))
	checkAdmin(r, safe.TopicRemovedOwner, "removed-owner", "owner", lower(carol))
	x = sc.one(r, chains.KindExecution)
	checkExec(x, r, "call", lower(s.Address), "0", "0xf8dc5dd9", 1, sortedLower(simchain.Addr("alice"), simchain.Addr("bob")))
	if x.Owner != "treasury@firm.example" {
		t.Errorf("execution signed by alice and bob: owner %q", x.Owner)
	}

	r = mustR(s.Admin(ctx, relayer, []*ecdsa.PrivateKey{alice, bob}, "changeThreshold", big.NewInt(3)))
	checkAdmin(r, safe.TopicChangedThreshold, "threshold", "threshold", "3")
	all := []*ecdsa.PrivateKey{alice, bob, kim}
	allAddrs := sortedLower(simchain.Addr("alice"), simchain.Addr("bob"), simchain.Addr("dev-kim"))

	module := simchain.Addr("module")
	r = mustR(s.Admin(ctx, relayer, all, "enableModule", module))
	checkAdmin(r, safe.TopicEnabledModule, "enabled-module", "module", lower(module))

	// A plain call sending 1 ETH to a vendor.
	vendor := simchain.Addr("vendor")
	r = mustR(s.Run(ctx, relayer, vendor, simchain.Ether(1), nil, safe.Call, all...))
	checkExec(sc.one(r, chains.KindExecution), r, "call", lower(vendor), simchain.Ether(1).String(), "", 4, allAddrs)
	if got := sc.one(r, chains.KindExecution); got.Amount.String() != "1" || got.USD != 3000 || got.Counterparty != lower(vendor) {
		t.Errorf("execution of 1 ETH: amount %s usd %v counterparty %s", got.Amount, got.USD, got.Counterparty)
	}

	// A delegatecall to Safe's own MultiSend batching a call.
	batch := must[[]byte](t)(safetest.MultiSendData(safetest.MultiSendTx{Op: safe.Call, To: vendor, Value: big.NewInt(7)}))
	r = mustR(s.Run(ctx, relayer, sc.dep.MultiSend, nil, batch, safe.DelegateCall, all...))
	checkExec(sc.one(r, chains.KindExecution), r, "delegatecall", lower(sc.dep.MultiSend), "0", "0x8d80ff0a", 5, allAddrs)

	// The enabled module (an account) runs a call: an execution with its
	// module and no signers.
	r = mustR(s.ExecFromModule(ctx, simchain.Key("module"), vendor, big.NewInt(11), nil, safe.Call))
	x = sc.one(r, chains.KindExecution)
	if x.ID != id(r, safe.TopicExecutionFromModuleSuccess) || x.Module != lower(module) || x.Operation != "call" || x.Target != lower(vendor) || x.Value != "11" || len(x.Signers) != 0 || x.SafeNonce != nil {
		t.Errorf("module execution: %+v", x)
	}

	// The Safe called through another contract (MultiSendCallOnly called
	// directly by the relayer): an L2 singleton logged the parameters; a
	// plain one did not, and without traces the execution is unresolved.
	tx := must[safe.Tx](t)(s.Tx(ctx, vendor, big.NewInt(13), nil, safe.Call))
	sigs := must[[]byte](t)(s.Sign(tx, all...))
	sab := must[*contracts.Artifact](t)(contracts.LoadSafe(version, sc.dep.Release.Singleton))
	execData := must[[]byte](t)(sab.Pack("execTransaction", tx.To, tx.Value, tx.Data, uint8(tx.Operation), tx.SafeTxGas, tx.BaseGas, tx.GasPrice, tx.GasToken, tx.RefundReceiver, sigs))
	indirect := must[[]byte](t)(safetest.MultiSendData(safetest.MultiSendTx{Op: safe.Call, To: s.Address, Data: execData}))
	r = mustR(sc.chain.Send(ctx, relayer, &sc.dep.MultiSendCallOnly, nil, indirect))
	x = sc.one(r, chains.KindExecution)
	if l2 {
		checkExec(x, r, "call", lower(vendor), "13", "", 6, allAddrs)
		if x.Detail["source"] != "l2-event" {
			t.Errorf("indirect execution on an L2 Safe: source %q", x.Detail["source"])
		}
	} else if x.Operation != "" || !strings.Contains(x.Detail["unresolved"], "call traces are not read") || x.Detail["safe_tx_hash"] == "" {
		t.Errorf("indirect execution on a plain Safe without traces: operation %q detail %v", x.Operation, x.Detail)
	}

	// The Bybit pattern: a delegatecall to an attacker's contract whose
	// transfer(address,uint256) rewrites slot 0, the singleton.
	attacker := must[common.Address](t)(safetest.DeploySlotWriter(ctx, sc.chain, simchain.Key("deployer")))
	evil := simchain.Addr("evil-singleton")
	r = mustR(s.Run(ctx, relayer, attacker, nil, safetest.SlotWriterCall(evil), safe.DelegateCall, all...))
	checkExec(sc.one(r, chains.KindExecution), r, "delegatecall", lower(attacker), "0", "0xa9059cbb", 7, allAddrs)
	slot0 := must[[]byte](t)(sc.c.Client.StorageAt(ctx, s.Address, common.Hash{}, nil))
	if common.BytesToAddress(slot0) != evil {
		t.Fatalf("slot 0 is %x after the delegatecall, want %s", slot0, evil.Hex())
	}

	// A watcher that first meets the Safe in the takeover's block (just
	// restarted, or catching up), when the Safe answers no VERSION() any
	// more: the version is read at the block before. And one whose node
	// cannot answer VERSION() at all still reads the execution, the
	// logged safeTxHash choosing the EIP-712 domain.
	for name, client := range map[string]kwe.Client{"fresh": sc.c.Client, "no VERSION()": noVersion{sc.c.Client}} {
		sc.src = kwe.NewSource(client, sc.opts)
		x := sc.one(r, chains.KindExecution)
		checkExec(x, r, "delegatecall", lower(attacker), "0", "0xa9059cbb", 7, allAddrs)
		if name == "no VERSION()" && (x.Detail["version_error"] == "" || x.Detail["version"] != "") {
			t.Errorf("%s: detail %v", name, x.Detail)
		}
		if name == "fresh" && (x.Detail["version"] != version || x.Detail["version_error"] != "") {
			t.Errorf("%s: the version was not read at the block before the takeover: detail %v", name, x.Detail)
		}
	}
	// A node that no longer keeps the state of the block before (catching
	// up past what a full node keeps): the transaction's own input is
	// taken, unverified, with no nonce; an L2 Safe's log still has it.
	sc.src = kwe.NewSource(pruned{sc.c.Client}, sc.opts)
	x = sc.one(r, chains.KindExecution)
	if x.Operation != "delegatecall" || x.Target != lower(attacker) || !slices.Equal(x.Signers, allAddrs) || x.Owner != "kim@firm.example" {
		t.Errorf("pruned state: %+v", x)
	}
	if l2 && (x.SafeNonce == nil || *x.SafeNonce != 7 || x.Detail["unverified"] != "") || !l2 && (x.SafeNonce != nil || !strings.Contains(x.Detail["unverified"], "nonce before block")) {
		t.Errorf("pruned state: nonce %v, detail %v", x.SafeNonce, x.Detail)
	}
}

// pruned is a node that answers calls only at the latest block.
type pruned struct{ simClient }

func (p pruned) CallContract(ctx context.Context, msg ethereum.CallMsg, block *big.Int) ([]byte, error) {
	if block != nil {
		return nil, errors.New("missing trie node")
	}
	return p.simClient.CallContract(ctx, msg, block)
}

// noVersion is a node that fails every VERSION() call.
type noVersion struct{ simClient }

type simClient interface {
	kwe.Client
	CallContract(ctx context.Context, msg ethereum.CallMsg, block *big.Int) ([]byte, error)
}

// storageAtHash is what the storage-slot reads every Safe gets (slots.go)
// use of the simulated client, which the wrappers above pass through.
type storageAtHash interface {
	StorageAtHash(ctx context.Context, account common.Address, key common.Hash, blockHash common.Hash) ([]byte, error)
}

func (p pruned) StorageAtHash(ctx context.Context, a common.Address, k, h common.Hash) ([]byte, error) {
	return p.simClient.(storageAtHash).StorageAtHash(ctx, a, k, h)
}

func (n noVersion) StorageAtHash(ctx context.Context, a common.Address, k, h common.Hash) ([]byte, error) {
	return n.simClient.(storageAtHash).StorageAtHash(ctx, a, k, h)
}

func (n noVersion) CallContract(ctx context.Context, msg ethereum.CallMsg, block *big.Int) ([]byte, error) {
	if bytes.HasPrefix(msg.Data, safe.SelectorVersion) {
		return nil, errors.New("VERSION() unavailable")
	}
	return n.simClient.CallContract(ctx, msg, block)
}

// tracedCalls is a SafeCalls that answers with fixed calls.
type tracedCalls struct {
	calls []kwe.TracedCall
	err   error
	asked int
}

func (c *tracedCalls) CallsTo(context.Context, common.Hash, common.Hash, common.Address) ([]kwe.TracedCall, error) {
	c.asked++
	return c.calls, c.err
}

// A plain Safe called by another contract is read from the call traces
// when the traces reader provides them; a reader that fails fails the block
// (retried by the watcher), never skipping it.
func TestSafeExecutionThroughAnotherContractFromTraces(t *testing.T) {
	ctx := context.Background()
	calls := &tracedCalls{}
	sc := newSafeScene(t, "1.4.1", false, calls)
	s := sc.safe
	vendor := simchain.Addr("vendor")
	tx := must[safe.Tx](t)(s.Tx(ctx, vendor, big.NewInt(13), []byte{0xde, 0xad, 0xbe, 0xef}, safe.Call))
	sigs := must[[]byte](t)(s.Sign(tx, sc.owners[0], sc.owners[2]))
	sab := must[*contracts.Artifact](t)(contracts.LoadSafe("1.4.1", "Safe"))
	execData := must[[]byte](t)(sab.Pack("execTransaction", tx.To, tx.Value, tx.Data, uint8(tx.Operation), tx.SafeTxGas, tx.BaseGas, tx.GasPrice, tx.GasToken, tx.RefundReceiver, sigs))
	indirect := must[[]byte](t)(safetest.MultiSendData(safetest.MultiSendTx{Op: safe.Call, To: s.Address, Data: execData}))
	r := must[*types.Receipt](t)(sc.chain.Send(ctx, simchain.Key("relayer"), &sc.dep.MultiSendCallOnly, nil, indirect))

	// A traced call that is not the execution (a wrong input) explains
	// nothing.
	calls.calls = []kwe.TracedCall{{From: sc.dep.MultiSendCallOnly, Input: []byte{1, 2, 3, 4}}}
	if x := sc.one(r, chains.KindExecution); x.Operation != "" || x.Detail["unresolved"] == "" {
		t.Errorf("execution with unrelated traces: operation %q detail %v", x.Operation, x.Detail)
	}
	calls.calls = []kwe.TracedCall{{From: sc.dep.MultiSendCallOnly, Input: execData}}
	x := sc.one(r, chains.KindExecution)
	if x.Operation != "call" || x.Target != lower(vendor) || x.Selector != "0xdeadbeef" || x.Detail["source"] != "traces" ||
		!slices.Equal(x.Signers, sortedLower(simchain.Addr("alice"), simchain.Addr("dev-kim"))) || x.Owner != "kim@firm.example" || x.SafeNonce == nil || *x.SafeNonce != 0 {
		t.Errorf("execution from traces: %+v", x)
	}
	calls.err = errors.New("tracer timed out")
	b := must[chains.Block](t)(sc.src.BlockAt(ctx, r.BlockNumber.Uint64()))
	if _, err := sc.src.Events(ctx, b); err == nil || !strings.Contains(err.Error(), "tracer timed out") {
		t.Errorf("Events with a failing traces reader: %v", err)
	}
}

func TestCheckSafe(t *testing.T) {
	ctx := context.Background()
	sc := newSafeScene(t, "1.3.0", false, nil)
	info, err := kwe.CheckSafe(ctx, sc.c.Client, sc.safe.Address)
	if err != nil || info.Version != "1.3.0" || len(info.Owners) != 3 {
		t.Fatalf("CheckSafe of a real Safe: %+v, %v", info, err)
	}
	token := must[common.Address](t)(sc.c.Deploy(ctx, "deployer", contracts.NameTestToken, "USD Coin", "USDC", uint8(6)))
	for name, addr := range map[string]common.Address{
		"an account":       simchain.Addr("alice"),
		"a token":          token,
		"the bare library": sc.dep.MultiSend,
	} {
		_, err := kwe.CheckSafe(ctx, sc.c.Client, addr)
		if !errors.Is(err, kwe.ErrNotSafe) {
			t.Errorf("CheckSafe of %s: %v, want ErrNotSafe", name, err)
		}
		t.Logf("%s: %v", name, err)
	}
}
