package contracts

import (
	"crypto/ecdsa"
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
)

// Names of the embedded contracts that grant approvals, for Load and Deploy.
const (
	// NameTestNFT is an ERC-721 collection (constructor: name, symbol).
	NameTestNFT = "TestNFT"
	// NameTestMultiToken is an ERC-1155 contract (no constructor arguments).
	NameTestMultiToken = "TestMultiToken"
	// NamePermit2 is the Permit2 stand-in; Permit2Alloc places it.
	NamePermit2 = "Permit2"
)

// Permit2 is the address of Uniswap's Permit2, the same on every chain it is
// deployed on (a CREATE2 deployment).
var Permit2 = common.HexToAddress("0x000000000022D473030F116dDEE9F6B43aC78BA3")

// Permit2Alloc returns the genesis alloc entry that places the runtime code
// of the Permit2 stand-in at Permit2, with empty storage and no balance.
// Merge it into the chain's own alloc.
func Permit2Alloc() (types.GenesisAlloc, error) {
	p, err := Load(NamePermit2)
	if err != nil {
		return nil, err
	}
	// Nonce 1, as a contract created on mainnet has (EIP-161).
	return types.GenesisAlloc{Permit2: {Code: p.DeployedBytecode, Balance: new(big.Int), Nonce: 1}}, nil
}

// PermitSingle is Permit2's signed allowance for one token (IAllowanceTransfer
// PermitSingle): the owner's signature lets anyone set it with permit.
type PermitSingle struct {
	Token       common.Address
	Amount      *big.Int // uint160
	Expiration  uint64   // uint48, unix seconds; 0 lasts until the end of the block
	Nonce       uint64   // uint48, the allowance's current nonce
	Spender     common.Address
	SigDeadline *big.Int
}

// EIP-712 type hashes of Permit2's allowance permits.
var (
	permit2DomainType = crypto.Keccak256([]byte("EIP712Domain(string name,uint256 chainId,address verifyingContract)"))
	permit2Name       = crypto.Keccak256([]byte("Permit2"))
	permitDetailsType = crypto.Keccak256([]byte("PermitDetails(address token,uint160 amount,uint48 expiration,uint48 nonce)"))
	permitSingleType  = crypto.Keccak256([]byte("PermitSingle(PermitDetails details,address spender,uint256 sigDeadline)PermitDetails(address token,uint160 amount,uint48 expiration,uint48 nonce)"))
)

// Digest is the EIP-712 hash an owner signs for p on the chain chainID
// (domain: name "Permit2", the chain id, Permit2 as verifying contract).
func (p PermitSingle) Digest(chainID *big.Int) common.Hash {
	word := func(v *big.Int) []byte { return common.LeftPadBytes(v.Bytes(), 32) }
	u := func(v uint64) []byte { return word(new(big.Int).SetUint64(v)) }
	amount, deadline := p.Amount, p.SigDeadline
	if amount == nil {
		amount = new(big.Int)
	}
	if deadline == nil {
		deadline = new(big.Int)
	}
	domain := crypto.Keccak256(permit2DomainType, permit2Name, word(chainID), common.LeftPadBytes(Permit2.Bytes(), 32))
	details := crypto.Keccak256(permitDetailsType, common.LeftPadBytes(p.Token.Bytes(), 32), word(amount), u(p.Expiration), u(p.Nonce))
	single := crypto.Keccak256(permitSingleType, details, common.LeftPadBytes(p.Spender.Bytes(), 32), word(deadline))
	return crypto.Keccak256Hash([]byte("\x19\x01"), domain, single)
}

// Sign returns the owner's 65-byte signature (r, s, v with v 27 or 28) of p,
// as permit takes it.
func (p PermitSingle) Sign(owner *ecdsa.PrivateKey, chainID *big.Int) ([]byte, error) {
	sig, err := crypto.Sign(p.Digest(chainID).Bytes(), owner)
	if err != nil {
		return nil, fmt.Errorf("contracts: signing a Permit2 permit: %w", err)
	}
	sig[64] += 27
	return sig, nil
}

// permitDetails and permitSingle are the ABI tuples of permit's argument.
type permitDetails struct {
	Token      common.Address
	Amount     *big.Int
	Expiration *big.Int
	Nonce      *big.Int
}

type permitSingle struct {
	Details     permitDetails
	Spender     common.Address
	SigDeadline *big.Int
}

// Arg is p as the PermitSingle argument of permit, for Artifact.Pack.
func (p PermitSingle) Arg() any {
	return permitSingle{
		Details: permitDetails{Token: p.Token, Amount: p.Amount, Expiration: new(big.Int).SetUint64(p.Expiration), Nonce: new(big.Int).SetUint64(p.Nonce)},
		Spender: p.Spender, SigDeadline: p.SigDeadline,
	}
}
