package watchdog_test

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/keywatch/keywatch/alertmodel"
	"github.com/keywatch/keywatch/alerts"
	"github.com/keywatch/keywatch/internal/testenv"
	"github.com/keywatch/keywatch/store/memory"
	"github.com/keywatch/keywatch/watchdog"
)

// pager records what reached a sink.
type pager struct {
	mu  sync.Mutex
	got []string
}

func (p *pager) Notify(_ context.Context, as ...*alertmodel.Alert) (bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, a := range as {
		p.got = append(p.got, string(a.Status)+" "+a.ID)
	}
	return false, nil
}

func (p *pager) find(prefix string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, g := range p.got {
		if strings.HasPrefix(g, prefix) {
			return g
		}
	}
	return ""
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	testenv.WaitFor(t, 20*time.Second, cond, what)
}

type natsEnv struct {
	srv *testenv.NATSServer
	js  jetstream.JetStream
	c   *clock
	log *slog.Logger
}

func newNATSEnv(t *testing.T) *natsEnv {
	srv := testenv.NATS(t)
	log := slog.New(slog.DiscardHandler)
	nc, err := alerts.Connect(srv.URL(), "", "test", log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return &natsEnv{srv: srv, js: js, c: &clock{t: t0}, log: log}
}

// beat runs the heartbeats of instance until the returned stop is called.
func (e *natsEnv) beat(t *testing.T, instance, role string) (stop func()) {
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = watchdog.Beat(ctx, watchdog.BeatOptions{JS: e.js, Prefix: "keywatch", Instance: instance, Role: role,
			Interval: 20 * time.Millisecond, Now: e.c.Now, Logger: e.log})
	}()
	stop = func() { cancel(); <-done }
	t.Cleanup(stop)
	return stop
}

func (e *natsEnv) monitor(t *testing.T, self string, raise func(context.Context, ...alertmodel.Alert) error) *watchdog.Monitor {
	m := watchdog.NewMonitor(watchdog.MonitorOptions{JS: e.js, Prefix: "keywatch", Self: self, Timeout: 30 * time.Second,
		Now: e.c.Now, Raise: raise, Store: memory.New(), Every: 10 * time.Millisecond, Logger: e.log})
	go func() { _ = m.Run(t.Context()) }()
	return m
}

// An instance that stops pages through another instance's sinks.
func TestAStoppedInstancePagesThroughAnother(t *testing.T) {
	e := newNATSEnv(t)
	st := memory.New()
	outbox := alerts.NewOutbox(st, 0)
	stream := alerts.StreamConfig("keywatch", time.Hour, time.Hour)
	pub := alerts.NewPublisher(alerts.PublisherOptions{JetStream: e.js, Stream: stream, Prefix: "keywatch", Outbox: outbox})
	go func() { _ = pub.Run(t.Context()) }()
	p := &pager{}
	go func() {
		_ = alerts.RunSink(t.Context(), e.js, p, alerts.SinkOptions{Name: "pager", Stream: stream, Prefix: "keywatch",
			Route: alertmodel.Route{Paging: true, MinSeverity: alertmodel.High}, Store: st})
	}()

	e.beat(t, "keywatch-1", watchdog.RoleInstance)
	stopB := e.beat(t, "keywatch-2", watchdog.RoleInstance)
	m := e.monitor(t, "keywatch-1", outbox.Enqueue)
	waitFor(t, func() bool { return slices.Contains(m.Alive(), "keywatch-2") }, "keywatch-1 to hear keywatch-2")

	stopB() // an insider stops keywatch-2
	e.c.Advance(31 * time.Second)
	waitFor(t, func() bool { return p.find("firing system:heartbeat-lost:keywatch-2@") != "" }, "the page")
	if got := p.find("firing system:heartbeat-lost:keywatch-2@"); got != "firing system:heartbeat-lost:keywatch-2@2026-11-29T12:00:00Z" {
		t.Fatalf("page %q", got)
	}

	// It is started again: the incident resolves.
	e.beat(t, "keywatch-2", watchdog.RoleInstance)
	waitFor(t, func() bool { return p.find("resolved system:heartbeat-lost:keywatch-2@") != "" }, "the resolution")
}

// With no keywatch instance alive, the watchdog pages the sinks itself.
func TestTheWatchdogPagesDirectlyWhenNoInstanceIsLeft(t *testing.T) {
	e := newNATSEnv(t)
	p := &pager{}
	stream := alerts.StreamConfig("keywatch", time.Hour, time.Hour)
	relay := &watchdog.Relay{JS: e.js, Stream: stream, Prefix: "keywatch", Logger: e.log,
		Sinks: []watchdog.Sink{{Name: "pager", Notifier: p, Route: alertmodel.Route{Paging: true}}}}
	e.beat(t, "watchdog-a", watchdog.RoleWatchdog)
	stop := e.beat(t, "keywatch-1", watchdog.RoleInstance)
	m := e.monitor(t, "watchdog-a", relay.Raise)
	relay.Alive = m.Alive
	waitFor(t, func() bool { return slices.Contains(m.Alive(), "keywatch-1") }, "the watchdog to hear keywatch-1")
	stop()
	e.c.Advance(31 * time.Second)
	waitFor(t, func() bool { return p.find("firing system:heartbeat-lost:keywatch-1@") != "" }, "the direct page")
	// It is on the alert stream too, for the record and for instances that return.
	// Other system alerts may share the subject (the watchdog may briefly
	// hear nothing at all on a loaded machine), and publication to the
	// stream (which makes the stream) may trail the direct page: look
	// through all of it, until found.
	waitFor(t, func() bool {
		s, err := e.js.Stream(t.Context(), alerts.StreamName)
		if err != nil {
			return false
		}
		info, err := s.Info(t.Context())
		if err != nil {
			return false
		}
		for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
			msg, err := s.GetMsg(t.Context(), seq)
			if err != nil {
				return false
			}
			if msg.Subject == "keywatch.alert.critical.keywatch" && strings.Contains(string(msg.Data), `"status":"firing"`) &&
				strings.Contains(string(msg.Data), "heartbeat-lost:keywatch-1@") {
				return true
			}
		}
		return false
	}, "the heartbeat-lost alert for keywatch-1 on the alert stream")
}

// When NATS itself goes away, the watchdog hears nothing and pages directly.
func TestTheWatchdogPagesWhenNATSGoesAway(t *testing.T) {
	e := newNATSEnv(t)
	p := &pager{}
	relay := &watchdog.Relay{JS: e.js, Stream: alerts.StreamConfig("keywatch", time.Hour, time.Hour), Prefix: "keywatch", Logger: e.log,
		Sinks: []watchdog.Sink{{Name: "pager", Notifier: p, Route: alertmodel.Route{Paging: true}}}}
	e.beat(t, "watchdog-a", watchdog.RoleWatchdog)
	e.beat(t, "keywatch-1", watchdog.RoleInstance)
	m := e.monitor(t, "watchdog-a", relay.Raise)
	relay.Alive = m.Alive
	waitFor(t, func() bool { return slices.Contains(m.Alive(), "keywatch-1") }, "the watchdog to hear keywatch-1")
	e.srv.Shutdown()
	// Let the driven clock run: a heartbeat still in flight when the server
	// went down may arrive after a single jump and restart the count.
	waitFor(t, func() bool {
		e.c.Advance(time.Second)
		return p.find("firing system:heartbeat-lost:watchdog-a/all@") != "" && p.find("firing system:heartbeat-lost:keywatch-1@") != ""
	}, "the pages about hearing nothing and about keywatch-1")
}
