package alerts_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/keywatch/keywatch/alerts"
	"github.com/keywatch/keywatch/chains"
	"github.com/keywatch/keywatch/internal/testenv"
	"github.com/keywatch/keywatch/store"
	"github.com/keywatch/keywatch/store/memory"
)

func alert(tx string, status chains.Status) alerts.Alert {
	return alerts.Alert{
		ID: "eth:" + tx + ":3:mixer-counterparty", Policy: "mixer-counterparty", Severity: alerts.Critical,
		Status: alerts.Firing, Chain: "eth", Wallet: "treasury-hot",
		Event: chains.Event{ID: "eth:" + tx + ":3", Chain: "eth", Tx: tx, Status: status, Kind: chains.KindTransfer,
			Direction: chains.Out, Wallet: "treasury-hot", Asset: "ETH", Amount: chains.NewAmount(big.NewInt(1e18), 18),
			Counterparty: "0x47ce0c6ed5b0ce3d3a51fdb1c52dc66a7c3c2936"},
		Reasons:    []string{"counterparty 0x47ce…2936 is on list mixers (Tornado Cash 1 ETH pool)"},
		Actions:    []alerts.Action{alerts.ActionPage, alerts.ActionHold},
		ObservedAt: time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC),
	}
}

type harness struct {
	t      *testing.T
	ctx    context.Context
	srv    *testenv.NATSServer
	nc     *nats.Conn
	js     jetstream.JetStream
	stream jetstream.StreamConfig
	st     store.Store
	outbox *alerts.Outbox
	pub    *alerts.Publisher
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	srv := testenv.NATS(t)
	nc, err := alerts.Connect(srv.URL(), "", "test", testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, ctx: context.Background(), srv: srv, nc: nc, js: js,
		stream: alerts.StreamConfig("keywatch", time.Hour, time.Hour), st: memory.New()}
	h.outbox = alerts.NewOutbox(h.st, 0)
	h.pub = alerts.NewPublisher(alerts.PublisherOptions{JetStream: js, Stream: h.stream, Prefix: "keywatch", Outbox: h.outbox, Logger: testLogger(t)})
	if _, err := js.CreateOrUpdateStream(h.ctx, h.stream); err != nil {
		t.Fatal(err)
	}
	return h
}

