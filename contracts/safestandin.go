package contracts

import (
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
)

// NameSafeStandIn is the stand-in for a Safe as the Safe queue poller reads
// it (nonce, VERSION, approvedHashes, ExecutionSuccess/ExecutionFailure).
const NameSafeStandIn = "SafeStandIn"

// Storage slots of SafeStandIn: the nonce where a Safe keeps it, then the
// version string, then (after approvedHashes) the owners array.
var (
	safeStandInNonceSlot   = common.BigToHash(big.NewInt(5))
	safeStandInVersionSlot = common.BigToHash(big.NewInt(6))
	safeStandInOwnersSlot  = common.BigToHash(big.NewInt(8))
)

// SafeStandInAlloc returns a genesis alloc entry that places SafeStandIn's
// runtime code with the given VERSION(), nonce() and getOwners(), for a Safe
// that must sit at a fixed address (a mainnet Safe whose signed
// transactions name it). version must be shorter than 32 bytes, as every
// Safe version is.
func SafeStandInAlloc(version string, nonce uint64, owners ...common.Address) (types.Account, error) {
	art, err := Load(NameSafeStandIn)
	if err != nil {
		return types.Account{}, err
	}
	if len(version) == 0 || len(version) >= 32 {
		return types.Account{}, fmt.Errorf("contracts: %s: version %q must be 1 to 31 bytes", NameSafeStandIn, version)
	}
	// A Solidity string of under 32 bytes is stored in its slot: the bytes
	// left-aligned, twice the length in the last byte.
	var v common.Hash
	copy(v[:], version)
	v[31] = byte(2 * len(version))
	storage := map[common.Hash]common.Hash{
		safeStandInNonceSlot:   common.BigToHash(new(big.Int).SetUint64(nonce)),
		safeStandInVersionSlot: v,
		safeStandInOwnersSlot:  common.BigToHash(big.NewInt(int64(len(owners)))),
	}
	// A dynamic array keeps its length in its slot and its elements from
	// keccak256(slot) on.
	first := new(big.Int).SetBytes(crypto.Keccak256(safeStandInOwnersSlot[:]))
	for i, o := range owners {
		storage[common.BigToHash(new(big.Int).Add(first, big.NewInt(int64(i))))] = common.BytesToHash(o[:])
	}
	return types.Account{
		Code:    art.DeployedBytecode,
		Balance: new(big.Int),
		Nonce:   1,
		Storage: storage,
	}, nil
}
