package ethereum

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
)

// parityTraceItem is one entry of a trace_block answer, in the parity trace
// format (OpenEthereum's trace module, served by Erigon, Nethermind and
// Reth): one flat entry per frame, placed by its traceAddress under the
// transaction's own call (traceAddress []).
//
//	call:    action {callType, from, to, value, gas, input}, result {gasUsed, output}
//	create:  action {from, value, gas, init, creationMethod (Erigon, Reth: create, create2)}, result {address, code, gasUsed}
//	suicide: action {address, refundAddress, balance}, result null
//	reward:  action {author, rewardType, value}, no transaction
//
// A frame that failed has "error" and no result; the frames below it carry
// no error of their own.
type parityTraceItem struct {
	Type   string `json:"type"`
	Action struct {
		CallType       string          `json:"callType"`
		From           *common.Address `json:"from"`
		To             *common.Address `json:"to"`
		Value          *hexutil.Big    `json:"value"`
		CreationMethod string          `json:"creationMethod"`
		Address        *common.Address `json:"address"`
		RefundAddress  *common.Address `json:"refundAddress"`
		Balance        *hexutil.Big    `json:"balance"`
		Input          json.RawMessage `json:"input"` // decoded only for calls to watched Safes
	} `json:"action"`
	Result *struct {
		Address *common.Address `json:"address"`
	} `json:"result"`
	Error           string       `json:"error"`
	BlockHash       *common.Hash `json:"blockHash"`
	TransactionHash *common.Hash `json:"transactionHash"`
	TraceAddress    []int        `json:"traceAddress"`
}

// parityTrace reads a block's value frames, and the calls to watched
// Safes, with trace_block. trace_block takes a block number, so every
// entry's blockHash is checked against the block's: an answer from another
// branch (a reorg between the calls) is an error, and the block is traced
// again.
func parityTrace(ctx context.Context, raw RawCaller, block *types.Block, safes map[common.Address]bool) (blockTrace, error) {
	var res []parityTraceItem
	if err := raw.CallContext(ctx, &res, methodParityTrace, hexutil.Uint64(block.NumberU64())); err != nil {
		return blockTrace{}, fmt.Errorf("%s of block %d: %w", methodParityTrace, block.NumberU64(), err)
	}
	frames, err := decodeParityTrace(block, res)
	if err != nil {
		return blockTrace{}, fmt.Errorf("%s of block %d (%s): %w", methodParityTrace, block.NumberU64(), block.Hash().Hex(), err)
	}
	calls, err := paritySafeCalls(res, safes)
	if err != nil {
		return blockTrace{}, fmt.Errorf("%s of block %d (%s): %w", methodParityTrace, block.NumberU64(), block.Hash().Hex(), err)
	}
	return blockTrace{frames: frames, calls: calls}, nil
}

// parityTx is what decoding gathers about one transaction's frames.
type parityTx struct {
	signer  common.Address
	rooted  bool
	failed  map[string]bool // trace addresses of frames that failed
	entries []*parityTraceItem
}

// decodeParityTrace checks that the answer is of this block and covers each
// of its transactions, and returns the frames below each transaction's own
// call that moved value, neither failing nor lying under a frame that
// failed. A transaction whose own call failed moved nothing.
func decodeParityTrace(block *types.Block, res []parityTraceItem) ([]valueFrame, error) {
	txs := block.Transactions()
	byTx := make(map[common.Hash]*parityTx, len(txs))
	for _, tx := range txs {
		byTx[tx.Hash()] = &parityTx{failed: map[string]bool{}}
	}
	for i := range res {
		it := &res[i]
		if it.BlockHash != nil && *it.BlockHash != block.Hash() {
			return nil, fmt.Errorf("%w: entry %d is of block %s", errTraceShape, i, it.BlockHash.Hex())
		}
		if it.TransactionHash == nil || *it.TransactionHash == (common.Hash{}) {
			continue // a block or uncle reward: not a call
		}
		ptx, ok := byTx[*it.TransactionHash]
		if !ok {
			return nil, fmt.Errorf("%w: entry %d is of transaction %s, which the block does not hold", errTraceShape, i, it.TransactionHash.Hex())
		}
		if it.Error != "" {
			ptx.failed[framePath(it.TraceAddress)] = true
		}
		if len(it.TraceAddress) == 0 {
			if it.Action.From == nil {
				return nil, fmt.Errorf("%w: the call of transaction %s has no from", errTraceShape, it.TransactionHash.Hex())
			}
			ptx.rooted, ptx.signer = true, *it.Action.From
			continue
		}
		ptx.entries = append(ptx.entries, it)
	}
	var out []valueFrame
	for _, tx := range txs {
		ptx := byTx[tx.Hash()]
		if !ptx.rooted {
			return nil, fmt.Errorf("%w: no trace of transaction %s", errTraceShape, tx.Hash().Hex())
		}
		for _, it := range ptx.entries {
			if ptx.undone(it.TraceAddress) {
				continue
			}
			if f, ok := parityFrame(it); ok {
				f.tx, f.signer, f.path = tx.Hash(), ptx.signer, framePath(it.TraceAddress)
				out = append(out, f)
			}
		}
	}
	return out, nil
}

// undone reports whether the frame at addr, or a frame above it (the
// transaction's own call included), failed.
func (p *parityTx) undone(addr []int) bool {
	for n := 0; n <= len(addr); n++ {
		if p.failed[framePath(addr[:n])] {
			return true
		}
	}
	return false
}

// parityFrame reads the movement of one entry: a call (callType call; a
// delegatecall, staticcall or callcode moves nothing, see debugKinds), a
// create or create2, or a self-destruct; value > 0.
func parityFrame(it *parityTraceItem) (valueFrame, bool) {
	var f valueFrame
	a := &it.Action
	switch strings.ToLower(it.Type) {
	case "call":
		if !strings.EqualFold(a.CallType, "call") || a.From == nil || a.To == nil || a.Value == nil {
			return f, false
		}
		f.kind, f.from, f.to, f.value = "call", *a.From, *a.To, a.Value.ToInt()
	case "create":
		if a.From == nil || a.Value == nil || it.Result == nil || it.Result.Address == nil {
			return f, false
		}
		f.kind = "create"
		if strings.EqualFold(a.CreationMethod, "create2") {
			f.kind = "create2"
		}
		f.from, f.to, f.value = *a.From, *it.Result.Address, a.Value.ToInt()
	case "suicide", "selfdestruct":
		if a.Address == nil || a.RefundAddress == nil || a.Balance == nil {
			return f, false
		}
		f.kind, f.from, f.to, f.value = "selfdestruct", *a.Address, *a.RefundAddress, a.Balance.ToInt()
	default:
		return f, false
	}
	return f, f.value.Sign() > 0
}
