package contracts

import (
	"math/big"
	"testing"
)

// TestSweeperMovesETHByInternalCalls checks what the traces tests rely on:
// a sweep through SweepCaller moves the ETH, a reverted sweep moves none
// though its transaction succeeds, forward passes on what it is sent, and
// destroy sends the whole balance.
func TestSweeperMovesETHByInternalCalls(t *testing.T) {
	deployer, caller, thief := newAccount(t), newAccount(t), newAccount(t)
	c := newChain(t, deployer, caller)
	sweeper, _ := c.deploy(deployer, NameSweeper)
	via, _ := c.deploy(deployer, NameSweepCaller)
	sa, va := mustLoad(t, NameSweeper), mustLoad(t, NameSweepCaller)
	// Fund the sweeper through its receive function.
	tx, err := Transact(c.ctx, c.client, deployer.key, c.chainID, &sweeper, new(big.Int).Mul(big.NewInt(10), oneEther), nil)
	if err != nil {
		t.Fatal(err)
	}
	if r := c.receipt(tx); r.Status != 1 {
		t.Fatal("funding the sweeper failed")
	}

	c.send(caller, via, nil, va, "sweepVia", sweeper, thief.addr, oneEther)
	if got := c.ethBalance(thief.addr); got.Cmp(oneEther) != 0 {
		t.Fatalf("after sweepVia the thief holds %s wei, want 1 ETH", got)
	}
	c.send(caller, via, nil, va, "sweepReverted", sweeper, thief.addr, oneEther)
	if got := c.ethBalance(thief.addr); got.Cmp(oneEther) != 0 {
		t.Fatalf("a reverted sweep moved ETH: the thief holds %s wei", got)
	}
	c.send(caller, via, halfEther, va, "forward", thief.addr)
	want := new(big.Int).Add(oneEther, halfEther)
	if got := c.ethBalance(thief.addr); got.Cmp(want) != 0 {
		t.Fatalf("after forward the thief holds %s wei, want 1.5 ETH", got)
	}
	c.send(caller, sweeper, nil, sa, "destroy", thief.addr)
	if c.ethBalance(sweeper).Sign() != 0 {
		t.Fatalf("after destroy the sweeper still holds %s wei", c.ethBalance(sweeper))
	}
	want.Add(want, new(big.Int).Mul(big.NewInt(9), oneEther))
	if got := c.ethBalance(thief.addr); got.Cmp(want) != 0 {
		t.Fatalf("after destroy the thief holds %s wei, want 10.5 ETH", got)
	}
}
