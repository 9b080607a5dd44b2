package alerts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sort"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/keywatch/keywatch/alertmodel"
	"github.com/keywatch/keywatch/store"
)

// Notifier delivers alerts to one destination. retry says whether a failure
// is worth trying again; the retry loop lives in RunSink (JetStream
// redelivery with backoff), not in each sink. The alerts of one call belong
// to one incident; NotificationFrom(ctx, as) says which, and whether it
// still fires.
type Notifier interface {
	Notify(ctx context.Context, as ...*alertmodel.Alert) (retry bool, err error)
}

// Incidents reads the open incidents sink keeps in st, oldest first.
func Incidents(ctx context.Context, st store.Store, sink string) ([]Incident, error) {
	all, err := st.HGetAll(ctx, incidentsKey(sink))
	if err != nil {
		return nil, err
	}
	out := make([]Incident, 0, len(all))
	for id, b := range all {
		var inc Incident
		if err := json.Unmarshal(b, &inc); err != nil {
			return nil, fmt.Errorf("incident %s of sink %s is corrupt: %w", id, sink, err)
		}
		out = append(out, inc)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Opened.Before(out[j].Opened) })
	return out, nil
}

// Silencer says whether an operator muted an alert: the id of the active
// silence that matches it, or "".
type Silencer interface {
	Silencing(ctx context.Context, a *alertmodel.Alert) (string, error)
}

// DeadLetter is an alert a sink gave up on.
type DeadLetter struct {
	Sink       string           `json:"sink"`
	Alert      alertmodel.Alert `json:"alert"`
	Error      string           `json:"error"`
	Deliveries int              `json:"deliveries"`
	At         time.Time        `json:"at"`
}

// DeadLetterFunc takes an alert a sink gave up on (after MaxDeliver
// attempts, or at once when the endpoint refused it).
type DeadLetterFunc func(ctx context.Context, dl DeadLetter) error

// SinkOptions configure a durable consumer feeding a Notifier.
type SinkOptions struct {
	Name       string // durable consumer name: sink-<Name>
	Stream     jetstream.StreamConfig
	Prefix     string
	MaxDeliver int             // delivery attempts before dead-lettering (default 10)
	Backoff    []time.Duration // redelivery delays (default 1s, 5s, 30s, 2m, 5m)
	Timeout    time.Duration   // bounds one Notify call (default 10s)

	Route alertmodel.Route
	// GroupWait delays an incident's first notification so that more alerts
	// of the same policy and wallet can join it (0: at once).
	GroupWait time.Duration
	// GroupWindow is how long after its first alert an incident takes in
	// more alerts of its group; those arriving after the first notification
	// go out together at the window's end (0: no grouping).
	GroupWindow time.Duration
	// RepeatInterval sends a still-firing incident again (0: never).
	RepeatInterval time.Duration

	Silencer   Silencer       // nil: nothing is muted
	Store      store.Store    // incident state, shared by instances (required)
	DeadLetter DeadLetterFunc // nil: logged only
	Now        func() time.Time
	Tick       time.Duration // how often incidents are checked for due updates (default 1s)
	// Ticks, when set, drives those checks instead of a ticker (tests: a
	// second send returns only after the first check is done).
	Ticks   <-chan time.Time
	Logger  *slog.Logger
	Metrics *SinkMetrics // nil: none
}

