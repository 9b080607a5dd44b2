package alerts_test

import (
	"sync"
	"testing"
	"time"

	"github.com/keywatch/keywatch/alertmodel"
	"github.com/keywatch/keywatch/alerts"
	"github.com/keywatch/keywatch/internal/alerttest"
	"github.com/keywatch/keywatch/chains"
)

// One dead-letterer serves every sink of an instance, each from its own
// goroutine (run with -race to see the difference).
func TestDeadLettererIsSharedBySinks(t *testing.T) {
	h := alerttest.New(t)
	sinks := []string{"pager", "chat", "soc", "log"}
	for range 5 { // a fresh instance each time: the stream is made on first use
		dead := alerts.NewDeadLetterer(h.JS, alerttest.Prefix, time.Hour, h.Outbox.Enqueue)
		var wg sync.WaitGroup
		errs := make([]error, len(sinks))
		for i, sink := range sinks {
			wg.Go(func() {
				errs[i] = dead(h.Ctx, alerts.DeadLetter{Sink: sink, Alert: alerttest.Alert("0x01", chains.StatusPending),
					Error: "endpoint answered 400 Bad Request", Deliveries: 1, At: h.Clock.Now()})
			})
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("sink %s: %v", sinks[i], err)
			}
		}
	}
	got := map[string]bool{}
	for _, dl := range h.DeadLetters() {
		got[dl.Sink] = true
	}
	if len(got) != len(sinks) {
		t.Fatalf("dead letters of %v (repeats are one message), want one for each of %v", got, sinks)
	}
	q, err := h.Outbox.Pending(h.Ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(q) != len(sinks) {
		t.Fatalf("%d alert-dead-lettered alerts queued, want %d", len(q), len(sinks))
	}
	for _, e := range q {
		if e.Alert.Policy != alertmodel.KindDeadLettered || e.Alert.Chain != "eth" {
			t.Errorf("queued %s on %s, want %s on eth", e.Alert.Policy, e.Alert.Chain, alertmodel.KindDeadLettered)
		}
	}
}
