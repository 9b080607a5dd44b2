package webhook_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/keywatch/keywatch/alertmodel"
	"github.com/keywatch/keywatch/alerts"
	"github.com/keywatch/keywatch/internal/alerttest"
	"github.com/keywatch/keywatch/alerts/webhook"
	"github.com/keywatch/keywatch/chains"
	"github.com/keywatch/keywatch/config"
	"github.com/keywatch/keywatch/store/memory"
)

// arrivals records when each alert reached its destination.
type arrivals struct {
	mu   sync.Mutex
	at   map[string]time.Time
	done chan struct{}
	want int
}

func newArrivals(want int) *arrivals {
	return &arrivals{at: make(map[string]time.Time, want), done: make(chan struct{}), want: want}
}

func (r *arrivals) arrived(ids ...string) {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, id := range ids {
		if _, seen := r.at[id]; !seen {
			r.at[id] = now
		}
	}
	if len(r.at) == r.want {
		select {
		case <-r.done:
		default:
			close(r.done)
		}
	}
}

// noop is a sink that only notes the arrival.
type noop struct{ r *arrivals }

func (n noop) Notify(_ context.Context, as ...*alertmodel.Alert) (bool, error) {
	ids := make([]string, len(as))
	for i, a := range as {
		ids[i] = a.ID
	}
	n.r.arrived(ids...)
	return false, nil
}

// BenchmarkSinkThroughput sends b.N alerts through JetStream to a sink and
// reports alerts per second and the time from publish to arrival (p50,
// p99). Sub-benchmarks, in the same run:
//
//	jetstream: a bare durable consumer that acknowledges (the baseline)
//	sink-noop: RunSink with routing, incident state and acks, no I/O
//	sink-webhook: RunSink posting each alert, HMAC-signed, to an HTTP server
func BenchmarkSinkThroughput(b *testing.B) {
	for _, kind := range []string{"jetstream", "sink-noop", "sink-webhook"} {
		b.Run(kind, func(b *testing.B) { benchSink(b, kind) })
	}
}

func benchSink(b *testing.B, kind string) {
	h := alerttest.New(b)
	discard := slog.New(slog.DiscardHandler)
	rec := newArrivals(b.N)
	ctx, cancel := context.WithCancel(h.Ctx)
	defer cancel()
	switch kind {
	case "jetstream":
		cons, err := h.JS.CreateOrUpdateConsumer(ctx, alerts.StreamName, jetstream.ConsumerConfig{
			Durable: "bench", AckPolicy: jetstream.AckExplicitPolicy, FilterSubject: alerttest.Prefix + ".alert.>"})
		if err != nil {
			b.Fatal(err)
		}
		cc, err := cons.Consume(func(m jetstream.Msg) {
			var a alertmodel.Alert
			if err := json.Unmarshal(m.Data(), &a); err == nil {
				rec.arrived(a.ID)
			}
			_ = m.Ack()
		})
		if err != nil {
			b.Fatal(err)
		}
		defer cc.Stop()
	case "sink-noop", "sink-webhook":
		var n alerts.Notifier = noop{rec}
		if kind == "sink-webhook" {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				var p webhook.Payload
				body, _ := io.ReadAll(r.Body)
				if err := json.Unmarshal(body, &p); err == nil {
					ids := make([]string, len(p.Alerts))
					for i, a := range p.Alerts {
						ids[i] = a.ID
					}
					rec.arrived(ids...)
				}
				w.WriteHeader(http.StatusNoContent)
			}))
			defer srv.Close()
			n = webhook.New(webhook.Config{Sink: "bench", URL: config.NewSecret(srv.URL), Secret: config.NewSecret(secret), Timeout: 10 * time.Second})
		}
		o := h.SinkOptions("bench")
		o.Logger, o.Store, o.Now, o.DeadLetter = discard, memory.New(), time.Now, nil
		go func() { _ = alerts.RunSink(ctx, h.JS, n, o) }()
	}

	// Distinct wallets: each alert is its own incident, as in a burst of
	// thefts from many wallets (grouping would merge them).
	bodies := make([][]byte, b.N)
	as := make([]alertmodel.Alert, b.N)
	for i := range as {
		a := alerttest.Alert(fmt.Sprintf("0x%064x", i), chains.StatusPending)
		a.Wallet = fmt.Sprintf("wallet-%d", i)
		as[i] = a
		bodies[i], _ = json.Marshal(a)
	}
	sent := make([]time.Time, b.N)
	b.ResetTimer()
	start := time.Now()
	for i := range as {
		sent[i] = time.Now()
		if _, err := h.JS.PublishAsync(as[i].Subject(alerttest.Prefix), bodies[i], jetstream.WithMsgID(as[i].MsgID())); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-h.JS.PublishAsyncComplete():
	case <-time.After(time.Minute):
		b.Fatal("publishing did not complete")
	}
	select {
	case <-rec.done:
	case <-time.After(5 * time.Minute):
		b.Fatalf("%d of %d alerts arrived", len(rec.at), b.N)
	}
	elapsed := time.Since(start)
	b.StopTimer()

	lat := make([]time.Duration, b.N)
	rec.mu.Lock()
	for i, a := range as {
		lat[i] = rec.at[a.ID].Sub(sent[i])
	}
	rec.mu.Unlock()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "alerts/s")
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(pct(1.0), "max-ms")
}

// BenchmarkSinkLatencyOneAtATime publishes one alert, waits for it at the
// webhook, then the next: the latency of a page when nothing queues ahead.
func BenchmarkSinkLatencyOneAtATime(b *testing.B) {
	h := alerttest.New(b)
	got := make(chan time.Time, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		got <- time.Now()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	n := webhook.New(webhook.Config{Sink: "bench", URL: config.NewSecret(srv.URL), Secret: config.NewSecret(secret), Timeout: 10 * time.Second})
	o := h.SinkOptions("bench")
	o.Logger, o.Store, o.Now, o.DeadLetter = slog.New(slog.DiscardHandler), memory.New(), time.Now, nil
	ctx, cancel := context.WithCancel(h.Ctx)
	defer cancel()
	go func() { _ = alerts.RunSink(ctx, h.JS, n, o) }()
	lat := make([]time.Duration, b.N)
	b.ResetTimer()
	for i := range b.N {
		a := alerttest.Alert(fmt.Sprintf("0x%064x", i), chains.StatusPending)
		a.Wallet = fmt.Sprintf("wallet-%d", i)
		body, _ := json.Marshal(a)
		t0 := time.Now()
		if _, err := h.JS.Publish(ctx, a.Subject(alerttest.Prefix), body, jetstream.WithMsgID(a.MsgID())); err != nil {
			b.Fatal(err)
		}
		select {
		case t1 := <-got:
			lat[i] = t1.Sub(t0)
		case <-time.After(time.Minute):
			b.Fatal("the alert did not arrive")
		}
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
	b.Logf("n=%d min=%v p50=%v p90=%v max=%v", len(lat), lat[0], lat[len(lat)/2], lat[len(lat)*9/10], lat[len(lat)-1])
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}
