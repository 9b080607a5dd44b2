package watchdog

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/keywatch/keywatch/alertmodel"
	"github.com/keywatch/keywatch/internal/backoff"
	"github.com/keywatch/keywatch/store"
)

// MonitorOptions configure a Monitor.
type MonitorOptions struct {
	JS     jetstream.JetStream
	Prefix string
	// Self is the observing process: its own silence is for others to
	// notice, but its chains are judged like everyone's.
	Self string
	// Timeout after which a silent instance pages.
	Timeout time.Duration
	// Expect names instances that must be heard from even if never seen.
	Expect []string
	Now    func() time.Time
	// Raise publishes alerts (the outbox, or the watchdog's direct path).
	Raise func(ctx context.Context, as ...alertmodel.Alert) error
	// Store keeps what was raised, so a restarted monitor resolves it
	// (nil: memory).
	Store  store.Store
	Every  time.Duration // how often heartbeats are judged (default 1s)
	Logger *slog.Logger
}

// Monitor reads every instance's heartbeats and raises keywatch's own
// alerts: heartbeat-lost, chain-stale and node-unreachable, resolved when
// the condition clears.
type Monitor struct {
	o       MonitorOptions
	started time.Time
	raised  store.Records[alertmodel.Alert] // under firingKey in o.Store, by condition

	mu      sync.Mutex
	last    map[string]Heartbeat
	retired map[string]Heartbeat
	lastAny time.Time // when any heartbeat last arrived
	firing  map[string]alertmodel.Alert
}

// NewMonitor makes a monitor.
func NewMonitor(o MonitorOptions) *Monitor {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	if o.Every <= 0 {
		o.Every = time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Monitor{o: o, started: o.Now(),
		raised: store.NewRecords[alertmodel.Alert](o.Store, "raised watchdog alert"),
		last:   map[string]Heartbeat{}, retired: map[string]Heartbeat{}, firing: map[string]alertmodel.Alert{}}
}

const firingKey = "watchdog:firing"

// Observe takes one heartbeat.
func (m *Monitor) Observe(hb Heartbeat) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.lastAny = m.o.Now()
	if hb.Retired {
		delete(m.last, hb.Instance)
		m.retired[hb.Instance] = hb
		return
	}
	if r, ok := m.retired[hb.Instance]; ok && !hb.SentAt.After(r.SentAt) {
		return // an old beat from before the retirement
	}
	delete(m.retired, hb.Instance)
	if prev, ok := m.last[hb.Instance]; ok && hb.SentAt.Before(prev.SentAt) {
		return
	}
	m.last[hb.Instance] = hb
}

