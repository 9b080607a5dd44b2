package safe

import (
	"bytes"
	"errors"
	"fmt"
	"math/big"
	"strings"

	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
)

// Topics of the events a Safe logs, 1.1.1 to 1.4.1. The signature (and so
// topic0) of each is the same across versions; 1.4.1 indexes the address
// (and ExecutionSuccess/Failure's txHash) that earlier versions put in the
// data.
var (
	TopicAddedOwner             = crypto.Keccak256Hash([]byte("AddedOwner(address)"))
	TopicRemovedOwner           = crypto.Keccak256Hash([]byte("RemovedOwner(address)"))
	TopicChangedThreshold       = crypto.Keccak256Hash([]byte("ChangedThreshold(uint256)"))
	TopicEnabledModule          = crypto.Keccak256Hash([]byte("EnabledModule(address)"))
	TopicDisabledModule         = crypto.Keccak256Hash([]byte("DisabledModule(address)"))
	TopicChangedGuard           = crypto.Keccak256Hash([]byte("ChangedGuard(address)"))
	TopicChangedFallbackHandler = crypto.Keccak256Hash([]byte("ChangedFallbackHandler(address)"))
	// TopicChangedMasterCopy is 1.1.1 and 1.2.0's changeMasterCopy; later
	// singletons can only be changed by a write to slot 0.
	TopicChangedMasterCopy = crypto.Keccak256Hash([]byte("ChangedMasterCopy(address)"))

	TopicExecutionSuccess           = crypto.Keccak256Hash([]byte("ExecutionSuccess(bytes32,uint256)"))
	TopicExecutionFailure           = crypto.Keccak256Hash([]byte("ExecutionFailure(bytes32,uint256)"))
	TopicExecutionFromModuleSuccess = crypto.Keccak256Hash([]byte("ExecutionFromModuleSuccess(address)"))
	TopicExecutionFromModuleFailure = crypto.Keccak256Hash([]byte("ExecutionFromModuleFailure(address)"))

	// The L2 singletons (GnosisSafeL2 1.3.0, SafeL2 1.4.1) log each
	// execution's parameters before running it.
	TopicSafeMultiSigTransaction = crypto.Keccak256Hash([]byte("SafeMultiSigTransaction(address,uint256,bytes,uint8,uint256,uint256,uint256,address,address,bytes,bytes)"))
	TopicSafeModuleTransaction   = crypto.Keccak256Hash([]byte("SafeModuleTransaction(address,address,uint256,bytes,uint8)"))
)

// Topics lists every topic above: the log filter of a watched Safe.
func Topics() []common.Hash {
	return []common.Hash{
		TopicAddedOwner, TopicRemovedOwner, TopicChangedThreshold, TopicEnabledModule, TopicDisabledModule,
		TopicChangedGuard, TopicChangedFallbackHandler, TopicChangedMasterCopy,
		TopicExecutionSuccess, TopicExecutionFailure, TopicExecutionFromModuleSuccess, TopicExecutionFromModuleFailure,
		TopicSafeMultiSigTransaction, TopicSafeModuleTransaction,
	}
}

// The admin changes a Safe logs, as events carry them in detail.change.
const (
	ChangeAddedOwner      = "added-owner"
	ChangeRemovedOwner    = "removed-owner"
	ChangeThreshold       = "threshold"
	ChangeEnabledModule   = "enabled-module"
	ChangeDisabledModule  = "disabled-module"
	ChangeGuard           = "guard"
	ChangeFallbackHandler = "fallback-handler"
	ChangeSingleton       = "singleton"
)

// Change is one admin change a Safe logged.
type Change struct {
	Change string // ChangeAddedOwner, ...
	Event  string // the log's event name: AddedOwner, ...
	// Arg names the argument (owner, threshold, module, guard, handler,
	// singleton) and Value is its value: an address in lowercase hex, or
	// the threshold in decimal.
	Arg, Value string
}

var changes = map[common.Hash]struct{ change, event, arg string }{
	TopicAddedOwner:             {ChangeAddedOwner, "AddedOwner", "owner"},
	TopicRemovedOwner:           {ChangeRemovedOwner, "RemovedOwner", "owner"},
	TopicChangedThreshold:       {ChangeThreshold, "ChangedThreshold", "threshold"},
	TopicEnabledModule:          {ChangeEnabledModule, "EnabledModule", "module"},
	TopicDisabledModule:         {ChangeDisabledModule, "DisabledModule", "module"},
	TopicChangedGuard:           {ChangeGuard, "ChangedGuard", "guard"},
	TopicChangedFallbackHandler: {ChangeFallbackHandler, "ChangedFallbackHandler", "handler"},
	TopicChangedMasterCopy:      {ChangeSingleton, "ChangedMasterCopy", "singleton"},
}

