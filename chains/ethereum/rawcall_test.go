package ethereum_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/rpc"

	kwe "github.com/keywatch/keywatch/chains/ethereum"
)

// TestPoolRawCallsFailOver: trace and balance calls made raw go through the
// pool as typed calls do: an endpoint that fails (HTTP 502) moves the pool
// to the next, and an error the node answers (no such method) does not.
func TestPoolRawCallsFailOver(t *testing.T) {
	first := newRPCNode(t, func(w http.ResponseWriter, _ json.RawMessage) { http.Error(w, "bad gateway", http.StatusBadGateway) })
	second := newRPCNode(t, func(w http.ResponseWriter, id json.RawMessage) {
		fmt.Fprintf(w, `{"jsonrpc":"2.0","id":%s,"result":"0x2a"}`, id)
	})
	p := kwe.NewPool([]string{first.srv.URL, second.srv.URL}, 5*time.Second, nil)
	defer p.Close()
	ctx := context.Background()
	var bal hexutil.Big
	at := rpc.BlockNumberOrHashWithHash(common.HexToHash("0x01"), false)
	if err := p.CallContext(ctx, &bal, "eth_getBalance", common.Address{}, at); err == nil {
		t.Fatal("the first endpoint's 502 was not an error")
	}
	if err := p.CallContext(ctx, &bal, "eth_getBalance", common.Address{}, at); err != nil || bal.ToInt().Int64() != 42 {
		t.Fatalf("after the 502 the pool should answer from the second endpoint: %v %v", bal.ToInt(), err)
	}
	before := first.requests.Load()
	var trace json.RawMessage
	err := p.CallContext(ctx, &trace, "debug_traceBlockByHash", common.HexToHash("0x01"), map[string]any{"tracer": "callTracer"})
	var re rpc.Error
	if !errors.As(err, &re) || re.ErrorCode() != -32601 {
		t.Fatalf("want the node's method-not-found answer, got %v", err)
	}
	if _, err := p.BlockNumber(ctx); err != nil || first.requests.Load() != before {
		t.Fatalf("an answered error moved the pool (first endpoint: %d requests, was %d): %v", first.requests.Load(), before, err)
	}
}
