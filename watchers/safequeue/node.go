package safequeue

// What the poller reads from the chain rather than from the service: the
// Safe's nonce and version (so a service that lies about them cannot hide a
// queued transaction, nor make one hash as it likes), on-chain approvals,
// and which safeTxHash an execution logged.

import (
	"context"
	"errors"
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
)

// Node is what the poller asks the chain's node. The daemon passes the
// chain's Ethereum client (ethclient, the node pool and the simulated
// backend's client all satisfy it).
type Node interface {
	ChainID(ctx context.Context) (*big.Int, error)
	BlockNumber(ctx context.Context) (uint64, error)
	CallContract(ctx context.Context, msg ethereum.CallMsg, block *big.Int) ([]byte, error)
	TransactionReceipt(ctx context.Context, tx common.Hash) (*types.Receipt, error)
}

// ErrNotSafe is wrapped by the error of an address that does not answer as
// a Safe does (no VERSION(), no nonce()).
var ErrNotSafe = errors.New("not a Safe")

// Selectors of the Safe's view functions the poller calls.
var (
	selNonce          = crypto.Keccak256([]byte("nonce()"))[:4]
	selVersion        = crypto.Keccak256([]byte("VERSION()"))[:4]
	selApprovedHashes = crypto.Keccak256([]byte("approvedHashes(address,bytes32)"))[:4]
)

// The events a Safe logs when execTransaction uses a nonce: txHash is the
// safeTxHash, in the data up to 1.4.1 and indexed from 1.5.0.
var (
	topicExecutionSuccess = crypto.Keccak256Hash([]byte("ExecutionSuccess(bytes32,uint256)"))
	topicExecutionFailure = crypto.Keccak256Hash([]byte("ExecutionFailure(bytes32,uint256)"))
)

var stringType, _ = abi.NewType("string", "", nil)

// chainReader reads a Safe's state through a Node.
type chainReader struct{ node Node }

// nonce is the Safe's nonce at block (nil: the latest).
func (c chainReader) nonce(ctx context.Context, addr common.Address, block *big.Int) (uint64, error) {
	out, err := c.node.CallContract(ctx, ethereum.CallMsg{To: &addr, Data: selNonce}, block)
	if err != nil {
		return 0, fmt.Errorf("call nonce() of Safe %s: %w", addr.Hex(), err)
	}
	if len(out) != 32 {
		return 0, fmt.Errorf("%w: %s answers nonce() with %d bytes", ErrNotSafe, addr.Hex(), len(out))
	}
	n := new(big.Int).SetBytes(out)
	if !n.IsUint64() {
		return 0, fmt.Errorf("Safe %s: nonce %s is out of range", addr.Hex(), n)
	}
	return n.Uint64(), nil
}

// version is the Safe's VERSION().
func (c chainReader) version(ctx context.Context, addr common.Address) (string, error) {
	out, err := c.node.CallContract(ctx, ethereum.CallMsg{To: &addr, Data: selVersion}, nil)
	if err != nil {
		return "", fmt.Errorf("call VERSION() of Safe %s: %w", addr.Hex(), err)
	}
	vals, err := abi.Arguments{{Type: stringType}}.Unpack(out)
	if err != nil || len(vals) != 1 {
		return "", fmt.Errorf("%w: %s answers VERSION() with %d bytes that are no string", ErrNotSafe, addr.Hex(), len(out))
	}
	v, _ := vals[0].(string)
	if v == "" {
		return "", fmt.Errorf("%w: %s answers VERSION() with an empty string", ErrNotSafe, addr.Hex())
	}
	return v, nil
}

// approved reports whether owner approved hash on chain (approveHash), as
// of the latest block.
func (c chainReader) approved(ctx context.Context, addr, owner common.Address, hash common.Hash) (bool, error) {
	data := append(append(append([]byte{}, selApprovedHashes...), common.LeftPadBytes(owner[:], 32)...), hash[:]...)
	out, err := c.node.CallContract(ctx, ethereum.CallMsg{To: &addr, Data: data}, nil)
	if err != nil {
		return false, fmt.Errorf("call approvedHashes of Safe %s: %w", addr.Hex(), err)
	}
	if len(out) != 32 {
		return false, fmt.Errorf("%w: %s answers approvedHashes with %d bytes", ErrNotSafe, addr.Hex(), len(out))
	}
	return new(big.Int).SetBytes(out).Sign() != 0, nil
}

// execution is what one transaction's receipt says a Safe executed.
type execution struct {
	hash    common.Hash // the safeTxHash the Safe logged
	success bool
	block   uint64
	blockID common.Hash
}

// executions reads the receipt of transaction tx and returns the
// safeTxHashes the Safe at addr logged executing in it (a transaction may
// execute several, through a multisend of execTransaction calls).
func (c chainReader) executions(ctx context.Context, addr common.Address, tx common.Hash) ([]execution, error) {
	r, err := c.node.TransactionReceipt(ctx, tx)
	if err != nil {
		return nil, fmt.Errorf("receipt of %s: %w", tx.Hex(), err)
	}
	var out []execution
	var block uint64
	if r.BlockNumber != nil {
		block = r.BlockNumber.Uint64()
	}
	for _, l := range r.Logs {
		if l.Address != addr || len(l.Topics) == 0 {
			continue
		}
		if l.Topics[0] != topicExecutionSuccess && l.Topics[0] != topicExecutionFailure {
			continue
		}
		var h common.Hash
		switch {
		case len(l.Topics) == 2:
			h = l.Topics[1]
		case len(l.Topics) == 1 && len(l.Data) >= 32:
			h = common.BytesToHash(l.Data[:32])
		default:
			continue
		}
		out = append(out, execution{hash: h, success: l.Topics[0] == topicExecutionSuccess, block: block, blockID: r.BlockHash})
	}
	return out, nil
}
