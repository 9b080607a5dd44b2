// Package simchain drives an in-process Ethereum chain (go-ethereum's
// simulated backend) for the demo and for tests: named keys derived from
// fixed seeds, funded at genesis, and helpers that send a transaction and
// seal its block.
package simchain

import (
	"context"
	"crypto/ecdsa"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethclient/simulated"
	"github.com/ethereum/go-ethereum/params"

	"github.com/keywatch/keywatch/contracts"
)

// ChainID is the simulated backend's chain id.
var ChainID = big.NewInt(1337)

// Key derives a key from a fixed seed, so addresses are stable across runs
// and configuration files can name them.
func Key(name string) *ecdsa.PrivateKey {
	k, err := crypto.ToECDSA(crypto.Keccak256([]byte("keywatch demo key: " + name)))
	if err != nil {
		panic(err) // a keccak digest is a valid secp256k1 key with overwhelming probability
	}
	return k
}

// Addr is the address of a named key.
func Addr(name string) common.Address { return crypto.PubkeyToAddress(Key(name).PublicKey) }

// Ether converts whole ether to wei.
func Ether(n int64) *big.Int { return new(big.Int).Mul(big.NewInt(n), big.NewInt(params.Ether)) }

// Chain is a running simulated chain.
type Chain struct {
	Backend Backend
	Client  simulated.Client
}

// New starts a chain whose genesis funds the named keys (in ether) and holds
// extra accounts (contract code at fixed addresses, say).
func New(funds map[string]int64, extra types.GenesisAlloc) *Chain {
	alloc := types.GenesisAlloc{}
	for a, acc := range extra {
		alloc[a] = acc
	}
	for name, eth := range funds {
		alloc[Addr(name)] = types.Account{Balance: Ether(eth)}
	}
	b := simulated.NewBackend(alloc)
	return &Chain{Backend: b, Client: b.Client()}
}

// Close stops the chain.
func (c *Chain) Close() { c.Backend.Close() }

// Submit signs and sends a transaction from the named key without sealing a
// block.
//
// The simulated chain's transaction pool catches up with a sealed block in
// the background (go-ethereum syncs it before sealing the next block, not
// after inserting one), so a transaction sent right after Commit may be
// judged against the state before it: money just received reads as
// "insufficient funds". Submit tries again while that is so, for a few
// seconds; a sender that really lacks the funds still fails then.
func (c *Chain) Submit(ctx context.Context, from string, to *common.Address, value *big.Int, data []byte) (*types.Transaction, error) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		tx, err := contracts.Transact(ctx, c.Client, Key(from), ChainID, to, value, data)
		if err == nil {
			return tx, nil
		}
		if !strings.Contains(err.Error(), "insufficient funds") || time.Now().After(deadline) {
			return nil, fmt.Errorf("send from %s: %w", from, err)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("send from %s: %w", from, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Send submits a transaction, seals its block and checks that it succeeded.
func (c *Chain) Send(ctx context.Context, from string, to *common.Address, value *big.Int, data []byte) (*types.Receipt, error) {
	tx, err := c.Submit(ctx, from, to, value, data)
	if err != nil {
		return nil, err
	}
	c.Backend.Commit()
	return c.Receipt(ctx, tx)
}

// Receipt returns the receipt of a sealed transaction, or an error if it failed.
func (c *Chain) Receipt(ctx context.Context, tx *types.Transaction) (*types.Receipt, error) {
	r, err := c.Client.TransactionReceipt(ctx, tx.Hash())
	if err != nil {
		return nil, fmt.Errorf("receipt of %s: %w", tx.Hash().Hex(), err)
	}
	if r.Status != types.ReceiptStatusSuccessful {
		return r, fmt.Errorf("transaction %s failed", tx.Hash().Hex())
	}
	return r, nil
}

// Deploy deploys a contract from the embedded artifacts and seals its block.
func (c *Chain) Deploy(ctx context.Context, from, name string, args ...any) (common.Address, error) {
	addr, tx, err := contracts.Deploy(ctx, c.Client, Key(from), ChainID, name, args...)
	if err != nil {
		return common.Address{}, fmt.Errorf("deploy %s: %w", name, err)
	}
	c.Backend.Commit()
	if _, err := c.Receipt(ctx, tx); err != nil {
		return common.Address{}, fmt.Errorf("deploy %s: %w", name, err)
	}
	return addr, nil
}

// Call packs a method call of a contract artifact and sends it.
func (c *Chain) Call(ctx context.Context, from string, contract common.Address, artifact, method string, args ...any) (*types.Receipt, error) {
	a, err := contracts.Load(artifact)
	if err != nil {
		return nil, err
	}
	data, err := a.Pack(method, args...)
	if err != nil {
		return nil, fmt.Errorf("pack %s.%s: %w", artifact, method, err)
	}
	return c.Send(ctx, from, &contract, nil, data)
}
