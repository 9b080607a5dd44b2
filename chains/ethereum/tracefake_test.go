package ethereum_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/ethereum/go-ethereum/rpc"

	kwe "github.com/keywatch/keywatch/chains/ethereum"
)

// traceCounter is a node client whose raw calls go to the node, counting
// the trace calls; the next `failing` of them fail with failWith instead,
// as a node whose tracer times out does.
type traceCounter struct {
	kwe.Client
	raw      kwe.RawCaller
	traces   atomic.Int32
	balances atomic.Int32
	codes    atomic.Int32
	failing  atomic.Int32
	failWith error
	// codeFails makes eth_getCode fail.
	codeFails atomic.Bool
}

func (c *traceCounter) CallContext(ctx context.Context, result any, method string, args ...any) error {
	switch {
	case strings.HasPrefix(method, "debug_trace") || strings.HasPrefix(method, "trace_"):
		c.traces.Add(1)
		if c.failing.Add(-1) >= 0 {
			err := c.failWith
			if err == nil {
				err = errors.New("execution timeout")
			}
			return err
		}
	case method == "eth_getBalance":
		c.balances.Add(1)
	case method == "eth_getCode":
		c.codes.Add(1)
		if c.codeFails.Load() {
			return errors.New("connection reset by peer")
		}
	}
	return c.raw.CallContext(ctx, result, method, args...)
}

// rawOf is the *rpc.Client behind a go-ethereum client (the simulated
// client hides it in a field).
func rawOf(t testing.TB, c any) kwe.RawCaller {
	t.Helper()
	if rc, ok := c.(interface{ Client() *rpc.Client }); ok {
		return rc.Client()
	}
	if f := reflect.ValueOf(c).FieldByName("Client"); f.IsValid() {
		if ec, ok := f.Interface().(*ethclient.Client); ok {
			return ec.Client()
		}
	}
	t.Fatalf("%T has no raw RPC client", c)
	return nil
}

// slogTo logs text lines to w.
func slogTo(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
