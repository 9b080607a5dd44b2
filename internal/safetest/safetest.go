// Package safetest deploys the real Safe contracts (the compiled artifacts
// of @gnosis.pm/safe-contracts 1.3.0 and @safe-global/safe-contracts 1.4.1
// in package contracts) on a simulated chain or a geth --dev node, creates
// Safes through the proxy factory, and builds, signs and executes multisig
// transactions as owners would: the EIP-712 safeTxHash of package
// chains/ethereum/safe, one ECDSA signature per owner, packed in ascending
// order of owner address as execTransaction requires.
package safetest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"math/big"
	"sort"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/keywatch/keywatch/chains/ethereum/safe"
	"github.com/keywatch/keywatch/contracts"
	"github.com/keywatch/keywatch/internal/simchain"
)

// Backend is what the helpers need of a node client: sending (as
// contracts.Transact does), calls and receipts. The simulated client and
// *ethclient.Client have it.
type Backend interface {
	contracts.Backend
	CallContract(ctx context.Context, msg ethereum.CallMsg, block *big.Int) ([]byte, error)
	CodeAt(ctx context.Context, account common.Address, block *big.Int) ([]byte, error)
	TransactionReceipt(ctx context.Context, hash common.Hash) (*types.Receipt, error)
}

// The deterministic deployment proxies Safe deployed its contracts through
// (CREATE2, salt 0): Arachnid's for the 1.3.0 canonical deployments, Safe's
// singleton factory for 1.4.1 (and 1.3.0's eip155 ones). Both run the same
// code: the input is a 32-byte salt and the creation code.
var (
	ArachnidDeployer = common.HexToAddress("0x4e59b44847b379578588920cA78FbF26c0B4956C")
	SafeFactory      = common.HexToAddress("0x914d7Fec6aaC8cd542e72Bca78B30650d45643d7")
	deployerCode     = common.FromHex("0x7fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffe03601600081602082378035828234f58015156039578182fd5b8082525050506014600cf3")
)

// DeployerAlloc places both deployment proxies in a genesis alloc (merge it
// into the chain's own): Deploy then puts the npm packages' contracts at
// their canonical addresses, so Safe's own MultiSend is at
// 0x38869bf66a61cF6bDB996A6aE40D5853Fd43B526 as on mainnet.
func DeployerAlloc() types.GenesisAlloc {
	return types.GenesisAlloc{
		ArachnidDeployer: {Code: deployerCode, Balance: new(big.Int), Nonce: 1},
		SafeFactory:      {Code: deployerCode, Balance: new(big.Int), Nonce: 1},
	}
}

// canonicalDeployer is the proxy a release's canonical deployment used.
func canonicalDeployer(version string) common.Address {
	if version == "1.3.0" {
		return ArachnidDeployer
	}
	return SafeFactory
}

// Chain sends transactions and waits until they are in a block.
type Chain struct {
	Client  Backend
	ChainID *big.Int
	// Seal, when set, makes a block (the simulated backend's Commit);
	// otherwise the node seals by itself and Send waits for the receipt.
	Seal func()
	// Timeout bounds the wait for a receipt (default 60s).
	Timeout time.Duration
}

// Sim is a Chain over the simulated backend.
func Sim(c *simchain.Chain) *Chain {
	return &Chain{Client: c.Client, ChainID: simchain.ChainID, Seal: func() { c.Backend.Commit() }}
}

// Node is a Chain over a node that seals blocks itself (geth --dev).
func Node(client Backend, chainID *big.Int) *Chain {
	return &Chain{Client: client, ChainID: chainID}
}

