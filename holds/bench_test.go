package holds_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/keywatch/keywatch/alertmodel"
	"github.com/keywatch/keywatch/chains"
	"github.com/keywatch/keywatch/holds"
)

// BenchmarkListHeld measures the held queue (what the console polls every
// two seconds) on a real Redis holding a history of 2,000 decided holds, 10
// expired ones and 10 still held. The baseline, measured in the same run,
// lists the 10 expired holds: it walks the whole history, as listing the
// held ones did before they were read from the open index.
func BenchmarkListHeld(b *testing.B) {
	f := setup(b)
	ctx := context.Background()
	apply := func(tx string) string {
		as := []alertmodel.Alert{mixerAlert(tx, chains.StatusPending)}
		if err := f.m.Apply(ctx, as); err != nil {
			b.Fatal(err)
		}
		return as[0].HoldID
	}
	for i := range 10 {
		apply(fmt.Sprintf("0xe%d", i))
	}
	f.clock.Add(2 * time.Hour)
	if err := f.m.Sweep(ctx); err != nil {
		b.Fatal(err)
	}
	for i := range 2000 {
		if _, err := f.m.Reject(ctx, apply(fmt.Sprintf("0xd%d", i)), "bob", ""); err != nil {
			b.Fatal(err)
		}
	}
	for i := range 10 {
		apply(fmt.Sprintf("0xh%d", i))
	}
	run := func(status holds.Status) func(b *testing.B) {
		return func(b *testing.B) {
			for b.Loop() {
				hs, err := f.m.List(ctx, holds.Filter{Status: status})
				if err != nil || len(hs) != 10 {
					b.Fatalf("%d %s holds, %v", len(hs), status, err)
				}
			}
		}
	}
	b.Run("held", run(holds.Held))
	b.Run("baseline-expired-full-walk", run(holds.Expired))
}
