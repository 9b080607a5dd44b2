package ethereum

import (
	"context"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/rpc"
)

// maxKnownCode bounds the addresses remembered to hold code.
const maxKnownCode = 50_000

// runsNoCode reports whether no transaction of the block can run code, so
// that the block makes no internal call and need not be traced: every
// transaction is a call (not a creation, not an EIP-7702 authorization) to
// an address that held no code at the end of the parent block.
//
// This holds for the whole block, not only for its first transaction: code
// can appear at an address during a block only through a creation or code
// that runs (a contract's CREATE, an authorization list), and any of those
// makes the block fail the test. An address that holds EIP-7702 delegation
// code has code. Precompiles hold none and make no calls.
//
// Addresses seen to hold code are remembered, so a block that calls a
// contract seen before is traced at once without asking; the others are
// asked in one batch of eth_getCode at the parent block's hash. When that
// fails, the block is traced (false): the rule only ever skips a trace the
// node has shown to be empty.
func (t *traceReader) runsNoCode(ctx context.Context, block *types.Block) bool {
	var ask []common.Address
	seen := map[common.Address]bool{}
	t.mu.Lock()
	for _, tx := range block.Transactions() {
		if tx.To() == nil || tx.Type() == types.SetCodeTxType || t.withCode[*tx.To()] {
			t.mu.Unlock()
			return false
		}
		if !seen[*tx.To()] {
			seen[*tx.To()] = true
			ask = append(ask, *tx.To())
		}
	}
	t.mu.Unlock()
	codes, err := t.codes(ctx, ask, block.ParentHash())
	if err != nil {
		t.log.Debug("traces: cannot tell whether the block runs code; tracing it", "block", block.NumberU64(), "err", err)
		return false
	}
	free := true
	t.mu.Lock()
	defer t.mu.Unlock()
	for i, code := range codes {
		if len(code) > 0 {
			free = false
			if len(t.withCode) >= maxKnownCode {
				clear(t.withCode)
			}
			t.withCode[ask[i]] = true
		}
	}
	return free
}

// codes reads the code of each address at the end of the block with hash
// at.
func (t *traceReader) codes(ctx context.Context, addrs []common.Address, at common.Hash) ([]hexutil.Bytes, error) {
	ref := rpc.BlockNumberOrHashWithHash(at, false)
	args := make([][]any, len(addrs))
	results := make([]any, len(addrs))
	out := make([]hexutil.Bytes, len(addrs))
	for i, a := range addrs {
		args[i], results[i] = []any{a, ref}, &out[i]
	}
	if err := callEach(ctx, t.raw, "eth_getCode", args, results, func(i int) string { return lower(addrs[i]) }); err != nil {
		return nil, err
	}
	return out, nil
}