// Alive lists the keywatch instances (not watchdogs) heard from within the
// timeout.
func (m *Monitor) Alive() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.o.Now()
	var out []string
	for name, hb := range m.last {
		if hb.Role != RoleWatchdog && now.Sub(hb.SentAt) <= m.o.Timeout {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// Run reads heartbeats and judges them every Every until ctx ends.
func (m *Monitor) Run(ctx context.Context) error {
	m.Load(ctx)
	var (
		cc      jetstream.ConsumeContext
		wait    = backoff.New(time.Second, 30*time.Second)
		retryAt time.Time
	)
	defer func() {
		if cc != nil {
			cc.Stop()
		}
	}()
	t := time.NewTicker(m.o.Every)
	defer t.Stop()
	for {
		if cc == nil && !time.Now().Before(retryAt) {
			var err error
			if cc, err = m.subscribe(ctx); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				d := wait.Next()
				m.o.Logger.Warn("cannot read heartbeats; retrying", "err", err, "retry_in", d)
				retryAt = time.Now().Add(d)
			} else {
				wait.Reset()
			}
		}
		m.Check(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (m *Monitor) subscribe(ctx context.Context) (jetstream.ConsumeContext, error) {
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := m.o.JS.CreateOrUpdateStream(sctx, StreamConfig(m.o.Prefix)); err != nil {
		return nil, fmt.Errorf("heartbeat stream: %w", err)
	}
	cons, err := m.o.JS.OrderedConsumer(sctx, StreamName, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{m.o.Prefix + ".heartbeat.>"},
		DeliverPolicy:  jetstream.DeliverLastPerSubjectPolicy,
	})
	if err != nil {
		return nil, fmt.Errorf("heartbeat consumer: %w", err)
	}
	return cons.Consume(func(msg jetstream.Msg) {
		var hb Heartbeat
		if err := json.Unmarshal(msg.Data(), &hb); err != nil || hb.Instance == "" {
			m.o.Logger.Warn("unreadable heartbeat", "subject", msg.Subject(), "err", err)
			return
		}
		m.Observe(hb)
	})
}

// Load reads what monitors raised before (Run calls it), so that what
// ended while none was running is resolved.
func (m *Monitor) Load(ctx context.Context) {
	if m.o.Store == nil {
		return
	}
	// An unreadable alert is skipped, not a reason to forget the others:
	// the fields are decoded one by one.
	all, err := m.o.Store.HGetAll(ctx, firingKey)
	if err != nil {
		m.o.Logger.Warn("cannot read what was raised before", "err", err)
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, b := range all {
		if a, err := m.raised.Decode(b); err == nil {
			m.firing[k] = a
		}
	}
}

// Check judges the heartbeats at the clock's time, raises what began and
// resolves what ended. It returns the alerts it published.
func (m *Monitor) Check(ctx context.Context) []alertmodel.Alert {
	m.mu.Lock()
	now := m.o.Now()
	want, unknown := m.conditions(now)
	var out []alertmodel.Alert
	type change struct {
		key   string
		alert alertmodel.Alert
		end   bool
	}
	var changes []change
	for k, a := range want {
		if _, ok := m.firing[k]; !ok {
			changes = append(changes, change{key: k, alert: a})
		}
	}
	for k, a := range m.firing {
		if _, still := want[k]; still || unknown(k) {
			continue
		}
		changes = append(changes, change{key: k, alert: a.Resolved(m.resolution(k, now), now), end: true})
	}
	m.mu.Unlock()
	sort.Slice(changes, func(i, j int) bool { return changes[i].key < changes[j].key })
	for _, c := range changes {
		if m.o.Raise != nil {
			if err := m.o.Raise(ctx, c.alert); err != nil {
				m.o.Logger.Warn("cannot raise alert; will retry", "alert", c.alert.ID, "err", err)
				continue
			}
		}
		m.mu.Lock()
		if c.end {
			delete(m.firing, c.key)
		} else {
			m.firing[c.key] = c.alert
		}
		m.mu.Unlock()
		m.persist(ctx, c.key, c.alert, c.end)
		if c.end {
			m.o.Logger.Info("resolved", "alert", c.alert.ID, "reason", c.alert.Reasons[len(c.alert.Reasons)-1])
		} else {
			m.o.Logger.Error("keywatch is going blind", "alert", c.alert.ID, "reason", c.alert.Reasons[0])
		}
		out = append(out, c.alert)
	}
	return out
}

func (m *Monitor) persist(ctx context.Context, key string, a alertmodel.Alert, end bool) {
	if m.o.Store == nil {
		return
	}
	var err error
	if end {
		err = m.o.Store.HDel(ctx, firingKey, key)
	} else {
		err = m.raised.HPut(ctx, firingKey, key, a)
	}
	if err != nil {
		m.o.Logger.Warn("cannot record a raised alert", "alert", a.ID, "err", err)
	}
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func ago(now, t time.Time) string { return now.Sub(t).Round(time.Second).String() }

// conditions are the alerts that should be firing at now, by key; unknown
// reports keys that cannot be judged now (the chains of a silent instance).
// m.mu is held.
func (m *Monitor) conditions(now time.Time) (map[string]alertmodel.Alert, func(string) bool) {
	want := map[string]alertmodel.Alert{}
	silent := map[string]bool{}
	names := map[string]bool{}
	for name := range m.last {
		names[name] = true
	}
	for _, name := range m.o.Expect {
		if _, retired := m.retired[name]; !retired {
			names[name] = true
		}
	}
	graceOver := now.Sub(m.started) > m.o.Timeout
	for name := range names {
		hb, seen := m.last[name]
		what := "instance"
		if hb.Role == RoleWatchdog {
			what = "watchdog"
		}
		switch {
		case name == m.o.Self:
		case !seen && graceOver:
			want["heartbeat/"+name] = alertmodel.System(alertmodel.KindHeartbeatLost, name+"@never", alertmodel.Critical, "", []string{
				fmt.Sprintf("instance %s is expected (alerts.heartbeat.expect) but has sent no heartbeat since %s started watching at %s", name, m.o.Self, stamp(m.started)),
			}, now)
		case seen && now.Sub(hb.SentAt) > m.o.Timeout:
			silent[name] = true
			want["heartbeat/"+name] = alertmodel.System(alertmodel.KindHeartbeatLost, name+"@"+stamp(hb.SentAt), alertmodel.Critical, "", []string{
				fmt.Sprintf("%s %s has sent no heartbeat since %s (%s ago; timeout %s): it stopped, lost its network or was stopped", what, name, stamp(hb.SentAt), ago(now, hb.SentAt), m.o.Timeout),
				fmt.Sprintf("noticed by %s", m.o.Self),
			}, now)
		}
		if !seen || silent[name] {
			continue
		}
		for _, ch := range hb.Chains {
			m.chainConditions(want, name, hb, ch, now)
		}
	}
	if m.o.Self != "" && graceOver && now.Sub(m.lastAny) > m.o.Timeout {
		since := m.lastAny
		if since.IsZero() {
			since = m.started
		}
		want["blind/"+m.o.Self] = alertmodel.System(alertmodel.KindHeartbeatLost, m.o.Self+"/all@"+stamp(since), alertmodel.Critical, "", []string{
			fmt.Sprintf("%s has received no heartbeat from any instance, itself included, since %s (%s ago): NATS is unreachable or every instance stopped", m.o.Self, stamp(since), ago(now, since)),
		}, now)
	}
	unknown := func(key string) bool {
		parts := strings.SplitN(key, "/", 3)
		if len(parts) == 3 && (parts[0] == "stale" || parts[0] == "unreachable") {
			return silent[parts[1]]
		}
		return false
	}
	return want, unknown
}

func (m *Monitor) chainConditions(want map[string]alertmodel.Alert, name string, hb Heartbeat, ch Chain, now time.Time) {
	if ch.Standby {
		return // the instance that follows the chain reports on it
	}
	or := func(t time.Time) time.Time {
		if !t.IsZero() {
			return t
		}
		if ch.FollowingSince.After(hb.StartedAt) {
			return ch.FollowingSince
		}
		return hb.StartedAt
	}
	staleAfter := time.Duration(ch.StaleAfterSeconds * float64(time.Second))
	unreachableAfter := time.Duration(ch.UnreachableAfterSeconds * float64(time.Second))
	lastOK := or(ch.LastOKAt)
	if unreachableAfter > 0 && now.Sub(lastOK) > unreachableAfter {
		what := "has not answered since " + stamp(lastOK)
		if ch.LastOKAt.IsZero() && ch.FollowingSince.After(hb.StartedAt) {
			what = "has not answered since the instance took the chain over at " + stamp(lastOK)
		} else if ch.LastOKAt.IsZero() {
			what = "has not answered since the instance started at " + stamp(lastOK)
		}
		want["unreachable/"+name+"/"+ch.Chain] = alertmodel.System(alertmodel.KindNodeUnreachable, name+"/"+ch.Chain+"@"+stamp(lastOK), alertmodel.Critical, ch.Chain, []string{
			fmt.Sprintf("the %s node of instance %s %s (%s ago; unreachable_after %s): nothing on this chain is watched", ch.Chain, name, what, ago(now, lastOK), unreachableAfter),
		}, now)
		return // a stale head is the same blindness: one page
	}
	if staleAfter <= 0 {
		return
	}
	headAt, doneAt := or(ch.HeadAdvancedAt), or(ch.ProcessedAt)
	switch {
	case now.Sub(headAt) > staleAfter:
		want["stale/"+name+"/"+ch.Chain] = alertmodel.System(alertmodel.KindChainStale, name+"/"+ch.Chain+"@"+stamp(headAt), alertmodel.Critical, ch.Chain, []string{
			fmt.Sprintf("the head of %s seen by instance %s has stayed at block %d since %s (%s; stale_after %s): the node is stuck or cut off", ch.Chain, name, ch.Head, stamp(headAt), ago(now, headAt), staleAfter),
		}, now)
	case ch.Lag > 0 && now.Sub(doneAt) > staleAfter:
		want["stale/"+name+"/"+ch.Chain] = alertmodel.System(alertmodel.KindChainStale, name+"/"+ch.Chain+"@"+stamp(doneAt), alertmodel.Critical, ch.Chain, []string{
			fmt.Sprintf("instance %s has processed %s only up to block %d, %d behind the head, since %s (%s; stale_after %s): events are not being judged", name, ch.Chain, ch.Processed, ch.Lag, stamp(doneAt), ago(now, doneAt), staleAfter),
		}, now)
	}
}

// resolution says why a condition ended. m.mu is held.
func (m *Monitor) resolution(key string, now time.Time) string {
	parts := strings.SplitN(key, "/", 3)
	name := ""
	if len(parts) > 1 {
		name = parts[1]
	}
	if r, ok := m.retired[name]; ok {
		return fmt.Sprintf("instance %s was retired by %s at %s", name, r.RetiredBy, stamp(r.SentAt))
	}
	hb := m.last[name]
	switch parts[0] {
	case "heartbeat":
		if name == m.o.Self {
			return fmt.Sprintf("%s is running again", name)
		}
		return fmt.Sprintf("heartbeats from %s resumed (last at %s)", name, stamp(hb.SentAt))
	case "blind":
		return fmt.Sprintf("heartbeats reach %s again", name)
	case "unreachable":
		for _, ch := range hb.Chains {
			if ch.Chain == parts[2] && ch.Standby {
				return fmt.Sprintf("instance %s handed %s over to instance %s", name, ch.Chain, ch.FollowedBy)
			}
		}
		return fmt.Sprintf("the %s node of instance %s answers again", parts[2], name)
	case "stale":
		for _, ch := range hb.Chains {
			if ch.Chain == parts[2] && ch.Standby {
				return fmt.Sprintf("instance %s handed %s over to instance %s", name, ch.Chain, ch.FollowedBy)
			}
			if ch.Chain == parts[2] {
				return fmt.Sprintf("%s advances again (head %d, processed %d, seen by %s)", ch.Chain, ch.Head, ch.Processed, name)
			}
		}
		return fmt.Sprintf("instance %s no longer watches %s", name, parts[2])
	}
	return "condition cleared at " + stamp(now)
}
