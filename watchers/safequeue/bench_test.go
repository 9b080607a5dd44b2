package safequeue_test

import (
	"context"
	"crypto/ecdsa"
	"math/big"
	"strings"
	"testing"

	"github.com/keywatch/keywatch/chains"
	"github.com/keywatch/keywatch/internal/safeservice"
)

// BenchmarkPoll measures one poll of a Safe's queue, over loopback HTTP and
// the simulated chain: an empty queue (the baseline: the chain's nonce and
// version, the service's info and one page), 100 queued transactions of 3
// signatures already delivered (the steady state, every interval), and the
// same 100 judged anew at each poll (hash and signatures recomputed, each
// delivered and recorded). Delivery itself is a no-op: the engine is not
// measured here.
func BenchmarkPoll(b *testing.B) {
	for _, tc := range []struct {
		name  string
		n     int
		fresh bool
	}{{"empty", 0, false}, {"100-delivered", 100, false}, {"100-new", 100, true}} {
		b.Run(tc.name, func(b *testing.B) {
			ctx := context.Background()
			h := newHarness(b, harnessOpts{nonce: 5})
			h.opts.Deliver = func(context.Context, []chains.Event) error { return nil }
			for i := range tc.n {
				h.propose(safeservice.Proposal{To: attacker, Value: big.NewInt(int64(i)), Nonce: 5 + uint64(i/2),
					Signers: []*ecdsa.PrivateKey{owner1, owner2, owner3}})
			}
			p := h.poller()
			mustPoll(b, p, ctx)
			key := "safequeue:dev:" + strings.ToLower(h.safe.Hex())
			for b.Loop() {
				if tc.fresh {
					b.StopTimer()
					h.st.Delete(ctx, key)
					b.StartTimer()
				}
				if err := p.Step(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
