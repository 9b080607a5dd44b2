// Package safe reads Safe (formerly Gnosis Safe) multisig wallets, versions
// 1.1.1 to 1.4.1: the EIP-712 hash owners sign for a multisig transaction
// (safeTxHash) and the owners whose signatures a transaction carries. It has
// no node client: the Ethereum watcher and the Safe queue poller both use it.
package safe

import (
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/math"
	"github.com/ethereum/go-ethereum/crypto"
)

// Operation is how a Safe executes a transaction.
type Operation uint8

const (
	Call         Operation = 0
	DelegateCall Operation = 1
)

// String is the operation as events carry it: call or delegatecall.
func (o Operation) String() string {
	switch o {
	case Call:
		return "call"
	case DelegateCall:
		return "delegatecall"
	}
	return "operation-" + strconv.Itoa(int(o))
}

// Tx is a Safe multisig transaction: the fields execTransaction takes before
// its signatures, and the Safe nonce it is signed for.
type Tx struct {
	To             common.Address
	Value          *big.Int
	Data           []byte
	Operation      Operation
	SafeTxGas      *big.Int
	BaseGas        *big.Int
	GasPrice       *big.Int
	GasToken       common.Address
	RefundReceiver common.Address
	Nonce          *big.Int
}

var (
	// safeTxTypeHash is keccak256 of the SafeTx struct type (1.0.0 on).
	safeTxTypeHash = crypto.Keccak256Hash([]byte("SafeTx(address to,uint256 value,bytes data,uint8 operation,uint256 safeTxGas,uint256 baseGas,uint256 gasPrice,address gasToken,address refundReceiver,uint256 nonce)"))
	// domainTypeHash is the EIP-712 domain of Safes from 1.3.0 on; earlier
	// ones leave the chain id out (domainTypeHashLegacy).
	domainTypeHash       = crypto.Keccak256Hash([]byte("EIP712Domain(uint256 chainId,address verifyingContract)"))
	domainTypeHashLegacy = crypto.Keccak256Hash([]byte("EIP712Domain(address verifyingContract)"))
)

// ParseVersion reads a Safe's VERSION() ("1.3.0", "1.4.1+L2") as major,
// minor, patch.
func ParseVersion(v string) ([3]int, error) {
	var out [3]int
	core, _, _ := strings.Cut(v, "+")
	parts := strings.Split(core, ".")
	if len(parts) != 3 {
		return out, fmt.Errorf("safe version %q: want major.minor.patch", v)
	}
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			return out, fmt.Errorf("safe version %q: want major.minor.patch", v)
		}
		out[i] = n
	}
	return out, nil
}

// Supported reports whether keywatch reads Safes of version v (1.1.1 to
// 1.4.1).
func Supported(v string) bool {
	n, err := ParseVersion(v)
	if err != nil {
		return false
	}
	return cmpVersion(n, [3]int{1, 1, 1}) >= 0 && cmpVersion(n, [3]int{1, 4, 1}) <= 0
}

func cmpVersion(a, b [3]int) int {
	for i := range a {
		if a[i] != b[i] {
			if a[i] < b[i] {
				return -1
			}
			return 1
		}
	}
	return 0
}

// DomainSeparator is the EIP-712 domain separator of the Safe at address
// safe on chain chainID, for the Safe's version.
func DomainSeparator(chainID *big.Int, safe common.Address, version string) (common.Hash, error) {
	n, err := ParseVersion(version)
	if err != nil {
		return common.Hash{}, err
	}
	if cmpVersion(n, [3]int{1, 3, 0}) < 0 {
		return crypto.Keccak256Hash(domainTypeHashLegacy[:], common.LeftPadBytes(safe[:], 32)), nil
	}
	return crypto.Keccak256Hash(domainTypeHash[:], word(chainID), common.LeftPadBytes(safe[:], 32)), nil
}

