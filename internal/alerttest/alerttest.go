// Package alerttest runs the alert path for sink tests: a real NATS server
// with JetStream, the outbox and publisher, sinks as durable consumers, a
// driven clock, and sample alerts.
package alerttest

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/big"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/keywatch/keywatch/alertmodel"
	"github.com/keywatch/keywatch/alerts"
	"github.com/keywatch/keywatch/chains"
	"github.com/keywatch/keywatch/internal/testenv"
	"github.com/keywatch/keywatch/store"
	"github.com/keywatch/keywatch/store/memory"
)

// Prefix is the subject prefix of the harness.
const Prefix = "keywatch"

// Harness is a NATS server with the alert stream, an outbox and publisher.
type Harness struct {
	T      testing.TB
	Ctx    context.Context
	NATS   *testenv.NATSServer
	NC     *nats.Conn
	JS     jetstream.JetStream
	Stream jetstream.StreamConfig
	Store  store.Store
	Outbox *alerts.Outbox
	Pub    *alerts.Publisher
	Clock  *Clock
	Log    *slog.Logger
}

// New starts a harness; everything stops when the test ends.
func New(t testing.TB) *Harness {
	t.Helper()
	srv := testenv.NATS(t)
	log := Logger(t)
	nc, err := alerts.Connect(srv.URL(), "", "test", log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	h := &Harness{T: t, Ctx: ctx, NATS: srv, NC: nc, JS: js, Store: memory.New(), Log: log,
		Stream: alerts.StreamConfig(Prefix, time.Hour, time.Hour),
		Clock:  NewClock(time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC))}
	h.Outbox = alerts.NewOutbox(h.Store, 0)
	h.Pub = alerts.NewPublisher(alerts.PublisherOptions{JetStream: js, Stream: h.Stream, Prefix: Prefix, Outbox: h.Outbox, Logger: log})
	if _, err := js.CreateOrUpdateStream(ctx, h.Stream); err != nil {
		t.Fatal(err)
	}
	return h
}

// Publish puts alerts on the stream, in order.
func (h *Harness) Publish(as ...alertmodel.Alert) {
	h.T.Helper()
	if err := h.Outbox.Enqueue(h.Ctx, as...); err != nil {
		h.T.Fatal(err)
	}
	if err := h.Pub.Drain(h.Ctx); err != nil {
		h.T.Fatal(err)
	}
}

// SinkOptions are the options of a fast test sink named name: short
// backoffs, a quick tick, the harness's clock and store, dead letters to
// the harness's dead-letter stream and dead-letter alerts to its outbox.
func (h *Harness) SinkOptions(name string) alerts.SinkOptions {
	return alerts.SinkOptions{
		Name: name, Stream: h.Stream, Prefix: Prefix,
		Backoff:    []time.Duration{10 * time.Millisecond, 20 * time.Millisecond},
		Timeout:    2 * time.Second,
		Store:      h.Store,
		Now:        h.Clock.Now,
		Tick:       10 * time.Millisecond,
		Logger:     h.Log,
		DeadLetter: alerts.NewDeadLetterer(h.JS, Prefix, time.Hour, h.Outbox.Enqueue),
	}
}

// RunSink runs a sink until the returned stop is called (or the test ends).
func (h *Harness) RunSink(n alerts.Notifier, o alerts.SinkOptions) (stop func()) {
	ctx, cancel := context.WithCancel(h.Ctx)
	done := make(chan error, 1)
	go func() { done <- alerts.RunSink(ctx, h.JS, n, o) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				h.T.Errorf("sink %s: %v", o.Name, err)
			}
		})
	}
	h.T.Cleanup(stop)
	return stop
}

// DeadLetters reads the dead-letter stream.
func (h *Harness) DeadLetters() []alerts.DeadLetter {
	h.T.Helper()
	var out []alerts.DeadLetter
	for _, m := range h.StreamMessages(alerts.DeadLetterStreamName) {
		var dl alerts.DeadLetter
		if err := json.Unmarshal(m.Data, &dl); err != nil {
			h.T.Fatal(err)
		}
		out = append(out, dl)
	}
	return out
}