// DecodeChange reads an admin change log of a Safe, in either form: the
// argument in the data (1.1.1 to 1.3.0) or indexed (1.4.1; the threshold is
// in the data in every version). ok is false for any other log, and for a
// log of the right topic whose shape fits neither form.
func DecodeChange(l *types.Log) (Change, bool) {
	if len(l.Topics) == 0 {
		return Change{}, false
	}
	c, ok := changes[l.Topics[0]]
	if !ok {
		return Change{}, false
	}
	var word []byte
	switch {
	case len(l.Topics) == 1 && len(l.Data) == 32:
		word = l.Data
	case len(l.Topics) == 2 && len(l.Data) == 0 && c.arg != "threshold":
		word = l.Topics[1][:]
	default:
		return Change{}, false
	}
	out := Change{Change: c.change, Event: c.event, Arg: c.arg}
	if c.arg == "threshold" {
		out.Value = new(big.Int).SetBytes(word).String()
	} else {
		if !isAddressWord(word) {
			return Change{}, false
		}
		out.Value = lowerHex(common.BytesToAddress(word))
	}
	return out, true
}

// Execution is an execution log of a Safe: ExecutionSuccess or
// ExecutionFailure (a multisig transaction: TxHash is its safeTxHash), or
// ExecutionFromModuleSuccess or ExecutionFromModuleFailure (Module ran it).
type Execution struct {
	Event   string
	Success bool
	TxHash  common.Hash    // multisig transactions
	Module  common.Address // module transactions
	// FromModule tells the two apart.
	FromModule bool
}

// DecodeExecution reads an execution log, in either form.
func DecodeExecution(l *types.Log) (Execution, bool) {
	if len(l.Topics) == 0 {
		return Execution{}, false
	}
	switch t := l.Topics[0]; t {
	case TopicExecutionSuccess, TopicExecutionFailure:
		e := Execution{Event: "ExecutionSuccess", Success: t == TopicExecutionSuccess}
		if !e.Success {
			e.Event = "ExecutionFailure"
		}
		switch {
		case len(l.Topics) == 1 && len(l.Data) == 64: // txHash, payment
			e.TxHash = common.BytesToHash(l.Data[:32])
		case len(l.Topics) == 2 && len(l.Data) == 32: // indexed txHash; payment
			e.TxHash = l.Topics[1]
		default:
			return Execution{}, false
		}
		return e, true
	case TopicExecutionFromModuleSuccess, TopicExecutionFromModuleFailure:
		e := Execution{Event: "ExecutionFromModuleSuccess", Success: t == TopicExecutionFromModuleSuccess, FromModule: true}
		if !e.Success {
			e.Event = "ExecutionFromModuleFailure"
		}
		if len(l.Topics) != 2 || len(l.Data) != 0 || !isAddressWord(l.Topics[1][:]) {
			return Execution{}, false
		}
		e.Module = common.BytesToAddress(l.Topics[1][:])
		return e, true
	}
	return Execution{}, false
}

// Params is what a Safe was asked to run: a multisig transaction with its
// signatures (execTransaction), or a module's call.
type Params struct {
	Tx         Tx
	Signatures []byte
	// NonceKnown says whether Tx.Nonce is the transaction's: the L2
	// event logs it, execTransaction's input does not carry it.
	NonceKnown bool
	// Module is set for execTransactionFromModule.
	Module     common.Address
	FromModule bool
}

// Selectors of the Safe methods that execute a transaction.
var (
	SelectorExecTransaction                     = crypto.Keccak256([]byte("execTransaction(address,uint256,bytes,uint8,uint256,uint256,uint256,address,address,bytes)"))[:4]
	SelectorExecTransactionFromModule           = crypto.Keccak256([]byte("execTransactionFromModule(address,uint256,bytes,uint8)"))[:4]
	SelectorExecTransactionFromModuleReturnData = crypto.Keccak256([]byte("execTransactionFromModuleReturnData(address,uint256,bytes,uint8)"))[:4]
)

var (
	execArgs   = mustArgs("address", "uint256", "bytes", "uint8", "uint256", "uint256", "uint256", "address", "address", "bytes")
	moduleArgs = mustArgs("address", "uint256", "bytes", "uint8")
	// SafeMultiSigTransaction's data, and its additionalInfo
	// abi.encode(nonce, msg.sender, threshold).
	multiSigArgs   = mustArgs("address", "uint256", "bytes", "uint8", "uint256", "uint256", "uint256", "address", "address", "bytes", "bytes")
	additionalArgs = mustArgs("uint256", "address", "uint256")
	moduleTxArgs   = mustArgs("address", "address", "uint256", "bytes", "uint8")
)

func mustArgs(types ...string) abi.Arguments {
	var out abi.Arguments
	for _, t := range types {
		typ, err := abi.NewType(t, "", nil)
		if err != nil {
			panic(fmt.Sprintf("safe: abi type %s: %v", t, err))
		}
		out = append(out, abi.Argument{Type: typ})
	}
	return out
}

// ErrNotExecution is returned by DecodeCall for input that calls no Safe
// execution method.
var ErrNotExecution = errors.New("not a Safe execution call")

