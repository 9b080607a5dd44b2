package alerts

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/keywatch/keywatch/internal/backoff"
)

// SinkConsumer is the durable consumer of sink name: explicit
// acknowledgement, bounded deliveries, and one active instance at a time
// (a pinned priority group: when it stops pulling, another takes over).
func SinkConsumer(name, prefix string, maxDeliver int, ackWait time.Duration) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:        "sink-" + name,
		Description:    "keywatch sink " + name,
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        ackWait,
		MaxDeliver:     maxDeliver,
		FilterSubject:  prefix + ".alert.>",
		DeliverPolicy:  jetstream.DeliverAllPolicy,
		PriorityPolicy: jetstream.PriorityPolicyPinned,
		PriorityGroups: []string{sinkPriorityGroup},
		PinnedTTL:      15 * time.Second,
	}
}

const sinkPriorityGroup = "sink"

// attachSinkConsumer creates (or updates) the alert stream and the sink's
// durable consumer, retrying with a doubling wait (500ms up to 15s) while
// NATS refuses. Its error is ctx's, once ctx ended.
func attachSinkConsumer(ctx context.Context, js jetstream.JetStream, o *SinkOptions, log *slog.Logger) (jetstream.Consumer, error) {
	return backoff.Retry(ctx, backoff.New(500*time.Millisecond, 15*time.Second), func(ctx context.Context) (jetstream.Consumer, error) {
		if _, err := js.CreateOrUpdateStream(ctx, o.Stream); err != nil {
			return nil, err
		}
		return js.CreateOrUpdateConsumer(ctx, o.Stream.Name, SinkConsumer(o.Name, o.Prefix, o.MaxDeliver, o.ackWait()))
	}, func(err error, wait time.Duration) {
		log.Warn("cannot attach sink consumer; retrying", "err", err, "retry_in", wait)
	})
}

// consumeSink pulls the sink's messages, in the sink's priority group, into
// the returned channel until stop is called. A message that arrives once ctx
// ended is handed back at once, for the next run.
func consumeSink(ctx context.Context, js jetstream.JetStream, cons jetstream.Consumer, o *SinkOptions) (<-chan jetstream.Msg, func(), error) {
	msgs := make(chan jetstream.Msg)
	cc, err := cons.Consume(func(m jetstream.Msg) {
		select {
		case msgs <- m:
		case <-ctx.Done():
			_ = m.Nak() // for the next run, at once
		}
	}, jetstream.PullPriorityGroup(sinkPriorityGroup), jetstream.PullMaxMessages(64))
	if err != nil {
		return nil, nil, fmt.Errorf("sink %s: consume: %w", o.Name, err)
	}
	stop := func() {
		cc.Stop()
		// Let the next run, or another instance, take over at once rather
		// than after the pin expires: once the subscription is gone (or the
		// server could pin its last pull request again), unpin.
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		select {
		case <-cc.Closed():
		case <-uctx.Done():
		}
		if s, err := js.Stream(uctx, o.Stream.Name); err == nil {
			_ = s.UnpinConsumer(uctx, "sink-"+o.Name, sinkPriorityGroup)
		}
	}
	return msgs, stop, nil
}
