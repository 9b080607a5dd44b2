// Package contracts holds the Solidity contracts keywatch uses in tests and
// demos, compiled, and helpers to deploy and call them.
//
// The contracts stand for the things keywatch watches and the places stolen
// funds go:
//
//   - TestToken: a plain ERC-20 a watched wallet or vault holds.
//   - UpgradeableProxy: an EIP-1967 proxy in front of a vault.
//   - Vault: the honest vault implementation (owner-only payouts).
//   - VaultV2: a malicious upgrade adding an unguarded sweep, the backdoor an
//     insider with the proxy admin key installs.
//   - SingletonWallet and SlotZeroTakeover: a contract wallet that keeps its
//     singleton in slot 0 as a Safe proxy does, and the attacker contract
//     whose delegatecalled transfer rewrites that slot and logs nothing (the
//     Bybit pattern).
//   - TornadoPool and TornadoRouter: stand-ins for the Tornado Cash 1 ETH pool
//     and router, with the mainnet selectors and events. MixerAlloc places
//     their runtime code at the mainnet addresses in a genesis alloc, so a
//     simulated or dev chain has a "Tornado Cash" where the real one is.
//   - TestNFT and TestMultiToken: an ERC-721 and an ERC-1155 collection whose
//     approvals a watched wallet grants.
//   - Permit2: a stand-in for Uniswap's Permit2 with its real approve,
//     permit and events; Permit2Alloc places it at the real address.
//   - Sweeper and SweepCaller: ETH leaving a contract by internal calls (one
//     or two frames deep, or undone by a reverted frame), which no log shows.
//
// The sources are in src/ and the compiled artifacts in build/, which are
// committed and embedded in the binary. After changing a source, rebuild the
// artifacts with
//
//	contracts/build.sh
//
// which installs the pinned solcjs version from npm into a cache folder
// (outside the repository) on first use and compiles with the optimizer on.
// The output is deterministic, so an unchanged source gives identical files.
// See README.md beside this file.
package contracts

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"path"
	"slices"
	"strings"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
)

//go:embed build/*.json
var artifacts embed.FS

// Names of the embedded contracts, for Load and Deploy.
const (
	NameTestToken        = "TestToken"
	NameUpgradeableProxy = "UpgradeableProxy"
	NameVault            = "Vault"
	NameVaultV2          = "VaultV2"
	NameTornadoPool      = "TornadoPool"
	NameTornadoRouter    = "TornadoRouter"
	NameSingletonWallet  = "SingletonWallet"
	NameSlotZeroTakeover = "SlotZeroTakeover"
	NameSweeper          = "Sweeper"
	NameSweepCaller      = "SweepCaller"
)

// Mainnet addresses of the Tornado Cash contracts the stand-ins replace.
var (
	// TornadoPool1ETH is the Tornado Cash 1 ETH pool instance.
	TornadoPool1ETH = common.HexToAddress("0x47CE0C6eD5B0Ce3d3A51fdb1C52DC66a7c3c2936")
	// TornadoRouter is the Tornado Cash router.
	TornadoRouter = common.HexToAddress("0xd90e2f925DA726b50C4Ed8D0Fb90Ad053324F31b")
)

// EIP-1967 storage slots UpgradeableProxy (like any EIP-1967 proxy) keeps its
// implementation and admin addresses in.
var (
	// ImplementationSlot is bytes32(uint256(keccak256("eip1967.proxy.implementation")) - 1).
	ImplementationSlot = common.HexToHash("0x360894a13ba1a3210667c828492db98dca3e2076cc3735a920a3ca505d382bbc")
	// AdminSlot is bytes32(uint256(keccak256("eip1967.proxy.admin")) - 1).
	AdminSlot = common.HexToHash("0xb53127684a568b3173ae13b9f8a6016e243e63b6e8ee1178d6a717850b5d6103")
)

// Artifact is one compiled contract.
type Artifact struct {
	// Name is the contract name, e.g. "TestToken".
	Name string
	// ABI is the parsed contract ABI.
	ABI abi.ABI
	// Bytecode is the creation code, without constructor arguments.
	Bytecode []byte
	// DeployedBytecode is the runtime code as it sits on chain after
	// deployment.
	DeployedBytecode []byte
}

