package ethereum

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
)

// traceBlock is a four-transaction block for the hand-written trace
// answers in testdata/traces, and the addresses those answers name.
type traceBlock struct {
	block *types.Block
	addr  map[string]common.Address
}

func newTraceBlock() traceBlock {
	var txs []*types.Transaction
	for i := range 4 {
		txs = append(txs, types.NewTx(&types.LegacyTx{Nonce: uint64(i), Gas: 21000, GasPrice: big.NewInt(1)}))
	}
	h := &types.Header{Number: big.NewInt(19_000_000), ParentHash: common.HexToHash("0x01")}
	tb := traceBlock{block: types.NewBlockWithHeader(h).WithBody(types.Body{Transactions: txs}), addr: map[string]common.Address{}}
	for i, name := range []string{"signer", "vault", "thief", "lib", "child", "child2", "router"} {
		tb.addr[name] = common.BigToAddress(big.NewInt(int64(0xa000 + i)))
	}
	return tb
}

// answer reads a recorded JSON-RPC answer from testdata/traces and fills in
// the block's hashes and addresses; edit may change the text first.
func (tb traceBlock) answer(t *testing.T, file string, edit func(string) string) json.RawMessage {
	t.Helper()
	raw, err := os.ReadFile("testdata/traces/" + file)
	if err != nil {
		t.Fatal(err)
	}
	text := string(raw)
	if edit != nil {
		text = edit(text)
	}
	pairs := []string{"{{block}}", tb.block.Hash().Hex()}
	for i, tx := range tb.block.Transactions() {
		pairs = append(pairs, fmt.Sprintf("{{tx%d}}", i), tx.Hash().Hex())
	}
	for name, a := range tb.addr {
		pairs = append(pairs, "{{"+name+"}}", strings.ToLower(a.Hex()))
	}
	var env struct {
		Result json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal([]byte(strings.NewReplacer(pairs...).Replace(text)), &env); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return env.Result
}

// names gives the block's addresses their names and its transactions
// their index, for describing what was decoded.
func (tb traceBlock) names() (map[common.Address]string, map[common.Hash]int) {
	name := map[common.Address]string{}
	for n, a := range tb.addr {
		name[a] = n
	}
	index := map[common.Hash]int{}
	for i, tx := range tb.block.Transactions() {
		index[tx.Hash()] = i
	}
	return name, index
}

// want lists frames as "tx<i> <path> <kind> <from>-><to> <ether>".
func (tb traceBlock) describe(frames []valueFrame) []string {
	name, index := tb.names()
	var out []string
	for _, f := range frames {
		eth := new(big.Int).Div(f.value, big.NewInt(1e18))
		out = append(out, fmt.Sprintf("tx%d %s %s %s->%s %s by %s", index[f.tx], f.path, f.kind, name[f.from], name[f.to], eth, name[f.signer]))
	}
	return out
}

// The frames both answers describe: a vault paying out (call), creating
// contracts with value (create, create2) and self-destructing, in tx0;
// nothing from tx1, whose call failed; from tx2 only the payment that did
// not lie under the reverted frame; nothing from tx3, a plain transfer
// (the transaction's own call is the native transfer, not a frame).
var wantFrames = []string{
	"tx0 0 call vault->thief 5 by signer",
	"tx0 4 create vault->child 1 by signer",
	"tx0 5 create2 vault->child2 3 by signer",
	"tx0 6 selfdestruct vault->thief 10 by signer",
	"tx2 1 call router->vault 9 by signer",
}

// TestDecodeParityTrace decodes a trace_block answer written by hand in the
// parity trace format as OpenEthereum's trace module documents it
// (openethereum.github.io/JSONRPC-trace-module: trace_block; the same
// format Erigon's trace_block, Nethermind and Reth serve, with Erigon's and
// Reth's creationMethod on creates): one flat entry per frame with its
// traceAddress, calls with callType, creates with result.address, suicides
// with address, refundAddress and balance, a block reward without a
// transaction, and failed frames with "error" and no result.
func TestDecodeParityTrace(t *testing.T) {
	tb := newTraceBlock()
	var items []parityTraceItem
	if err := json.Unmarshal(tb.answer(t, "trace_block.json", nil), &items); err != nil {
		t.Fatal(err)
	}
	frames, err := decodeParityTrace(tb.block, items)
	if err != nil {
		t.Fatal(err)
	}
	if got := tb.describe(frames); !slices.Equal(got, wantFrames) {
		t.Fatalf("frames\n got %q\nwant %q", got, wantFrames)
	}
}

// TestDecodeDebugTrace decodes the same block as geth's callTracer answers
// debug_traceBlockByHash (geth.ethereum.org/docs/developers/evm-tracing/
// built-in-tracers, "callTracer"; go-ethereum eth/tracers/native/call.go):
// one {txHash, result} per transaction, nested calls, error on the frames
// that reverted and not on those below them.
func TestDecodeDebugTrace(t *testing.T) {
	tb := newTraceBlock()
	var res []debugTxTrace
	if err := json.Unmarshal(tb.answer(t, "debug_traceBlockByHash.json", nil), &res); err != nil {
		t.Fatal(err)
	}
	frames, err := decodeDebugTrace(tb.block, res)
	if err != nil {
		t.Fatal(err)
	}
	if got := tb.describe(frames); !slices.Equal(got, wantFrames) {
		t.Fatalf("frames\n got %q\nwant %q", got, wantFrames)
	}
}

// TestTraceAnswersThatDoNotFitTheBlock: an answer of another block (a
// reorg between the calls) or one that leaves out a transaction is refused,
// not read as "nothing moved".
func TestTraceAnswersThatDoNotFitTheBlock(t *testing.T) {
	tb := newTraceBlock()
	other := common.HexToHash("0xbad").Hex()
	parity := func(t *testing.T, edit func(string) string) error {
		var items []parityTraceItem
		if err := json.Unmarshal(tb.answer(t, "trace_block.json", edit), &items); err != nil {
			t.Fatal(err)
		}
		_, err := decodeParityTrace(tb.block, items)
		return err
	}
	debug := func(t *testing.T, edit func(string) string) error {
		var res []debugTxTrace
		if err := json.Unmarshal(tb.answer(t, "debug_traceBlockByHash.json", edit), &res); err != nil {
			t.Fatal(err)
		}
		_, err := decodeDebugTrace(tb.block, res)
		return err
	}
	for _, c := range []struct {
		name   string
		decode func(*testing.T, func(string) string) error
		edit   func(string) string
		want   string
	}{
		{"parity: another block", parity, func(s string) string { return strings.Replace(s, `"{{block}}"`, `"`+other+`"`, 1) }, "is of block"},
		{"parity: a transaction left out", parity, func(s string) string { return strings.ReplaceAll(s, "{{tx3}}", "{{tx2}}") }, "no trace of transaction"},
		{"parity: a transaction not in the block", parity, func(s string) string { return strings.Replace(s, `"{{tx3}}"`, `"`+other+`"`, 1) }, "which the block does not hold"},
		{"debug: a transaction left out", debug, func(s string) string {
			return s[:strings.LastIndex(s, `,
    {
      "txHash": "{{tx3}}"`)] + "]}"
		}, "3 transaction traces for 4 transactions"},
		{"debug: another transaction", debug, func(s string) string { return strings.Replace(s, `"{{tx1}}"`, `"`+other+`"`, 1) }, "trace 1 is of transaction"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := c.decode(t, c.edit)
			if !errors.Is(err, errTraceShape) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an errTraceShape saying %q", err, c.want)
			}
		})
	}
	t.Run("debug: the tracer failed on a transaction", func(t *testing.T) {
		err := debug(t, func(s string) string {
			return strings.Replace(s, `"txHash": "{{tx2}}",
      "result": {`, `"txHash": "{{tx2}}", "error": "execution timeout", "result": {`, 1)
		})
		if err == nil || !strings.Contains(err.Error(), "execution timeout") {
			t.Fatalf("got %v", err)
		}
	})
}

