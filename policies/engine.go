package policies

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/keywatch/keywatch/alerts"
	"github.com/keywatch/keywatch/chains"
	"github.com/keywatch/keywatch/store"
)

// NotifyFunc receives the alerts an evaluation produced. The daemon queues
// them for publication; backtests print them.
type NotifyFunc func(ctx context.Context, as ...alerts.Alert) error

// Options are the engine's dependencies, given from outside so that tests
// drive time and capture alerts.
type Options struct {
	Store      store.Store // remembers fired alerts, to resolve them on retraction
	Notify     NotifyFunc
	Now        func() time.Time
	Logger     *slog.Logger
	Registerer prometheus.Registerer // may be nil
	// Remember is how long fired alerts are remembered for retraction
	// (default 30 days).
	Remember time.Duration
}

// Engine evaluates a policy set on events.
type Engine struct {
	set  atomic.Pointer[Set]
	opts Options

	evaluated *prometheus.CounterVec
	fired     *prometheus.CounterVec
	failures  *prometheus.CounterVec
}

// New makes an engine over a built policy set.
func New(set *Set, opts Options) *Engine {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Remember == 0 {
		opts.Remember = 30 * 24 * time.Hour
	}
	e := &Engine{opts: opts,
		evaluated: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "keywatch_events_evaluated_total", Help: "Events evaluated by the policy engine."}, []string{"chain", "status"}),
		fired:     prometheus.NewCounterVec(prometheus.CounterOpts{Name: "keywatch_alerts_fired_total", Help: "Alerts raised, by policy and severity."}, []string{"policy", "severity"}),
		failures:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: "keywatch_policy_failures_total", Help: "Policy evaluations that failed and were treated as hits (fail closed)."}, []string{"policy"}),
	}
	if opts.Registerer != nil {
		opts.Registerer.MustRegister(e.evaluated, e.fired, e.failures)
	}
	e.set.Store(set)
	return e
}

// Reload replaces the policy set. The caller builds the new set first; a set
// that failed to build never reaches here, so the old one stays in force.
func (e *Engine) Reload(set *Set) { e.set.Store(set) }

// Set returns the policy set in force.
func (e *Engine) Set() *Set { return e.set.Load() }

// Process evaluates events in order and hands the resulting alerts to
// Notify. An error means the alerts were not handed over: the caller must
// retry (the watcher does, without advancing its checkpoint).
func (e *Engine) Process(ctx context.Context, events []chains.Event) error {
	for i := range events {
		as, err := e.Evaluate(ctx, &events[i])
		if err != nil {
			return err
		}
		if len(as) == 0 {
			continue
		}
		if err := e.opts.Notify(ctx, as...); err != nil {
			return fmt.Errorf("notify alerts for event %s: %w", events[i].ID, err)
		}
	}
	return nil
}

// Evaluate judges one event and returns its alerts without notifying.
// Retracted events resolve the alerts their earlier states raised.
func (e *Engine) Evaluate(ctx context.Context, ev *chains.Event) ([]alerts.Alert, error) {
	e.evaluated.WithLabelValues(ev.Chain, string(ev.Status)).Inc()
	if ev.Status == chains.StatusRetracted {
		return e.resolveRetracted(ctx, ev)
	}
	set := e.set.Load()
	now := e.opts.Now().UTC()
	var out []alerts.Alert
	for _, p := range set.Policies {
		if !p.applies(ev) || p.Detector == nil {
			continue
		}
		f, err := p.Detector.Detect(ctx, ev, &set.input)
		if err != nil {
			// Fail closed: a policy that cannot decide raises its alert.
			e.failures.WithLabelValues(p.Name).Inc()
			e.opts.Logger.Error("policy evaluation failed; raising its alert", "policy", p.Name, "event", ev.ID, "err", err)
			f = Finding{Hit: true, Reasons: []string{fmt.Sprintf("policy %s could not decide (%v): raised to be safe", p.Name, err)}}
		}
		if !f.Hit {
			continue
		}
		e.fired.WithLabelValues(p.Name, string(p.Severity)).Inc()
		out = append(out, alerts.Alert{
			ID:         alerts.AlertID(ev.ID, p.Name),
			Policy:     p.Name,
			Severity:   p.Severity,
			Status:     alerts.Firing,
			Chain:      ev.Chain,
			Wallet:     ev.Wallet,
			Event:      *ev,
			Reasons:    f.Reasons,
			Actions:    p.Actions,
			ObservedAt: now,
		})
	}
	if len(out) > 0 {
		if err := e.remember(ctx, ev.ID, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func firedKey(eventID string) string { return "alerts:event:" + eventID }

// remember records the alerts fired on an event so a retraction can resolve
// them, even after a restart.
func (e *Engine) remember(ctx context.Context, eventID string, as []alerts.Alert) error {
	if e.opts.Store == nil {
		return nil
	}
	byPolicy := map[string]alerts.Alert{}
	if b, err := e.opts.Store.Get(ctx, firedKey(eventID)); err == nil {
		if err := json.Unmarshal(b, &byPolicy); err != nil {
			return fmt.Errorf("read fired alerts of %s: %w", eventID, err)
		}
	} else if !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("read fired alerts of %s: %w", eventID, err)
	}
	for _, a := range as {
		byPolicy[a.Policy] = a
	}
	b, err := json.Marshal(byPolicy)
	if err != nil {
		return err
	}
	if err := e.opts.Store.Set(ctx, firedKey(eventID), b, e.opts.Remember); err != nil {
		return fmt.Errorf("record fired alerts of %s: %w", eventID, err)
	}
	return nil
}

func (e *Engine) resolveRetracted(ctx context.Context, ev *chains.Event) ([]alerts.Alert, error) {
	if e.opts.Store == nil {
		return nil, nil
	}
	b, err := e.opts.Store.Get(ctx, firedKey(ev.ID))
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read fired alerts of %s: %w", ev.ID, err)
	}
	byPolicy := map[string]alerts.Alert{}
	if err := json.Unmarshal(b, &byPolicy); err != nil {
		return nil, fmt.Errorf("read fired alerts of %s: %w", ev.ID, err)
	}
	now := e.opts.Now().UTC()
	out := make([]alerts.Alert, 0, len(byPolicy))
	for _, a := range byPolicy {
		a.Status = alerts.Resolved
		a.Event = *ev
		a.Reasons = append(a.Reasons, fmt.Sprintf("event retracted: block %d (%s) left the chain", ev.Block, ev.BlockHash))
		a.ObservedAt = now
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

func sortStrings(s []string) { sort.Strings(s) }
