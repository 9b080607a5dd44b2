package contracts

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"maps"
	"math/big"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethclient/simulated"
	"github.com/ethereum/go-ethereum/params"
)

var (
	oneEther  = big.NewInt(params.Ether)
	halfEther = big.NewInt(params.Ether / 2)
)

// chain is a simulated chain with funded accounts and the mixer stand-ins at
// their mainnet addresses.
type chain struct {
	t       *testing.T
	ctx     context.Context
	sim     *simulated.Backend
	client  simulated.Client
	chainID *big.Int
}

type account struct {
	key  *ecdsa.PrivateKey
	addr common.Address
}

func newAccount(t *testing.T) account {
	t.Helper()
	key, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return account{key: key, addr: crypto.PubkeyToAddress(key.PublicKey)}
}

// newChain funds each account with 100 ETH and adds MixerAlloc and
// Permit2Alloc.
func newChain(t *testing.T, funded ...account) *chain {
	t.Helper()
	alloc, err := MixerAlloc()
	if err != nil {
		t.Fatal(err)
	}
	permit2, err := Permit2Alloc()
	if err != nil {
		t.Fatal(err)
	}
	maps.Copy(alloc, permit2)
	for _, a := range funded {
		alloc[a.addr] = types.Account{Balance: new(big.Int).Mul(big.NewInt(100), oneEther)}
	}
	sim := simulated.NewBackend(alloc)
	t.Cleanup(func() { sim.Close() })
	client := sim.Client()
	ctx := context.Background()
	chainID, err := client.ChainID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return &chain{t: t, ctx: ctx, sim: sim, client: client, chainID: chainID}
}

func (c *chain) receipt(tx *types.Transaction) *types.Receipt {
	c.t.Helper()
	c.sim.Commit()
	r, err := c.client.TransactionReceipt(c.ctx, tx.Hash())
	if err != nil {
		c.t.Fatalf("receipt of %s: %v", tx.Hash(), err)
	}
	return r
}

// deploy deploys a contract, mines it and checks it succeeded.
func (c *chain) deploy(from account, name string, args ...any) (common.Address, *types.Receipt) {
	c.t.Helper()
	addr, tx, err := Deploy(c.ctx, c.client, from.key, c.chainID, name, args...)
	if err != nil {
		c.t.Fatal(err)
	}
	r := c.receipt(tx)
	if r.Status != types.ReceiptStatusSuccessful {
		c.t.Fatalf("deploying %s failed", name)
	}
	if r.ContractAddress != addr {
		c.t.Fatalf("Deploy returned %s, receipt says %s", addr, r.ContractAddress)
	}
	return addr, r
}

// send sends a call that must succeed and returns its receipt.
func (c *chain) send(from account, to common.Address, value *big.Int, art *Artifact, method string, args ...any) *types.Receipt {
	c.t.Helper()
	data := mustPack(c.t, art, method, args...)
	tx, err := Transact(c.ctx, c.client, from.key, c.chainID, &to, value, data)
	if err != nil {
		c.t.Fatalf("%s.%s: %v", art.Name, method, err)
	}
	r := c.receipt(tx)
	if r.Status != types.ReceiptStatusSuccessful {
		c.t.Fatalf("%s.%s: receipt status %d", art.Name, method, r.Status)
	}
	return r
}

// sendFailing sends a call with a fixed gas limit (estimation would refuse a
// reverting call), mines it and checks that it reverted on chain.
func (c *chain) sendFailing(from account, to common.Address, value *big.Int, art *Artifact, method string, args ...any) *types.Receipt {
	c.t.Helper()
	if value == nil {
		value = new(big.Int)
	}
	data := mustPack(c.t, art, method, args...)
	nonce, err := c.client.PendingNonceAt(c.ctx, from.addr)
	if err != nil {
		c.t.Fatal(err)
	}
	head, err := c.client.HeaderByNumber(c.ctx, nil)
	if err != nil {
		c.t.Fatal(err)
	}
	tip := big.NewInt(params.GWei)
	tx, err := types.SignNewTx(from.key, types.LatestSignerForChainID(c.chainID), &types.DynamicFeeTx{
		ChainID: c.chainID, Nonce: nonce, GasTipCap: tip,
		GasFeeCap: new(big.Int).Add(tip, new(big.Int).Mul(head.BaseFee, big.NewInt(2))),
		Gas:       300_000, To: &to, Value: value, Data: data,
	})
	if err != nil {
		c.t.Fatal(err)
	}
	if err := c.client.SendTransaction(c.ctx, tx); err != nil {
		c.t.Fatal(err)
	}
	r := c.receipt(tx)
	if r.Status != types.ReceiptStatusFailed {
		c.t.Fatalf("%s.%s succeeded, want a revert", art.Name, method)
	}
	if len(r.Logs) != 0 {
		c.t.Fatalf("%s.%s reverted but left %d logs", art.Name, method, len(r.Logs))
	}
	return r
}