// nodeError is an error a node answered, with its JSON-RPC code.
type nodeError struct {
	code int
	msg  string
}

func (e nodeError) Error() string  { return e.msg }
func (e nodeError) ErrorCode() int { return e.code }

// TestMethodMissing tells "this node does not serve the method" (auto moves
// on to the next way) from a failure of the call (retried, then the
// balance check and an alert).
func TestMethodMissing(t *testing.T) {
	for _, c := range []struct {
		name string
		err  error
		want bool
	}{
		{"geth without the debug API", nodeError{-32601, "the method debug_traceBlockByHash does not exist/is not available"}, true},
		{"a provider plan without it", nodeError{-32000, "trace_block is not available on the free tier"}, true},
		{"unsupported method, another code", nodeError{-32004, "Method not supported"}, true},
		{"pruned state", nodeError{-32000, "historical state 0xabc is not available"}, false},
		{"tracer timeout", nodeError{-32000, "execution timeout"}, false},
		{"no answer at all", errors.New("dial tcp 127.0.0.1:1: connection refused"), false},
		{"wrapped, as the pool returns it", fmt.Errorf("trace_block of block 7: %w", &scrubbed{msg: "method not found", err: nodeError{-32601, "method not found"}}), true},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := methodMissing(c.err, "trace_block"); got != c.want {
				t.Fatalf("methodMissing(%v) = %v, want %v", c.err, got, c.want)
			}
		})
	}
}

// codeNode answers eth_getCode from a map, counting the calls.
type codeNode struct {
	code  map[common.Address][]byte
	calls int
}

func (n *codeNode) CallContext(_ context.Context, result any, method string, args ...any) error {
	if method != "eth_getCode" {
		return fmt.Errorf("unexpected %s", method)
	}
	n.calls++
	*result.(*hexutil.Bytes) = n.code[args[0].(common.Address)]
	return nil
}

// TestRunsNoCode: a block is known to run no code only when every
// transaction calls an address without code; a creation is code, and so is
// a contract remembered from an earlier block (not asked again).
func TestRunsNoCode(t *testing.T) {
	eoa, other, contract := common.HexToAddress("0xe0a"), common.HexToAddress("0xe0b"), common.HexToAddress("0xc0de")
	node := &codeNode{code: map[common.Address][]byte{contract: {0x60, 0x80}}}
	tr := newTraceReader(nil, Options{Traces: TracesDebug})
	tr.raw = node
	block := func(to ...*common.Address) *types.Block {
		var txs []*types.Transaction
		for i, a := range to {
			txs = append(txs, types.NewTx(&types.LegacyTx{Nonce: uint64(i), To: a, Gas: 21000, GasPrice: big.NewInt(1)}))
		}
		return types.NewBlockWithHeader(&types.Header{Number: big.NewInt(1)}).WithBody(types.Body{Transactions: txs})
	}
	for _, c := range []struct {
		name  string
		block *types.Block
		free  bool
		calls int
	}{
		{"plain transfers to EOAs", block(&eoa, &other, &eoa), true, 2},
		{"a creation", block(&eoa, nil), false, 0},
		{"a call to a contract", block(&eoa, &contract), false, 2},
		{"the contract again: remembered", block(&contract, &eoa), false, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			node.calls = 0
			if got := tr.runsNoCode(context.Background(), c.block); got != c.free || node.calls != c.calls {
				t.Fatalf("runsNoCode = %v after %d eth_getCode, want %v after %d", got, node.calls, c.free, c.calls)
			}
		})
	}
}
