package ethereum_test

import (
	"context"
	"fmt"
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/ethclient"

	"github.com/keywatch/keywatch/chains"
	kwe "github.com/keywatch/keywatch/chains/ethereum"
	"github.com/keywatch/keywatch/contracts"
	"github.com/keywatch/keywatch/internal/simchain"
	"github.com/keywatch/keywatch/internal/testenv"
)

// Sizes of the slot-read benchmark: watched contracts, and the blocks
// decoded in turn (more than the source caches, so every block is read as
// when following the chain).
var slotBenchContracts = []int{1, 10, 100}

const slotBenchBlocks = 64

// slotBenchChain is a chain holding EIP-1967 proxies and a run of blocks
// with one transfer each, and the clients to decode it through.
type slotBenchChain struct {
	clients map[string]kwe.Client // by name, in the order of names
	names   []string
	proxies []common.Address
	first   uint64 // first block of the run
}

// BenchmarkSlotReads decodes blocks of a chain watching 1, 10 or 100
// contracts, with the slot reads and without them (WithoutSlotReads), from
// the same node: the simulated backend (through its client, one call per
// slot as the demo reads it, and through its raw client, batched) and geth
// --dev (a Pool over HTTP, batched). The blocks change no watched slot, so
// nothing is traced: this is the cost of reading.
//
//	go test -run '^$' -bench SlotReads -benchtime 200x ./chains/ethereum/
func BenchmarkSlotReads(b *testing.B) {
	b.Run("node=sim", func(b *testing.B) {
		ctx := context.Background()
		c := simchain.New(map[string]int64{"deployer": 1000, "outsider": 1000}, nil)
		defer c.Close()
		ch := slotBenchChain{clients: map[string]kwe.Client{"simulated": c.Client, "raw-batch": newRawNode(c)}, names: []string{"simulated", "raw-batch"}}
		ch.build(b, func(name string, args ...any) common.Address {
			a, err := c.Deploy(ctx, "deployer", name, args...)
			if err != nil {
				b.Fatal(err)
			}
			return a
		}, func() uint64 {
			to := simchain.Addr("vendor")
			r, err := c.Send(ctx, "outsider", &to, big.NewInt(1), nil)
			if err != nil {
				b.Fatal(err)
			}
			return r.BlockNumber.Uint64()
		})
		ch.run(b)
	})
	b.Run("node=geth", func(b *testing.B) {
		ctx := context.Background()
		g := testenv.Geth(b, testenv.GethDevPeriod(0))
		for _, n := range []string{"deployer", "outsider"} {
			if err := g.Fund(ctx, simchain.Addr(n), simchain.Ether(1000)); err != nil {
				b.Fatal(err)
			}
		}
		ec, err := ethclient.Dial(g.HTTPURL)
		if err != nil {
			b.Fatal(err)
		}
		defer ec.Close()
		pool := kwe.NewPool([]string{g.HTTPURL}, 0, nil)
		defer pool.Close()
		mined := func(tx *types.Transaction) uint64 {
			r, err := g.WaitForReceipt(ctx, tx.Hash())
			if err != nil || r.Status != 1 {
				b.Fatalf("tx %s: %v", tx.Hash().Hex(), err)
			}
			return uint64(r.BlockNumber)
		}
		ch := slotBenchChain{clients: map[string]kwe.Client{"pool-http": pool}, names: []string{"pool-http"}}
		ch.build(b, func(name string, args ...any) common.Address {
			a, tx, err := contracts.Deploy(ctx, ec, simchain.Key("deployer"), simchain.ChainID, name, args...)
			if err != nil {
				b.Fatal(err)
			}
			mined(tx)
			return a
		}, func() uint64 {
			to := simchain.Addr("vendor")
			tx, err := contracts.Transact(ctx, ec, simchain.Key("outsider"), simchain.ChainID, &to, big.NewInt(1), nil)
			if err != nil {
				b.Fatal(err)
			}
			return mined(tx)
		})
		ch.run(b)
	})
}

// run decodes the run's blocks through each client, for each number of
// watched contracts, without and with the slot reads.
func (ch *slotBenchChain) run(b *testing.B) {
	for _, client := range ch.names {
		for _, n := range slotBenchContracts {
			for _, slots := range []bool{false, true} {
				b.Run(fmt.Sprintf("client=%s/contracts=%d/slots=%v", client, n, slots), func(b *testing.B) {
					ch.decode(b, ch.clients[client], n, slots)
				})
			}
		}
	}
}

// build deploys the proxies, then makes slotBenchBlocks blocks of one
// transfer each.
func (ch *slotBenchChain) build(b *testing.B, deploy func(name string, args ...any) common.Address, send func() uint64) {
	b.Helper()
	impl := deploy(contracts.NameVault)
	for range slotBenchContracts[len(slotBenchContracts)-1] {
		ch.proxies = append(ch.proxies, deploy(contracts.NameUpgradeableProxy, impl, simchain.Addr("admin")))
	}
	for i := range slotBenchBlocks {
		n := send()
		if i == 0 {
			ch.first = n
		}
	}
}

// decode decodes the run's blocks in turn, watching the first n proxies.
func (ch *slotBenchChain) decode(b *testing.B, client kwe.Client, n int, slots bool) {
	ctx := context.Background()
	var ws []kwe.Wallet
	for i, a := range ch.proxies[:n] {
		ws = append(ws, kwe.Wallet{Name: fmt.Sprint("vault-", i), Address: a, Role: "contract"})
	}
	src := kwe.NewSource(client, kwe.Options{Chain: "eth", NativeSymbol: "ETH", Wallets: ws, Traces: "auto"})
	if !slots {
		src.WithoutSlotReads()
	}
	blocks := make([]chains.Block, slotBenchBlocks)
	for i := range blocks {
		var err error
		if blocks[i], err = src.BlockAt(ctx, ch.first+uint64(i)); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	i := 0
	for b.Loop() {
		if _, err := src.Events(ctx, blocks[i%len(blocks)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64(i)/b.Elapsed().Seconds(), "blocks/s")
}