// call runs a view method and returns its single result.
func (c *chain) call(to common.Address, art *Artifact, method string, args ...any) any {
	c.t.Helper()
	data := mustPack(c.t, art, method, args...)
	out, err := c.client.CallContract(c.ctx, ethereum.CallMsg{To: &to, Data: data}, nil)
	if err != nil {
		c.t.Fatalf("calling %s.%s: %v", art.Name, method, err)
	}
	res, err := art.ABI.Unpack(method, out)
	if err != nil {
		c.t.Fatalf("unpacking %s.%s: %v", art.Name, method, err)
	}
	if len(res) != 1 {
		c.t.Fatalf("%s.%s returned %d values", art.Name, method, len(res))
	}
	return res[0]
}

func (c *chain) balance(token common.Address, tok *Artifact, who common.Address) *big.Int {
	c.t.Helper()
	return c.call(token, tok, "balanceOf", who).(*big.Int)
}

func (c *chain) storage(addr common.Address, slot common.Hash) common.Hash {
	c.t.Helper()
	v, err := c.client.StorageAt(c.ctx, addr, slot, nil)
	if err != nil {
		c.t.Fatal(err)
	}
	return common.BytesToHash(v)
}

func (c *chain) ethBalance(addr common.Address) *big.Int {
	c.t.Helper()
	b, err := c.client.BalanceAt(c.ctx, addr, nil)
	if err != nil {
		c.t.Fatal(err)
	}
	return b
}

