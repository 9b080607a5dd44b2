package ethereum_test

import (
	"context"
	"encoding/json"
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/ethereum/go-ethereum/rpc"

	kwe "github.com/keywatch/keywatch/chains/ethereum"
	"github.com/keywatch/keywatch/contracts"
	"github.com/keywatch/keywatch/internal/simchain"
	"github.com/keywatch/keywatch/internal/testenv"
)

// benchBlocks is how many blocks each range spans, benchPerKind how many
// transactions of each kind a block carries. geth keeps the state of its
// last 128 blocks, which tracing needs (the parent's), so both ranges and
// the blocks sealed while the benchmark runs stay within that.
const (
	benchBlocks  = 20
	benchPerKind = 4
)

// BenchmarkTracesOnGeth decodes the same blocks of a real geth --dev (a
// block a second) with traces off, with debug_traceBlockByHash (callTracer)
// and with the balance check, in one run, through the Pool over HTTP as
// keywatch runs.
//
// Two ranges are made first. "mixed": each block has plain transfers,
// sweeps of the watched vault two frames deep, and contract calls that
// forward ETH between outsiders (which must be traced to know they touch
// nothing watched). "transfers": plain transfers between outsiders only,
// the one kind of block the source does not trace, as none of its
// transactions runs code; "transfers/trace" is the trace call that saves
// and "transfers/getCode" what knowing it costs (one eth_getCode per
// distinct recipient at the parent block, batched).
func BenchmarkTracesOnGeth(b *testing.B) {
	g := testenv.Geth(b)
	ctx := context.Background()
	for _, name := range []string{"deployer", "outsider", "sender"} {
		if err := g.Fund(ctx, simchain.Addr(name), simchain.Ether(1000)); err != nil {
			b.Fatal(err)
		}
	}
	client, err := ethclient.Dial(g.HTTPURL)
	if err != nil {
		b.Fatal(err)
	}
	defer client.Close()
	deploy := func(name string) common.Address {
		addr, tx, err := contracts.Deploy(ctx, client, simchain.Key("deployer"), simchain.ChainID, name)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := g.WaitForReceipt(ctx, tx.Hash()); err != nil {
			b.Fatal(err)
		}
		return addr
	}
	sweeper, caller := deploy(contracts.NameSweeper), deploy(contracts.NameSweepCaller)
	if err := g.Fund(ctx, sweeper, simchain.Ether(500)); err != nil {
		b.Fatal(err)
	}
	ca := must[*contracts.Artifact](b)(contracts.Load(contracts.NameSweepCaller))
	sweep := must[[]byte](b)(ca.Pack("sweepVia", sweeper, simchain.Addr("thief"), big.NewInt(1e15)))
	forward := must[[]byte](b)(ca.Pack("forward", simchain.Addr("fence")))
	// Gas is estimated (by the node, for its fork's prices): each of a
	// round's transactions comes from its own key, so they go out together.
	send := func(from string, to common.Address, value *big.Int, data []byte) common.Hash {
		tx, err := contracts.Transact(ctx, client, simchain.Key(from), simchain.ChainID, &to, value, data)
		if err != nil {
			b.Fatal(err)
		}
		return tx.Hash()
	}
	makeRange := func(mixed bool) (uint64, uint64) {
		first, last := uint64(0), uint64(0)
		for i := range benchBlocks {
			var txs []common.Hash
			for j := range benchPerKind {
				vendor := common.BigToAddress(big.NewInt(int64(0x10000 + i*benchPerKind + j)))
				txs = append(txs, send("sender", vendor, big.NewInt(1e15), nil))
				if mixed {
					txs = append(txs, send("outsider", caller, nil, sweep), send("deployer", caller, big.NewInt(1e15), forward))
				} else {
					txs = append(txs, send("outsider", vendor, big.NewInt(1e15), nil), send("deployer", vendor, big.NewInt(1e15), nil))
				}
			}
			for _, h := range txs {
				r, err := g.WaitForReceipt(ctx, h)
				if err != nil || r.Status != 1 {
					b.Fatalf("tx %s: %v %v", h.Hex(), r, err)
				}
				if first == 0 {
					first = uint64(r.BlockNumber)
				}
				last = max(last, uint64(r.BlockNumber))
			}
		}
		return first, last
	}
	mixedFrom, mixedTo := makeRange(true)
	plainFrom, plainTo := makeRange(false)

	pool := kwe.NewPool([]string{g.HTTPURL}, 0, nil)
	defer pool.Close()
	wallets := []kwe.Wallet{
		{Name: "vault", Address: sweeper, Role: "contract"},
		{Name: "hot", Address: simchain.Addr("hot"), Role: "hot"},
	}
	decode := func(b *testing.B, traces string, from, to uint64) {
		src := kwe.NewSource(pool, kwe.Options{Chain: "dev", NativeSymbol: "ETH", Wallets: wallets, Traces: traces})
		var txs, events int
		for b.Loop() {
			txs, events = 0, 0
			for n := from; n <= to; n++ {
				blk, err := src.BlockAt(ctx, n)
				if err != nil {
					b.Fatal(err)
				}
				evs, err := src.Events(ctx, blk)
				if err != nil {
					b.Fatal(err)
				}
				events += len(evs)
			}
		}
		for n := from; n <= to; n++ {
			blk := must[*types.Block](b)(client.BlockByNumber(ctx, new(big.Int).SetUint64(n)))
			txs += len(blk.Transactions())
		}
		blocks := float64(to - from + 1)
		b.ReportMetric(blocks*float64(b.N)/b.Elapsed().Seconds(), "blocks/s")
		b.ReportMetric(float64(b.Elapsed().Microseconds())/(blocks*float64(b.N)), "µs/block")
		b.ReportMetric(float64(txs)/blocks, "txs/block")
		b.ReportMetric(float64(events)/blocks, "events/block")
	}
	b.Run("mixed/off", func(b *testing.B) { decode(b, kwe.TracesOff, mixedFrom, mixedTo) })
	b.Run("mixed/debug", func(b *testing.B) { decode(b, kwe.TracesDebug, mixedFrom, mixedTo) })
	b.Run("mixed/balance", func(b *testing.B) { decode(b, kwe.TracesBalance, mixedFrom, mixedTo) })
	b.Run("transfers/off", func(b *testing.B) { decode(b, kwe.TracesOff, plainFrom, plainTo) })
	b.Run("transfers/debug", func(b *testing.B) { decode(b, kwe.TracesDebug, plainFrom, plainTo) })
	blocks := make([]*types.Block, 0, plainTo-plainFrom+1)
	for n := plainFrom; n <= plainTo; n++ {
		blocks = append(blocks, must[*types.Block](b)(client.BlockByNumber(ctx, new(big.Int).SetUint64(n))))
	}
	b.Run("transfers/trace", func(b *testing.B) {
		// What not tracing such a block saves: its debug_traceBlockByHash.
		for b.Loop() {
			for _, blk := range blocks {
				var res json.RawMessage
				if err := pool.CallContext(ctx, &res, "debug_traceBlockByHash", blk.Hash(), map[string]any{"tracer": "callTracer"}); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(len(blocks)*b.N), "µs/block")
	})
	b.Run("transfers/getCode", func(b *testing.B) {
		// What knowing it costs: the code of each recipient at the parent,
		// in one batch request.
		for b.Loop() {
			for _, blk := range blocks {
				seen := map[common.Address]bool{}
				var batch []rpc.BatchElem
				for _, tx := range blk.Transactions() {
					if !seen[*tx.To()] {
						seen[*tx.To()] = true
						batch = append(batch, rpc.BatchElem{Method: "eth_getCode", Result: new(hexutil.Bytes),
							Args: []any{*tx.To(), rpc.BlockNumberOrHashWithHash(blk.ParentHash(), false)}})
					}
				}
				if err := pool.BatchCallContext(ctx, batch); err != nil {
					b.Fatal(err)
				}
				for _, e := range batch {
					if e.Error != nil {
						b.Fatal(e.Error)
					}
				}
			}
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(len(blocks)*b.N), "µs/block")
	})
}
