package alerts

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Notifier delivers alerts to one destination. retry says whether a failure
// is worth trying again; the retry loop lives in RunSink, not in each sink.
type Notifier interface {
	Notify(ctx context.Context, as ...*Alert) (retry bool, err error)
}

// SinkOptions configure a durable consumer feeding a Notifier.
type SinkOptions struct {
	Name       string // durable consumer name: sink-<Name>
	Stream     jetstream.StreamConfig
	Prefix     string
	MaxDeliver int             // default 10
	Backoff    []time.Duration // redelivery delays (default 1s, 5s, 30s, 2m)
	Logger     *slog.Logger
}

// RunSink consumes the alert stream with a durable consumer and explicit
// acknowledgements: a sink that restarts resumes where it stopped, and an
// alert is acknowledged only after the Notifier accepted it.
func RunSink(ctx context.Context, js jetstream.JetStream, n Notifier, o SinkOptions) error {
	if o.MaxDeliver == 0 {
		o.MaxDeliver = 10
	}
	if len(o.Backoff) == 0 {
		o.Backoff = []time.Duration{time.Second, 5 * time.Second, 30 * time.Second, 2 * time.Minute}
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("sink", o.Name)
	var cons jetstream.Consumer
	backoff := 500 * time.Millisecond
	for cons == nil {
		var err error
		if _, err = js.CreateOrUpdateStream(ctx, o.Stream); err == nil {
			cons, err = js.CreateOrUpdateConsumer(ctx, o.Stream.Name, jetstream.ConsumerConfig{
				Durable:       "sink-" + o.Name,
				AckPolicy:     jetstream.AckExplicitPolicy,
				AckWait:       time.Minute,
				MaxDeliver:    o.MaxDeliver,
				FilterSubject: o.Prefix + ".alert.>",
				DeliverPolicy: jetstream.DeliverAllPolicy,
			})
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			log.Warn("cannot attach sink consumer; retrying", "err", err, "retry_in", backoff)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, 15*time.Second)
		}
	}
	cc, err := cons.Consume(func(m jetstream.Msg) { handle(ctx, m, n, o.Backoff, log) })
	if err != nil {
		return fmt.Errorf("sink %s: consume: %w", o.Name, err)
	}
	<-ctx.Done()
	cc.Drain()
	return nil
}

func handle(ctx context.Context, m jetstream.Msg, n Notifier, backoff []time.Duration, log *slog.Logger) {
	var a Alert
	if err := json.Unmarshal(m.Data(), &a); err != nil {
		log.Error("alert message is not valid JSON; dropping it", "subject", m.Subject(), "err", err)
		_ = m.Term()
		return
	}
	retry, err := n.Notify(ctx, &a)
	if err == nil {
		_ = m.Ack()
		return
	}
	meta, _ := m.Metadata()
	attempt := 1
	if meta != nil {
		attempt = int(meta.NumDelivered)
	}
	if !retry {
		log.Error("sink refused alert; not retrying", "alert", a.ID, "err", err)
		_ = m.Term()
		return
	}
	delay := backoff[min(attempt-1, len(backoff)-1)]
	log.Warn("sink failed; will redeliver", "alert", a.ID, "attempt", attempt, "retry_in", delay, "err", err)
	_ = m.NakWithDelay(delay)
}
