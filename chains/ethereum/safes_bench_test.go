package ethereum_test

import (
	"context"
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/core/types"

	"github.com/keywatch/keywatch/chains"
	"github.com/keywatch/keywatch/chains/ethereum/safe"
	"github.com/keywatch/keywatch/internal/simchain"
)

// BenchmarkSafeBlock: decoding a block holding one execTransaction of a
// watched Safe (the Safe's logs fetched, the input checked against the
// safeTxHash with the nonce read from the node, two signatures recovered),
// against the same Source on a block holding a plain payment to the Safe.
func BenchmarkSafeBlock(b *testing.B) {
	ctx := context.Background()
	sc := newSafeScene(b, "1.4.1", false, nil)
	pay := must[*types.Receipt](b)(sc.chain.Send(ctx, simchain.Key("relayer"), &sc.safe.Address, big.NewInt(1), nil))
	exec := must[*types.Receipt](b)(sc.safe.Run(ctx, simchain.Key("relayer"), simchain.Addr("vendor"), big.NewInt(1), nil, safe.Call, sc.owners[0], sc.owners[2]))
	for name, r := range map[string]*types.Receipt{"payment": pay, "execTransaction": exec} {
		blk := must[chains.Block](b)(sc.src.BlockAt(ctx, r.BlockNumber.Uint64()))
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				if _, err := sc.src.Events(ctx, blk); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
