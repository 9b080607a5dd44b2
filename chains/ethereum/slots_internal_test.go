package ethereum

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/keywatch/keywatch/chains"
)

// fakeSlotNode answers eth_getStorageAt from a table of values by block
// hash, and debug_traceBlockByHash with what trace returns.
type fakeSlotNode struct {
	Client // never called: slotEvents needs only the batches
	values map[common.Hash]map[common.Address]map[common.Hash]common.Hash
	trace  func() (string, error)
	traces int
}

func (f *fakeSlotNode) BatchCallContext(_ context.Context, b []rpc.BatchElem) error {
	for i := range b {
		e := &b[i]
		var raw string
		switch e.Method {
		case "eth_getStorageAt":
			at := e.Args[2].(rpc.BlockNumberOrHash)
			h, _ := at.Hash()
			raw = `"` + f.values[h][e.Args[0].(common.Address)][e.Args[1].(common.Hash)].Hex() + `"`
		case "debug_traceBlockByHash":
			f.traces++
			var err error
			if raw, err = f.trace(); err != nil {
				e.Error = err
				continue
			}
		default:
			e.Error = fmt.Errorf("unexpected %s", e.Method)
			continue
		}
		if err := json.Unmarshal([]byte(raw), e.Result); err != nil {
			e.Error = err
		}
	}
	return nil
}

type answeredError struct {
	code int
	msg  string
}

func (e answeredError) Error() string  { return e.msg }
func (e answeredError) ErrorCode() int { return e.code }

// diff is one transaction's prestate diff of the watched wallet's slot 0;
// a nil value is left out (zero), as geth leaves it out.
type diff struct {
	tx        *types.Transaction
	pre, post *common.Hash
}

// traceJSON renders diffs as geth's debug_traceBlockByHash answer with
// prestateTracer in diff mode; withHash false leaves txHash out (older geth).
func traceJSON(wallet common.Address, withHash bool, ds ...diff) string {
	var parts []string
	side := func(v *common.Hash) string {
		if v == nil {
			return `{}`
		}
		return fmt.Sprintf(`{%q:{"balance":"0x0","storage":{%q:%q}}}`, strings.ToLower(wallet.Hex()), SlotZero.Hex(), v.Hex())
	}
	for _, d := range ds {
		h := ""
		if withHash {
			h = fmt.Sprintf(`"txHash":%q,`, d.tx.Hash().Hex())
		}
		if d.pre == nil && d.post == nil {
			parts = append(parts, `{`+h+`"result":{"post":{},"pre":{}}}`)
			continue
		}
		pre := side(d.pre)
		if d.pre == nil { // the slot was zero: geth still lists the account
			pre = fmt.Sprintf(`{%q:{"balance":"0x0"}}`, strings.ToLower(wallet.Hex()))
		}
		parts = append(parts, fmt.Sprintf(`{%s"result":{"post":%s,"pre":%s}}`, h, side(d.post), pre))
	}
	return "[" + strings.Join(parts, ",") + "]"
}