// Published reads every alert in the alert stream.
func (h *Harness) Published() []alertmodel.Alert {
	h.T.Helper()
	var out []alertmodel.Alert
	for _, m := range h.StreamMessages(alerts.StreamName) {
		var a alertmodel.Alert
		if err := json.Unmarshal(m.Data, &a); err != nil {
			h.T.Fatal(err)
		}
		out = append(out, a)
	}
	return out
}

// StreamMessages reads every message kept in stream name, in order (none
// when the stream does not exist).
func (h *Harness) StreamMessages(name string) []*jetstream.RawStreamMsg {
	s, err := h.JS.Stream(h.Ctx, name)
	if err != nil {
		return nil
	}
	info, err := s.Info(h.Ctx)
	if err != nil {
		h.T.Fatal(err)
	}
	var out []*jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(h.Ctx, seq)
		if err != nil {
			continue // deleted
		}
		out = append(out, m)
	}
	return out
}

// Clock is a driven clock.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock starts a clock at t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now reads the clock.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// Mixer is the Tornado Cash 1 ETH pool.
const Mixer = "0x47ce0c6ed5b0ce3d3a51fdb1c52dc66a7c3c2936"

// Alert is a critical mixer-counterparty alert on wallet treasury-hot for
// transaction tx, in the given event status (retracted resolves it).
func Alert(tx string, status chains.Status) alertmodel.Alert {
	a := alertmodel.Alert{
		ID: "eth:" + tx + ":3:mixer-counterparty", Policy: "mixer-counterparty", Severity: alertmodel.Critical,
		Status: alertmodel.Firing, Chain: "eth", Wallet: "treasury-hot",
		Event: chains.Event{ID: "eth:" + tx + ":3", Chain: "eth", Tx: tx, Block: 19431837, Status: status, Kind: chains.KindTransfer,
			Direction: chains.Out, Wallet: "treasury-hot", WalletRole: "hot", From: "0x1111111111111111111111111111111111111111",
			To: Mixer, Counterparty: Mixer, Asset: "ETH", Amount: chains.NewAmount(big.NewInt(1e18), 18), USD: 3000,
			Time: time.Date(2026, 11, 29, 11, 59, 48, 0, time.UTC)},
		Reasons:    []string{"counterparty 0x47ce…2936 is on list mixers (Tornado Cash 1 ETH pool)"},
		Actions:    []alertmodel.Action{alertmodel.ActionPage, alertmodel.ActionHold},
		ObservedAt: time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC),
	}
	if status == chains.StatusRetracted {
		a.Status = alertmodel.Resolved
	}
	return a
}

// WaitFor polls cond until it holds, failing the test after 20 seconds.
func WaitFor(t testing.TB, cond func() bool, what string) {
	t.Helper()
	testenv.WaitFor(t, 20*time.Second, cond, what)
}

// Logger writes to the test log.
func Logger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(p))
	return len(p), nil
}

// WaitHeld waits until sink's open incidents hold n alerts in all: the sink
// has received them (at the clock's current time).
func (h *Harness) WaitHeld(sink string, n int) {
	h.T.Helper()
	WaitFor(h.T, func() bool {
		incs, err := alerts.Incidents(h.Ctx, h.Store, sink)
		if err != nil {
			h.T.Fatal(err)
		}
		got := 0
		for _, inc := range incs {
			got += len(inc.Members)
		}
		return got == n
	}, fmt.Sprintf("sink %s to hold %d alerts", sink, n))
}

// Ticker drives a sink's periodic checks (set SinkOptions.Ticks to C).
type Ticker struct{ C chan time.Time }

// NewTicker makes a ticker for one sink.
func NewTicker() *Ticker { return &Ticker{C: make(chan time.Time)} }

// Check runs one periodic check of the sink and returns after it is done.
func (tk *Ticker) Check(t testing.TB) {
	t.Helper()
	for range 2 { // the second send is taken only after the first check ended
		select {
		case tk.C <- time.Now():
		case <-time.After(20 * time.Second):
			t.Fatal("the sink does not take ticks")
		}
	}
}