// artifactFile is the JSON layout build.js writes.
type artifactFile struct {
	Contract         string          `json:"contract"`
	SolcVersion      string          `json:"solc_version"`
	ABI              json.RawMessage `json:"abi"`
	Bytecode         string          `json:"bytecode"`
	DeployedBytecode string          `json:"deployed_bytecode"`
}

// Names returns the names of all embedded contracts, sorted.
func Names() []string {
	entries, err := fs.ReadDir(artifacts, "build")
	if err != nil {
		// The embed pattern guarantees the folder exists.
		panic(fmt.Sprintf("contracts: reading embedded artifacts: %v", err))
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		if n, ok := strings.CutSuffix(e.Name(), ".json"); ok && !e.IsDir() {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	return names
}

// Load parses the embedded artifact of the named contract. Each call returns
// a fresh Artifact the caller may keep or modify.
func Load(name string) (*Artifact, error) {
	known := Names()
	if !slices.Contains(known, name) {
		return nil, fmt.Errorf("contracts: unknown contract %q (known: %s)", name, strings.Join(known, ", "))
	}
	raw, err := artifacts.ReadFile(path.Join("build", name+".json"))
	if err != nil {
		return nil, fmt.Errorf("contracts: %s: %w", name, err)
	}
	var f artifactFile
	if err := json.Unmarshal(raw, &f); err != nil {
		return nil, fmt.Errorf("contracts: %s: decoding artifact: %w", name, err)
	}
	if f.Contract != name {
		return nil, fmt.Errorf("contracts: %s: artifact is for contract %q", name, f.Contract)
	}
	parsed, err := abi.JSON(bytes.NewReader(f.ABI))
	if err != nil {
		return nil, fmt.Errorf("contracts: %s: parsing ABI: %w", name, err)
	}
	code, err := hexutil.Decode(f.Bytecode)
	if err != nil {
		return nil, fmt.Errorf("contracts: %s: decoding bytecode: %w", name, err)
	}
	runtime, err := hexutil.Decode(f.DeployedBytecode)
	if err != nil {
		return nil, fmt.Errorf("contracts: %s: decoding deployed bytecode: %w", name, err)
	}
	if len(code) == 0 || len(runtime) == 0 {
		return nil, fmt.Errorf("contracts: %s: artifact has empty bytecode", name)
	}
	return &Artifact{Name: name, ABI: parsed, Bytecode: code, DeployedBytecode: runtime}, nil
}

// Pack returns the call data for method with args: the 4-byte selector
// followed by the ABI-encoded arguments. An empty method packs constructor
// arguments alone (no selector), as appended to the creation code.
func (a *Artifact) Pack(method string, args ...any) ([]byte, error) {
	data, err := a.ABI.Pack(method, args...)
	if err != nil {
		if method == "" {
			return nil, fmt.Errorf("contracts: %s: packing constructor arguments: %w", a.Name, err)
		}
		return nil, fmt.Errorf("contracts: %s.%s: %w", a.Name, method, err)
	}
	return data, nil
}

// DeployData returns the data of a creation transaction: the creation code
// followed by the ABI-encoded constructor arguments.
func (a *Artifact) DeployData(args ...any) ([]byte, error) {
	ctorArgs, err := a.Pack("", args...)
	if err != nil {
		return nil, err
	}
	return append(slices.Clip(a.Bytecode), ctorArgs...), nil
}

// MixerAlloc returns genesis alloc entries that place the runtime code of
// TornadoPool at TornadoPool1ETH and of TornadoRouter at TornadoRouter, with
// empty storage and no balance, as a dev or simulated chain needs them. Merge
// it into the chain's own alloc.
func MixerAlloc() (types.GenesisAlloc, error) {
	pool, err := Load(NameTornadoPool)
	if err != nil {
		return nil, err
	}
	router, err := Load(NameTornadoRouter)
	if err != nil {
		return nil, err
	}
	return types.GenesisAlloc{
		// Nonce 1, as a contract created on mainnet has (EIP-161).
		TornadoPool1ETH: {Code: pool.DeployedBytecode, Balance: new(big.Int), Nonce: 1},
		TornadoRouter:   {Code: router.DeployedBytecode, Balance: new(big.Int), Nonce: 1},
	}, nil
}

// Backend is what Deploy and Transact need from a node: the pending nonce,
// fee suggestions, gas estimation and sending. ethclient.Client and the
// simulated backend's client both satisfy it.
type Backend interface {
	PendingNonceAt(ctx context.Context, account common.Address) (uint64, error)
	HeaderByNumber(ctx context.Context, number *big.Int) (*types.Header, error)
	SuggestGasPrice(ctx context.Context) (*big.Int, error)
	SuggestGasTipCap(ctx context.Context) (*big.Int, error)
	EstimateGas(ctx context.Context, call ethereum.CallMsg) (uint64, error)
	SendTransaction(ctx context.Context, tx *types.Transaction) error
}

// Deploy builds, signs with key and sends the creation transaction of the
// named contract with constructor args. It returns the address the contract
// will have once the transaction is mined, and the transaction; it does not
// wait for mining (use bind.WaitDeployed or the receipt for that).
func Deploy(ctx context.Context, backend Backend, key *ecdsa.PrivateKey, chainID *big.Int, name string, args ...any) (common.Address, *types.Transaction, error) {
	art, err := Load(name)
	if err != nil {
		return common.Address{}, nil, err
	}
	data, err := art.DeployData(args...)
	if err != nil {
		return common.Address{}, nil, err
	}
	tx, err := Transact(ctx, backend, key, chainID, nil, nil, data)
	if err != nil {
		return common.Address{}, nil, fmt.Errorf("contracts: deploying %s: %w", name, err)
	}
	from := crypto.PubkeyToAddress(key.PublicKey)
	return crypto.CreateAddress(from, tx.Nonce()), tx, nil
}

// Transact builds, signs with key and sends a transaction to `to` (nil for a
// contract creation) carrying value wei (nil for none) and data. The nonce is
// the sender's pending nonce, the gas limit comes from estimation, and fees
// follow EIP-1559 where the chain has a base fee (a legacy transaction
// otherwise). It does not wait for mining.
//
// Estimation fails for a call that would revert; send such a call with a
// fixed gas limit through go-ethereum directly.
func Transact(ctx context.Context, backend Backend, key *ecdsa.PrivateKey, chainID *big.Int, to *common.Address, value *big.Int, data []byte) (*types.Transaction, error) {
	if key == nil {
		return nil, errors.New("contracts: nil private key")
	}
	if chainID == nil {
		return nil, errors.New("contracts: nil chain ID")
	}
	if value == nil {
		value = new(big.Int)
	}
	from := crypto.PubkeyToAddress(key.PublicKey)
	nonce, err := backend.PendingNonceAt(ctx, from)
	if err != nil {
		return nil, fmt.Errorf("contracts: nonce of %s: %w", from, err)
	}
	gas, err := backend.EstimateGas(ctx, ethereum.CallMsg{From: from, To: to, Value: value, Data: data})
	if err != nil {
		return nil, fmt.Errorf("contracts: estimating gas: %w", err)
	}
	head, err := backend.HeaderByNumber(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("contracts: latest header: %w", err)
	}
	var txdata types.TxData
	if head.BaseFee != nil {
		tip, err := backend.SuggestGasTipCap(ctx)
		if err != nil {
			return nil, fmt.Errorf("contracts: suggesting gas tip: %w", err)
		}
		// Twice the base fee plus the tip stays valid through several
		// blocks of rising base fee.
		feeCap := new(big.Int).Add(tip, new(big.Int).Mul(head.BaseFee, big.NewInt(2)))
		txdata = &types.DynamicFeeTx{
			ChainID: chainID, Nonce: nonce, GasTipCap: tip, GasFeeCap: feeCap,
			Gas: gas, To: to, Value: value, Data: data,
		}
	} else {
		price, err := backend.SuggestGasPrice(ctx)
		if err != nil {
			return nil, fmt.Errorf("contracts: suggesting gas price: %w", err)
		}
		txdata = &types.LegacyTx{Nonce: nonce, GasPrice: price, Gas: gas, To: to, Value: value, Data: data}
	}
	tx, err := types.SignNewTx(key, types.LatestSignerForChainID(chainID), txdata)
	if err != nil {
		return nil, fmt.Errorf("contracts: signing: %w", err)
	}
	if err := backend.SendTransaction(ctx, tx); err != nil {
		return nil, fmt.Errorf("contracts: sending %s: %w", tx.Hash(), err)
	}
	return tx, nil
}
