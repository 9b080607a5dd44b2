// Package feed keeps the alert feed operators read: the latest state of
// every alert keywatch published, newest first, and their resolution by an
// operator (GET /v1/alerts, POST /v1/alerts/{id}/resolve). An operator's
// resolve is published through the outbox like any state change, so the
// pager resolves the incident too.
package feed

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/keywatch/keywatch/alertmodel"
	"github.com/keywatch/keywatch/store"
)

// Entry is an alert in the feed: its latest published state, and who
// resolved it when an operator did.
type Entry struct {
	alertmodel.Alert
	FirstSeen  time.Time `json:"first_seen"`
	UpdatedAt  time.Time `json:"updated_at"`
	ResolvedBy string    `json:"resolved_by,omitempty"`
	Comment    string    `json:"comment,omitempty"`
}

// Recorder appends to the audit log.
type Recorder interface {
	Record(ctx context.Context, action, actor string, details any) error
}

// Options are the feed's dependencies.
type Options struct {
	Store store.Store
	// Notify publishes an operator's resolution (the outbox).
	Notify func(ctx context.Context, as ...alertmodel.Alert) error
	Audit  Recorder
	Now    func() time.Time
	Logger *slog.Logger
	// Keep is how long alerts stay in the feed (default 30 days).
	Keep time.Duration
}

// Feed records alerts and serves them.
type Feed struct {
	o Options

	mu          sync.Mutex
	lastTrimmed time.Time
}

// New makes a feed.
func New(o Options) *Feed {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Keep <= 0 {
		o.Keep = 30 * 24 * time.Hour
	}
	return &Feed{o: o}
}

const indexKey = "feed:index" // sorted set: alert id by last update (ms)

func recordKey(id string) string { return "feed:a:" + id }

// record is the codec of the feed's record of alert id: "read record <id>:
// ...", "record <id> is corrupt: ..." (the feed's errors prefix "alert
// feed: ").
func (f *Feed) record(id string) store.Records[Entry] {
	return store.NewRecords[Entry](f.o.Store, "record "+id)
}

// ErrNotFound: no alert with that id in the feed.
var ErrNotFound = errors.New("no such alert")

// ErrResolved: the alert is resolved already.
var ErrResolved = errors.New("alert is resolved already")

// Record stores the latest state of alerts about to be published.
func (f *Feed) Record(ctx context.Context, as ...alertmodel.Alert) error {
	now := f.o.Now().UTC()
	for _, a := range as {
		rec := f.record(a.ID)
		// Not rec.Update: a corrupt previous record is replaced, not an
		// error (the alert's latest state is all the feed needs).
		err := f.o.Store.Update(ctx, recordKey(a.ID), func(old []byte, found bool) ([]byte, error) {
			e := Entry{Alert: a, FirstSeen: now, UpdatedAt: now}
			if found {
				if prev, err := rec.Decode(old); err == nil {
					e.FirstSeen = prev.FirstSeen
				}
			}
			return rec.Encode(e)
		})
		if err != nil {
			return fmt.Errorf("alert feed: %w", err)
		}
		if err := f.o.Store.ZAdd(ctx, indexKey, float64(now.UnixMilli()), a.ID); err != nil {
			return fmt.Errorf("alert feed: %w", err)
		}
	}
	f.trim(ctx, now)
	return nil
}

// trim drops alerts older than Keep, at most once a minute.
func (f *Feed) trim(ctx context.Context, now time.Time) {
	f.mu.Lock()
	if now.Sub(f.lastTrimmed) < time.Minute {
		f.mu.Unlock()
		return
	}
	f.lastTrimmed = now
	f.mu.Unlock()
	cut := float64(now.Add(-f.o.Keep).UnixMilli())
	old, err := f.o.Store.ZRangeByScore(ctx, indexKey, math.Inf(-1), cut)
	if err == nil && len(old) > 0 {
		keys := make([]string, len(old))
		for i, z := range old {
			keys[i] = recordKey(z.Member)
		}
		err = f.o.Store.Delete(ctx, keys...)
		if err == nil {
			_, err = f.o.Store.ZRemRangeByScore(ctx, indexKey, math.Inf(-1), cut)
		}
	}
	if err != nil {
		f.o.Logger.Warn("cannot trim the alert feed", "err", err)
	}
}

