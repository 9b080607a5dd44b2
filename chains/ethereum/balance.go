package ethereum

import (
	"context"
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"

	"github.com/keywatch/keywatch/chains"
)

// BalanceClient is the part of a node client the balance reader uses. Both
// *ethclient.Client (and Pool) and go-ethereum's simulated.Client satisfy it.
type BalanceClient interface {
	BalanceAt(ctx context.Context, account common.Address, block *big.Int) (*big.Int, error)
	CallContract(ctx context.Context, call ethereum.CallMsg, block *big.Int) ([]byte, error)
}

// Balances reads what a wallet held from the node, for the drain detector.
type Balances struct {
	client BalanceClient
	tokens map[common.Address]Token
}

// NewBalances makes a balance reader over a node client; tokens give the
// decimals of ERC-20 balances.
func NewBalances(client BalanceClient, tokens []Token) *Balances {
	b := &Balances{client: client, tokens: map[common.Address]Token{}}
	for _, t := range tokens {
		b.tokens[t.Address] = t
	}
	return b
}

// balanceOfSelector is ERC-20 balanceOf(address).
var balanceOfSelector = common.FromHex("0x70a08231")

// BalanceBefore returns the balance of the event's sender (the watched
// wallet of an outflow) in the event's asset at the end of the block before
// the event's: what it held before the outflow. For a mempool event (block
// 0) it is the balance at the node's head, which the pending transaction
// has not spent yet.
func (b *Balances) BalanceBefore(ctx context.Context, ev *chains.Event) (chains.Amount, error) {
	if !common.IsHexAddress(ev.From) {
		return chains.Amount{}, fmt.Errorf("%q is not an address", ev.From)
	}
	owner := common.HexToAddress(ev.From)
	var at *big.Int // the head
	where := "the head"
	if ev.Block > 0 {
		at = new(big.Int).SetUint64(ev.Block - 1)
		where = "block " + at.String()
	}
	if ev.Token == "" {
		v, err := b.client.BalanceAt(ctx, owner, at)
		if err != nil {
			return chains.Amount{}, fmt.Errorf("balance of %s at %s: %w", ev.From, where, err)
		}
		return chains.NewAmount(v, 18), nil
	}
	token := common.HexToAddress(ev.Token)
	t, ok := b.tokens[token]
	if !ok {
		return chains.Amount{}, fmt.Errorf("token %s is not configured: its decimals are unknown", ev.Token)
	}
	data := append(append([]byte(nil), balanceOfSelector...), common.LeftPadBytes(owner.Bytes(), 32)...)
	out, err := b.client.CallContract(ctx, ethereum.CallMsg{To: &token, Data: data}, at)
	if err != nil {
		return chains.Amount{}, fmt.Errorf("%s balanceOf(%s) at %s: %w", t.Symbol, ev.From, where, err)
	}
	if len(out) != 32 {
		return chains.Amount{}, fmt.Errorf("%s balanceOf(%s) at %s: the node returned %d bytes, want 32", t.Symbol, ev.From, where, len(out))
	}
	return chains.NewAmount(new(big.Int).SetBytes(out), t.Decimals), nil
}
