package ethereum_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	kwe "github.com/keywatch/keywatch/chains/ethereum"
)

// closedPort returns a loopback port nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	l.Close()
	return port
}

// TestPoolKeepsNodeSecretsOutOfErrorsAndLogs: node URLs often carry an API
// key in the path or query, or credentials. When the node cannot be reached,
// the error the caller logs and the pool's own log name the host only.
func TestPoolKeepsNodeSecretsOutOfErrorsAndLogs(t *testing.T) {
	port := closedPort(t)
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name string
		url  string
		ctx  context.Context
	}{
		{"key in the path", "http://127.0.0.1:" + port + "/v3/SECRETKEY", context.Background()},
		{"credentials and a key in the path", "http://ops:SECRETPW@127.0.0.1:" + port + "/v2/SECRETKEY", context.Background()},
		{"upper-case scheme", "HTTP://127.0.0.1:" + port + "/v3/SECRETKEY", context.Background()},
		{"key in the query", "https://127.0.0.1:" + port + "/rpc?apikey=SECRETKEY", context.Background()},
		{"WebSocket with credentials", "ws://ops:SECRETPW@127.0.0.1:" + port + "/ws/SECRETKEY", context.Background()},
		{"call cancelled", "http://127.0.0.1:" + port + "/v3/SECRETKEY", cancelled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			p := kwe.NewPool([]string{tt.url}, 2*time.Second, slog.New(slog.NewTextHandler(&logs, nil)))
			defer p.Close()
			_, err := p.BlockNumber(tt.ctx)
			if err == nil {
				t.Fatal("BlockNumber succeeded against a closed port")
			}
			for what, text := range map[string]string{"error": err.Error(), "log": logs.String()} {
				if strings.Contains(text, "SECRET") {
					t.Errorf("the %s shows a secret of the node URL: %s", what, text)
				}
			}
			if !strings.Contains(err.Error(), "127.0.0.1:"+port) {
				t.Errorf("the error does not name the node: %v", err)
			}
		})
	}
}

// rpcNode is a JSON-RPC endpoint that answers eth_blockNumber, and answers
// eth_getBalance with a node error or with HTTP 502, counting requests.
type rpcNode struct {
	srv      *httptest.Server
	requests atomic.Int32
}

func newRPCNode(t *testing.T, balance func(w http.ResponseWriter, id json.RawMessage)) *rpcNode {
	t.Helper()
	n := &rpcNode{}
	n.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.requests.Add(1)
		var req struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		switch req.Method {
		case "eth_blockNumber":
			fmt.Fprintf(w, `{"jsonrpc":"2.0","id":%s,"result":"0x10"}`, req.ID)
		case "eth_getBalance":
			balance(w, req.ID)
		default:
			fmt.Fprintf(w, `{"jsonrpc":"2.0","id":%s,"error":{"code":-32601,"message":"method not found"}}`, req.ID)
		}
	}))
	t.Cleanup(n.srv.Close)
	return n
}

// TestPoolSwitchesEndpointOnFailureNotOnNodeErrors: an error the node
// answers (a reverted call, state pruned at that block) says nothing about
// the endpoint; the pool stays on it. An endpoint that fails (HTTP 502 from
// a gateway) makes the pool move to the next.
func TestPoolSwitchesEndpointOnFailureNotOnNodeErrors(t *testing.T) {
	tests := []struct {
		name     string
		balance  func(w http.ResponseWriter, id json.RawMessage)
		switches bool
	}{
		{"the node answers with an error", func(w http.ResponseWriter, id json.RawMessage) {
			fmt.Fprintf(w, `{"jsonrpc":"2.0","id":%s,"error":{"code":-32000,"message":"missing trie node"}}`, id)
		}, false},
		{"the gateway fails", func(w http.ResponseWriter, _ json.RawMessage) {
			http.Error(w, "bad gateway", http.StatusBadGateway)
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			first, second := newRPCNode(t, tt.balance), newRPCNode(t, tt.balance)
			p := kwe.NewPool([]string{first.srv.URL, second.srv.URL}, 5*time.Second, nil)
			defer p.Close()
			ctx := context.Background()
			if _, err := p.BalanceAt(ctx, common.Address{}, big.NewInt(1)); err == nil {
				t.Fatal("BalanceAt succeeded")
			}
			if _, err := p.BlockNumber(ctx); err != nil {
				t.Fatal(err)
			}
			moved := second.requests.Load() > 0
			if moved != tt.switches {
				t.Errorf("moved to the second endpoint: %v, want %v (requests: first %d, second %d)",
					moved, tt.switches, first.requests.Load(), second.requests.Load())
			}
		})
	}
}
