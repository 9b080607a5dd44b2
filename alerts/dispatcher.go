package alerts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/keywatch/keywatch/alertmodel"
)

// held is a message waiting for its incident's notification.
type held struct {
	msg   jetstream.Msg
	key   string
	since time.Time // real time, for keeping the message alive
}

// dispatcher turns a sink's messages into incidents and decides when each
// incident's notification is due; the stages of its pipeline send it and
// record what came of it.
type dispatcher struct {
	o   SinkOptions
	log *slog.Logger

	state *incidentState
	held  map[string][]held // incident id -> unacknowledged messages
	dead  deadLetterer
	// notify sends an incident: silence, group, notify with retry, record.
	notify pipeline
	// record alone settles an incident that has nothing to send.
	record recordStage
}

func newDispatcher(n Notifier, o SinkOptions, log *slog.Logger) *dispatcher {
	d := &dispatcher{o: o, log: log, state: newIncidentState(o.Store, o.Name, log), held: map[string][]held{}}
	d.dead = deadLetterer{sink: o.Name, fn: o.DeadLetter, retry: o.Backoff[len(o.Backoff)-1], now: o.Now, metrics: o.Metrics, log: log}
	d.record = recordStage{state: d.state, dead: d.dead, sink: o.Name, timeout: o.Timeout, retry: o.Backoff[0],
		now: o.Now, metrics: o.Metrics, log: log}
	d.notify = pipeline{
		silenceStage{silencer: o.Silencer, sink: o.Name, metrics: o.Metrics, log: log},
		groupStage{},
		notifyStage{n: n, sink: o.Name, timeout: o.Timeout, backoff: o.Backoff, maxDeliver: o.MaxDeliver, metrics: o.Metrics},
		d.record,
	}
	return d
}

// sync rereads the state when another instance (which held the consumer
// meanwhile) changed it.
func (d *dispatcher) sync(ctx context.Context) {
	v, err := d.state.stored(ctx)
	if err != nil {
		d.log.Warn("cannot read sink state version", "err", err)
		return
	}
	if v == d.state.version {
		return
	}
	if err := d.reload(ctx); err != nil {
		d.log.Warn("cannot reread sink state", "err", err)
		return
	}
	d.state.version = v
}

func (d *dispatcher) reload(ctx context.Context) error {
	if err := d.state.load(ctx); err != nil {
		return err
	}
	// Messages held for incidents the store no longer has (another
	// instance settled them) are handed back, to be judged afresh.
	for id, hs := range d.held {
		if _, ok := d.state.byID[id]; !ok && len(hs) > 0 {
			for _, h := range hs {
				_ = h.msg.Nak()
			}
			delete(d.held, id)
		}
	}
	return nil
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
		d.dead.letter(ctx, m, alertmodel.Alert{ID: id, Policy: "unreadable", Reasons: []string{string(m.Data())}}, fmt.Errorf("not a valid alert: %w", err))
		return
	}
	if !d.o.Route.Match(&a) {
		d.o.Metrics.alert(d.o.Name, "filtered", 1)
		_ = m.Ack()
		return
	}
	key := a.Key()
	id, known := d.state.byAlert[key]
	if !known {
		if done, err := d.state.done(ctx, key); err != nil {
			d.log.Warn("cannot read sink state; will retry the alert", "alert", key, "err", err)
			_ = m.NakWithDelay(d.o.Backoff[0])
			return
		} else if done {
			d.o.Metrics.alert(d.o.Name, "unchanged", 1)
			_ = m.Ack() // its incident was settled before (a late redelivery)
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
	inc, ok := d.state.byID[id]
	if !ok { // an index out of step with the state: start afresh
		delete(d.state.byAlert, key)
		id = d.join(&a)
		inc = d.state.byID[id]
	}
	mem, found := inc.Members[key]
	if !found {
		mem = &Member{}
		inc.Members[key] = mem
		inc.Order = append(inc.Order, key)
		d.state.byAlert[key] = id
	}
	if mem.Sent == a.Status {
		// Already delivered in this status (the confirmation of an alert
		// sent when pending, or a redelivery after a restart): keep the
		// newest facts, send nothing.
		mem.Alert = a
		if err := d.state.save(ctx, inc); err != nil {
			d.log.Warn("cannot write sink state", "err", err)
		}
		d.o.Metrics.alert(d.o.Name, "unchanged", 1)
		_ = m.Ack()
		return
	}
	mem.Alert = a
	mem.Silenced = "" // judged again by the silences in force when it goes out
	if err := d.state.save(ctx, inc); err != nil {
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
	if id, ok := d.state.newest[group]; ok {
		if inc, ok := d.state.byID[id]; ok && now.Before(inc.Opened.Add(span)) && !inc.allResolved() {
			return id
		}
	}
	id := a.Key()
	if old, taken := d.state.byID[id]; taken {
		// The alert's own incident is still settling: continue it.
		return old.ID
	}
	d.state.byID[id] = &Incident{ID: id, Group: group, Opened: now, Members: map[string]*Member{}}
	d.state.newest[group] = id
	return id
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
	for _, inc := range d.state.byID {
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
		d.settle(ctx, inc)
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
		d.settle(ctx, inc)
	case fromTick && d.o.RepeatInterval > 0 && inc.Notified && !resolved && sentFiring &&
		!now.Before(inc.LastSent.Add(d.o.RepeatInterval)) && !now.Before(inc.RetryAt):
		d.repeat(ctx, inc)
	}
}

// repeat sends a still-firing incident again; one instance does it.
func (d *dispatcher) repeat(ctx context.Context, inc *Incident) {
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

// flush sends the incident through the pipeline: every alert not muted,
// with the incident's status; every message held for it is answered.
func (d *dispatcher) flush(ctx context.Context, inc *Incident, repeat bool) {
	d.notify.Exec(ctx, d.take(inc, repeat))
}

// settle records the incident's state and acknowledges its held messages,
// sending nothing.
func (d *dispatcher) settle(ctx context.Context, inc *Incident) {
	d.record.Exec(ctx, d.take(inc, false))
}

// take starts the delivery of the incident with the messages held for it,
// which the delivery's record stage answers.
func (d *dispatcher) take(inc *Incident, repeat bool) *delivery {
	hs := d.held[inc.ID]
	delete(d.held, inc.ID)
	return &delivery{inc: inc, held: hs, repeat: repeat}
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
