package policies

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/keywatch/keywatch/alertmodel"
	"github.com/keywatch/keywatch/chains"
	"github.com/keywatch/keywatch/store"
)

// NotifyFunc receives the alerts an evaluation produced. The daemon queues
// them for publication; backtests print them.
type NotifyFunc func(ctx context.Context, as ...alertmodel.Alert) error

// Options are the engine's dependencies, given from outside so that tests
// drive time and capture alerts.
type Options struct {
	// Store remembers fired alerts (to resolve them on retraction) and holds
	// the detectors' state: window sums, seen counterparties, followed
	// addresses. Without it, stateful detectors cannot decide (and so fire).
	Store  store.Store
	Notify NotifyFunc
	// Intents are the approved withdrawals unapproved-outflow reconciles
	// against (an *intents.Registry over Store). Without them that
	// detector cannot decide, and so fires.
	Intents Intents
	// Hops are the addresses forwarding follows (a *hops.Registry over
	// Store). Without them forwarding follows nothing.
	Hops Hops
	// Balances read wallet balances from each chain's node, by chain name,
	// for the drain detector.
	Balances   map[string]BalanceReader
	Now        func() time.Time
	Logger     *slog.Logger
	Registerer prometheus.Registerer // may be nil
	// Remember is how long fired alerts are remembered for retraction
	// (default 30 days).
	Remember time.Duration
}

// Engine evaluates a policy set on events.
type Engine struct {
	cur  atomic.Pointer[bound]
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
	e.Reload(set)
	return e
}

// bound is a policy set with the engine's dependencies filled into its
// input, and the lists as rule values.
type bound struct {
	set   *Set
	in    Input
	lists map[string]listVal
	rules bool // some policy has a when: expression
}

// Reload replaces the policy set. The caller builds the new set first; a set
// that failed to build never reaches here, so the old one stays in force.
// State kept in the store (windows, seen counterparties, followed addresses,
// intents) belongs to policy names, so it carries over to the new set.
func (e *Engine) Reload(set *Set) {
	b := &bound{set: set, in: set.input}
	b.in.Store, b.in.Intents, b.in.Hops, b.in.Balances, b.in.Now = e.opts.Store, e.opts.Intents, e.opts.Hops, e.opts.Balances, e.opts.Now
	for _, p := range set.Policies {
		if p.When != nil {
			b.rules = true
		}
	}
	if b.rules && set.input.Lists != nil {
		b.lists = listValues(set.input.Lists)
	}
	e.cur.Store(b)
}

// Set returns the policy set in force.
func (e *Engine) Set() *Set { return e.cur.Load().set }

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
// Retracted events resolve the alerts their earlier states raised. The event
// may be annotated (its intent field) on the way.
func (e *Engine) Evaluate(ctx context.Context, ev *chains.Event) ([]alertmodel.Alert, error) {
	e.evaluated.WithLabelValues(ev.Chain, string(ev.Status)).Inc()
	b := e.cur.Load()
	if ev.Status == chains.StatusRetracted {
		return e.retract(ctx, b, ev)
	}
	now := e.opts.Now().UTC()
	var vars *ruleVars
	var out []alertmodel.Alert
	for _, p := range b.set.Policies {
		if !p.applies(ev) {
			continue
		}
		var f Finding
		var err error
		if p.When != nil {
			if vars == nil {
				vars = &ruleVars{event: ruleEvent(ev), lists: b.lists}
			}
			var ok bool
			ok, err = p.When.eval(vars)
			if err == nil && !ok {
				continue
			}
			if err == nil && p.Detector == nil {
				f = Finding{Hit: true, Reasons: []string{"rule holds: " + p.When.Source}}
			}
		}
		if err == nil && p.Detector != nil {
			f, err = p.Detector.Detect(ctx, ev, &b.in)
		}
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
		wallet := ev.Wallet
		if f.Wallet != "" {
			wallet = f.Wallet
		}
		out = append(out, alertmodel.Alert{
			ID:         alertmodel.AlertID(ev.ID, p.Name),
			Policy:     p.Name,
			Severity:   p.Severity,
			Status:     alertmodel.Firing,
			Chain:      ev.Chain,
			Wallet:     wallet,
			Event:      *ev,
			Reasons:    f.Reasons,
			Actions:    p.Actions,
			ObservedAt: now,
		})
	}
	if len(out) > 0 {
		// A later policy may have annotated the event (its matched intent).
		for i := range out {
			out[i].Event.Intent = ev.Intent
		}
		if Screening(ctx) {
			// An intended withdrawal: nothing moved, so no retraction will
			// come to resolve these alerts, and nothing is recorded.
			for i := range out {
				out[i].Revision = 1
			}
		} else if err := e.remember(ctx, ev.ID, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// retract makes stateful detectors forget a retracted event and resolves
// the alerts it raised.
func (e *Engine) retract(ctx context.Context, b *bound, ev *chains.Event) ([]alertmodel.Alert, error) {
	for _, p := range b.set.Policies {
		r, ok := p.Detector.(Retractor)
		if !ok {
			continue
		}
		if err := r.Retract(ctx, ev, &b.in); err != nil {
			return nil, fmt.Errorf("policy %s: forget retracted event %s: %w", p.Name, ev.ID, err)
		}
	}
	return e.resolveRetracted(ctx, ev)
}

func firedKey(eventID string) string { return "alerts:event:" + eventID }

// fired is what the engine remembers of the alerts raised on one event, by
// policy, so that a retraction resolves them and a later re-inclusion fires
// them again as a new revision.
type fired struct {
	Alert    alertmodel.Alert `json:"alert"`
	Resolved bool             `json:"resolved"`
}

// firedRecord is the codec of the alerts fired on eventID, by policy, named
// for its errors ("read fired alerts of eth:0x01:0: ...").
func (e *Engine) firedRecord(eventID string) store.Records[map[string]fired] {
	return store.NewRecords[map[string]fired](e.opts.Store, "fired alerts of "+eventID)
}

func (e *Engine) readFired(ctx context.Context, eventID string) (map[string]fired, error) {
	byPolicy, found, err := e.firedRecord(eventID).Get(ctx, firedKey(eventID))
	if err != nil {
		return nil, err
	}
	if !found || byPolicy == nil {
		byPolicy = map[string]fired{}
	}
	return byPolicy, nil
}

func (e *Engine) writeFired(ctx context.Context, eventID string, byPolicy map[string]fired) error {
	return e.firedRecord(eventID).Put(ctx, firedKey(eventID), byPolicy, e.opts.Remember)
}

// remember records the alerts fired on an event and sets their revision.
func (e *Engine) remember(ctx context.Context, eventID string, as []alertmodel.Alert) error {
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

func (e *Engine) resolveRetracted(ctx context.Context, ev *chains.Event) ([]alertmodel.Alert, error) {
	if e.opts.Store == nil {
		return nil, nil
	}
	byPolicy, err := e.readFired(ctx, ev.ID)
	if err != nil {
		return nil, err
	}
	now := e.opts.Now().UTC()
	var out []alertmodel.Alert
	// Already-resolved alerts are returned again: a retry after a failed
	// notify must not lose them, and the outbox drops true repeats by id.
	for policy, f := range byPolicy {
		a := f.Alert
		a.Status = alertmodel.Resolved
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
