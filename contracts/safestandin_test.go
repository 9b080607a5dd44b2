package contracts

import (
	"context"
	"math/big"
	"slices"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethclient/simulated"
)

// TestSafeStandIn: deployed or placed by SafeStandInAlloc, the stand-in
// answers a Safe's nonce() and VERSION(), keeps its nonce in slot 5, and
// execute uses the nonce and logs the safeTxHash as a Safe's
// ExecutionSuccess or ExecutionFailure.
func TestSafeStandIn(t *testing.T) {
	owner := newAccount(t)
	placed := common.HexToAddress("0x1Db92e2EeBC8E0c075a02BeA49a2935BcD2dFCF4")
	bybitOwners := []common.Address{common.HexToAddress("0x1F4EB0a903619ac168b19A82F1a6e2e426522211"), common.HexToAddress("0x3Cc3A225769900e003E264dd4CB43E90896BC21A")}
	acc, err := SafeStandInAlloc("1.1.1", 71, bybitOwners...)
	if err != nil {
		t.Fatal(err)
	}
	sim := simulated.NewBackend(types.GenesisAlloc{owner.addr: {Balance: big.NewInt(1e18)}, placed: acc})
	t.Cleanup(func() { sim.Close() })
	c := &chain{t: t, ctx: context.Background(), sim: sim, client: sim.Client(), chainID: big.NewInt(1337)}
	art := mustLoad(t, NameSafeStandIn)
	deployed, _ := c.deploy(owner, NameSafeStandIn, "1.3.0", big.NewInt(5), []common.Address{owner.addr})
	for _, tc := range []struct {
		addr    common.Address
		version string
		nonce   int64
		owners  []common.Address
	}{{placed, "1.1.1", 71, bybitOwners}, {deployed, "1.3.0", 5, []common.Address{owner.addr}}} {
		if got := c.call(tc.addr, art, "getOwners").([]common.Address); !slices.Equal(got, tc.owners) {
			t.Errorf("%s: getOwners() %v, want %v", tc.addr, got, tc.owners)
		}
		if v := c.call(tc.addr, art, "VERSION").(string); v != tc.version {
			t.Errorf("%s: VERSION() %q, want %q", tc.addr, v, tc.version)
		}
		wantBig(t, "nonce()", c.call(tc.addr, art, "nonce").(*big.Int), tc.nonce)
		if got := c.storage(tc.addr, common.BigToHash(big.NewInt(5))).Big(); got.Int64() != tc.nonce {
			t.Errorf("%s: slot 5 holds %s, want the nonce", tc.addr, got)
		}
	}
	h := crypto.Keccak256Hash([]byte("a safe transaction"))
	for _, success := range []bool{true, false} {
		event := "ExecutionSuccess"
		if !success {
			event = "ExecutionFailure"
		}
		r := c.send(owner, placed, nil, art, "execute", h, success)
		l := oneLog(t, r, placed, art, event)
		if len(l.Topics) != 1 || common.BytesToHash(l.Data[:32]) != h {
			t.Errorf("%s log %+v does not carry the safeTxHash in its data", event, l)
		}
	}
	wantBig(t, "nonce() after two executions", c.call(placed, art, "nonce").(*big.Int), 73)
	if _, err := SafeStandInAlloc(string(make([]byte, 32)), 0); err == nil {
		t.Error("a 32-byte version was accepted")
	}
}