// Filter narrows List.
type Filter struct {
	Status alertmodel.Status // "" for all
	Since  time.Time         // only alerts updated after
	Limit  int               // default 100
}

// List returns alerts, the most recently updated first.
func (f *Feed) List(ctx context.Context, fl Filter) ([]Entry, error) {
	if fl.Limit <= 0 {
		fl.Limit = 100
	}
	min := math.Inf(-1)
	if !fl.Since.IsZero() {
		min = float64(fl.Since.UnixMilli() + 1)
	}
	ids, err := f.o.Store.ZRangeByScore(ctx, indexKey, min, math.Inf(1))
	if err != nil {
		return nil, fmt.Errorf("alert feed: %w", err)
	}
	out := []Entry{}
	for i := len(ids) - 1; i >= 0 && len(out) < fl.Limit; i-- {
		e, err := f.Get(ctx, ids[i].Member)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if fl.Status == "" || e.Status == fl.Status {
			out = append(out, e)
		}
	}
	return out, nil
}

// Get reads one alert of the feed.
func (f *Feed) Get(ctx context.Context, id string) (Entry, error) {
	e, found, err := f.record(id).Get(ctx, recordKey(id))
	if err != nil {
		return Entry{}, fmt.Errorf("alert feed: %w", err)
	}
	if !found {
		return Entry{}, ErrNotFound
	}
	return e, nil
}

// Resolve marks a firing alert resolved by an operator and publishes the
// resolution. The pager must hear what the feed shows: when publishing
// failed, an operator's next attempt (ErrResolved) publishes it again, which
// the outbox drops when it was published before.
func (f *Feed) Resolve(ctx context.Context, id, by, comment string) (Entry, error) {
	now := f.o.Now().UTC()
	var e Entry
	err := f.record(id).Update(ctx, recordKey(id), func(cur Entry, found bool) (Entry, error) {
		if !found {
			return Entry{}, ErrNotFound
		}
		e = cur
		if e.Status == alertmodel.Resolved {
			return Entry{}, ErrResolved
		}
		reason := "resolved by " + by
		if comment != "" {
			reason += ": " + comment
		}
		e.Alert = e.Alert.Resolved(reason, now)
		e.UpdatedAt, e.ResolvedBy, e.Comment = now, by, comment
		return e, nil
	})
	switch {
	case errors.Is(err, ErrResolved):
		if e.ResolvedBy != "" {
			if perr := f.publish(ctx, e.Alert); perr != nil {
				return e, perr
			}
		}
		return e, err
	case errors.Is(err, ErrNotFound):
		return e, err
	case err != nil:
		return Entry{}, fmt.Errorf("alert feed: %w", err)
	}
	if err := f.o.Store.ZAdd(ctx, indexKey, float64(now.UnixMilli()), id); err != nil {
		return e, fmt.Errorf("alert feed: %w", err)
	}
	if err := f.publish(ctx, e.Alert); err != nil {
		return e, err
	}
	if f.o.Audit != nil {
		if err := f.o.Audit.Record(ctx, "alert.resolve", by, map[string]any{"alert": id, "comment": comment, "hold": e.HoldID}); err != nil {
			return e, fmt.Errorf("audit alert.resolve: %w", err)
		}
	}
	return e, nil
}

func (f *Feed) publish(ctx context.Context, a alertmodel.Alert) error {
	if f.o.Notify == nil {
		return nil
	}
	if err := f.o.Notify(ctx, a); err != nil {
		return fmt.Errorf("publish the resolution of %s: %w", a.ID, err)
	}
	return nil
}
