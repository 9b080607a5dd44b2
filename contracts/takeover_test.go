package contracts

import (
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/common"
)

// TestSlotZeroTakeover: the owner of a SingletonWallet delegatecalls what
// looks like a token transfer; it rewrites slot 0, the wallet logs nothing,
// and from then on anyone sweeps the wallet through the new singleton.
func TestSlotZeroTakeover(t *testing.T) {
	deployer, owner, payee, thief := newAccount(t), newAccount(t), newAccount(t), newAccount(t)
	c := newChain(t, deployer, owner, payee, thief)
	walletArt := mustLoad(t, NameSingletonWallet)
	takeArt := mustLoad(t, NameSlotZeroTakeover)

	honest, _ := c.deploy(deployer, NameVault) // any contract: the honest singleton
	wallet, _ := c.deploy(deployer, NameSingletonWallet, honest, owner.addr)
	attacker, _ := c.deploy(thief, NameSlotZeroTakeover)
	if got := c.storage(wallet, common.Hash{}); got != addrTopic(honest) {
		t.Fatalf("slot 0 = %s, want the singleton %s", got, honest)
	}
	if got := c.call(wallet, walletArt, "masterCopy"); got != honest {
		t.Fatalf("masterCopy() = %v, want %s", got, honest)
	}
	if got := c.storage(wallet, common.BigToHash(big.NewInt(1))); got != addrTopic(owner.addr) {
		t.Fatalf("slot 1 = %s, want the owner %s", got, owner.addr)
	}
	tx, err := Transact(c.ctx, c.client, deployer.key, c.chainID, &wallet, new(big.Int).Mul(big.NewInt(10), oneEther), nil)
	if err != nil {
		t.Fatal(err)
	}
	c.receipt(tx)

	// Only the owner executes, operation 0 or 1; a call moves value and
	// leaves slot 0 alone.
	c.sendFailing(thief, wallet, nil, walletArt, "execTransaction", thief.addr, oneEther, []byte{}, uint8(0))
	c.sendFailing(owner, wallet, nil, walletArt, "execTransaction", payee.addr, oneEther, []byte{}, uint8(2))
	before := c.ethBalance(payee.addr)
	c.send(owner, wallet, nil, walletArt, "execTransaction", payee.addr, oneEther, []byte{}, uint8(0))
	if got := new(big.Int).Sub(c.ethBalance(payee.addr), before); got.Cmp(oneEther) != 0 {
		t.Fatalf("payee received %s wei, want 1 ether", got)
	}
	if got := c.storage(wallet, common.Hash{}); got != addrTopic(honest) {
		t.Fatalf("slot 0 after a call = %s, want %s", got, honest)
	}

	// The takeover: a delegatecall to transfer(attacker, 0).
	data := mustPack(t, takeArt, "transfer", attacker, new(big.Int))
	r := c.send(owner, wallet, nil, walletArt, "execTransaction", attacker, new(big.Int), data, uint8(1))
	if len(r.Logs) != 0 {
		t.Fatalf("the takeover left %d logs, want none", len(r.Logs))
	}
	if got := c.storage(wallet, common.Hash{}); got != addrTopic(attacker) {
		t.Fatalf("slot 0 after the takeover = %s, want the attacker's contract %s", got, attacker)
	}
	if got := c.storage(attacker, common.Hash{}); got != (common.Hash{}) {
		t.Fatalf("the attacker contract's own slot 0 = %s, want empty (the write went to the wallet)", got)
	}

	// Anyone sweeps the wallet now.
	before = c.ethBalance(thief.addr)
	r = c.send(thief, wallet, nil, takeArt, "sweepETH", thief.addr)
	if got := c.ethBalance(wallet); got.Sign() != 0 {
		t.Fatalf("wallet holds %s wei after the sweep", got)
	}
	if len(r.Logs) != 0 {
		t.Fatalf("the sweep left %d logs, want none", len(r.Logs))
	}
	if c.ethBalance(thief.addr).Cmp(before) <= 0 {
		t.Fatal("the thief gained nothing from the sweep")
	}
}