// DecodeCall reads the input of a call to a Safe: execTransaction,
// execTransactionFromModule or execTransactionFromModuleReturnData. For the
// latter two the module is the caller, which the input does not say.
func DecodeCall(input []byte) (Params, error) {
	if len(input) < 4 {
		return Params{}, ErrNotExecution
	}
	sel, body := input[:4], input[4:]
	switch {
	case bytes.Equal(sel, SelectorExecTransaction):
		v, err := execArgs.Unpack(body)
		if err != nil {
			return Params{}, fmt.Errorf("execTransaction input: %w", err)
		}
		tx, err := txOf(v[:9])
		if err != nil {
			return Params{}, fmt.Errorf("execTransaction input: %w", err)
		}
		return Params{Tx: tx, Signatures: v[9].([]byte)}, nil
	case bytes.Equal(sel, SelectorExecTransactionFromModule), bytes.Equal(sel, SelectorExecTransactionFromModuleReturnData):
		v, err := moduleArgs.Unpack(body)
		if err != nil {
			return Params{}, fmt.Errorf("execTransactionFromModule input: %w", err)
		}
		op := v[3].(uint8)
		return Params{Tx: Tx{To: v[0].(common.Address), Value: v[1].(*big.Int), Data: v[2].([]byte), Operation: Operation(op)}, FromModule: true}, nil
	}
	return Params{}, ErrNotExecution
}

// DecodeL2Log reads a SafeMultiSigTransaction or SafeModuleTransaction log
// of an L2 singleton: the parameters of the execution that follows it.
func DecodeL2Log(l *types.Log) (Params, bool) {
	if len(l.Topics) != 1 {
		return Params{}, false
	}
	switch l.Topics[0] {
	case TopicSafeMultiSigTransaction:
		v, err := multiSigArgs.Unpack(l.Data)
		if err != nil {
			return Params{}, false
		}
		tx, err := txOf(v[:9])
		if err != nil {
			return Params{}, false
		}
		info, err := additionalArgs.Unpack(v[10].([]byte))
		if err != nil {
			return Params{}, false
		}
		tx.Nonce = info[0].(*big.Int)
		return Params{Tx: tx, Signatures: v[9].([]byte), NonceKnown: true}, true
	case TopicSafeModuleTransaction:
		v, err := moduleTxArgs.Unpack(l.Data)
		if err != nil {
			return Params{}, false
		}
		return Params{Module: v[0].(common.Address), FromModule: true,
			Tx: Tx{To: v[1].(common.Address), Value: v[2].(*big.Int), Data: v[3].([]byte), Operation: Operation(v[4].(uint8))}}, true
	}
	return Params{}, false
}

// txOf builds a Tx from the first nine execTransaction arguments.
func txOf(v []any) (Tx, error) {
	if len(v) != 9 {
		return Tx{}, errors.New("want 9 arguments")
	}
	op := v[3].(uint8)
	if op > uint8(DelegateCall) {
		return Tx{}, fmt.Errorf("operation %d is neither call (0) nor delegatecall (1)", op)
	}
	return Tx{
		To: v[0].(common.Address), Value: v[1].(*big.Int), Data: v[2].([]byte), Operation: Operation(op),
		SafeTxGas: v[4].(*big.Int), BaseGas: v[5].(*big.Int), GasPrice: v[6].(*big.Int),
		GasToken: v[7].(common.Address), RefundReceiver: v[8].(common.Address),
	}, nil
}

// isAddressWord reports whether a 32-byte word holds an address (its top
// 12 bytes zero).
func isAddressWord(w []byte) bool {
	return len(w) == 32 && bytes.Equal(w[:12], make([]byte, 12))
}

func lowerHex(a common.Address) string { return strings.ToLower(a.Hex()) }

// Read-only Safe methods keywatch calls.
var (
	SelectorVersion   = crypto.Keccak256([]byte("VERSION()"))[:4]
	SelectorGetOwners = crypto.Keccak256([]byte("getOwners()"))[:4]
	SelectorNonce     = crypto.Keccak256([]byte("nonce()"))[:4]
)

var (
	stringOut  = mustArgs("string")
	addrsOut   = mustArgs("address[]")
	uint256Out = mustArgs("uint256")
)

// DecodeVersion reads VERSION()'s output.
func DecodeVersion(out []byte) (string, error) {
	v, err := stringOut.Unpack(out)
	if err != nil {
		return "", fmt.Errorf("VERSION() returned %d bytes that are no string: %w", len(out), err)
	}
	return v[0].(string), nil
}

// DecodeOwners reads getOwners()'s output.
func DecodeOwners(out []byte) ([]common.Address, error) {
	v, err := addrsOut.Unpack(out)
	if err != nil {
		return nil, fmt.Errorf("getOwners() returned %d bytes that are no address list: %w", len(out), err)
	}
	return v[0].([]common.Address), nil
}

// DecodeNonce reads nonce()'s output.
func DecodeNonce(out []byte) (*big.Int, error) {
	v, err := uint256Out.Unpack(out)
	if err != nil {
		return nil, fmt.Errorf("nonce() returned %d bytes that are no number: %w", len(out), err)
	}
	return v[0].(*big.Int), nil
}