func mustLoad(t *testing.T, name string) *Artifact {
	t.Helper()
	a, err := Load(name)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func mustPack(t *testing.T, a *Artifact, method string, args ...any) []byte {
	t.Helper()
	data, err := a.Pack(method, args...)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// findLogs returns the logs of receipt r emitted by addr with the given event.
func findLogs(r *types.Receipt, addr common.Address, art *Artifact, event string) []*types.Log {
	id := art.ABI.Events[event].ID
	var out []*types.Log
	for _, l := range r.Logs {
		if l.Address == addr && len(l.Topics) > 0 && l.Topics[0] == id {
			out = append(out, l)
		}
	}
	return out
}

func oneLog(t *testing.T, r *types.Receipt, addr common.Address, art *Artifact, event string) *types.Log {
	t.Helper()
	logs := findLogs(r, addr, art, event)
	if len(logs) != 1 {
		t.Fatalf("want one %s.%s log from %s, got %d (of %d logs)", art.Name, event, addr, len(logs), len(r.Logs))
	}
	return logs[0]
}

func addrTopic(a common.Address) common.Hash { return common.BytesToHash(a.Bytes()) }

func wantBig(t *testing.T, what string, got *big.Int, want int64) {
	t.Helper()
	if got.Cmp(big.NewInt(want)) != 0 {
		t.Fatalf("%s = %s, want %d", what, got, want)
	}
}

func TestLoad(t *testing.T) {
	want := []string{NamePermit2, NameSafeStandIn, NameSingletonWallet, NameSlotZeroTakeover, NameSweepCaller, NameSweeper, NameTestMultiToken, NameTestNFT, NameTestToken, NameTornadoPool, NameTornadoRouter, NameUpgradeableProxy, NameVault, NameVaultV2}
	if got := strings.Join(Names(), ","); got != strings.Join(want, ",") {
		t.Fatalf("Names() = %s, want %s", got, strings.Join(want, ","))
	}
	for _, name := range want {
		a := mustLoad(t, name)
		if a.Name != name || len(a.Bytecode) == 0 || len(a.DeployedBytecode) == 0 {
			t.Fatalf("%s: incomplete artifact", name)
		}
		if !bytes.Contains(a.Bytecode, a.DeployedBytecode[:32]) {
			t.Fatalf("%s: creation code does not carry the runtime code", name)
		}
	}

	_, err := Load("TornadoCash")
	if err == nil {
		t.Fatal("Load of an unknown name succeeded")
	}
	for _, s := range append(want, `"TornadoCash"`) {
		if !strings.Contains(err.Error(), s) {
			t.Fatalf("error %q does not mention %s", err, s)
		}
	}
	if _, err := Load("../build/TestToken"); err == nil {
		t.Fatal("Load accepted a path")
	}

	tok := mustLoad(t, NameTestToken)
	if _, err := tok.Pack("transfer", common.Address{}); err == nil {
		t.Fatal("Pack with a missing argument succeeded")
	}
	if _, err := tok.Pack("nosuchmethod"); err == nil {
		t.Fatal("Pack of an unknown method succeeded")
	}
}

func TestMainnetSelectorsAndTopics(t *testing.T) {
	pool := mustLoad(t, NameTornadoPool)
	router := mustLoad(t, NameTornadoRouter)
	proxy := mustLoad(t, NameUpgradeableProxy)
	vault := mustLoad(t, NameVault)
	tok := mustLoad(t, NameTestToken)

	checks := []struct {
		what string
		got  []byte
		want string
	}{
		{"TornadoPool.deposit selector", pool.ABI.Methods["deposit"].ID, "0xb214faa5"},
		{"TornadoRouter.deposit selector", router.ABI.Methods["deposit"].ID, "0x13d98d13"},
		{"Deposit topic", pool.ABI.Events["Deposit"].ID.Bytes(), "0xa945e51eec50ab98c161376f0db4cf2aeba3ec92755fe2fcd388bdbbb80ff196"},
		{"EncryptedNote topic", router.ABI.Events["EncryptedNote"].ID.Bytes(), "0xfa28df43db3553771f7209dcef046f3bdfea15870ab625dcda30ac58b82b4008"},
		{"Upgraded topic", proxy.ABI.Events["Upgraded"].ID.Bytes(), "0xbc7cd75a20ee27fd9adebab32041f755214dbc6bffa90cc0225b39da2e5c2d3b"},
		{"AdminChanged topic", proxy.ABI.Events["AdminChanged"].ID.Bytes(), "0x7e644d79422f17c01e4894b5f4f588d331ebfa28653d42ae832dc59e38c9798f"},
		{"OwnershipTransferred topic", vault.ABI.Events["OwnershipTransferred"].ID.Bytes(), "0x8be0079c531659141344cd1fd0a4f28419497f9722a3daafe3b4186f6b6457e0"},
		{"Transfer topic", tok.ABI.Events["Transfer"].ID.Bytes(), "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"},
		{"transfer selector", tok.ABI.Methods["transfer"].ID, "0xa9059cbb"},
		{"TornadoPool1ETH", TornadoPool1ETH.Bytes(), "0x47ce0c6ed5b0ce3d3a51fdb1c52dc66a7c3c2936"},
		{"TornadoRouter", TornadoRouter.Bytes(), "0xd90e2f925da726b50c4ed8d0fb90ad053324f31b"},
	}
	for _, c := range checks {
		if got := common.Bytes2Hex(c.got); "0x"+got != c.want {
			t.Errorf("%s = 0x%s, want %s", c.what, got, c.want)
		}
	}

	slot := func(label string) common.Hash {
		h := new(big.Int).SetBytes(crypto.Keccak256([]byte(label)))
		return common.BigToHash(h.Sub(h, big.NewInt(1)))
	}
	if got := slot("eip1967.proxy.implementation"); got != ImplementationSlot {
		t.Errorf("ImplementationSlot = %s, want %s", ImplementationSlot, got)
	}
	if got := slot("eip1967.proxy.admin"); got != AdminSlot {
		t.Errorf("AdminSlot = %s, want %s", AdminSlot, got)
	}
}

func TestMixerAlloc(t *testing.T) {
	alloc, err := MixerAlloc()
	if err != nil {
		t.Fatal(err)
	}
	if len(alloc) != 2 {
		t.Fatalf("MixerAlloc has %d entries, want 2", len(alloc))
	}
	for addr, name := range map[common.Address]string{TornadoPool1ETH: NameTornadoPool, TornadoRouter: NameTornadoRouter} {
		if !bytes.Equal(alloc[addr].Code, mustLoad(t, name).DeployedBytecode) {
			t.Fatalf("alloc at %s does not hold %s runtime code", addr, name)
		}
	}
}

// The stand-ins are placed by genesis alloc, where no constructor runs: their
// runtime code must not depend on one. Deploying them normally must leave
// exactly the artifact's runtime code on chain, which fails if they had
// immutables.
func TestMixerCodeNeedsNoConstructor(t *testing.T) {
	deployer := newAccount(t)
	c := newChain(t, deployer)
	for _, name := range []string{NameTornadoPool, NameTornadoRouter} {
		addr, _ := c.deploy(deployer, name)
		code, err := c.client.CodeAt(c.ctx, addr, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(code, mustLoad(t, name).DeployedBytecode) {
			t.Fatalf("%s: deployed code differs from the artifact's runtime code", name)
		}
	}
}

func TestTestToken(t *testing.T) {
	deployer, alice, bob, carol := newAccount(t), newAccount(t), newAccount(t), newAccount(t)
	c := newChain(t, deployer, alice, bob, carol)
	tok := mustLoad(t, NameTestToken)

	token, _ := c.deploy(deployer, NameTestToken, "Test Dollar", "TUSD", uint8(6))
	if got := c.call(token, tok, "name"); got != "Test Dollar" {
		t.Fatalf("name = %v", got)
	}
	if got := c.call(token, tok, "symbol"); got != "TUSD" {
		t.Fatalf("symbol = %v", got)
	}
	if got := c.call(token, tok, "decimals"); got != uint8(6) {
		t.Fatalf("decimals = %v", got)
	}

	// Mint: deployer only.
	r := c.send(deployer, token, nil, tok, "mint", alice.addr, big.NewInt(1_000_000))
	l := oneLog(t, r, token, tok, "Transfer")
	if l.Topics[1] != (common.Hash{}) || l.Topics[2] != addrTopic(alice.addr) || new(big.Int).SetBytes(l.Data).Int64() != 1_000_000 {
		t.Fatalf("mint Transfer log = %+v", l)
	}
	c.sendFailing(alice, token, nil, tok, "mint", alice.addr, big.NewInt(1))
	wantBig(t, "totalSupply", c.call(token, tok, "totalSupply").(*big.Int), 1_000_000)
	wantBig(t, "alice", c.balance(token, tok, alice.addr), 1_000_000)

	// Transfer.
	r = c.send(alice, token, nil, tok, "transfer", bob.addr, big.NewInt(250_000))
	l = oneLog(t, r, token, tok, "Transfer")
	if l.Topics[1] != addrTopic(alice.addr) || l.Topics[2] != addrTopic(bob.addr) || new(big.Int).SetBytes(l.Data).Int64() != 250_000 {
		t.Fatalf("Transfer log = %+v", l)
	}
	wantBig(t, "alice", c.balance(token, tok, alice.addr), 750_000)
	wantBig(t, "bob", c.balance(token, tok, bob.addr), 250_000)
	c.sendFailing(bob, token, nil, tok, "transfer", carol.addr, big.NewInt(250_001))

	// Approve and transferFrom, which spends the allowance.
	r = c.send(alice, token, nil, tok, "approve", bob.addr, big.NewInt(100_000))
	l = oneLog(t, r, token, tok, "Approval")
	if l.Topics[1] != addrTopic(alice.addr) || l.Topics[2] != addrTopic(bob.addr) || new(big.Int).SetBytes(l.Data).Int64() != 100_000 {
		t.Fatalf("Approval log = %+v", l)
	}
	r = c.send(bob, token, nil, tok, "transferFrom", alice.addr, carol.addr, big.NewInt(60_000))
	l = oneLog(t, r, token, tok, "Transfer")
	if l.Topics[1] != addrTopic(alice.addr) || l.Topics[2] != addrTopic(carol.addr) {
		t.Fatalf("transferFrom Transfer log = %+v", l)
	}
	wantBig(t, "allowance", c.call(token, tok, "allowance", alice.addr, bob.addr).(*big.Int), 40_000)
	wantBig(t, "alice", c.balance(token, tok, alice.addr), 690_000)
	wantBig(t, "carol", c.balance(token, tok, carol.addr), 60_000)
	c.sendFailing(bob, token, nil, tok, "transferFrom", alice.addr, carol.addr, big.NewInt(40_001))
	c.sendFailing(carol, token, nil, tok, "transferFrom", alice.addr, carol.addr, big.NewInt(1))
	wantBig(t, "totalSupply", c.call(token, tok, "totalSupply").(*big.Int), 1_000_000)
}

// TestVaultBackdoorUpgrade plays the insider attack: a vault behind an
// EIP-1967 proxy is upgraded by the admin to VaultV2, whose unguarded sweep
// then lets anyone move the vault's tokens.
func TestVaultBackdoorUpgrade(t *testing.T) {
	deployer, admin, owner, payee, thief := newAccount(t), newAccount(t), newAccount(t), newAccount(t), newAccount(t)
	c := newChain(t, deployer, admin, owner, payee, thief)
	tok := mustLoad(t, NameTestToken)
	proxyArt := mustLoad(t, NameUpgradeableProxy)
	vaultArt := mustLoad(t, NameVault)
	v2Art := mustLoad(t, NameVaultV2)

	token, _ := c.deploy(deployer, NameTestToken, "Test Dollar", "TUSD", uint8(6))
	impl, _ := c.deploy(deployer, NameVault)
	proxy, r := c.deploy(deployer, NameUpgradeableProxy, impl, admin.addr)

	// The constructor records the first implementation and admin.
	if l := oneLog(t, r, proxy, proxyArt, "Upgraded"); l.Topics[1] != addrTopic(impl) {
		t.Fatalf("constructor Upgraded log names %s, want %s", l.Topics[1], impl)
	}
	ev, err := proxyArt.ABI.Unpack("AdminChanged", oneLog(t, r, proxy, proxyArt, "AdminChanged").Data)
	if err != nil {
		t.Fatal(err)
	}
	if ev[0].(common.Address) != (common.Address{}) || ev[1].(common.Address) != admin.addr {
		t.Fatalf("constructor AdminChanged = %v", ev)
	}
	if got := c.storage(proxy, ImplementationSlot); got != addrTopic(impl) {
		t.Fatalf("implementation slot = %s, want %s", got, impl)
	}
	if got := c.storage(proxy, AdminSlot); got != addrTopic(admin.addr) {
		t.Fatalf("admin slot = %s, want %s", got, admin.addr)
	}
	if _, _, err := Deploy(c.ctx, c.client, deployer.key, c.chainID, NameUpgradeableProxy, payee.addr, admin.addr); err == nil {
		t.Fatal("a proxy pointing at an account without code was deployable")
	}

	// Initialize through the proxy, once. The bare implementation is locked.
	r = c.send(deployer, proxy, nil, vaultArt, "initialize", owner.addr)
	if l := oneLog(t, r, proxy, vaultArt, "OwnershipTransferred"); l.Topics[1] != (common.Hash{}) || l.Topics[2] != addrTopic(owner.addr) {
		t.Fatalf("OwnershipTransferred log = %+v", l)
	}
	if got := c.call(proxy, vaultArt, "owner"); got != owner.addr {
		t.Fatalf("owner = %v, want %s", got, owner.addr)
	}
	c.sendFailing(thief, proxy, nil, vaultArt, "initialize", thief.addr)
	c.sendFailing(thief, impl, nil, vaultArt, "initialize", thief.addr)

	// The owner lives in the namespaced slot, not in slot 0 or the proxy's.
	base := new(big.Int).SetBytes(crypto.Keccak256([]byte("keywatch.storage.Vault")))
	nsSlot := new(big.Int).SetBytes(crypto.Keccak256(common.BigToHash(base.Sub(base, big.NewInt(1))).Bytes()))
	nsSlot.And(nsSlot, new(big.Int).Not(big.NewInt(0xff)))
	wantWord := new(big.Int).Or(new(big.Int).Lsh(big.NewInt(1), 160), owner.addr.Big()) // initialized | owner
	if got := c.storage(proxy, common.BigToHash(nsSlot)); got != common.BigToHash(wantWord) {
		t.Fatalf("vault storage slot = %s, want %s", got, common.BigToHash(wantWord))
	}
	if got := c.storage(proxy, common.Hash{}); got != (common.Hash{}) {
		t.Fatalf("slot 0 = %s, want empty", got)
	}

	// Fund the vault; only the owner can pay out, and v1 has no sweep.
	c.send(deployer, token, nil, tok, "mint", proxy, big.NewInt(5_000_000))
	r = c.send(owner, proxy, nil, vaultArt, "pay", token, payee.addr, big.NewInt(1_000_000))
	if l := oneLog(t, r, token, tok, "Transfer"); l.Topics[1] != addrTopic(proxy) || l.Topics[2] != addrTopic(payee.addr) {
		t.Fatalf("pay Transfer log = %+v", l)
	}
	c.sendFailing(thief, proxy, nil, vaultArt, "pay", token, thief.addr, big.NewInt(1))
	c.sendFailing(thief, proxy, nil, v2Art, "sweep", token, thief.addr, big.NewInt(1))
	wantBig(t, "vault", c.balance(token, tok, proxy), 4_000_000)
	wantBig(t, "payee", c.balance(token, tok, payee.addr), 1_000_000)

	// Only the admin can upgrade.
	impl2, _ := c.deploy(deployer, NameVaultV2)
	c.sendFailing(owner, proxy, nil, proxyArt, "upgradeTo", impl2)
	c.sendFailing(admin, proxy, nil, proxyArt, "upgradeTo", payee.addr) // not a contract
	r = c.send(admin, proxy, nil, proxyArt, "upgradeTo", impl2)
	if l := oneLog(t, r, proxy, proxyArt, "Upgraded"); l.Topics[1] != addrTopic(impl2) {
		t.Fatalf("Upgraded log names %s, want %s", l.Topics[1], impl2)
	}
	if len(r.Logs) != 1 {
		t.Fatalf("upgradeTo left %d logs, want 1", len(r.Logs))
	}
	if got := c.storage(proxy, ImplementationSlot); got != addrTopic(impl2) {
		t.Fatalf("implementation slot after upgrade = %s, want %s", got, impl2)
	}
	if got := c.call(proxy, v2Art, "owner"); got != owner.addr {
		t.Fatalf("owner after upgrade = %v, want %s", got, owner.addr)
	}

	// The backdoor: anyone sweeps the vault.
	r = c.send(thief, proxy, nil, v2Art, "sweep", token, thief.addr, big.NewInt(4_000_000))
	l := oneLog(t, r, token, tok, "Transfer")
	if l.Topics[1] != addrTopic(proxy) || l.Topics[2] != addrTopic(thief.addr) || new(big.Int).SetBytes(l.Data).Int64() != 4_000_000 {
		t.Fatalf("sweep Transfer log = %+v", l)
	}
	if len(r.Logs) != 1 {
		t.Fatalf("sweep left %d logs, want only the token's Transfer", len(r.Logs))
	}
	wantBig(t, "vault", c.balance(token, tok, proxy), 0)
	wantBig(t, "thief", c.balance(token, tok, thief.addr), 4_000_000)

	// Ownership and admin handover.
	r = c.send(owner, proxy, nil, v2Art, "transferOwnership", payee.addr)
	if l := oneLog(t, r, proxy, v2Art, "OwnershipTransferred"); l.Topics[1] != addrTopic(owner.addr) || l.Topics[2] != addrTopic(payee.addr) {
		t.Fatalf("OwnershipTransferred log = %+v", l)
	}
	c.sendFailing(owner, proxy, nil, v2Art, "transferOwnership", owner.addr)
	c.sendFailing(thief, proxy, nil, proxyArt, "changeAdmin", thief.addr)
	r = c.send(admin, proxy, nil, proxyArt, "changeAdmin", thief.addr)
	ev, err = proxyArt.ABI.Unpack("AdminChanged", oneLog(t, r, proxy, proxyArt, "AdminChanged").Data)
	if err != nil {
		t.Fatal(err)
	}
	if ev[0].(common.Address) != admin.addr || ev[1].(common.Address) != thief.addr {
		t.Fatalf("AdminChanged = %v, want %s -> %s", ev, admin.addr, thief.addr)
	}
	if got := c.storage(proxy, AdminSlot); got != addrTopic(thief.addr) {
		t.Fatalf("admin slot = %s, want %s", got, thief.addr)
	}
	c.sendFailing(admin, proxy, nil, proxyArt, "upgradeTo", impl)
}

func TestMixerDeposits(t *testing.T) {
	alice, bob := newAccount(t), newAccount(t)
	c := newChain(t, alice, bob)
	pool := mustLoad(t, NameTornadoPool)
	router := mustLoad(t, NameTornadoRouter)
	depositTopic := common.HexToHash("0xa945e51eec50ab98c161376f0db4cf2aeba3ec92755fe2fcd388bdbbb80ff196")
	noteTopic := common.HexToHash("0xfa28df43db3553771f7209dcef046f3bdfea15870ab625dcda30ac58b82b4008")

	for addr, name := range map[common.Address]string{TornadoPool1ETH: NameTornadoPool, TornadoRouter: NameTornadoRouter} {
		code, err := c.client.CodeAt(c.ctx, addr, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(code, mustLoad(t, name).DeployedBytecode) {
			t.Fatalf("no %s code at %s", name, addr)
		}
	}
	wantBig(t, "pool denomination", c.call(TornadoPool1ETH, pool, "denomination").(*big.Int), params.Ether)

	checkDeposit := func(l *types.Log, commitment common.Hash, leaf uint32) {
		t.Helper()
		if l.Topics[0] != depositTopic || len(l.Topics) != 2 || l.Topics[1] != commitment {
			t.Fatalf("Deposit log topics = %v", l.Topics)
		}
		ev, err := pool.ABI.Unpack("Deposit", l.Data)
		if err != nil {
			t.Fatal(err)
		}
		if ev[0].(uint32) != leaf || ev[1].(*big.Int).Sign() <= 0 {
			t.Fatalf("Deposit data = %v, want leaf %d and a timestamp", ev, leaf)
		}
	}

	// 1 ETH straight into the pool.
	c1 := crypto.Keccak256Hash([]byte("note 1"))
	r := c.send(alice, TornadoPool1ETH, oneEther, pool, "deposit", c1)
	checkDeposit(oneLog(t, r, TornadoPool1ETH, pool, "Deposit"), c1, 0)
	wantBig(t, "pool balance", c.ethBalance(TornadoPool1ETH), params.Ether)
	if c.call(TornadoPool1ETH, pool, "commitments", c1) != true {
		t.Fatal("commitment not recorded")
	}

	// 1 ETH through the router, with an encrypted note.
	c2 := crypto.Keccak256Hash([]byte("note 2"))
	note := []byte("encrypted note bytes")
	r = c.send(bob, TornadoRouter, oneEther, router, "deposit", TornadoPool1ETH, c2, note)
	checkDeposit(oneLog(t, r, TornadoPool1ETH, pool, "Deposit"), c2, 1)
	l := oneLog(t, r, TornadoRouter, router, "EncryptedNote")
	if l.Topics[0] != noteTopic || l.Topics[1] != addrTopic(bob.addr) {
		t.Fatalf("EncryptedNote topics = %v", l.Topics)
	}
	ev, err := router.ABI.Unpack("EncryptedNote", l.Data)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ev[0].([]byte), note) {
		t.Fatalf("EncryptedNote note = %x, want %x", ev[0], note)
	}
	wantBig(t, "pool balance", c.ethBalance(TornadoPool1ETH), 2*params.Ether)
	wantBig(t, "router balance", c.ethBalance(TornadoRouter), 0)

	// Wrong amounts and reused commitments revert, directly and via the router.
	c3 := crypto.Keccak256Hash([]byte("note 3"))
	c.sendFailing(alice, TornadoPool1ETH, halfEther, pool, "deposit", c3)
	c.sendFailing(alice, TornadoPool1ETH, nil, pool, "deposit", c3)
	c.sendFailing(alice, TornadoRouter, halfEther, router, "deposit", TornadoPool1ETH, c3, note)
	c.sendFailing(alice, TornadoPool1ETH, oneEther, pool, "deposit", c1)
	c.sendFailing(bob, TornadoRouter, oneEther, router, "deposit", TornadoPool1ETH, c2, note)
	wantBig(t, "pool balance", c.ethBalance(TornadoPool1ETH), 2*params.Ether)
	if got := c.call(TornadoPool1ETH, pool, "nextIndex"); got != uint32(2) {
		t.Fatalf("nextIndex = %v, want 2", got)
	}

	// Estimation already refuses the 0.5 ETH deposit, so Transact reports it
	// before anything is sent.
	if _, err := Transact(c.ctx, c.client, alice.key, c.chainID, &TornadoPool1ETH, halfEther, mustPack(t, pool, "deposit", c3)); err == nil {
		t.Fatal("Transact of a 0.5 ETH deposit succeeded")
	}
}
