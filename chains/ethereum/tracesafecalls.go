package ethereum

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/keywatch/keywatch/chains"
)

// This file finds, in a block's call traces, the calls other contracts made
// to watched Safes: an execTransaction sent through a relayer contract, a
// MultiSend batch, a parent Safe or a module. The Safe decoder (safes.go)
// reads such an execution's parameters from them when neither the
// transaction's input nor an L2 event explains it.
//
// The calls come from the same trace as the block's internal value
// movements (one debug_traceBlockByHash or trace_block a block): the trace
// is read when the Safe decoder first needs it and kept, so decoding the
// block's internal movements afterwards does not trace it again.

// safeCall is a CALL to a watched Safe that a trace shows.
type safeCall struct {
	tx       common.Hash
	from, to common.Address
	input    []byte
}

// blockTrace is what one trace of a block gives.
type blockTrace struct {
	frames []valueFrame
	calls  []safeCall
}

// safeCallsIn returns, in the order they were made, the calls made to the
// watched Safe addr inside transaction tx (the outermost call included):
// from Options.SafeCalls when it is set, else from the block's call traces.
// why says, when the traces cannot show them, why not (traces off, the
// node serves none, the tracer failed on the block); err is a failure the
// block must be decoded again for.
func (s *Source) safeCallsIn(ctx context.Context, block *types.Block, tx common.Hash, addr common.Address) (calls []TracedCall, why string, err error) {
	if s.opts.SafeCalls != nil {
		calls, err := s.opts.SafeCalls.CallsTo(ctx, block.Hash(), tx, addr)
		return calls, "", err
	}
	const prefix = "the Safe was called by another contract, and "
	t := s.trace
	switch {
	case t.mode == TracesOff:
		return nil, prefix + "call traces are not read (traces: off)", nil
	case t.raw == nil:
		return nil, prefix + "the node client makes no raw JSON-RPC calls, so no call traces are read", nil
	}
	b := chains.Block{Number: block.NumberU64(), Hash: block.Hash().Hex(), Parent: block.ParentHash().Hex(), Time: time.Unix(int64(block.Time()), 0).UTC()}
	res, err := t.read(ctx, b, block)
	if err != nil {
		return nil, "", err
	}
	if res.balance {
		if res.cause != nil {
			return nil, prefix + "the node's tracer failed on the block (" + clip(res.cause.Error(), 120) + ")", nil
		}
		return nil, prefix + "the node serves no call traces (traces read by balance only)", nil
	}
	for _, c := range res.calls {
		if c.tx == tx && c.to == addr {
			calls = append(calls, TracedCall{From: c.from, Input: c.input})
		}
	}
	return calls, "", nil
}

// safeAddrs is the set of watched Safes the trace decoders keep calls to.
func safeAddrs(wallets []Wallet) map[common.Address]bool {
	m := map[common.Address]bool{}
	for _, w := range wallets {
		if w.Safe {
			m[w.Address] = true
		}
	}
	return m
}

// callInput decodes a frame's input (hex, as the node wrote it). An input
// that is not hex is an answer that does not fit: the trace is read again.
func callInput(raw json.RawMessage, tx common.Hash) ([]byte, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var in hexutil.Bytes
	if err := json.Unmarshal(raw, &in); err != nil {
		return nil, fmt.Errorf("%w: a call to a watched Safe in transaction %s has an input that is not hex: %v", errTraceShape, tx.Hex(), err)
	}
	return in, nil
}

// debugSafeCalls returns the CALL frames to watched Safes in a
// debug_traceBlockByHash answer that decodeDebugTrace accepted: the
// transaction's own call included, in the order the calls were made; a
// frame that reverted, and everything below it, is left out (it did
// nothing, and logged nothing), as are the frames of a failed transaction.
func debugSafeCalls(block *types.Block, res []debugTxTrace, safes map[common.Address]bool) ([]safeCall, error) {
	if len(safes) == 0 {
		return nil, nil
	}
	var out []safeCall
	var walk func(tx common.Hash, f *callFrame) error
	walk = func(tx common.Hash, f *callFrame) error {
		if f.Error != "" {
			return nil
		}
		if f.Type == "CALL" && f.To != nil && safes[*f.To] {
			in, err := callInput(f.Input, tx)
			if err != nil {
				return err
			}
			out = append(out, safeCall{tx: tx, from: f.From, to: *f.To, input: in})
		}
		for i := range f.Calls {
			if err := walk(tx, &f.Calls[i]); err != nil {
				return err
			}
		}
		return nil
	}
	txs := block.Transactions()
	for i := range res {
		if res[i].Result == nil || i >= len(txs) {
			continue
		}
		if err := walk(txs[i].Hash(), res[i].Result); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// paritySafeCalls does the same for a trace_block answer that
// decodeParityTrace accepted: entries of type call and callType call to a
// watched Safe, neither failing nor under a frame that failed.
func paritySafeCalls(res []parityTraceItem, safes map[common.Address]bool) ([]safeCall, error) {
	if len(safes) == 0 {
		return nil, nil
	}
	failed := map[common.Hash]*parityTx{}
	for i := range res {
		it := &res[i]
		if it.TransactionHash == nil || it.Error == "" {
			continue
		}
		p := failed[*it.TransactionHash]
		if p == nil {
			p = &parityTx{failed: map[string]bool{}}
			failed[*it.TransactionHash] = p
		}
		p.failed[framePath(it.TraceAddress)] = true
	}
	var out []safeCall
	for i := range res {
		it := &res[i]
		a := &it.Action
		if it.TransactionHash == nil || !strings.EqualFold(it.Type, "call") || !strings.EqualFold(a.CallType, "call") ||
			a.From == nil || a.To == nil || !safes[*a.To] {
			continue
		}
		if p := failed[*it.TransactionHash]; p != nil && p.undone(it.TraceAddress) {
			continue
		}
		in, err := callInput(a.Input, *it.TransactionHash)
		if err != nil {
			return nil, err
		}
		out = append(out, safeCall{tx: *it.TransactionHash, from: *a.From, to: *a.To, input: in})
	}
	return out, nil
}
