package alerts_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/keywatch/keywatch/alertmodel"
	"github.com/keywatch/keywatch/alerts"
	"github.com/keywatch/keywatch/internal/alerttest"
	"github.com/keywatch/keywatch/chains"
	"github.com/keywatch/keywatch/store/memory"
)

// msgIDs lists the message ids in the alert stream, in order.
func msgIDs(h *alerttest.Harness) []string {
	var ids []string
	for _, m := range h.StreamMessages(alerts.StreamName) {
		ids = append(ids, m.Header.Get("Nats-Msg-Id"))
	}
	return ids
}

func TestPublishSubjectHeaderAndBody(t *testing.T) {
	h := alerttest.New(t)
	h.Publish(alerttest.Alert("0xabc", chains.StatusPending))
	msgs := h.StreamMessages(alerts.StreamName)
	if len(msgs) != 1 {
		t.Fatalf("%d messages, want 1", len(msgs))
	}
	m := msgs[0]
	if m.Subject != "keywatch.alert.critical.eth" {
		t.Errorf("subject %q", m.Subject)
	}
	if got := m.Header.Get("Nats-Msg-Id"); got != "eth:0xabc:3:mixer-counterparty:pending:firing" {
		t.Errorf("Nats-Msg-Id %q", got)
	}
	var body map[string]any
	if err := json.Unmarshal(m.Data, &body); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"id", "policy", "severity", "status", "chain", "wallet", "event", "reasons", "actions", "hold_id", "observed_at"} {
		if _, ok := body[k]; !ok {
			t.Errorf("body lacks %q: %s", k, m.Data)
		}
	}
	ev := body["event"].(map[string]any)
	if ev["amount"] != "1" || ev["status"] != "pending" || ev["direction"] != "out" {
		t.Errorf("event in body: %v", ev)
	}
}

func TestPublishIsIdempotentAcrossReplays(t *testing.T) {
	h := alerttest.New(t)
	pending, confirmed := alerttest.Alert("0xabc", chains.StatusPending), alerttest.Alert("0xabc", chains.StatusConfirmed)
	for range 2 { // the same alert evaluated twice before publishing
		if err := h.Outbox.Enqueue(h.Ctx, pending); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.Pub.Drain(h.Ctx); err != nil {
		t.Fatal(err)
	}
	// A restart replays the block: the outbox remembers what it sent.
	if err := alerts.NewOutbox(h.Store, 0).Enqueue(h.Ctx, pending, confirmed); err != nil {
		t.Fatal(err)
	}
	if err := h.Pub.Drain(h.Ctx); err != nil {
		t.Fatal(err)
	}
	// Even with the store's memory lost, JetStream drops the repeated id.
	fresh := alerts.NewOutbox(memory.New(), 0)
	pub := alerts.NewPublisher(alerts.PublisherOptions{JetStream: h.JS, Stream: h.Stream, Prefix: alerttest.Prefix, Outbox: fresh})
	if err := fresh.Enqueue(h.Ctx, pending, confirmed); err != nil {
		t.Fatal(err)
	}
	if err := pub.Drain(h.Ctx); err != nil {
		t.Fatal(err)
	}
	want := []string{"eth:0xabc:3:mixer-counterparty:pending:firing", "eth:0xabc:3:mixer-counterparty:confirmed:firing"}
	if ids := msgIDs(h); fmt.Sprint(ids) != fmt.Sprint(want) {
		t.Fatalf("stream holds %v, want %v", ids, want)
	}
}

func TestAlertsSurviveANATSOutage(t *testing.T) {
	h := alerttest.New(t)
	ctx, cancel := context.WithCancel(h.Ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- h.Pub.Run(ctx) }()

	h.NATS.Shutdown()
	var want []string
	for i := range 3 {
		a := alerttest.Alert(fmt.Sprintf("0x%03d", i), chains.StatusPending)
		want = append(want, a.MsgID())
		if err := h.Outbox.Enqueue(h.Ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	// While NATS is down the alerts wait in the outbox.
	q, err := h.Outbox.Pending(h.Ctx)
	if err != nil || len(q) != 3 {
		t.Fatalf("outbox holds %d (%v), want 3", len(q), err)
	}
	h.NATS.Restart()
	alerttest.WaitFor(t, func() bool { q, _ := h.Outbox.Pending(h.Ctx); return len(q) == 0 }, "outbox drained after NATS returned")
	if got := msgIDs(h); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("stream holds %v, want %v in order", got, want)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// recordingNotifier fails the first failures calls, then records.
type recordingNotifier struct {
	mu       sync.Mutex
	failures int
	retry    bool
	calls    int
	got      []string
}

func (n *recordingNotifier) Notify(_ context.Context, as ...*alertmodel.Alert) (bool, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.calls++
	if n.calls <= n.failures {
		return n.retry, errors.New("endpoint answered 503")
	}
	for _, a := range as {
		n.got = append(n.got, a.MsgID())
	}
	return false, nil
}

func (n *recordingNotifier) snapshot() (int, []string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.calls, append([]string(nil), n.got...)
}

func TestSinkRetriesAndResumesWhereItStopped(t *testing.T) {
	h := alerttest.New(t)
	n := &recordingNotifier{failures: 2, retry: true}
	opts := alerts.SinkOptions{Name: "test", Stream: h.Stream, Prefix: alerttest.Prefix, Store: h.Store, Backoff: []time.Duration{10 * time.Millisecond}, Logger: h.Log}
	ctx, cancel := context.WithCancel(h.Ctx)
	done := make(chan error, 1)
	go func() { done <- alerts.RunSink(ctx, h.JS, n, opts) }()

	first := alerttest.Alert("0x001", chains.StatusPending)
	h.Publish(first)
	alerttest.WaitFor(t, func() bool { _, got := n.snapshot(); return len(got) == 1 }, "delivery after two failures")
	if calls, _ := n.snapshot(); calls != 3 {
		t.Fatalf("notifier called %d times, want 3 (two failures, one success)", calls)
	}
	cancel()
	<-done

	// The sink restarts: the acknowledged alert is not sent again, the new one is.
	second := alerttest.Alert("0x002", chains.StatusPending)
	h.Publish(second)
	ctx, cancel = context.WithCancel(h.Ctx)
	defer cancel()
	go alerts.RunSink(ctx, h.JS, n, opts)
	alerttest.WaitFor(t, func() bool { _, got := n.snapshot(); return len(got) == 2 }, "the second alert after the restart")
	_, got := n.snapshot()
	if fmt.Sprint(got) != fmt.Sprint([]string{first.MsgID(), second.MsgID()}) {
		t.Fatalf("sink received %v", got)
	}
}

func TestSinkDoesNotRetryARefusal(t *testing.T) {
	h := alerttest.New(t)
	n := &recordingNotifier{failures: 1, retry: false}
	ctx, cancel := context.WithCancel(h.Ctx)
	defer cancel()
	go alerts.RunSink(ctx, h.JS, n, alerts.SinkOptions{Name: "refuse", Stream: h.Stream, Prefix: alerttest.Prefix, Store: h.Store, Backoff: []time.Duration{10 * time.Millisecond}, Logger: h.Log})
	h.Publish(alerttest.Alert("0x001", chains.StatusPending), alerttest.Alert("0x002", chains.StatusPending))
	alerttest.WaitFor(t, func() bool { _, got := n.snapshot(); return len(got) == 1 }, "the second alert")
	calls, got := n.snapshot()
	if calls != 2 || got[0] != alerttest.Alert("0x002", chains.StatusPending).MsgID() {
		t.Fatalf("calls %d, got %v: the refused alert must not be retried", calls, got)
	}
}
