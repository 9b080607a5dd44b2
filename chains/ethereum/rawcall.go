package ethereum

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/ethereum/go-ethereum/rpc"
)

// RawCaller makes the JSON-RPC calls the typed Client has no method for:
// debug_traceBlockByHash, trace_block, and eth_getBalance by block hash
// (EIP-1898). *rpc.Client and Pool provide it; so do *ethclient.Client and
// go-ethereum's simulated client, through the *rpc.Client their Client
// method returns.
type RawCaller interface {
	CallContext(ctx context.Context, result any, method string, args ...any) error
}

// batchCaller sends several calls in one request (*rpc.Client, Pool).
type batchCaller interface {
	BatchCallContext(ctx context.Context, b []rpc.BatchElem) error
}

// maxBatch bounds the calls of one batch request (geth accepts 1000 by
// default; providers often fewer).
const maxBatch = 100

// callEach makes one call of method for each argument list, answer i into
// results[i]: in batch requests of at most maxBatch when the client sends
// batches, else one by one. what names call i in an error.
func callEach(ctx context.Context, raw RawCaller, method string, args [][]any, results []any, what func(i int) string) error {
	bc, ok := raw.(batchCaller)
	if !ok {
		for i := range args {
			if err := raw.CallContext(ctx, results[i], method, args[i]...); err != nil {
				return fmt.Errorf("%s of %s: %w", method, what(i), err)
			}
		}
		return nil
	}
	for start := 0; start < len(args); start += maxBatch {
		end := min(start+maxBatch, len(args))
		batch := make([]rpc.BatchElem, 0, end-start)
		for i := start; i < end; i++ {
			batch = append(batch, rpc.BatchElem{Method: method, Args: args[i], Result: results[i]})
		}
		if err := bc.BatchCallContext(ctx, batch); err != nil {
			return fmt.Errorf("%s: %w", method, err)
		}
		for i, e := range batch {
			if e.Error != nil {
				return fmt.Errorf("%s of %s: %w", method, what(start+i), e.Error)
			}
		}
	}
	return nil
}

// batchCallerOf returns what sends a node client's raw calls in batches:
// the client itself, its raw client, or its raw calls one by one; nil when
// it makes no raw calls.
func batchCallerOf(c any) batchCaller {
	if bc, ok := c.(batchCaller); ok {
		return bc
	}
	raw := rawCallerOf(c)
	if bc, ok := raw.(batchCaller); ok {
		return bc
	}
	if raw != nil {
		return oneByOne{raw}
	}
	return nil
}

// oneByOne sends a batch's calls one at a time, for a raw caller that
// sends no batches; each call's error is its element's.
type oneByOne struct{ RawCaller }

func (o oneByOne) BatchCallContext(ctx context.Context, b []rpc.BatchElem) error {
	for i := range b {
		b[i].Error = o.CallContext(ctx, b[i].Result, b[i].Method, b[i].Args...)
	}
	return ctx.Err()
}

// rawCallerOf returns the raw caller of a node client, or nil when it has
// none.
func rawCallerOf(c any) RawCaller {
	switch v := c.(type) {
	case RawCaller:
		return v
	case interface{ Client() *rpc.Client }:
		if rc := v.Client(); rc != nil {
			return rc
		}
		return nil
	}
	// go-ethereum's simulated client is a struct that embeds
	// *ethclient.Client as a field named Client, and that field hides the
	// embedded Client method.
	if v := reflect.ValueOf(c); v.Kind() == reflect.Struct {
		if f := v.FieldByName("Client"); f.IsValid() && f.CanInterface() {
			if ec, ok := f.Interface().(*ethclient.Client); ok && ec != nil {
				return ec.Client()
			}
		}
	}
	return nil
}

// CallContext makes one raw JSON-RPC call through the pool: bounded by its
// timeout, and moved to the next endpoint when this one gives no answer.
func (p *Pool) CallContext(ctx context.Context, result any, method string, args ...any) error {
	_, err := call(ctx, p, func(ctx context.Context, c *ethclient.Client) (struct{}, error) {
		return struct{}{}, c.Client().CallContext(ctx, result, method, args...)
	})
	return err
}

// BatchCallContext sends several raw calls in one request through the pool.
// An error one call gets from the node is in its BatchElem.Error; the error
// returned is the request's own (no answer at all), which moves the pool on.
func (p *Pool) BatchCallContext(ctx context.Context, b []rpc.BatchElem) error {
	_, err := call(ctx, p, func(ctx context.Context, c *ethclient.Client) (struct{}, error) {
		return struct{}{}, c.Client().BatchCallContext(ctx, b)
	})
	return err
}

// methodMissing reports whether err is the node saying it does not serve
// method (geth without the debug API, a node without the trace namespace, a
// provider plan without it), as opposed to a failure of the call: the
// JSON-RPC "method not found" code, or an error that names the method (or
// says "method") and says it is not served.
func methodMissing(err error, method string) bool {
	var re rpc.Error
	if !errors.As(err, &re) {
		return false
	}
	if re.ErrorCode() == -32601 { // JSON-RPC "method not found"
		return true
	}
	msg := strings.ToLower(re.Error())
	if !strings.Contains(msg, "method") && !strings.Contains(msg, strings.ToLower(method)) {
		return false
	}
	for _, s := range []string{"not found", "does not exist", "not available", "not supported", "unsupported", "not enabled", "not allowed", "not whitelisted"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}