// Send signs a transaction with key, sends it, waits for its block and
// checks that it succeeded.
func (c *Chain) Send(ctx context.Context, key *ecdsa.PrivateKey, to *common.Address, value *big.Int, data []byte) (*types.Receipt, error) {
	tx, err := contracts.Transact(ctx, c.Client, key, c.ChainID, to, value, data)
	if err != nil {
		return nil, err
	}
	if c.Seal != nil {
		c.Seal()
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = 60 * time.Second
	}
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		r, err := c.Client.TransactionReceipt(wctx, tx.Hash())
		if err == nil {
			if r.Status != types.ReceiptStatusSuccessful {
				return r, fmt.Errorf("transaction %s failed", tx.Hash().Hex())
			}
			return r, nil
		}
		if !errors.Is(err, ethereum.NotFound) && wctx.Err() == nil {
			return nil, fmt.Errorf("receipt of %s: %w", tx.Hash().Hex(), err)
		}
		select {
		case <-wctx.Done():
			return nil, fmt.Errorf("transaction %s: no receipt within %s", tx.Hash().Hex(), timeout)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// deploy sends a creation transaction and returns the new contract.
func (c *Chain) deploy(ctx context.Context, key *ecdsa.PrivateKey, data []byte) (common.Address, error) {
	r, err := c.Send(ctx, key, nil, nil, data)
	if err != nil {
		return common.Address{}, err
	}
	return r.ContractAddress, nil
}

// create deploys code through the deployment proxy when it is on the
// chain (and the contract is not there yet), else by an ordinary creation.
func (c *Chain) create(ctx context.Context, key *ecdsa.PrivateKey, proxy common.Address, code []byte) (common.Address, error) {
	if have, err := c.Client.CodeAt(ctx, proxy, nil); err != nil || len(have) == 0 {
		return c.deploy(ctx, key, code)
	}
	addr := crypto.CreateAddress2(proxy, common.Hash{}, crypto.Keccak256(code))
	if have, err := c.Client.CodeAt(ctx, addr, nil); err == nil && len(have) > 0 {
		return addr, nil // deployed before
	}
	if _, err := c.Send(ctx, key, &proxy, nil, append(make([]byte, 32), code...)); err != nil {
		return common.Address{}, err
	}
	if have, err := c.Client.CodeAt(ctx, addr, nil); err != nil || len(have) == 0 {
		return common.Address{}, fmt.Errorf("no code at %s after deploying through %s", addr.Hex(), proxy.Hex())
	}
	return addr, nil
}

// Deployment is one Safe release deployed on a chain.
type Deployment struct {
	Release           contracts.SafeRelease
	Singleton         common.Address
	SingletonL2       common.Address
	Factory           common.Address
	MultiSend         common.Address
	MultiSendCallOnly common.Address
	SignMessageLib    common.Address

	singleton, factory *contracts.Artifact
}

// Deploy deploys a Safe release ("1.3.0" or "1.4.1"): the singleton, the
// L2 singleton, the proxy factory and the libraries, from key. When the
// release's deployment proxy is on the chain (DeployerAlloc), they go
// through it with salt 0, to the addresses Safe deployed them at (the
// 1.3.0 SignMessageLib of the npm package is another build and lands
// elsewhere); otherwise each is an ordinary creation.
func Deploy(ctx context.Context, c *Chain, key *ecdsa.PrivateKey, version string) (*Deployment, error) {
	d := &Deployment{}
	for _, r := range contracts.SafeReleases() {
		if r.Version == version {
			d.Release = r
		}
	}
	if d.Release.Version == "" {
		return nil, fmt.Errorf("safetest: no Safe release %q", version)
	}
	for _, x := range []struct {
		name string
		addr *common.Address
	}{
		{d.Release.Singleton, &d.Singleton}, {d.Release.SingletonL2, &d.SingletonL2}, {d.Release.ProxyFactory, &d.Factory},
		{contracts.SafeMultiSend, &d.MultiSend}, {contracts.SafeMultiSendCallOnly, &d.MultiSendCallOnly}, {contracts.SafeSignMessageLib, &d.SignMessageLib},
	} {
		art, err := contracts.LoadSafe(version, x.name)
		if err != nil {
			return nil, err
		}
		if *x.addr, err = c.create(ctx, key, canonicalDeployer(version), art.Bytecode); err != nil {
			return nil, fmt.Errorf("safetest: deploy %s %s: %w", x.name, version, err)
		}
		switch x.name {
		case d.Release.Singleton:
			d.singleton = art
		case d.Release.ProxyFactory:
			d.factory = art
		}
	}
	return d, nil
}

// topicProxyCreation is the factory's ProxyCreation(address,address): the
// proxy is indexed in 1.4.1, in the data in 1.3.0.
var topicProxyCreation = crypto.Keccak256Hash([]byte("ProxyCreation(address,address)"))

// Safe is a Safe proxy created by NewSafe.
type Safe struct {
	Address common.Address
	Version string
	ChainID *big.Int
	Chain   *Chain
	abi     abi.ABI
}

// NewSafe creates a Safe with owners and threshold through the factory's
// createProxyWithNonce and setup (no fallback handler, no payment), on the
// L2 singleton when l2 is set. salt tells Safes with the same owners apart.
func (d *Deployment) NewSafe(ctx context.Context, c *Chain, key *ecdsa.PrivateKey, owners []common.Address, threshold int64, l2 bool, salt int64) (*Safe, error) {
	setup, err := d.singleton.Pack("setup", owners, big.NewInt(threshold), common.Address{}, []byte{}, common.Address{}, common.Address{}, new(big.Int), common.Address{})
	if err != nil {
		return nil, err
	}
	singleton := d.Singleton
	if l2 {
		singleton = d.SingletonL2
	}
	data, err := d.factory.Pack("createProxyWithNonce", singleton, setup, big.NewInt(salt))
	if err != nil {
		return nil, err
	}
	r, err := c.Send(ctx, key, &d.Factory, nil, data)
	if err != nil {
		return nil, fmt.Errorf("safetest: create Safe: %w", err)
	}
	for _, l := range r.Logs {
		if l.Address != d.Factory || len(l.Topics) == 0 || l.Topics[0] != topicProxyCreation {
			continue
		}
		var proxy common.Address
		switch {
		case len(l.Topics) == 2:
			proxy = common.BytesToAddress(l.Topics[1][:])
		case len(l.Data) >= 32:
			proxy = common.BytesToAddress(l.Data[:32])
		default:
			continue
		}
		return &Safe{Address: proxy, Version: d.Release.Version, ChainID: c.ChainID, Chain: c, abi: d.singleton.ABI}, nil
	}
	return nil, errors.New("safetest: the factory logged no ProxyCreation")
}

// call runs a view method of the Safe.
func (s *Safe) call(ctx context.Context, method string, args ...any) ([]any, error) {
	data, err := s.abi.Pack(method, args...)
	if err != nil {
		return nil, err
	}
	out, err := s.Chain.Client.CallContract(ctx, ethereum.CallMsg{To: &s.Address, Data: data}, nil)
	if err != nil {
		return nil, fmt.Errorf("safetest: %s(): %w", method, err)
	}
	return s.abi.Unpack(method, out)
}

// Nonce is the Safe's next multisig nonce.
func (s *Safe) Nonce(ctx context.Context) (*big.Int, error) {
	v, err := s.call(ctx, "nonce")
	if err != nil {
		return nil, err
	}
	return v[0].(*big.Int), nil
}

// Owners lists the Safe's owners in its order.
func (s *Safe) Owners(ctx context.Context) ([]common.Address, error) {
	v, err := s.call(ctx, "getOwners")
	if err != nil {
		return nil, err
	}
	return v[0].([]common.Address), nil
}

// Threshold is how many owners must sign.
func (s *Safe) Threshold(ctx context.Context) (*big.Int, error) {
	v, err := s.call(ctx, "getThreshold")
	if err != nil {
		return nil, err
	}
	return v[0].(*big.Int), nil
}

// Tx is a multisig transaction to the Safe's next nonce (no refund).
func (s *Safe) Tx(ctx context.Context, to common.Address, value *big.Int, data []byte, op safe.Operation) (safe.Tx, error) {
	n, err := s.Nonce(ctx)
	if err != nil {
		return safe.Tx{}, err
	}
	if value == nil {
		value = new(big.Int)
	}
	return safe.Tx{To: to, Value: value, Data: data, Operation: op, SafeTxGas: new(big.Int), BaseGas: new(big.Int), GasPrice: new(big.Int), Nonce: n}, nil
}

// Sign signs tx's safeTxHash with each key and packs the signatures in
// ascending order of owner address, as execTransaction checks them.
func (s *Safe) Sign(tx safe.Tx, keys ...*ecdsa.PrivateKey) ([]byte, error) {
	hash, err := safe.Hash(s.ChainID, s.Address, s.Version, tx)
	if err != nil {
		return nil, err
	}
	type signed struct {
		owner common.Address
		sig   []byte
	}
	var sigs []signed
	for _, k := range keys {
		sig, err := crypto.Sign(hash[:], k)
		if err != nil {
			return nil, err
		}
		sig[64] += 27
		sigs = append(sigs, signed{crypto.PubkeyToAddress(k.PublicKey), sig})
	}
	sort.Slice(sigs, func(i, j int) bool { return bytes.Compare(sigs[i].owner[:], sigs[j].owner[:]) < 0 })
	var out []byte
	for _, s := range sigs {
		out = append(out, s.sig...)
	}
	return out, nil
}

// Exec signs tx with the signers' keys and sends execTransaction from
// executor (any account: the Safe checks the signatures, not the sender).
func (s *Safe) Exec(ctx context.Context, executor *ecdsa.PrivateKey, tx safe.Tx, signers ...*ecdsa.PrivateKey) (*types.Receipt, error) {
	sigs, err := s.Sign(tx, signers...)
	if err != nil {
		return nil, err
	}
	data, err := s.abi.Pack("execTransaction", tx.To, tx.Value, tx.Data, uint8(tx.Operation), tx.SafeTxGas, tx.BaseGas, tx.GasPrice, tx.GasToken, tx.RefundReceiver, sigs)
	if err != nil {
		return nil, err
	}
	r, err := s.Chain.Send(ctx, executor, &s.Address, nil, data)
	if err != nil {
		return r, fmt.Errorf("safetest: execTransaction: %w", err)
	}
	return r, nil
}

// Run builds the transaction to the Safe's next nonce and executes it.
func (s *Safe) Run(ctx context.Context, executor *ecdsa.PrivateKey, to common.Address, value *big.Int, data []byte, op safe.Operation, signers ...*ecdsa.PrivateKey) (*types.Receipt, error) {
	tx, err := s.Tx(ctx, to, value, data, op)
	if err != nil {
		return nil, err
	}
	return s.Exec(ctx, executor, tx, signers...)
}

// Admin runs one of the Safe's own methods (addOwnerWithThreshold,
// removeOwner, changeThreshold, enableModule, setFallbackHandler, ...) as
// a multisig transaction to itself.
func (s *Safe) Admin(ctx context.Context, executor *ecdsa.PrivateKey, signers []*ecdsa.PrivateKey, method string, args ...any) (*types.Receipt, error) {
	data, err := s.abi.Pack(method, args...)
	if err != nil {
		return nil, err
	}
	return s.Run(ctx, executor, s.Address, nil, data, safe.Call, signers...)
}

// sentinel heads the Safe's owner and module lists.
var sentinel = common.HexToAddress("0x0000000000000000000000000000000000000001")

// PrevOwner is the owner before owner in the Safe's list (removeOwner's
// first argument).
func (s *Safe) PrevOwner(ctx context.Context, owner common.Address) (common.Address, error) {
	owners, err := s.Owners(ctx)
	if err != nil {
		return common.Address{}, err
	}
	prev := sentinel
	for _, o := range owners {
		if o == owner {
			return prev, nil
		}
		prev = o
	}
	return common.Address{}, fmt.Errorf("safetest: %s is no owner", owner.Hex())
}

// ExecFromModule sends execTransactionFromModule from module, which must
// be an enabled module (an account may be one).
func (s *Safe) ExecFromModule(ctx context.Context, module *ecdsa.PrivateKey, to common.Address, value *big.Int, data []byte, op safe.Operation) (*types.Receipt, error) {
	if value == nil {
		value = new(big.Int)
	}
	in, err := s.abi.Pack("execTransactionFromModule", to, value, data, uint8(op))
	if err != nil {
		return nil, err
	}
	return s.Chain.Send(ctx, module, &s.Address, nil, in)
}

// MultiSendTx is one transaction of a MultiSend batch.
type MultiSendTx struct {
	Op    safe.Operation
	To    common.Address
	Value *big.Int
	Data  []byte
}

// MultiSendData is the call data of MultiSend's multiSend(bytes) for txs,
// each packed as operation (1 byte), to (20), value (32), data length (32)
// and data.
func MultiSendData(txs ...MultiSendTx) ([]byte, error) {
	var packed []byte
	for _, t := range txs {
		v := t.Value
		if v == nil {
			v = new(big.Int)
		}
		packed = append(packed, byte(t.Op))
		packed = append(packed, t.To[:]...)
		packed = append(packed, common.LeftPadBytes(v.Bytes(), 32)...)
		packed = append(packed, common.LeftPadBytes(big.NewInt(int64(len(t.Data))).Bytes(), 32)...)
		packed = append(packed, t.Data...)
	}
	art, err := contracts.LoadSafe("1.4.1", contracts.SafeMultiSend)
	if err != nil {
		return nil, err
	}
	return art.Pack("multiSend", packed)
}

// slotWriterCode is the creation code of the Bybit attacker's contract in
// miniature: whatever it is called with, it stores the first argument word
// in slot 0 (PUSH1 4 CALLDATALOAD PUSH1 0 SSTORE STOP). Run by a Safe's
// delegatecall, that rewrites the Safe's singleton; its transfer(address,
// uint256) selector is the one the Bybit transaction used.
var slotWriterCode = common.FromHex("0x666004356000550060005260076019f3")

// DeploySlotWriter deploys the slot-0 writer.
func DeploySlotWriter(ctx context.Context, c *Chain, key *ecdsa.PrivateKey) (common.Address, error) {
	return c.deploy(ctx, key, slotWriterCode)
}

// TransferSelector is transfer(address,uint256), the call the Bybit
// delegatecall made.
var TransferSelector = crypto.Keccak256([]byte("transfer(address,uint256)"))[:4]

// SlotWriterCall is the data of a call to the slot-0 writer that stores
// addr in slot 0, shaped as transfer(addr, 0).
func SlotWriterCall(addr common.Address) []byte {
	out := append([]byte(nil), TransferSelector...)
	out = append(out, common.LeftPadBytes(addr[:], 32)...)
	return append(out, make([]byte, 32)...)
}
