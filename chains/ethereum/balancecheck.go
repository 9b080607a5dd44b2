package ethereum

import (
	"context"
	"fmt"
	"math/big"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/keywatch/keywatch/chains"
)

// The Detail keys of an outflow the balance check found.
const (
	// DetailBalanceBefore and DetailBalanceAfter are the contract's balance
	// at the end of the parent block and of the block (in the native
	// asset's units).
	DetailBalanceBefore = "balance_before"
	DetailBalanceAfter  = "balance_after"
	// DetailBalanceCheck says why the block was checked by balance: traces
	// set to balance, no trace method on the node, or the tracer's failure.
	DetailBalanceCheck = "balance_check"
)

// blockBalances are the watched contracts' balances at the end of a block.
type blockBalances struct {
	hash common.Hash
	of   map[common.Address]*big.Int
}

// balanceCheck reads each watched contract's balance at the end of the
// block and of its parent, by block hash (EIP-1898), and returns an out
// event with counterparty "unknown" for each fall that the block's events
// (seen: native transfers in and out, internal movements) and the fees of
// transactions the contract sent do not explain. It fails closed: it cannot
// tell where the value went or which transaction moved it, so the event
// names neither, and its amount is the unexplained part (an unseen inflow
// in the same block makes it smaller). A rise is not reported.
func (s *Source) balanceCheck(ctx context.Context, block *types.Block, seen []chains.Event, cause error) ([]chains.Event, error) {
	t := s.trace
	if len(t.contracts) == 0 {
		return nil, nil
	}
	before, err := t.balancesAt(ctx, block.ParentHash())
	if err != nil {
		return nil, fmt.Errorf("balance check of block %d: parent %s: %w", block.NumberU64(), block.ParentHash().Hex(), err)
	}
	after, err := t.balancesAt(ctx, block.Hash())
	if err != nil {
		return nil, fmt.Errorf("balance check of block %d (%s): %w", block.NumberU64(), block.Hash().Hex(), err)
	}
	why := "traces: balance"
	switch {
	case cause != nil:
		why = "the tracer failed on the block: " + clip(cause.Error(), 300)
	case t.mode == TracesAuto:
		why = "the node serves neither debug_traceBlockByHash nor trace_block"
	}
	var out []chains.Event
	for _, w := range t.contracts {
		b0, b1 := before[w.Address], after[w.Address]
		// What the balance should be after the movements seen.
		expect := new(big.Int).Set(b0)
		for i := range seen {
			ev := &seen[i]
			if ev.Kind != chains.KindTransfer || ev.Token != "" || ev.Wallet != w.Name || ev.Amount.Units == nil {
				continue
			}
			switch ev.Direction {
			case chains.In:
				expect.Add(expect, ev.Amount.Units)
			case chains.Out:
				expect.Sub(expect, ev.Amount.Units)
			}
		}
		if b1.Cmp(expect) >= 0 {
			continue
		}
		fees, err := s.feesPaid(ctx, block, w.Address)
		if err != nil {
			return nil, fmt.Errorf("balance check of block %d: %w", block.NumberU64(), err)
		}
		expect.Sub(expect, fees)
		fall := new(big.Int).Sub(expect, b1)
		if fall.Sign() <= 0 {
			continue
		}
		amount := chains.NewAmount(fall, 18)
		out = append(out, chains.Event{
			ID:    chains.EventID(s.opts.Chain, block.Hash().Hex(), "balance:"+lower(w.Address)),
			Chain: s.opts.Chain, Block: block.NumberU64(), BlockHash: block.Hash().Hex(),
			Time: time.Unix(int64(block.Time()), 0).UTC(), Kind: chains.KindTransfer, Direction: chains.Out,
			Wallet: w.Name, WalletRole: w.Role, Owner: w.Owner,
			From: lower(w.Address), To: CounterpartyUnknown, Counterparty: CounterpartyUnknown,
			Asset: s.opts.NativeSymbol, Amount: amount, USD: amount.Float64() * s.opts.NativeUSD,
			Detail: map[string]string{
				DetailBalanceBefore: chains.NewAmount(b0, 18).String(),
				DetailBalanceAfter:  chains.NewAmount(b1, 18).String(),
				DetailBalanceCheck:  why,
			},
		})
	}
	return out, nil
}

// feesPaid is what transactions addr sent in the block paid in fees (a
// contract sends none, unless it is an account with EIP-7702 code).
func (s *Source) feesPaid(ctx context.Context, block *types.Block, addr common.Address) (*big.Int, error) {
	total := new(big.Int)
	for i, tx := range block.Transactions() {
		from, err := s.sender(ctx, block, i)
		if err != nil {
			return nil, err
		}
		if from != addr {
			continue
		}
		r, err := s.client.TransactionReceipt(ctx, tx.Hash())
		if err != nil {
			return nil, fmt.Errorf("receipt of tx %s: %w", tx.Hash().Hex(), err)
		}
		if r.EffectiveGasPrice != nil {
			total.Add(total, new(big.Int).Mul(r.EffectiveGasPrice, new(big.Int).SetUint64(r.GasUsed)))
		}
		if r.BlobGasPrice != nil {
			total.Add(total, new(big.Int).Mul(r.BlobGasPrice, new(big.Int).SetUint64(r.BlobGasUsed)))
		}
	}
	return total, nil
}

// balancesAt returns the watched contracts' balances at the end of the block
// with hash h: kept from the block before when it was read then (blocks come
// in order, so the parent's are usually known), else read in batches of
// eth_getBalance by block hash.
func (t *traceReader) balancesAt(ctx context.Context, h common.Hash) (map[common.Address]*big.Int, error) {
	t.mu.Lock()
	for _, b := range t.balances {
		if b.hash == h {
			t.mu.Unlock()
			return b.of, nil
		}
	}
	t.mu.Unlock()
	at := rpc.BlockNumberOrHashWithHash(h, false)
	args := make([][]any, len(t.contracts))
	results := make([]any, len(t.contracts))
	for i, w := range t.contracts {
		args[i], results[i] = []any{w.Address, at}, new(hexutil.Big)
	}
	if err := callEach(ctx, t.raw, "eth_getBalance", args, results, func(i int) string {
		return t.contracts[i].Name + " (" + lower(t.contracts[i].Address) + ")"
	}); err != nil {
		return nil, err
	}
	of := make(map[common.Address]*big.Int, len(t.contracts))
	for i, w := range t.contracts {
		of[w.Address] = results[i].(*hexutil.Big).ToInt()
	}
	t.mu.Lock()
	t.balances = append(t.balances, blockBalances{hash: h, of: of})
	if over := len(t.balances) - 2; over > 0 {
		t.balances = append([]blockBalances(nil), t.balances[over:]...)
	}
	t.mu.Unlock()
	return of, nil
}

// clip shortens s to at most n bytes, marking the cut.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
