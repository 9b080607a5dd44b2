// Package anchor keeps copies of the audit log's head outside the store, in
// a JetStream stream: someone who can rewrite Redis, and so recompute the
// whole hash chain, cannot also rewrite what was anchored there. keywatch
// audit verify checks the chain against the anchors (audit.CheckAnchored).
//
// Every instance anchors the head it reads once a minute when it changed;
// the message id is the head itself, so instances anchoring the same head
// store it once. The stream refuses deleting or purging messages.
package anchor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/keywatch/keywatch/audit"
)

// StreamName is the anchors' stream.
const StreamName = "KEYWATCH_AUDIT_ANCHORS"

// Subject is where anchors are published.
func Subject(prefix string) string { return prefix + ".audit.anchor" }

// Stream is the anchors' stream configuration: kept on disk for good, one
// copy of each head, no deleting or purging.
func Stream(prefix string) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        StreamName,
		Description: "keywatch audit log heads, kept outside the store",
		Subjects:    []string{Subject(prefix)},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		Duplicates:  10 * time.Minute,
		DenyDelete:  true,
		DenyPurge:   true,
	}
}

// HeadReader reads the audit log's head.
type HeadReader interface {
	Head(ctx context.Context) (audit.Head, error)
}

// Options configure Run.
type Options struct {
	JS       jetstream.JetStream
	Prefix   string
	Instance string
	Every    time.Duration // default 1 minute
	Now      func() time.Time
	Logger   *slog.Logger
}

// Run anchors the log's head every o.Every, when it changed, until ctx ends.
// Failures are logged and retried at the next turn.
func Run(ctx context.Context, log HeadReader, o Options) error {
	if o.Every <= 0 {
		o.Every = time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	var last audit.Head
	failing := false
	ticker := time.NewTicker(o.Every)
	defer ticker.Stop()
	for {
		h, err := log.Head(ctx)
		if err == nil && h.Seq > 0 && h != last {
			err = Publish(ctx, o.JS, o.Prefix, audit.Anchor{Seq: h.Seq, Hash: h.Hash, At: o.Now().UTC(), By: o.Instance})
			if err == nil {
				last = h
			}
		}
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil && !failing:
			o.Logger.Warn("cannot anchor the audit log's head; retrying", "err", err, "retry_in", o.Every)
		case err == nil && failing:
			o.Logger.Info("anchoring the audit log's head again", "seq", last.Seq)
		}
		failing = err != nil
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}
	}
}

// Publish stores one anchor (creating the stream when missing).
func Publish(ctx context.Context, js jetstream.JetStream, prefix string, a audit.Anchor) error {
	if _, err := js.CreateOrUpdateStream(ctx, Stream(prefix)); err != nil {
		return fmt.Errorf("anchor stream: %w", err)
	}
	b, err := json.Marshal(a)
	if err != nil {
		return err
	}
	msg := &nats.Msg{Subject: Subject(prefix), Data: b, Header: nats.Header{}}
	msg.Header.Set(jetstream.MsgIDHeader, fmt.Sprintf("anchor:%d:%s", a.Seq, a.Hash))
	if _, err := js.PublishMsg(ctx, msg); err != nil {
		return fmt.Errorf("publish anchor of entry %d: %w", a.Seq, err)
	}
	return nil
}

// ErrNoAnchors is returned by Read when the stream does not exist.
var ErrNoAnchors = audit.ErrNoAnchors

// Read returns every anchor in the stream, oldest first.
func Read(ctx context.Context, js jetstream.JetStream) ([]audit.Anchor, error) {
	s, err := js.Stream(ctx, StreamName)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, fmt.Errorf("%w: stream %s does not exist (no keywatch instance has anchored yet, or it was deleted)", ErrNoAnchors, StreamName)
	}
	if err != nil {
		return nil, fmt.Errorf("anchor stream: %w", err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("anchor stream: %w", err)
	}
	last := info.State.LastSeq
	if info.State.Msgs == 0 {
		return nil, nil
	}
	cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy})
	if err != nil {
		return nil, fmt.Errorf("anchor stream: %w", err)
	}
	var out []audit.Anchor
	for {
		batch, err := cons.Fetch(500, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return nil, fmt.Errorf("read anchors: %w", err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			var a audit.Anchor
			if err := json.Unmarshal(m.Data(), &a); err != nil {
				meta, _ := m.Metadata()
				seq := uint64(0)
				if meta != nil {
					seq = meta.Sequence.Stream
				}
				return nil, fmt.Errorf("anchor message %d is not an anchor: %w", seq, err)
			}
			out = append(out, a)
			if meta, err := m.Metadata(); err == nil && meta.Sequence.Stream >= last {
				return out, nil
			}
		}
		if err := batch.Error(); err != nil {
			return nil, fmt.Errorf("read anchors: %w", err)
		}
		if n == 0 {
			return nil, fmt.Errorf("read anchors: the stream holds messages up to %d but none came within 5s", last)
		}
	}
}
