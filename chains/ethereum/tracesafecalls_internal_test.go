package ethereum

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
)

// describeCalls lists calls as "tx<i> <from>-><to> <input>".
func (tb traceBlock) describeCalls(calls []safeCall) []string {
	name, index := tb.names()
	var out []string
	for _, c := range calls {
		out = append(out, fmt.Sprintf("tx%d %s->%s %s", index[c.tx], name[c.from], name[c.to], hexutil.Encode(c.input)))
	}
	return out
}

// The calls to the vault both hand-written answers (testdata/traces) show,
// with the vault watched as a Safe: tx0's own call; none of tx1, which
// failed; of tx2 the router's payment but not its call that reverted; tx3's
// own call (a plain transfer is a call too). The vault's own calls out
// (to the thief, the library, the children) are not calls to it.
var wantSafeCalls = []string{
	"tx0 signer->vault 0x6ea056a9",
	"tx2 router->vault 0x",
	"tx3 signer->vault 0x",
}

// TestSafeCallsFromBothTraceFormats reads the calls to a watched Safe from
// the hand-written trace_block (parity) and debug_traceBlockByHash
// (callTracer) answers of the same block: the two formats agree.
func TestSafeCallsFromBothTraceFormats(t *testing.T) {
	tb := newTraceBlock()
	safes := map[common.Address]bool{tb.addr["vault"]: true}

	var items []parityTraceItem
	if err := json.Unmarshal(tb.answer(t, "trace_block.json", nil), &items); err != nil {
		t.Fatal(err)
	}
	calls, err := paritySafeCalls(items, safes)
	if err != nil {
		t.Fatal(err)
	}
	if got := tb.describeCalls(calls); !slices.Equal(got, wantSafeCalls) {
		t.Errorf("parity: calls\n got %q\nwant %q", got, wantSafeCalls)
	}

	var res []debugTxTrace
	if err := json.Unmarshal(tb.answer(t, "debug_traceBlockByHash.json", nil), &res); err != nil {
		t.Fatal(err)
	}
	calls, err = debugSafeCalls(tb.block, res, safes)
	if err != nil {
		t.Fatal(err)
	}
	if got := tb.describeCalls(calls); !slices.Equal(got, wantSafeCalls) {
		t.Errorf("debug: calls\n got %q\nwant %q", got, wantSafeCalls)
	}

	// No Safe watched: nothing kept.
	if calls, err := debugSafeCalls(tb.block, res, nil); err != nil || calls != nil {
		t.Errorf("no Safe watched: %v, %v", calls, err)
	}
}

// TestSafeCallInputThatIsNotHex: a call to a watched Safe whose input is
// not hex is an answer that does not fit (the block is traced again), not a
// call without input.
func TestSafeCallInputThatIsNotHex(t *testing.T) {
	tb := newTraceBlock()
	safes := map[common.Address]bool{tb.addr["vault"]: true}
	bad := func(s string) string { return strings.Replace(s, `"input": "0x6ea056a9"`, `"input": "6ea056a9zz"`, 1) }
	var items []parityTraceItem
	if err := json.Unmarshal(tb.answer(t, "trace_block.json", bad), &items); err != nil {
		t.Fatal(err)
	}
	if _, err := paritySafeCalls(items, safes); !errors.Is(err, errTraceShape) || !strings.Contains(err.Error(), "not hex") {
		t.Errorf("parity: %v, want an errTraceShape saying the input is not hex", err)
	}
	var res []debugTxTrace
	if err := json.Unmarshal(tb.answer(t, "debug_traceBlockByHash.json", bad), &res); err != nil {
		t.Fatal(err)
	}
	if _, err := debugSafeCalls(tb.block, res, safes); !errors.Is(err, errTraceShape) || !strings.Contains(err.Error(), "not hex") {
		t.Errorf("debug: %v, want an errTraceShape saying the input is not hex", err)
	}
	// A frame to another address may carry anything: it is not read.
	if _, err := debugSafeCalls(tb.block, res, map[common.Address]bool{tb.addr["thief"]: true}); err != nil {
		t.Errorf("an unread input failed the trace: %v", err)
	}
}
