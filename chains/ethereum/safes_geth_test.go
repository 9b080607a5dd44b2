package ethereum_test

import (
	"context"
	"crypto/ecdsa"
	"math/big"
	"slices"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/ethclient"

	"github.com/keywatch/keywatch/chains"
	kwe "github.com/keywatch/keywatch/chains/ethereum"
	"github.com/keywatch/keywatch/chains/ethereum/safe"
	"github.com/keywatch/keywatch/internal/safetest"
	"github.com/keywatch/keywatch/internal/simchain"
	"github.com/keywatch/keywatch/internal/testenv"
)

// TestSafeEventsOnGeth: a real Safe 1.4.1 on geth --dev, read through the
// node pool over HTTP: CheckSafe, an owner added and a delegatecall to an
// attacker's contract, with their signers.
func TestSafeEventsOnGeth(t *testing.T) {
	ctx := context.Background()
	g := testenv.Geth(t)
	for _, name := range []string{"deployer", "alice", "dev-kim", "relayer"} {
		if err := g.Fund(ctx, simchain.Addr(name), simchain.Ether(10)); err != nil {
			t.Fatal(err)
		}
	}
	client, err := ethclient.Dial(g.HTTPURL)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	chain := safetest.Node(client, big.NewInt(1337))
	dep := must[*safetest.Deployment](t)(safetest.Deploy(ctx, chain, simchain.Key("deployer"), "1.4.1"))
	s := must[*safetest.Safe](t)(dep.NewSafe(ctx, chain, simchain.Key("deployer"), []common.Address{simchain.Addr("alice"), simchain.Addr("dev-kim")}, 2, false, 7))

	pool := kwe.NewPool([]string{g.HTTPURL}, 0, nil)
	defer pool.Close()
	if info, err := kwe.CheckSafe(ctx, pool, s.Address); err != nil || info.Version != "1.4.1" || len(info.Owners) != 2 {
		t.Fatalf("CheckSafe on geth: %+v, %v", info, err)
	}
	if _, err := kwe.CheckSafe(ctx, pool, simchain.Addr("alice")); err == nil {
		t.Error("CheckSafe on geth took an account for a Safe")
	}
	src := kwe.NewSource(pool, kwe.Options{Chain: "eth", NativeSymbol: "ETH", Wallets: []kwe.Wallet{
		{Name: "treasury-safe", Address: s.Address, Role: "warm", Safe: true},
		{Name: "dev-kim", Address: simchain.Addr("dev-kim"), Role: "employee-key", Owner: "kim@firm.example"},
	}})
	events := func(r *types.Receipt) []chains.Event {
		t.Helper()
		b := must[chains.Block](t)(src.BlockAt(ctx, r.BlockNumber.Uint64()))
		var out []chains.Event
		for _, ev := range must[[]chains.Event](t)(src.Events(ctx, b)) {
			if ev.Tx == r.TxHash.Hex() {
				out = append(out, ev)
			}
		}
		return out
	}
	signers := []*ecdsa.PrivateKey{simchain.Key("alice"), simchain.Key("dev-kim")}
	wantSigners := sortedLower(simchain.Addr("alice"), simchain.Addr("dev-kim"))
	relayer := simchain.Key("relayer")

	carol := simchain.Addr("carol")
	r := must[*types.Receipt](t)(s.Admin(ctx, relayer, signers, "addOwnerWithThreshold", carol, big.NewInt(2)))
	evs := events(r)
	if len(evs) != 2 || evs[0].Kind != chains.KindExecution || evs[1].Kind != chains.KindAdmin ||
		evs[1].Detail["change"] != "added-owner" || evs[1].Detail["owner"] != lower(carol) || !slices.Equal(evs[1].Signers, wantSigners) {
		t.Fatalf("added owner on geth: %+v", evs)
	}

	attacker := must[common.Address](t)(safetest.DeploySlotWriter(ctx, chain, simchain.Key("deployer")))
	r = must[*types.Receipt](t)(s.Run(ctx, relayer, attacker, nil, safetest.SlotWriterCall(simchain.Addr("evil")), safe.DelegateCall, signers...))
	evs = events(r)
	if len(evs) != 1 {
		t.Fatalf("delegatecall on geth: %+v", evs)
	}
	x := evs[0]
	if x.Kind != chains.KindExecution || x.Operation != "delegatecall" || x.Target != lower(attacker) || x.Selector != "0xa9059cbb" ||
		x.SafeNonce == nil || *x.SafeNonce != 1 || !slices.Equal(x.Signers, wantSigners) || x.Owner != "kim@firm.example" || x.Initiator != lower(simchain.Addr("relayer")) {
		t.Errorf("delegatecall on geth: %+v", x)
	}
}
