package alerts

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/keywatch/keywatch/alertmodel"
	"github.com/keywatch/keywatch/internal/backoff"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// StreamName is the JetStream stream alerts are published to.
const StreamName = "KEYWATCH_ALERTS"

// StreamConfig is the alert stream: subjects <prefix>.alert.>, kept on disk,
// with a de-duplication window for message ids.
func StreamConfig(prefix string, duplicates, maxAge time.Duration) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        StreamName,
		Description: "keywatch alerts",
		Subjects:    []string{prefix + ".alert.>"},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		Duplicates:  duplicates,
		MaxAge:      maxAge,
	}
}

// Connect dials NATS and keeps reconnecting forever; publishing fails (and
// the outbox keeps alerts) while the server is away.
func Connect(url, credsFile, name string, log *slog.Logger) (*nats.Conn, error) {
	opts := []nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.RetryOnFailedConnect(true),
		nats.ReconnectWait(time.Second),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("NATS disconnected; alerts wait in the outbox", "err", err)
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) { log.Info("NATS reconnected", "server", c.ConnectedUrlRedacted()) }),
	}
	if credsFile != "" {
		opts = append(opts, nats.UserCredentials(credsFile))
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to NATS: %w", err)
	}
	return nc, nil
}

// Publisher drains the outbox into JetStream.
type Publisher struct {
	js     jetstream.JetStream
	stream jetstream.StreamConfig
	prefix string
	outbox *Outbox
	log    *slog.Logger

	published prometheus.Counter
	failures  prometheus.Counter
	queued    prometheus.Gauge
}

// PublisherOptions configure a Publisher.
type PublisherOptions struct {
	JetStream  jetstream.JetStream
	Stream     jetstream.StreamConfig
	Prefix     string
	Outbox     *Outbox
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// NewPublisher makes a publisher.
func NewPublisher(o PublisherOptions) *Publisher {
	p := &Publisher{js: o.JetStream, stream: o.Stream, prefix: o.Prefix, outbox: o.Outbox, log: o.Logger,
		published: prometheus.NewCounter(prometheus.CounterOpts{Name: "keywatch_alerts_published_total", Help: "Alert messages acknowledged by JetStream."}),
		failures:  prometheus.NewCounter(prometheus.CounterOpts{Name: "keywatch_alerts_publish_failures_total", Help: "Failed publish attempts (retried)."}),
		queued:    prometheus.NewGauge(prometheus.GaugeOpts{Name: "keywatch_alerts_outbox", Help: "Alert messages waiting in the outbox."}),
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	if o.Registerer != nil {
		o.Registerer.MustRegister(p.published, p.failures, p.queued)
	}
	return p
}

// Run publishes queued alerts until ctx ends, retrying with backoff while
// NATS or the store is unavailable.
func (p *Publisher) Run(ctx context.Context) error {
	streamReady := false
	failing := backoff.New(500*time.Millisecond, 15*time.Second)
	for {
		err := func() error {
			if !streamReady {
				if _, err := p.js.CreateOrUpdateStream(ctx, p.stream); err != nil {
					return fmt.Errorf("create stream %s: %w", p.stream.Name, err)
				}
				streamReady = true
			}
			return p.Drain(ctx)
		}()
		if ctx.Err() != nil {
			return nil
		}
		wait := 5 * time.Second // backstop: another instance may have queued alerts
		if err != nil {
			p.failures.Inc()
			wait = failing.Next()
			p.log.Warn("alert publishing failed; alerts stay in the outbox", "err", err, "retry_in", wait)
		} else {
			failing.Reset()
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-p.outbox.Wake():
		case <-t.C:
		}
		t.Stop()
	}
}

// Drain publishes everything queued, oldest first, stopping at the first
// failure so order is kept.
func (p *Publisher) Drain(ctx context.Context) error {
	pending, err := p.outbox.Pending(ctx)
	if err != nil {
		return err
	}
	p.queued.Set(float64(len(pending)))
	for i := range pending {
		a := &pending[i].Alert
		if err := p.publish(ctx, a); err != nil {
			return err
		}
		if err := p.outbox.Done(ctx, a); err != nil {
			return err
		}
		p.published.Inc()
		p.queued.Dec()
	}
	return nil
}

func (p *Publisher) publish(ctx context.Context, a *alertmodel.Alert) error {
	body, err := json.Marshal(a)
	if err != nil {
		return err
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ack, err := p.js.Publish(pctx, a.Subject(p.prefix), body, jetstream.WithMsgID(a.MsgID()))
	if err != nil {
		return fmt.Errorf("publish alert %s: %w", a.MsgID(), err)
	}
	if ack.Duplicate {
		p.log.Debug("alert already in the stream", "msg_id", a.MsgID())
	}
	return nil
}
