package watchdog

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/keywatch/keywatch/alertmodel"
	"github.com/keywatch/keywatch/alerts"
)

// Sink is a sink the watchdog pages through itself.
type Sink struct {
	Name     string
	Notifier alerts.Notifier
	Route    alertmodel.Route
	Timeout  time.Duration
}

// Relay raises the watchdog's alerts. It publishes them on the alert stream
// (message ids make a copy raised by an instance, or by another watchdog, a
// duplicate), and sends them to the sinks itself when it cannot publish or
// when no keywatch instance is alive to deliver them: the watchdog does not
// rely on the instances it watches.
type Relay struct {
	JS     jetstream.JetStream
	Stream jetstream.StreamConfig
	Prefix string
	Sinks  []Sink
	// Alive lists the keywatch instances heard from (Monitor.Alive).
	Alive   func() []string
	Backoff []time.Duration // between direct attempts (default 1s, 5s, 30s, 2m, 5m)
	Logger  *slog.Logger

	mu   sync.Mutex
	sent map[string]bool // sink + message id delivered directly
	wg   sync.WaitGroup
}

// Raise publishes and, when needed, delivers as directly. Direct deliveries
// run in the background, one per sink, retried until ctx ends.
func (r *Relay) Raise(ctx context.Context, as ...alertmodel.Alert) error {
	log := r.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// With no instance alive, page at once; publish for the record after.
	direct := r.Alive == nil || len(r.Alive()) == 0
	if direct {
		r.direct(ctx, as, log)
	}
	for _, a := range as {
		if err := r.publish(ctx, a); err != nil {
			log.Warn("cannot publish on the alert stream; paging the sinks directly", "alert", a.ID, "err", err)
			if !direct {
				r.direct(ctx, []alertmodel.Alert{a}, log)
			}
		}
	}
	return nil
}

// direct starts one delivery per sink and alert not sent directly before.
func (r *Relay) direct(ctx context.Context, as []alertmodel.Alert, log *slog.Logger) {
	for _, a := range as {
		for _, s := range r.Sinks {
			if !s.Route.Match(&a) {
				continue
			}
			key := s.Name + "\x00" + a.MsgID()
			r.mu.Lock()
			if r.sent == nil {
				r.sent = map[string]bool{}
			}
			dup := r.sent[key]
			r.sent[key] = true
			r.mu.Unlock()
			if dup {
				continue
			}
			r.wg.Add(1)
			go func() {
				defer r.wg.Done()
				r.deliver(ctx, s, a, log)
			}()
		}
	}
}

// Wait waits for direct deliveries in flight.
func (r *Relay) Wait() { r.wg.Wait() }

func (r *Relay) publish(ctx context.Context, a alertmodel.Alert) error {
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if _, err := r.JS.CreateOrUpdateStream(pctx, r.Stream); err != nil {
		return fmt.Errorf("alert stream: %w", err)
	}
	body, err := json.Marshal(a)
	if err != nil {
		return err
	}
	_, err = r.JS.Publish(pctx, a.Subject(r.Prefix), body, jetstream.WithMsgID(a.MsgID()))
	return err
}

func (r *Relay) deliver(ctx context.Context, s Sink, a alertmodel.Alert, log *slog.Logger) {
	backoff := r.Backoff
	if len(backoff) == 0 {
		backoff = []time.Duration{time.Second, 5 * time.Second, 30 * time.Second, 2 * time.Minute, 5 * time.Minute}
	}
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	note := alerts.NotificationOf([]*alertmodel.Alert{&a})
	note.Sink = s.Name
	for attempt := 0; ; attempt++ {
		nctx, cancel := context.WithTimeout(alerts.WithNotification(ctx, note), timeout)
		retry, err := s.Notifier.Notify(nctx, &a)
		cancel()
		if err == nil {
			log.Info("paged directly", "sink", s.Name, "alert", a.ID, "status", a.Status)
			return
		}
		if !retry {
			log.Error("sink refused the watchdog's alert", "sink", s.Name, "alert", a.ID, "err", err)
			return
		}
		delay := max(backoff[min(attempt, len(backoff)-1)], alerts.RetryAfter(err))
		log.Warn("cannot page directly; retrying", "sink", s.Name, "alert", a.ID, "retry_in", delay, "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
	}
}