// messages reads every message in the alert stream.
func (h *harness) messages() []*jetstream.RawStreamMsg {
	h.t.Helper()
	s, err := h.js.Stream(h.ctx, alerts.StreamName)
	if err != nil {
		h.t.Fatal(err)
	}
	info, err := s.Info(h.ctx)
	if err != nil {
		h.t.Fatal(err)
	}
	var out []*jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(h.ctx, seq)
		if err != nil {
			h.t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

func TestPublishSubjectHeaderAndBody(t *testing.T) {
	h := newHarness(t)
	a := alert("0xabc", chains.StatusPending)
	if err := h.outbox.Enqueue(h.ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := h.pub.Drain(h.ctx); err != nil {
		t.Fatal(err)
	}
	msgs := h.messages()
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
	h := newHarness(t)
	pending, confirmed := alert("0xabc", chains.StatusPending), alert("0xabc", chains.StatusConfirmed)
	for range 2 { // the same alert evaluated twice before publishing
		if err := h.outbox.Enqueue(h.ctx, pending); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.pub.Drain(h.ctx); err != nil {
		t.Fatal(err)
	}
	// A restart replays the block: the outbox remembers what it sent.
	if err := alerts.NewOutbox(h.st, 0).Enqueue(h.ctx, pending, confirmed); err != nil {
		t.Fatal(err)
	}
	if err := h.pub.Drain(h.ctx); err != nil {
		t.Fatal(err)
	}
	// Even with the store's memory lost, JetStream drops the repeated id.
	fresh := alerts.NewOutbox(memory.New(), 0)
	pub := alerts.NewPublisher(alerts.PublisherOptions{JetStream: h.js, Stream: h.stream, Prefix: "keywatch", Outbox: fresh})
	if err := fresh.Enqueue(h.ctx, pending, confirmed); err != nil {
		t.Fatal(err)
	}
	if err := pub.Drain(h.ctx); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range h.messages() {
		ids = append(ids, m.Header.Get("Nats-Msg-Id"))
	}
	want := []string{"eth:0xabc:3:mixer-counterparty:pending:firing", "eth:0xabc:3:mixer-counterparty:confirmed:firing"}
	if fmt.Sprint(ids) != fmt.Sprint(want) {
		t.Fatalf("stream holds %v, want %v", ids, want)
	}
}

func TestAlertsSurviveANATSOutage(t *testing.T) {
	h := newHarness(t)
	ctx, cancel := context.WithCancel(h.ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- h.pub.Run(ctx) }()

	h.srv.Shutdown()
	var want []string
	for i := range 3 {
		a := alert(fmt.Sprintf("0x%03d", i), chains.StatusPending)
		want = append(want, a.MsgID())
		if err := h.outbox.Enqueue(h.ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	// While NATS is down the alerts wait in the outbox.
	q, err := h.outbox.Pending(h.ctx)
	if err != nil || len(q) != 3 {
		t.Fatalf("outbox holds %d (%v), want 3", len(q), err)
	}
	h.srv.Restart()
	waitFor(t, func() bool { q, _ := h.outbox.Pending(h.ctx); return len(q) == 0 }, "outbox drained after NATS returned")
	var got []string
	for _, m := range h.messages() {
		got = append(got, m.Header.Get("Nats-Msg-Id"))
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
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

func (n *recordingNotifier) Notify(_ context.Context, as ...*alerts.Alert) (bool, error) {
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
	h := newHarness(t)
	n := &recordingNotifier{failures: 2, retry: true}
	opts := alerts.SinkOptions{Name: "test", Stream: h.stream, Prefix: "keywatch", Backoff: []time.Duration{10 * time.Millisecond}, Logger: testLogger(t)}
	ctx, cancel := context.WithCancel(h.ctx)
	done := make(chan error, 1)
	go func() { done <- alerts.RunSink(ctx, h.js, n, opts) }()

	first := alert("0x001", chains.StatusPending)
	if err := h.outbox.Enqueue(h.ctx, first); err != nil {
		t.Fatal(err)
	}
	if err := h.pub.Drain(h.ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { _, got := n.snapshot(); return len(got) == 1 }, "delivery after two failures")
	if calls, _ := n.snapshot(); calls != 3 {
		t.Fatalf("notifier called %d times, want 3 (two failures, one success)", calls)
	}
	cancel()
	<-done

	// The sink restarts: the acknowledged alert is not sent again, the new one is.
	second := alert("0x002", chains.StatusPending)
	if err := h.outbox.Enqueue(h.ctx, second); err != nil {
		t.Fatal(err)
	}
	if err := h.pub.Drain(h.ctx); err != nil {
		t.Fatal(err)
	}
	ctx, cancel = context.WithCancel(h.ctx)
	defer cancel()
	go alerts.RunSink(ctx, h.js, n, opts)
	waitFor(t, func() bool { _, got := n.snapshot(); return len(got) == 2 }, "the second alert after the restart")
	_, got := n.snapshot()
	if fmt.Sprint(got) != fmt.Sprint([]string{first.MsgID(), second.MsgID()}) {
		t.Fatalf("sink received %v", got)
	}
}

func TestSinkDoesNotRetryARefusal(t *testing.T) {
	h := newHarness(t)
	n := &recordingNotifier{failures: 1, retry: false}
	ctx, cancel := context.WithCancel(h.ctx)
	defer cancel()
	go alerts.RunSink(ctx, h.js, n, alerts.SinkOptions{Name: "refuse", Stream: h.stream, Prefix: "keywatch", Backoff: []time.Duration{10 * time.Millisecond}, Logger: testLogger(t)})
	for _, a := range []alerts.Alert{alert("0x001", chains.StatusPending), alert("0x002", chains.StatusPending)} {
		if err := h.outbox.Enqueue(h.ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.pub.Drain(h.ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { _, got := n.snapshot(); return len(got) == 1 }, "the second alert")
	calls, got := n.snapshot()
	if calls != 2 || got[0] != alert("0x002", chains.StatusPending).MsgID() {
		t.Fatalf("calls %d, got %v: the refused alert must not be retried", calls, got)
	}
}
