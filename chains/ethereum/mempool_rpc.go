package ethereum

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/ethereum/go-ethereum/rpc"
)

// The node calls the mempool makes (mempool.go): the pending-transactions
// subscription and transaction look-ups that keep the sender the node
// reports.

// NodeTx is a transaction as the node reports it: the object of
// eth_getTransactionByHash and of a full newPendingTransactions
// notification. A node that notifies hashes only gives Hash alone (Full is
// false) and the transaction is looked up.
type NodeTx struct {
	Hash  common.Hash
	From  common.Address
	To    *common.Address // nil: a contract creation
	Nonce uint64
	Value *big.Int
	Input []byte
	// Block is the block that holds the transaction; nil while it is
	// pending.
	Block *uint64
	// Full is false for a notification that carried only the hash.
	Full bool
}

// nodeTxJSON is the part of the node's transaction object the mempool
// reads.
type nodeTxJSON struct {
	Hash        *common.Hash    `json:"hash"`
	From        *common.Address `json:"from"`
	To          *common.Address `json:"to"`
	Nonce       *hexutil.Uint64 `json:"nonce"`
	Value       *hexutil.Big    `json:"value"`
	Input       hexutil.Bytes   `json:"input"`
	BlockNumber *hexutil.Uint64 `json:"blockNumber"`
}

// UnmarshalJSON reads a transaction object, or a bare hash (a notification
// of a node that sends hashes only). It never fails: one notification the
// node garbled would otherwise end the whole subscription. What it cannot
// read has a zero Hash, which the mempool skips and a look-up refuses.
func (t *NodeTx) UnmarshalJSON(b []byte) error {
	*t = NodeTx{}
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var h common.Hash
		if json.Unmarshal(b, &h) == nil {
			t.Hash = h
		}
		return nil
	}
	var j nodeTxJSON
	if json.Unmarshal(b, &j) != nil || j.Hash == nil {
		return nil
	}
	out := NodeTx{Hash: *j.Hash, To: j.To, Input: j.Input, Value: new(big.Int)}
	if j.Value != nil {
		out.Value = j.Value.ToInt()
	}
	if j.BlockNumber != nil {
		n := uint64(*j.BlockNumber)
		out.Block = &n
	}
	// Without its sender or nonce the object cannot be judged: it is
	// looked up like a bare hash.
	if j.From != nil && j.Nonce != nil {
		out.From, out.Nonce, out.Full = *j.From, uint64(*j.Nonce), true
	}
	*t = out
	return nil
}

// SubscribePendingTransactions subscribes on a WebSocket endpoint to the
// transactions entering the node's mempool: eth_subscribe
// ["newPendingTransactions", true], which geth answers with whole
// transactions; a node that refuses the second parameter is asked for
// hashes (["newPendingTransactions"]). On http(s) it returns errNoPush.
func (p *Pool) SubscribePendingTransactions(ctx context.Context, ch chan<- NodeTx) (ethereum.Subscription, error) {
	if !p.isWebSocket() {
		return nil, errNoPush
	}
	c, idx, err := p.get(ctx)
	if err != nil {
		return nil, err
	}
	sub, err := c.Client().EthSubscribe(ctx, ch, "newPendingTransactions", true)
	var answered rpc.Error
	if errors.As(err, &answered) {
		sub, err = c.Client().EthSubscribe(ctx, ch, "newPendingTransactions")
	}
	if err != nil {
		err = scrub(err, p.urls[idx])
		if ctx.Err() == nil && !errors.As(err, &answered) {
			p.fail(idx, err)
		}
		return nil, err
	}
	return sub, nil
}

// NodeTransaction looks a transaction up (eth_getTransactionByHash):
// ethereum.NotFound when the node knows no such transaction, pending or
// mined.
func (p *Pool) NodeTransaction(ctx context.Context, hash common.Hash) (*NodeTx, error) {
	return call(ctx, p, func(ctx context.Context, c *ethclient.Client) (*NodeTx, error) {
		return nodeTransaction(ctx, c.Client(), hash)
	})
}

// nodeTransaction is eth_getTransactionByHash on one connection.
func nodeTransaction(ctx context.Context, c *rpc.Client, hash common.Hash) (*NodeTx, error) {
	var tx *NodeTx
	if err := c.CallContext(ctx, &tx, "eth_getTransactionByHash", hash); err != nil {
		return nil, err
	}
	if tx == nil {
		return nil, ethereum.NotFound
	}
	if tx.Hash != hash {
		return nil, fmt.Errorf("eth_getTransactionByHash %s: the node's answer is not that transaction (hash %s)", hash.Hex(), tx.Hash.Hex())
	}
	if !tx.Full {
		return nil, fmt.Errorf("eth_getTransactionByHash %s: the node's answer has no sender or nonce", hash.Hex())
	}
	return tx, nil
}

// NonceAt returns the account's nonce at a block (nil: the head).
func (p *Pool) NonceAt(ctx context.Context, account common.Address, block *big.Int) (uint64, error) {
	return call(ctx, p, func(ctx context.Context, c *ethclient.Client) (uint64, error) { return c.NonceAt(ctx, account, block) })
}
