package ethereum

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
)

// debugTxTrace is one transaction's entry in geth's debug_traceBlockByHash
// answer: the callTracer's frame, or why tracing it failed.
type debugTxTrace struct {
	TxHash common.Hash `json:"txHash"`
	Result *callFrame  `json:"result"`
	Error  string      `json:"error"`
}

// callFrame is the part of a callTracer frame (go-ethereum
// eth/tracers/native/call.go) that says where value went, and the input
// (kept as the node wrote it, decoded only for calls to watched Safes:
// tracesafecalls.go). Output, gas and logs are not kept.
type callFrame struct {
	Type  string          `json:"type"`
	From  common.Address  `json:"from"`
	To    *common.Address `json:"to"`
	Value *hexutil.Big    `json:"value"`
	Input json.RawMessage `json:"input"`
	Error string          `json:"error"`
	Calls []callFrame     `json:"calls"`
}

// debugKinds are the callTracer frame types that move value from the frame's
// from to its to. DELEGATECALL and STATICCALL move none (a DELEGATECALL
// frame shows its parent's value, which stays put), and neither does
// CALLCODE: it runs another contract's code on the caller's own account, so
// the value it carries goes from the caller to the caller.
var debugKinds = map[string]string{"CALL": "call", "CREATE": "create", "CREATE2": "create2", "SELFDESTRUCT": "selfdestruct"}

// debugTrace reads a block's value frames, and the calls to watched Safes,
// with debug_traceBlockByHash and the callTracer: by hash, so a reorg
// cannot mix two blocks.
func debugTrace(ctx context.Context, raw RawCaller, block *types.Block, safes map[common.Address]bool) (blockTrace, error) {
	var res []debugTxTrace
	if err := raw.CallContext(ctx, &res, methodDebugTrace, block.Hash(), map[string]any{"tracer": "callTracer"}); err != nil {
		return blockTrace{}, fmt.Errorf("%s of block %d (%s): %w", methodDebugTrace, block.NumberU64(), block.Hash().Hex(), err)
	}
	frames, err := decodeDebugTrace(block, res)
	if err != nil {
		return blockTrace{}, fmt.Errorf("%s of block %d (%s): %w", methodDebugTrace, block.NumberU64(), block.Hash().Hex(), err)
	}
	calls, err := debugSafeCalls(block, res, safes)
	if err != nil {
		return blockTrace{}, fmt.Errorf("%s of block %d (%s): %w", methodDebugTrace, block.NumberU64(), block.Hash().Hex(), err)
	}
	return blockTrace{frames: frames, calls: calls}, nil
}

// decodeDebugTrace checks that the answer holds one trace per transaction of
// the block, in order, and returns the frames below each transaction's own
// call that moved value and did not revert. A transaction that failed moved
// nothing; a frame that reverted undid its own movement and everything
// below it, though the frames below carry no error of their own.
func decodeDebugTrace(block *types.Block, res []debugTxTrace) ([]valueFrame, error) {
	txs := block.Transactions()
	if len(res) != len(txs) {
		return nil, fmt.Errorf("%w: %d transaction traces for %d transactions", errTraceShape, len(res), len(txs))
	}
	var out []valueFrame
	for i, r := range res {
		tx := txs[i].Hash()
		if r.TxHash != (common.Hash{}) && r.TxHash != tx {
			return nil, fmt.Errorf("%w: trace %d is of transaction %s, the block's is %s", errTraceShape, i, r.TxHash.Hex(), tx.Hex())
		}
		if r.Error != "" {
			return nil, fmt.Errorf("tracing transaction %s failed: %s", tx.Hex(), r.Error)
		}
		if r.Result == nil {
			return nil, fmt.Errorf("%w: transaction %s has no call frame", errTraceShape, tx.Hex())
		}
		if r.Result.Error != "" {
			continue // the transaction failed
		}
		out = appendDebugFrames(out, tx, r.Result.From, r.Result.Calls, "")
	}
	return out, nil
}

func appendDebugFrames(out []valueFrame, tx common.Hash, signer common.Address, calls []callFrame, parent string) []valueFrame {
	for i := range calls {
		c := &calls[i]
		path := strconv.Itoa(i)
		if parent != "" {
			path = parent + "." + path
		}
		if c.Error != "" {
			continue // reverted, with everything below it
		}
		if kind, ok := debugKinds[c.Type]; ok && c.To != nil && c.Value != nil && c.Value.ToInt().Sign() > 0 {
			out = append(out, valueFrame{tx: tx, signer: signer, path: path, kind: kind, from: c.From, to: *c.To, value: c.Value.ToInt()})
		}
		out = appendDebugFrames(out, tx, signer, c.Calls, path)
	}
	return out
}