// TestSlotChangesAreAttributedByThePrestateTrace: the reads say whether a
// slot changed; the trace says which transactions did it, and is taken only
// when it accounts for the whole change. Otherwise, or when tracing fails,
// the change is one event of the block, and detail.why_no_tx says why.
func TestSlotChangesAreAttributedByThePrestateTrace(t *testing.T) {
	wallet := common.HexToAddress("0x00000000000000000000000000000000005afe01")
	txs := make([]*types.Transaction, 3)
	senders := make([]common.Address, 3)
	signer := types.LatestSignerForChainID(big.NewInt(1))
	for i := range txs {
		k, _ := crypto.ToECDSA(crypto.Keccak256([]byte(fmt.Sprint("sender ", i))))
		senders[i] = crypto.PubkeyToAddress(k.PublicKey)
		txs[i] = types.MustSignNewTx(k, signer, &types.DynamicFeeTx{ChainID: big.NewInt(1), Nonce: uint64(i), Gas: 21_000, To: &wallet})
	}
	parent := types.NewBlockWithHeader(&types.Header{Number: big.NewInt(9)})
	block := types.NewBlockWithHeader(&types.Header{Number: big.NewInt(10), ParentHash: parent.Hash(), Time: 1_700_000_000}).
		WithBody(types.Body{Transactions: txs})
	singleton := common.HexToHash("0x000000000000000000000000d9db270c1b5e3bd161e8c8503c55ceabee709552")
	attacker := common.HexToHash("0x000000000000000000000000bdd077f651ebe7f7b3ce16fe5f2b025be2969516")
	relay := common.HexToHash("0x0000000000000000000000000000000000000000000000000000000000000b0b")
	notAddress := common.HexToHash("0xffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff")
	zero := common.Hash{}
	p := func(h common.Hash) *common.Hash { return &h }

	type wantEv struct {
		tx            int // index in the block; -1 for the block
		old, new      common.Hash
		counterparty  string
		whyContaining string
	}
	tests := []struct {
		name       string
		before     common.Hash
		after      common.Hash
		trace      func() (string, error)
		wantTraces int
		want       []wantEv
	}{
		{"one transaction rewrites slot 0", singleton, attacker,
			func() (string, error) {
				return traceJSON(wallet, true, diff{tx: txs[0]}, diff{txs[1], p(singleton), p(attacker)}, diff{tx: txs[2]}), nil
			}, 1,
			[]wantEv{{1, singleton, attacker, lower(common.BytesToAddress(attacker[12:])), ""}}},
		{"two transactions in turn", singleton, attacker,
			func() (string, error) {
				return traceJSON(wallet, true, diff{txs[0], p(singleton), p(relay)}, diff{tx: txs[1]}, diff{txs[2], p(relay), p(attacker)}), nil
			}, 1,
			[]wantEv{{0, singleton, relay, lower(common.BytesToAddress(relay[12:])), ""}, {2, relay, attacker, lower(common.BytesToAddress(attacker[12:])), ""}}},
		{"an older geth leaves txHash out: results in block order", singleton, attacker,
			func() (string, error) {
				return traceJSON(wallet, false, diff{tx: txs[0]}, diff{txs[1], p(singleton), p(attacker)}, diff{tx: txs[2]}), nil
			}, 1,
			[]wantEv{{1, singleton, attacker, lower(common.BytesToAddress(attacker[12:])), ""}}},
		{"a slot set from zero and a value that is no address", zero, notAddress,
			func() (string, error) {
				return traceJSON(wallet, true, diff{txs[0], nil, p(notAddress)}, diff{tx: txs[1]}, diff{tx: txs[2]}), nil
			}, 1,
			[]wantEv{{0, zero, notAddress, "unknown", ""}}},
		{"a slot cleared", singleton, zero,
			func() (string, error) {
				return traceJSON(wallet, true, diff{tx: txs[0]}, diff{tx: txs[1]}, diff{txs[2], p(singleton), nil}), nil
			}, 1,
			[]wantEv{{2, singleton, zero, "unknown", ""}}},
		{"the trace does not account for the change", singleton, attacker,
			func() (string, error) {
				return traceJSON(wallet, true, diff{txs[0], p(singleton), p(relay)}, diff{tx: txs[1]}, diff{tx: txs[2]}), nil
			}, 1,
			[]wantEv{{-1, singleton, attacker, lower(common.BytesToAddress(attacker[12:])), "the trace does not account for the change"}}},
		{"the trace misses a transaction", singleton, attacker,
			func() (string, error) {
				return traceJSON(wallet, true, diff{txs[0], p(singleton), p(attacker)}), nil
			}, 1,
			[]wantEv{{-1, singleton, attacker, lower(common.BytesToAddress(attacker[12:])), "the trace has 1 results for 3 transactions"}}},
		{"the tracer fails every time", singleton, attacker,
			func() (string, error) { return "", answeredError{-32000, "execution timeout"} }, traceAttempts,
			[]wantEv{{-1, singleton, attacker, lower(common.BytesToAddress(attacker[12:])), "debug_traceBlockByHash failed: execution timeout"}}},
		{"the node has no debug API", singleton, attacker,
			func() (string, error) {
				return "", answeredError{-32601, "the method debug_traceBlockByHash does not exist/is not available"}
			}, 1,
			[]wantEv{{-1, singleton, attacker, lower(common.BytesToAddress(attacker[12:])), "the node has no debug API (the method debug_traceBlockByHash does not exist"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			node := &fakeSlotNode{trace: tt.trace, values: map[common.Hash]map[common.Address]map[common.Hash]common.Hash{
				parent.Hash(): {wallet: {SlotZero: tt.before}},
				block.Hash():  {wallet: {SlotZero: tt.after}},
			}}
			s := NewSource(node, Options{Chain: "eth", Traces: "auto",
				Wallets: []Wallet{{Name: "treasury-safe", Address: wallet, Role: "treasury", Safe: true}}})
			evs, err := s.slotEvents(context.Background(), block)
			if err != nil {
				t.Fatal(err)
			}
			if node.traces != tt.wantTraces {
				t.Errorf("%d traces, want %d", node.traces, tt.wantTraces)
			}
			if len(evs) != len(tt.want) {
				t.Fatalf("%d events, want %d: %+v", len(evs), len(tt.want), evs)
			}
			for i, w := range tt.want {
				e := evs[i]
				ref, tx, initiator := block.Hash().Hex(), "", ""
				if w.tx >= 0 {
					ref, tx, initiator = txs[w.tx].Hash().Hex(), txs[w.tx].Hash().Hex(), lower(senders[w.tx])
				}
				if e.ID != "eth:"+ref+":slot:"+lower(wallet)+":"+SlotZero.Hex() || e.Tx != tx || e.Initiator != initiator {
					t.Errorf("event %d: id %s tx %q initiator %q; want the ref %s, tx %q, initiator %q", i, e.ID, e.Tx, e.Initiator, ref, tx, initiator)
				}
				d := e.Detail
				if d[chains.DetailOld] != w.old.Hex() || d[chains.DetailNew] != w.new.Hex() || e.Counterparty != w.counterparty ||
					e.WalletRole != "treasury" || d[DetailSlotName] != "slot-0" {
					t.Errorf("event %d: old %s new %s counterparty %s role %s slot %s; want %s, %s, %s, treasury, slot-0",
						i, d[chains.DetailOld], d[chains.DetailNew], e.Counterparty, e.WalletRole, d[DetailSlotName], w.old.Hex(), w.new.Hex(), w.counterparty)
				}
				if why := d[DetailWhyNoTx]; w.whyContaining == "" && why != "" || !strings.Contains(why, w.whyContaining) {
					t.Errorf("event %d: why_no_tx %q, want %q", i, why, w.whyContaining)
				}
			}
		})
	}

	t.Run("each of the four slots is compared", func(t *testing.T) {
		before, after := map[common.Hash]common.Hash{}, map[common.Hash]common.Hash{}
		for i, ws := range watchedSlots {
			before[ws.slot] = common.BigToHash(big.NewInt(int64(0x100 + i)))
			after[ws.slot] = common.BigToHash(big.NewInt(int64(0x200 + i)))
		}
		node := &fakeSlotNode{values: map[common.Hash]map[common.Address]map[common.Hash]common.Hash{
			parent.Hash(): {wallet: before}, block.Hash(): {wallet: after}}}
		s := NewSource(node, Options{Chain: "eth", Traces: "off", Wallets: []Wallet{{Name: "vault", Address: wallet, Role: "contract"}}})
		evs, err := s.slotEvents(context.Background(), block)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range evs {
			got = append(got, e.Detail[DetailSlotName]+" "+e.Detail[chains.DetailSlot]+" "+e.Detail[chains.DetailNew][62:])
		}
		want := "slot-0 " + SlotZero.Hex() + " 0200\n" +
			"eip1967-implementation " + SlotImplementation.Hex() + " 0201\n" +
			"eip1967-admin " + SlotAdmin.Hex() + " 0202\n" +
			"eip1967-beacon " + SlotBeacon.Hex() + " 0203"
		if strings.Join(got, "\n") != want {
			t.Fatalf("events\n%s\nwant\n%s", strings.Join(got, "\n"), want)
		}
		for name, slot := range map[string]common.Hash{"implementation": SlotImplementation, "admin": SlotAdmin, "beacon": SlotBeacon} {
			seed := "eip1967.proxy." + name
			if slot != common.BigToHash(new(big.Int).Sub(new(big.Int).SetBytes(crypto.Keccak256([]byte(seed))), big.NewInt(1))) {
				t.Errorf("the %s slot %s is not keccak256(%q) - 1", name, slot.Hex(), seed)
			}
		}
	})

	t.Run("a node without the debug API is not asked again", func(t *testing.T) {
		next := types.NewBlockWithHeader(&types.Header{Number: big.NewInt(11), ParentHash: block.Hash()}).WithBody(types.Body{Transactions: txs})
		node := &fakeSlotNode{
			trace: func() (string, error) { return "", answeredError{-32601, "method not found"} },
			values: map[common.Hash]map[common.Address]map[common.Hash]common.Hash{
				parent.Hash(): {wallet: {SlotZero: singleton}},
				block.Hash():  {wallet: {SlotZero: attacker}},
				next.Hash():   {wallet: {SlotZero: relay}},
			}}
		s := NewSource(node, Options{Chain: "eth", Traces: "debug", Wallets: []Wallet{{Name: "vault", Address: wallet, Role: "contract"}}})
		for _, b := range []*types.Block{block, next} {
			if evs, err := s.slotEvents(context.Background(), b); err != nil || len(evs) != 1 || evs[0].Tx != "" {
				t.Fatalf("block %d: %+v, %v; want one event of the block", b.NumberU64(), evs, err)
			}
		}
		if node.traces != 1 {
			t.Fatalf("%d traces, want 1: the node said it has no such method", node.traces)
		}
	})

	t.Run("a cancelled context fails the block", func(t *testing.T) {
		node := &fakeSlotNode{
			trace: func() (string, error) { return "", errors.New("connection reset") },
			values: map[common.Hash]map[common.Address]map[common.Hash]common.Hash{
				parent.Hash(): {wallet: {SlotZero: singleton}},
				block.Hash():  {wallet: {SlotZero: attacker}},
			}}
		s := NewSource(node, Options{Chain: "eth", Traces: "auto", Wallets: []Wallet{{Name: "vault", Address: wallet, Role: "contract"}}})
		ctx, cancel := context.WithCancel(context.Background())
		node.trace = func() (string, error) { cancel(); return "", errors.New("connection reset") }
		if evs, err := s.slotEvents(ctx, block); !errors.Is(err, context.Canceled) {
			t.Fatalf("got %+v, %v; want the context's error, not events judged without the trace", evs, err)
		}
	})
}

// TestSlotWalletsAreSafesAndContracts: the slots of every Safe (whatever
// its role) and every wallet of role contract are read, each address once.
func TestSlotWalletsAreSafesAndContracts(t *testing.T) {
	a := func(n int64) common.Address { return common.BigToAddress(big.NewInt(n)) }
	s := NewSource(nil, Options{Chain: "eth", Wallets: []Wallet{
		{Name: "hot", Address: a(1), Role: "hot"},
		{Name: "treasury-safe", Address: a(2), Role: "cold", Safe: true},
		{Name: "vault-proxy", Address: a(3), Role: "contract"},
		{Name: "dev", Address: a(4), Role: "employee-key"},
		{Name: "vault-proxy-again", Address: a(3), Role: "contract"},
	}})
	var got []string
	for _, w := range s.slots.wallets {
		got = append(got, w.Name)
	}
	if strings.Join(got, ",") != "treasury-safe,vault-proxy" {
		t.Fatalf("slot wallets %v, want treasury-safe and vault-proxy", got)
	}
	if n := s.WithoutSlotReads(); n != 2 || len(s.slots.wallets) != 0 {
		t.Fatalf("WithoutSlotReads = %d, left %d; want 2 and none", n, len(s.slots.wallets))
	}
}

func TestParseWord(t *testing.T) {
	tests := []struct {
		raw, want, err string
	}{
		{`"0x000000000000000000000000d9db270c1b5e3bd161e8c8503c55ceabee709552"`, "0x000000000000000000000000d9db270c1b5e3bd161e8c8503c55ceabee709552", ""},
		{`"0x0"`, common.Hash{}.Hex(), ""},
		{`"0xabc"`, "0x0000000000000000000000000000000000000000000000000000000000000abc", ""},
		{`"0x"`, "", "at most 64 hex digits"},
		{`"abc"`, "", "want 0x"},
		{`"0xg1"`, "", "not hex"},
		{`null`, "", "want 0x"},
		{`42`, "", "want a 32-byte hex string"},
	}
	for _, tt := range tests {
		got, err := parseWord(json.RawMessage(tt.raw))
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%s: %v, want an error saying %q", tt.raw, err, tt.err)
			}
			continue
		}
		if err != nil || got.Hex() != tt.want {
			t.Errorf("%s: %s, %v; want %s", tt.raw, got.Hex(), err, tt.want)
		}
	}
}