func (o *SinkOptions) defaults() {
	if o.MaxDeliver <= 0 {
		o.MaxDeliver = 10
	}
	if len(o.Backoff) == 0 {
		o.Backoff = []time.Duration{time.Second, 5 * time.Second, 30 * time.Second, 2 * time.Minute, 5 * time.Minute}
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Tick <= 0 {
		o.Tick = time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// ackWait is how long a held message may stay unacknowledged: long enough
// to wait out the group window and a slow endpoint.
func (o *SinkOptions) ackWait() time.Duration {
	return max(time.Minute, o.GroupWait+o.GroupWindow+2*o.Timeout+30*time.Second)
}

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

// RunSink consumes the alert stream with a durable consumer and explicit
// acknowledgements and feeds the Notifier: alerts the route takes, grouped
// into incidents, minus silenced ones. A sink that restarts resumes where it
// stopped and sends nothing twice; an alert is acknowledged only after the
// Notifier accepted it (or it was dead-lettered).
func RunSink(ctx context.Context, js jetstream.JetStream, n Notifier, o SinkOptions) error {
	if o.Store == nil {
		return fmt.Errorf("sink %s: no store for its incidents", o.Name)
	}
	o.defaults()
	log := o.Logger.With("sink", o.Name)
	var cons jetstream.Consumer
	backoff := 500 * time.Millisecond
	for cons == nil {
		var err error
		if _, err = js.CreateOrUpdateStream(ctx, o.Stream); err == nil {
			cons, err = js.CreateOrUpdateConsumer(ctx, o.Stream.Name, SinkConsumer(o.Name, o.Prefix, o.MaxDeliver, o.ackWait()))
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
	d := newDispatcher(n, o, log)
	d.sync(ctx)
	msgs := make(chan jetstream.Msg)
	cc, err := cons.Consume(func(m jetstream.Msg) {
		select {
		case msgs <- m:
		case <-ctx.Done():
			_ = m.Nak() // for the next run, at once
		}
	}, jetstream.PullPriorityGroup(sinkPriorityGroup), jetstream.PullMaxMessages(64))
	if err != nil {
		return fmt.Errorf("sink %s: consume: %w", o.Name, err)
	}
	defer func() {
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
	}()
	ticks := o.Ticks
	if ticks == nil {
		t := time.NewTicker(o.Tick)
		defer t.Stop()
		ticks = t.C
	}
	for {
		select {
		case <-ctx.Done():
			d.release()
			return nil
		case m := <-msgs:
			d.receive(ctx, m)
		case <-ticks:
			d.tick(ctx)
		}
	}
}

// SinkMetrics are the sinks' Prometheus series.
type SinkMetrics struct {
	alerts        *prometheus.CounterVec
	notifications *prometheus.CounterVec
	duration      *prometheus.HistogramVec
}

// NewSinkMetrics registers the sink series on reg.
func NewSinkMetrics(reg prometheus.Registerer) *SinkMetrics {
	m := &SinkMetrics{
		alerts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "keywatch_sink_alerts_total",
			Help: "Alert messages a sink handled, by result: delivered, unchanged (already sent), filtered (not routed here), silenced, dead_lettered."}, []string{"sink", "result"}),
		notifications: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "keywatch_sink_notifications_total",
			Help: "Notification attempts, by outcome: sent, retry, refused."}, []string{"sink", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "keywatch_sink_notify_seconds",
			Help: "Time one notification attempt took.", Buckets: prometheus.ExponentialBuckets(0.005, 2, 12)}, []string{"sink"}),
	}
	if reg != nil {
		reg.MustRegister(m.alerts, m.notifications, m.duration)
	}
	return m
}

func (m *SinkMetrics) alert(sink, result string, n int) {
	if m != nil && n > 0 {
		m.alerts.WithLabelValues(sink, result).Add(float64(n))
	}
}

func (m *SinkMetrics) notification(sink, outcome string, d time.Duration) {
	if m != nil {
		m.notifications.WithLabelValues(sink, outcome).Inc()
		m.duration.WithLabelValues(sink).Observe(d.Seconds())
	}
}

// Member is one alert of an incident.
type Member struct {
	Alert alertmodel.Alert `json:"alert"`
	// Sent is the status last delivered for it ("" when none was).
	Sent alertmodel.Status `json:"sent,omitempty"`
	// Silenced is the silence that muted it at the last notification.
	Silenced string `json:"silenced,omitempty"`
}

// Incident is what one sink made of a group of alerts: the alerts of one
// policy on one wallet that arrived within the group window, sent together
// and resolved together.
type Incident struct {
	ID       string             `json:"id"` // the first alert's key
	Group    string             `json:"group"`
	Opened   time.Time          `json:"opened"`
	Notified bool               `json:"notified"` // something went out
	LastSent time.Time          `json:"last_sent"`
	Order    []string           `json:"order"` // member keys in arrival order
	Members  map[string]*Member `json:"members"`
	// RepeatFailures counts failed repeats; RetryAt delays the next try.
	RepeatFailures int       `json:"repeat_failures,omitempty"`
	RetryAt        time.Time `json:"retry_at"`
}

func (inc *Incident) allResolved() bool {
	for _, m := range inc.Members {
		if m.Alert.Status != alertmodel.Resolved {
			return false
		}
	}
	return true
}

// held is a message waiting for its incident's notification.
type held struct {
	msg   jetstream.Msg
	key   string
	since time.Time // real time, for keeping the message alive
}

type dispatcher struct {
	n   Notifier
	o   SinkOptions
	log *slog.Logger

	incidents map[string]*Incident // by id
	byAlert   map[string]string    // member key -> incident id
	newest    map[string]string    // group key -> its newest incident's id
	held      map[string][]held    // incident id -> unacknowledged messages
	// version is the state version this dispatcher last wrote or read: when
	// the store holds another, another instance changed the state.
	version string
	nonce   string
	writes  int
}

func newDispatcher(n Notifier, o SinkOptions, log *slog.Logger) *dispatcher {
	return &dispatcher{n: n, o: o, log: log, nonce: fmt.Sprintf("%x", rand.Uint64()),
		incidents: map[string]*Incident{}, byAlert: map[string]string{}, newest: map[string]string{}, held: map[string][]held{}}
}

// incidentsKey is the hash of sink's open incidents, by id.
func incidentsKey(sink string) string { return "alerts:sink:" + sink + ":incidents" }

func (d *dispatcher) stateKey() string        { return incidentsKey(d.o.Name) }
func (d *dispatcher) doneKey(k string) string { return "alerts:sink:" + d.o.Name + ":done:" + k }

// doneFor is how long a closed incident's alerts are remembered, so a late
// redelivery sends nothing.
const doneFor = 30 * 24 * time.Hour

// load reads the incidents another run (or instance) left.
func (d *dispatcher) load(ctx context.Context) error {
	all, err := d.o.Store.HGetAll(ctx, d.stateKey())
	if err != nil {
		return err
	}
	d.incidents, d.byAlert, d.newest = map[string]*Incident{}, map[string]string{}, map[string]string{}
	for id, b := range all {
		var inc Incident
		if err := json.Unmarshal(b, &inc); err != nil {
			d.log.Error("sink state of an incident is corrupt; dropping it", "incident", id, "err", err)
			continue
		}
		if inc.Members == nil {
			inc.Members = map[string]*Member{}
		}
		d.incidents[id] = &inc
		if n, ok := d.newest[inc.Group]; !ok || d.incidents[n].Opened.Before(inc.Opened) {
			d.newest[inc.Group] = id
		}
		for k := range inc.Members {
			d.byAlert[k] = id
		}
	}
	return nil
}

func (d *dispatcher) versionKey() string { return "alerts:sink:" + d.o.Name + ":version" }

func (d *dispatcher) save(ctx context.Context, inc *Incident) error {
	b, err := json.Marshal(inc)
	if err != nil {
		return err
	}
	if err := d.o.Store.HSet(ctx, d.stateKey(), inc.ID, b); err != nil {
		return err
	}
	return d.bump(ctx)
}

// bump records that this dispatcher changed the state.
func (d *dispatcher) bump(ctx context.Context) error {
	d.writes++
	d.version = fmt.Sprintf("%s:%d", d.nonce, d.writes)
	return d.o.Store.Set(ctx, d.versionKey(), []byte(d.version), 0)
}

// sync rereads the state when another instance (which held the consumer
// meanwhile) changed it.
func (d *dispatcher) sync(ctx context.Context) {
	v, err := d.o.Store.Get(ctx, d.versionKey())
	if errors.Is(err, store.ErrNotFound) {
		v, err = nil, nil
	}
	if err != nil {
		d.log.Warn("cannot read sink state version", "err", err)
		return
	}
	if string(v) == d.version {
		return
	}
	if err := d.reload(ctx); err != nil {
		d.log.Warn("cannot reread sink state", "err", err)
		return
	}
	d.version = string(v)
}

// close forgets a settled incident and remembers its alerts as done.
func (d *dispatcher) close(ctx context.Context, inc *Incident) error {
	for k := range inc.Members {
		if err := d.o.Store.Set(ctx, d.doneKey(k), []byte(inc.ID), doneFor); err != nil {
			return err
		}
		delete(d.byAlert, k)
	}
	delete(d.incidents, inc.ID)
	if err := d.o.Store.HDel(ctx, d.stateKey(), inc.ID); err != nil {
		return err
	}
	return d.bump(ctx)
}

// receive takes one message off the stream.
func (d *dispatcher) receive(ctx context.Context, m jetstream.Msg) {
	d.sync(ctx)
	var a alertmodel.Alert
	if err := json.Unmarshal(m.Data(), &a); err != nil || a.ID == "" {
		if err == nil {
			err = errors.New("it has no id")
		}
		// Named by its place in the stream: each unreadable message is a
		// dead letter of its own, not a duplicate of the first.
		id := "unreadable"
		if meta, merr := m.Metadata(); merr == nil {
			id = fmt.Sprintf("unreadable:%d", meta.Sequence.Stream)
		}
		d.log.Error("alert message is not a valid alert; dead-lettering it", "subject", m.Subject(), "message", id, "err", err)
		d.deadLetter(ctx, m, alertmodel.Alert{ID: id, Policy: "unreadable", Reasons: []string{string(m.Data())}}, fmt.Errorf("not a valid alert: %w", err))
		return
	}
	if !d.o.Route.Match(&a) {
		d.o.Metrics.alert(d.o.Name, "filtered", 1)
		_ = m.Ack()
		return
	}
	key := a.Key()
	id, known := d.byAlert[key]
	if !known {
		if _, err := d.o.Store.Get(ctx, d.doneKey(key)); err == nil {
			d.o.Metrics.alert(d.o.Name, "unchanged", 1)
			_ = m.Ack() // its incident was settled before (a late redelivery)
			return
		} else if !errors.Is(err, store.ErrNotFound) {
			d.log.Warn("cannot read sink state; will retry the alert", "alert", key, "err", err)
			_ = m.NakWithDelay(d.o.Backoff[0])
			return
		}
		if a.Status == alertmodel.Resolved {
			// Never sent as firing here (filtered, silenced or refused
			// before): there is nothing to resolve.
			d.o.Metrics.alert(d.o.Name, "unchanged", 1)
			_ = m.Ack()
			return
		}
		id = d.join(&a)
	}
	inc, ok := d.incidents[id]
	if !ok { // an index out of step with the state: start afresh
		delete(d.byAlert, key)
		id = d.join(&a)
		inc = d.incidents[id]
	}
	mem, found := inc.Members[key]
	if !found {
		mem = &Member{}
		inc.Members[key] = mem
		inc.Order = append(inc.Order, key)
		d.byAlert[key] = id
	}
	if mem.Sent == a.Status {
		// Already delivered in this status (the confirmation of an alert
		// sent when pending, or a redelivery after a restart): keep the
		// newest facts, send nothing.
		mem.Alert = a
		if err := d.save(ctx, inc); err != nil {
			d.log.Warn("cannot write sink state", "err", err)
		}
		d.o.Metrics.alert(d.o.Name, "unchanged", 1)
		_ = m.Ack()
		return
	}
	mem.Alert = a
	mem.Silenced = "" // judged again by the silences in force when it goes out
	if err := d.save(ctx, inc); err != nil {
		d.log.Warn("cannot write sink state; will retry the alert", "alert", key, "err", err)
		_ = m.NakWithDelay(d.o.Backoff[0])
		return
	}
	d.held[id] = append(d.held[id], held{msg: m, key: key, since: time.Now()})
	d.evaluate(ctx, inc, false)
}

// join returns the open incident of the alert's group, or opens one.
func (d *dispatcher) join(a *alertmodel.Alert) string {
	now := d.o.Now()
	group := alertmodel.GroupKey(a)
	span := max(d.o.GroupWindow, d.o.GroupWait)
	if id, ok := d.newest[group]; ok {
		if inc, ok := d.incidents[id]; ok && now.Before(inc.Opened.Add(span)) && !inc.allResolved() {
			return id
		}
	}
	id := a.Key()
	if old, taken := d.incidents[id]; taken {
		// The alert's own incident is still settling: continue it.
		return old.ID
	}
	d.incidents[id] = &Incident{ID: id, Group: group, Opened: now, Members: map[string]*Member{}}
	d.newest[group] = id
	return id
}

func (d *dispatcher) reload(ctx context.Context) error {
	if err := d.load(ctx); err != nil {
		return err
	}
	// Messages held for incidents the store no longer has (another
	// instance settled them) are handed back, to be judged afresh.
	for id, hs := range d.held {
		if _, ok := d.incidents[id]; !ok && len(hs) > 0 {
			for _, h := range hs {
				_ = h.msg.Nak()
			}
			delete(d.held, id)
		}
	}
	return nil
}

// tick sends what became due: group updates at the window's end, repeats.
func (d *dispatcher) tick(ctx context.Context) {
	for _, hs := range d.held {
		for i := range hs {
			if time.Since(hs[i].since) > d.o.ackWait()/2 {
				_ = hs[i].msg.InProgress()
				hs[i].since = time.Now()
			}
		}
	}
	if d.o.RepeatInterval > 0 || len(d.held) > 0 {
		d.sync(ctx)
	}
	for _, inc := range d.incidents {
		d.evaluate(ctx, inc, true)
	}
}

// evaluate sends the incident's notification when one is due.
func (d *dispatcher) evaluate(ctx context.Context, inc *Incident, fromTick bool) {
	now := d.o.Now()
	hs := d.held[inc.ID]
	unsent, sentFiring := false, false
	for _, m := range inc.Members {
		if m.Alert.Status == alertmodel.Firing && m.Sent != alertmodel.Firing {
			unsent = true
		}
		if m.Sent == alertmodel.Firing {
			sentFiring = true
		}
	}
	resolved := inc.allResolved()
	switch {
	case len(hs) > 0 && resolved && !sentFiring:
		// Every alert resolved before anything went out: nothing to say.
		d.settle(ctx, inc, hs)
	case len(hs) > 0 && resolved:
		d.flush(ctx, inc, false)
	case len(hs) > 0 && unsent && !inc.Notified:
		if !now.Before(inc.Opened.Add(d.o.GroupWait)) {
			d.flush(ctx, inc, false)
		}
	case len(hs) > 0 && unsent:
		if !now.Before(inc.Opened.Add(max(d.o.GroupWindow, d.o.GroupWait))) {
			d.flush(ctx, inc, false)
		}
	case len(hs) > 0:
		// A change worth no notification of its own (one alert of several
		// resolved): record it.
		d.settle(ctx, inc, hs)
	case fromTick && d.o.RepeatInterval > 0 && inc.Notified && !resolved && sentFiring &&
		!now.Before(inc.LastSent.Add(d.o.RepeatInterval)) && !now.Before(inc.RetryAt):
		d.repeat(ctx, inc, now)
	}
}

// repeat sends a still-firing incident again; one instance does it.
func (d *dispatcher) repeat(ctx context.Context, inc *Incident, now time.Time) {
	lease := fmt.Sprintf("alerts:sink:%s:repeat:%s:%d:%d", d.o.Name, inc.ID, inc.LastSent.UnixNano(), inc.RepeatFailures)
	ok, err := d.o.Store.SetNX(ctx, lease, []byte("1"), d.o.RepeatInterval)
	if err != nil || !ok {
		if err == nil {
			_ = d.reload(ctx) // another instance sent it
		}
		return
	}
	d.flush(ctx, inc, true)
}

// settle records the incident's state and acknowledges its held messages.
func (d *dispatcher) settle(ctx context.Context, inc *Incident, hs []held) {
	var err error
	if inc.allResolved() {
		err = d.close(ctx, inc)
	} else {
		err = d.save(ctx, inc)
	}
	if err != nil {
		d.log.Warn("cannot write sink state; will retry", "incident", inc.ID, "err", err)
		for _, h := range hs {
			_ = h.msg.NakWithDelay(d.o.Backoff[0])
		}
		delete(d.held, inc.ID)
		return
	}
	d.o.Metrics.alert(d.o.Name, "unchanged", len(hs))
	for _, h := range hs {
		_ = h.msg.Ack()
	}
	delete(d.held, inc.ID)
}

// flush sends the incident: every alert not muted, with the incident's
// status.
func (d *dispatcher) flush(ctx context.Context, inc *Incident, repeat bool) {
	hs := d.held[inc.ID]
	silenced := 0
	for _, k := range inc.Order {
		m := inc.Members[k]
		if m.Alert.Status != alertmodel.Firing || m.Sent == alertmodel.Firing || m.Silenced != "" || d.o.Silencer == nil {
			continue
		}
		id, err := d.o.Silencer.Silencing(ctx, &m.Alert)
		if err != nil {
			// Better a page too many than a theft unheard of.
			d.log.Warn("cannot read silences; sending the alert", "alert", k, "err", err)
			continue
		}
		if id != "" {
			m.Silenced = id
			silenced++
			d.log.Info("alert silenced", "alert", k, "silence", id)
		}
	}
	d.o.Metrics.alert(d.o.Name, "silenced", silenced)
	var send []*alertmodel.Alert
	worth := repeat
	for _, k := range inc.Order {
		m := inc.Members[k]
		if m.Silenced != "" && m.Sent != alertmodel.Firing {
			continue
		}
		if m.Alert.Status != m.Sent {
			worth = true
		}
		a := m.Alert
		send = append(send, &a)
	}
	status := alertmodel.Firing
	if inc.allResolved() {
		status = alertmodel.Resolved
	}
	if !worth || (status == alertmodel.Firing && !anyFiring(send)) {
		d.settle(ctx, inc, hs)
		return
	}
	note := Notification{Sink: d.o.Name, GroupKey: inc.Group, Incident: inc.ID, Status: status, Repeat: repeat}
	// A notification under way is finished, and what it did recorded, even
	// when keywatch is stopping: cut off half way, it may have reached the
	// service while the sink state says it did not, and the next run would
	// send it again. Both are bounded by the sink's timeout.
	ctx = context.WithoutCancel(ctx)
	nctx, cancel := context.WithTimeout(WithNotification(ctx, note), d.o.Timeout)
	start := time.Now()
	retry, err := d.n.Notify(nctx, send...)
	cancel()
	took := time.Since(start)
	ctx, cancel = context.WithTimeout(ctx, d.o.Timeout)
	defer cancel()
	if err == nil {
		d.o.Metrics.notification(d.o.Name, "sent", took)
		now := d.o.Now()
		for _, k := range inc.Order {
			m := inc.Members[k]
			if m.Silenced != "" && m.Sent != alertmodel.Firing {
				continue
			}
			m.Sent = m.Alert.Status
		}
		inc.Notified, inc.LastSent, inc.RepeatFailures, inc.RetryAt = true, now, 0, time.Time{}
		d.log.Debug("notified", "incident", inc.ID, "status", status, "alerts", len(send), "repeat", repeat, "took", took)
		var serr error
		if status == alertmodel.Resolved {
			serr = d.close(ctx, inc)
		} else {
			serr = d.save(ctx, inc)
		}
		if serr != nil {
			// The notification went out; a redelivery may send it again.
			d.log.Warn("cannot write sink state after notifying", "incident", inc.ID, "err", serr)
		}
		d.o.Metrics.alert(d.o.Name, "delivered", len(hs))
		for _, h := range hs {
			_ = h.msg.Ack()
		}
		delete(d.held, inc.ID)
		return
	}
	outcome := "retry"
	if !retry {
		outcome = "refused"
	}
	d.o.Metrics.notification(d.o.Name, outcome, took)
	if repeat && len(hs) == 0 {
		inc.RepeatFailures++
		delay := d.o.Backoff[min(inc.RepeatFailures-1, len(d.o.Backoff)-1)]
		inc.RetryAt = d.o.Now().Add(max(delay, RetryAfter(err)))
		if !retry || inc.RepeatFailures >= d.o.MaxDeliver {
			d.log.Error("repeat of a firing incident failed; next at the repeat interval", "incident", inc.ID, "err", err)
			inc.LastSent, inc.RepeatFailures, inc.RetryAt = d.o.Now(), 0, time.Time{}
		} else {
			d.log.Warn("repeat of a firing incident failed; will retry", "incident", inc.ID, "retry_in", delay, "err", err)
		}
		if serr := d.save(ctx, inc); serr != nil {
			d.log.Warn("cannot write sink state", "err", serr)
		}
		return
	}
	delete(d.held, inc.ID)
	var given []string // members given up on, dropped once every message is judged
	for _, h := range hs {
		attempt := 1
		if meta, merr := h.msg.Metadata(); merr == nil {
			attempt = int(meta.NumDelivered)
		}
		if !retry || attempt >= d.o.MaxDeliver {
			d.log.Error("sink gave up on an alert; dead-lettering it", "alert", h.key, "attempts", attempt, "refused", !retry, "err", err)
			// Another message of the same alert may be held (pending, then
			// confirmed): it dead-letters the same alert, a duplicate the
			// streams drop.
			d.deadLetter(ctx, h.msg, inc.memberAlert(h.key), err)
			given = append(given, h.key)
			continue
		}
		delay := max(d.o.Backoff[min(attempt-1, len(d.o.Backoff)-1)], RetryAfter(err))
		d.log.Warn("sink failed; will redeliver", "alert", h.key, "attempt", attempt, "retry_in", delay, "err", err)
		_ = h.msg.NakWithDelay(delay)
	}
	for _, k := range given {
		d.drop(inc, k)
	}
	if len(inc.Members) == 0 {
		delete(d.incidents, inc.ID)
		if serr := d.o.Store.HDel(ctx, d.stateKey(), inc.ID); serr != nil {
			d.log.Warn("cannot write sink state", "err", serr)
		} else if serr := d.bump(ctx); serr != nil {
			d.log.Warn("cannot write sink state", "err", serr)
		}
	} else if serr := d.save(ctx, inc); serr != nil {
		d.log.Warn("cannot write sink state", "err", serr)
	}
}

func anyFiring(as []*alertmodel.Alert) bool {
	for _, a := range as {
		if a.Status == alertmodel.Firing {
			return true
		}
	}
	return false
}

func (inc *Incident) memberAlert(key string) alertmodel.Alert {
	if m, ok := inc.Members[key]; ok {
		return m.Alert
	}
	return alertmodel.Alert{ID: key}
}

// drop removes a member that was dead-lettered and never delivered.
func (d *dispatcher) drop(inc *Incident, key string) {
	m, ok := inc.Members[key]
	if !ok || m.Sent != "" {
		return
	}
	delete(inc.Members, key)
	delete(d.byAlert, key)
	for i, k := range inc.Order {
		if k == key {
			inc.Order = append(inc.Order[:i:i], inc.Order[i+1:]...)
			break
		}
	}
}

func (d *dispatcher) deadLetter(ctx context.Context, m jetstream.Msg, a alertmodel.Alert, cause error) {
	attempts := 1
	if meta, err := m.Metadata(); err == nil {
		attempts = int(meta.NumDelivered)
	}
	d.o.Metrics.alert(d.o.Name, "dead_lettered", 1)
	if d.o.DeadLetter != nil {
		dl := DeadLetter{Sink: d.o.Name, Alert: a, Error: cause.Error(), Deliveries: attempts, At: d.o.Now().UTC()}
		if err := d.o.DeadLetter(ctx, dl); err != nil {
			// Not recorded: let JetStream deliver it again rather than lose it.
			d.log.Error("cannot dead-letter the alert; leaving it for redelivery", "alert", a.ID, "err", err)
			_ = m.NakWithDelay(d.o.Backoff[len(d.o.Backoff)-1])
			return
		}
	}
	_ = m.Term()
}

// release hands held messages back on shutdown so that the next run (or
// another instance) takes them at once.
func (d *dispatcher) release() {
	for id, hs := range d.held {
		for _, h := range hs {
			_ = h.msg.Nak()
		}
		delete(d.held, id)
	}
}
