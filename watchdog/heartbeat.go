// Package watchdog is how keywatch watches itself: every instance publishes
// heartbeats with what its watchers know of their chains (head, lag, when the
// node last answered), and every instance, and the separate `keywatch
// watchdog` process, reads everyone's heartbeats and pages when an instance
// falls silent, a chain's head stops advancing or a node stays unreachable.
// A dead man's switch: stopping an instance causes a page, because someone
// else notices.
package watchdog

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/keywatch/keywatch/alertmodel"
	"github.com/nats-io/nats.go/jetstream"
)

// StreamName keeps the last heartbeat of every instance.
const StreamName = "KEYWATCH_HEARTBEATS"

// StreamConfig is the heartbeat stream: subjects <prefix>.heartbeat.<instance>,
// the last message of each kept, so a watchdog that starts late still knows
// an instance that has gone silent.
func StreamConfig(prefix string) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:              StreamName,
		Description:       "keywatch heartbeats (the last per instance)",
		Subjects:          []string{prefix + ".heartbeat.>"},
		Storage:           jetstream.FileStorage,
		Retention:         jetstream.LimitsPolicy,
		MaxMsgsPerSubject: 1,
		Discard:           jetstream.DiscardOld,
	}
}

// Subject is where instance publishes its heartbeats (characters NATS
// gives a meaning to are replaced by _).
func Subject(prefix, instance string) string {
	return prefix + ".heartbeat." + alertmodel.SubjectToken(instance)
}

// Roles of heartbeat senders.
const (
	RoleInstance = "keywatch" // a keywatch run
	RoleWatchdog = "watchdog" // keywatch watchdog
)

// Heartbeat is one message on <prefix>.heartbeat.<instance>.
type Heartbeat struct {
	Instance  string    `json:"instance"`
	Role      string    `json:"role"` // keywatch | watchdog
	Seq       uint64    `json:"seq"`
	StartedAt time.Time `json:"started_at"`
	SentAt    time.Time `json:"sent_at"`
	// IntervalSeconds is how often the sender beats.
	IntervalSeconds float64 `json:"interval_seconds"`
	Chains          []Chain `json:"chains,omitempty"`
	// Retired says the instance was taken out of service on purpose: its
	// silence pages no one (keywatch watchdog -retire).
	Retired   bool   `json:"retired,omitempty"`
	RetiredBy string `json:"retired_by,omitempty"`
}

// Chain is what an instance's watcher knows of one chain. Zero times mean
// "not since the instance started".
type Chain struct {
	Chain     string `json:"chain"`
	Head      uint64 `json:"head"`
	Processed uint64 `json:"processed"`
	Lag       uint64 `json:"lag"`
	// HeadAdvancedAt is when the node last reported a higher head.
	HeadAdvancedAt time.Time `json:"head_advanced_at"`
	// ProcessedAt is when processing last advanced or was caught up.
	ProcessedAt time.Time `json:"processed_at"`
	// LastOKAt is when the node last answered.
	LastOKAt time.Time `json:"last_ok_at"`
	// The instance's thresholds: a head stale longer than StaleAfter, a node
	// silent longer than UnreachableAfter, pages.
	StaleAfterSeconds       float64 `json:"stale_after_seconds"`
	UnreachableAfterSeconds float64 `json:"unreachable_after_seconds"`
	// Standby says another instance, FollowedBy, holds the chain's lease and
	// follows it; this instance's view of the chain is not judged.
	Standby    bool   `json:"standby,omitempty"`
	FollowedBy string `json:"followed_by,omitempty"`
	// FollowingSince is when the instance last took the chain over from
	// another; zero times above count from then rather than from its start.
	FollowingSince time.Time `json:"following_since"`
}

// BeatOptions configure the heartbeat of one process.
type BeatOptions struct {
	JS       jetstream.JetStream
	Prefix   string
	Instance string
	Role     string // RoleInstance or RoleWatchdog
	Interval time.Duration
	Now      func() time.Time
	// Chains reports the chains' state at each beat (nil: none).
	Chains func() []Chain
	Logger *slog.Logger
}

// Beat publishes a heartbeat at once and then every Interval until ctx ends.
// Failures are logged and the next beat tried: the silence is what others
// page on.
func Beat(ctx context.Context, o BeatOptions) error {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Interval <= 0 {
		o.Interval = 5 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	log := o.Logger.With("instance", o.Instance)
	started := o.Now().UTC()
	streamReady := false
	failing := false
	t := time.NewTicker(o.Interval)
	defer t.Stop()
	for seq := uint64(1); ; seq++ {
		err := func() error {
			pctx, cancel := context.WithTimeout(ctx, max(o.Interval, 2*time.Second))
			defer cancel()
			if !streamReady {
				if _, err := o.JS.CreateOrUpdateStream(pctx, StreamConfig(o.Prefix)); err != nil {
					return fmt.Errorf("heartbeat stream: %w", err)
				}
				streamReady = true
			}
			hb := Heartbeat{Instance: o.Instance, Role: o.Role, Seq: seq, StartedAt: started, SentAt: o.Now().UTC(),
				IntervalSeconds: o.Interval.Seconds()}
			if o.Chains != nil {
				hb.Chains = o.Chains()
			}
			body, err := json.Marshal(hb)
			if err != nil {
				return err
			}
			_, err = o.JS.Publish(pctx, Subject(o.Prefix, o.Instance), body)
			return err
		}()
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil && !failing:
			log.Warn("cannot publish heartbeat; others will page if this lasts", "err", err)
			failing = true
		case err == nil && failing:
			log.Info("heartbeats published again")
			failing = false
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Retire publishes a heartbeat that takes instance out of service: monitors
// stop expecting it and resolve what they raised about it.
func Retire(ctx context.Context, js jetstream.JetStream, prefix, instance, by string, now time.Time) error {
	if _, err := js.CreateOrUpdateStream(ctx, StreamConfig(prefix)); err != nil {
		return fmt.Errorf("heartbeat stream: %w", err)
	}
	body, err := json.Marshal(Heartbeat{Instance: instance, SentAt: now.UTC(), Retired: true, RetiredBy: by})
	if err != nil {
		return err
	}
	_, err = js.Publish(ctx, Subject(prefix, instance), body)
	return err
}
