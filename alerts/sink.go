package alerts

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/keywatch/keywatch/alertmodel"
	"github.com/keywatch/keywatch/store"
)

// Notifier delivers alerts to one destination. retry says whether a failure
// is worth trying again; the retry loop lives in RunSink (JetStream
// redelivery with backoff), not in each sink. The alerts of one call belong
// to one incident; NotificationFrom(ctx, as) says which, and whether it
// still fires.
type Notifier interface {
	Notify(ctx context.Context, as ...*alertmodel.Alert) (retry bool, err error)
}

// SinkOptions configure a durable consumer feeding a Notifier.
type SinkOptions struct {
	Name       string // durable consumer name: sink-<Name>
	Stream     jetstream.StreamConfig
	Prefix     string
	MaxDeliver int             // delivery attempts before dead-lettering (default 10)
	Backoff    []time.Duration // redelivery delays (default 1s, 5s, 30s, 2m, 5m)
	Timeout    time.Duration   // bounds one Notify call (default 10s)

	Route alertmodel.Route
	// GroupWait delays an incident's first notification so that more alerts
	// of the same policy and wallet can join it (0: at once).
	GroupWait time.Duration
	// GroupWindow is how long after its first alert an incident takes in
	// more alerts of its group; those arriving after the first notification
	// go out together at the window's end (0: no grouping).
	GroupWindow time.Duration
	// RepeatInterval sends a still-firing incident again (0: never).
	RepeatInterval time.Duration

	Silencer   Silencer       // nil: nothing is muted
	Store      store.Store    // incident state, shared by instances (required)
	DeadLetter DeadLetterFunc // nil: logged only
	Now        func() time.Time
	Tick       time.Duration // how often incidents are checked for due updates (default 1s)
	// Ticks, when set, drives those checks instead of a ticker (tests: a
	// second send returns only after the first check is done).
	Ticks   <-chan time.Time
	Logger  *slog.Logger
	Metrics *SinkMetrics // nil: none
}

func (o *SinkOptions) defaults() {
	if o.MaxDeliver <= 0 {
		o.MaxDeliver = 10
	}
	if len(o.Backoff) == 0 {
		o.Backoff = []time.Duration{time.Second, 5 * time.Second, 30 * time.Second, 2 * time.Minute, 5 * time.Minute}
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Tick <= 0 {
		o.Tick = time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// ackWait is how long a held message may stay unacknowledged: long enough
// to wait out the group window and a slow endpoint.
func (o *SinkOptions) ackWait() time.Duration {
	return max(time.Minute, o.GroupWait+o.GroupWindow+2*o.Timeout+30*time.Second)
}

// RunSink consumes the alert stream with a durable consumer and explicit
// acknowledgements and feeds the Notifier: alerts the route takes, grouped
// into incidents, minus silenced ones. A sink that restarts resumes where it
// stopped and sends nothing twice; an alert is acknowledged only after the
// Notifier accepted it (or it was dead-lettered).
func RunSink(ctx context.Context, js jetstream.JetStream, n Notifier, o SinkOptions) error {
	if o.Store == nil {
		return fmt.Errorf("sink %s: no store for its incidents", o.Name)
	}
	o.defaults()
	log := o.Logger.With("sink", o.Name)
	cons, err := attachSinkConsumer(ctx, js, &o, log)
	if err != nil {
		return nil // ctx ended before the consumer was there
	}
	d := newDispatcher(n, o, log)
	d.sync(ctx)
	msgs, stop, err := consumeSink(ctx, js, cons, &o)
	if err != nil {
		return err
	}
	defer stop()
	ticks := o.Ticks
	if ticks == nil {
		t := time.NewTicker(o.Tick)
		defer t.Stop()
		ticks = t.C
	}
	for {
		select {
		case <-ctx.Done():
			d.release()
			return nil
		case m := <-msgs:
			d.receive(ctx, m)
		case <-ticks:
			d.tick(ctx)
		}
	}
}
