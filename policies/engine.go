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

// fired is what the engine remembers of the alerts raised on one event, by
// policy, so that a retraction resolves them and a later re-inclusion fires
// them again as a new revision.
type fired struct {
	Alert    alerts.Alert `json:"alert"`
	Resolved bool         `json:"resolved"`
}

func (e *Engine) readFired(ctx context.Context, eventID string) (map[string]fired, error) {
	byPolicy := map[string]fired{}
	b, err := e.opts.Store.Get(ctx, firedKey(eventID))
	if errors.Is(err, store.ErrNotFound) {
		return byPolicy, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read fired alerts of %s: %w", eventID, err)
	}
	if err := json.Unmarshal(b, &byPolicy); err != nil {
		return nil, fmt.Errorf("read fired alerts of %s: %w", eventID, err)
	}
	return byPolicy, nil
}

func (e *Engine) writeFired(ctx context.Context, eventID string, byPolicy map[string]fired) error {
	b, err := json.Marshal(byPolicy)
	if err != nil {
		return err
	}
	if err := e.opts.Store.Set(ctx, firedKey(eventID), b, e.opts.Remember); err != nil {
		return fmt.Errorf("record fired alerts of %s: %w", eventID, err)
	}
	return nil
}

// remember records the alerts fired on an event and sets their revision.
func (e *Engine) remember(ctx context.Context, eventID string, as []alerts.Alert) error {
	if e.opts.Store == nil {
		return nil
	}
	byPolicy, err := e.readFired(ctx, eventID)
	if err != nil {
		return err
	}
	for i := range as {
		a := &as[i]
		a.Revision = 1
		if prev, ok := byPolicy[a.Policy]; ok {
			a.Revision = max(prev.Alert.Revision, 1)
			if prev.Resolved {
				a.Revision++
			}
		}
		byPolicy[a.Policy] = fired{Alert: *a}
	}
	return e.writeFired(ctx, eventID, byPolicy)
}

func (e *Engine) resolveRetracted(ctx context.Context, ev *chains.Event) ([]alerts.Alert, error) {
	if e.opts.Store == nil {
		return nil, nil
	}
	byPolicy, err := e.readFired(ctx, ev.ID)
	if err != nil {
		return nil, err
	}
	now := e.opts.Now().UTC()
	var out []alerts.Alert
	// Already-resolved alerts are returned again: a retry after a failed
	// notify must not lose them, and the outbox drops true repeats by id.
	for policy, f := range byPolicy {
		a := f.Alert
		a.Status = alerts.Resolved
		a.Event = *ev
		why := fmt.Sprintf("block %d (%s) left the chain", ev.Block, ev.BlockHash)
		if r := ev.Detail[chains.DetailRetracted]; r != "" {
			why = r
		}
		a.Reasons = append(append([]string(nil), a.Reasons...), "event retracted: "+why)
		a.ObservedAt = now
		out = append(out, a)
		byPolicy[policy] = fired{Alert: f.Alert, Resolved: true}
	}
	if len(out) == 0 {
		return nil, nil
	}
	if err := e.writeFired(ctx, ev.ID, byPolicy); err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

func sortStrings(s []string) { sort.Strings(s) }