// Hash is the safeTxHash of tx for the Safe at address safe: what its owners
// sign, and what execTransaction checks their signatures against.
func Hash(chainID *big.Int, safe common.Address, version string, tx Tx) (common.Hash, error) {
	domain, err := DomainSeparator(chainID, safe, version)
	if err != nil {
		return common.Hash{}, err
	}
	dataHash := crypto.Keccak256Hash(tx.Data)
	structHash := crypto.Keccak256Hash(
		safeTxTypeHash[:],
		common.LeftPadBytes(tx.To[:], 32),
		word(tx.Value),
		dataHash[:],
		word(big.NewInt(int64(tx.Operation))),
		word(tx.SafeTxGas),
		word(tx.BaseGas),
		word(tx.GasPrice),
		common.LeftPadBytes(tx.GasToken[:], 32),
		common.LeftPadBytes(tx.RefundReceiver[:], 32),
		word(tx.Nonce),
	)
	return crypto.Keccak256Hash([]byte{0x19, 0x01}, domain[:], structHash[:]), nil
}

// word is v as a 32-byte big-endian word (0 for nil).
func word(v *big.Int) []byte {
	if v == nil {
		return make([]byte, 32)
	}
	return math.U256Bytes(new(big.Int).Set(v))
}

// ErrBadSignatures is returned for a signatures blob that is not a whole
// number of 65-byte signatures, or whose ECDSA part does not recover.
var ErrBadSignatures = errors.New("malformed safe signatures")

// Signers returns the owners whose signatures sigs (execTransaction's
// packed signatures) carry for hash, in their order. Each 65-byte
// signature is r, s, v: v 0 is a contract signature (EIP-1271; the owner is
// r), v 1 an approved hash (the owner is r, or the sender of the
// transaction), v above 30 an eth_sign signature (v - 4 over the message
// prefix), any other v a plain ECDSA signature over hash. Contract
// signatures carry their data after the static part; only the owners are
// read here.
func Signers(hash common.Hash, sigs []byte) ([]common.Address, error) {
	if len(sigs) == 0 {
		return nil, nil
	}
	if len(sigs)%65 != 0 && !hasDynamicPart(sigs) {
		return nil, fmt.Errorf("%w: %d bytes", ErrBadSignatures, len(sigs))
	}
	var out []common.Address
	for i := 0; i+65 <= len(sigs); i += 65 {
		r, s, v := sigs[i:i+32], sigs[i+32:i+64], sigs[i+64]
		switch {
		case v == 0 || v == 1:
			out = append(out, common.BytesToAddress(r))
			if v == 0 {
				// The dynamic part starts at offset s; stop before reading
				// it as signatures.
				if off := new(big.Int).SetBytes(s); off.IsInt64() && int(off.Int64()) <= i+65 {
					return out, nil
				}
			}
		default:
			digest := hash
			if v > 30 {
				digest = crypto.Keccak256Hash([]byte("\x19Ethereum Signed Message:\n32"), hash[:])
				v -= 4
			}
			if v < 27 {
				return nil, fmt.Errorf("%w: signature %d has v %d", ErrBadSignatures, i/65, sigs[i+64])
			}
			sig := make([]byte, 65)
			copy(sig, r)
			copy(sig[32:], s)
			sig[64] = v - 27
			pub, err := crypto.SigToPub(digest[:], sig)
			if err != nil {
				return nil, fmt.Errorf("%w: signature %d: %v", ErrBadSignatures, i/65, err)
			}
			out = append(out, crypto.PubkeyToAddress(*pub))
		}
	}
	return out, nil
}

// hasDynamicPart reports whether sigs holds a contract signature (v 0),
// whose data follows the static signatures and makes the length arbitrary.
func hasDynamicPart(sigs []byte) bool {
	for i := 0; i+65 <= len(sigs); i += 65 {
		if sigs[i+64] == 0 {
			return true
		}
	}
	return false
}
