package alerts

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/keywatch/keywatch/alertmodel"
	"github.com/keywatch/keywatch/store"
	"github.com/keywatch/keywatch/store/memory"
)

// The stages, each on its own: an incident and its held messages in, what
// the stage decided (or did to the store and the messages) out.

var stageNow = time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)

// msg is a held message that remembers how it was answered.
type msg struct {
	jetstream.Msg // nil: only the methods below are called
	delivered     uint64
	answer        string
}

func (m *msg) Metadata() (*jetstream.MsgMetadata, error) {
	return &jetstream.MsgMetadata{NumDelivered: m.delivered}, nil
}
func (m *msg) Ack() error { m.answer = "ack"; return nil }
func (m *msg) Nak() error { m.answer = "nak"; return nil }
func (m *msg) NakWithDelay(d time.Duration) error {
	m.answer = "redeliver after " + d.String()
	return nil
}
func (m *msg) Term() error { m.answer = "term"; return nil }

// member is alert tx of the incident, in status, last sent as sent.
func member(tx string, status, sent alertmodel.Status) *Member {
	return &Member{Sent: sent, Alert: alertmodel.Alert{ID: "eth:" + tx + ":3:mixer-counterparty", Policy: "mixer-counterparty",
		Severity: alertmodel.Critical, Status: status, Chain: "eth", Wallet: "treasury-hot"}}
}

// incidentOf is the incident of members, opened by the first.
func incidentOf(ms ...*Member) *Incident {
	inc := &Incident{ID: ms[0].Alert.Key(), Group: alertmodel.GroupKey(&ms[0].Alert), Opened: stageNow.Add(-time.Minute), Members: map[string]*Member{}}
	for _, m := range ms {
		inc.Members[m.Alert.Key()] = m
		inc.Order = append(inc.Order, m.Alert.Key())
	}
	return inc
}

// heldFor is a message of each member, delivered that many times.
func heldFor(inc *Incident, delivered ...uint64) ([]held, []*msg) {
	var hs []held
	var ms []*msg
	for i, k := range inc.Order {
		m := &msg{delivered: delivered[i]}
		hs = append(hs, held{msg: m, key: k})
		ms = append(ms, m)
	}
	return hs, ms
}

func answers(ms []*msg) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.answer)
	}
	return out
}

func count(t *testing.T, m *SinkMetrics, result string) float64 {
	t.Helper()
	var pb dto.Metric
	if err := m.alerts.WithLabelValues("chat", result).Write(&pb); err != nil {
		t.Fatal(err)
	}
	return pb.GetCounter().GetValue()
}

// silencer mutes the alerts of the transactions it names, and remembers
// what it was asked about.
type silencer struct {
	muted  map[string]string // tx -> silence id
	broken bool
	asked  []string
}

func (s *silencer) Silencing(_ context.Context, a *alertmodel.Alert) (string, error) {
	tx := strings.Split(a.ID, ":")[1]
	s.asked = append(s.asked, tx)
	if s.broken {
		return "", errors.New("redis: connection refused")
	}
	return s.muted[tx], nil
}

func TestSilenceStageMarksOnlyFiringAlertsNeverSentFiring(t *testing.T) {
	inc := incidentOf(
		member("0x01", alertmodel.Firing, ""),                // muted
		member("0x02", alertmodel.Firing, ""),                // no silence matches
		member("0x03", alertmodel.Firing, alertmodel.Firing), // sent before: its resolution must follow
		member("0x04", alertmodel.Resolved, ""),              // nothing to mute
		member("0x05", alertmodel.Firing, ""),                // judged already
	)
	inc.Members[inc.Order[4]].Silenced = "sil-old"
	sil := &silencer{muted: map[string]string{"0x01": "sil-1", "0x03": "sil-1", "0x04": "sil-1", "0x05": "sil-1"}}
	metrics := NewSinkMetrics(prometheus.NewRegistry())
	silenceStage{silencer: sil, sink: "chat", metrics: metrics, log: slog.New(slog.DiscardHandler)}.Exec(t.Context(), &delivery{inc: inc})

	if want := []string{"0x01", "0x02"}; !slices.Equal(sil.asked, want) {
		t.Errorf("silences asked about %v, want %v", sil.asked, want)
	}
	var marks []string
	for _, k := range inc.Order {
		marks = append(marks, inc.Members[k].Silenced)
	}
	if want := []string{"sil-1", "", "", "", "sil-old"}; !slices.Equal(marks, want) {
		t.Errorf("silence marks %q, want %q", marks, want)
	}
	if n := count(t, metrics, "silenced"); n != 1 {
		t.Errorf("%v alerts counted silenced, want 1", n)
	}
}

// When the silences cannot be read, the alert goes out: better a page too
// many than a theft unheard of.
func TestSilenceStageSendsWhenTheSilencesCannotBeRead(t *testing.T) {
	inc := incidentOf(member("0x01", alertmodel.Firing, ""))
	sil := &silencer{muted: map[string]string{"0x01": "sil-1"}, broken: true}
	d := &delivery{inc: inc}
	silenceStage{silencer: sil, sink: "chat", log: slog.New(slog.DiscardHandler)}.Exec(t.Context(), d)
	groupStage{}.Exec(t.Context(), d)
	if len(sil.asked) != 1 || inc.Members[inc.Order[0]].Silenced != "" || d.outcome != ready || len(d.send) != 1 {
		t.Fatalf("asked %v, mark %q, outcome %v with %d alerts; want the alert asked about once, unmarked and sent",
			sil.asked, inc.Members[inc.Order[0]].Silenced, d.outcome, len(d.send))
	}
}

func TestGroupStageChoosesWhatTheNotificationSays(t *testing.T) {
	muted := func(m *Member) *Member { m.Silenced = "sil-1"; return m }
	cases := []struct {
		name    string
		members []*Member
		repeat  bool
		want    outcome
		status  alertmodel.Status
		send    []string
	}{
		{"a new alert", []*Member{member("0x01", alertmodel.Firing, "")}, false, ready, alertmodel.Firing, []string{"0x01"}},
		{"nothing new", []*Member{member("0x01", alertmodel.Firing, alertmodel.Firing)}, false, settled, alertmodel.Firing, []string{"0x01"}},
		{"nothing new, but a repeat", []*Member{member("0x01", alertmodel.Firing, alertmodel.Firing)}, true, ready, alertmodel.Firing, []string{"0x01"}},
		{"muted members stay out", []*Member{member("0x01", alertmodel.Firing, alertmodel.Firing), muted(member("0x02", alertmodel.Firing, ""))}, true, ready, alertmodel.Firing, []string{"0x01"}},
		{"every firing member muted", []*Member{muted(member("0x01", alertmodel.Firing, "")), member("0x02", alertmodel.Resolved, alertmodel.Firing)}, false, settled, alertmodel.Firing, []string{"0x02"}},
		{"a member sent firing is resolved with the rest, muted or not", []*Member{member("0x01", alertmodel.Resolved, alertmodel.Firing), muted(member("0x02", alertmodel.Resolved, alertmodel.Firing))}, false, ready, alertmodel.Resolved, []string{"0x01", "0x02"}},
	}
	for _, c := range cases {
		d := &delivery{inc: incidentOf(c.members...), repeat: c.repeat}
		groupStage{}.Exec(t.Context(), d)
		var send []string
		for _, a := range d.send {
			send = append(send, strings.Split(a.ID, ":")[1])
		}
		if d.outcome != c.want || d.status != c.status || !slices.Equal(send, c.send) {
			t.Errorf("%s: outcome %v, %s with %v; want %v, %s with %v", c.name, d.outcome, d.status, send, c.want, c.status, c.send)
		}
	}
}

// notifier answers every notification with err.
type notifier struct {
	retry bool
	err   error
	got   []Notification
}

func (n *notifier) Notify(ctx context.Context, as ...*alertmodel.Alert) (bool, error) {
	n.got = append(n.got, NotificationFrom(ctx, as))
	return n.retry, n.err
}

func TestNotifyStagePlansTheRetry(t *testing.T) {
	backoff := []time.Duration{time.Second, 5 * time.Second, 30 * time.Second}
	slowDown := &RetryAfterError{Err: errors.New("429 Too Many Requests"), After: 10 * time.Second}
	cases := []struct {
		name      string
		retry     bool
		err       error
		delivered []uint64
		want      []redelivery
	}{
		{"the backoff of each attempt", true, errors.New("503"), []uint64{1, 2, 7},
			[]redelivery{{attempt: 1, after: time.Second}, {attempt: 2, after: 5 * time.Second}, {attempt: 7, after: 30 * time.Second}}},
		{"the endpoint's Retry-After when longer", true, slowDown, []uint64{1, 4},
			[]redelivery{{attempt: 1, after: 10 * time.Second}, {attempt: 4, after: 30 * time.Second}}},
		{"out of attempts", true, errors.New("503"), []uint64{9, 10},
			[]redelivery{{attempt: 9, after: 30 * time.Second}, {attempt: 10, giveUp: true}}},
		{"refused", false, errors.New("400"), []uint64{1},
			[]redelivery{{attempt: 1, giveUp: true}}},
	}
	for _, c := range cases {
		var ms []*Member
		for i := range c.delivered {
			ms = append(ms, member(fmt.Sprintf("0x%02d", i+1), alertmodel.Firing, ""))
		}
		inc := incidentOf(ms...)
		hs, _ := heldFor(inc, c.delivered...)
		n := &notifier{retry: c.retry, err: c.err}
		d := &delivery{inc: inc, held: hs, outcome: ready, status: alertmodel.Firing}
		notifyStage{n: n, sink: "chat", timeout: time.Second, backoff: backoff, maxDeliver: 10}.Exec(t.Context(), d)
		if d.outcome != failed || !errors.Is(d.err, c.err) || d.retry != c.retry || !slices.Equal(d.redeliver, c.want) {
			t.Errorf("%s: outcome %v (%v, retry %v), plan %+v; want failed (%v, retry %v), plan %+v", c.name, d.outcome, d.err, d.retry, d.redeliver, c.err, c.retry, c.want)
		}
		if want := (Notification{Sink: "chat", GroupKey: inc.Group, Incident: inc.ID, Status: alertmodel.Firing}); len(n.got) != 1 || n.got[0] != want {
			t.Errorf("%s: notified %+v, want %+v", c.name, n.got, want)
		}
	}

	// A repeat no message waits on counts its failures instead.
	inc := incidentOf(member("0x01", alertmodel.Firing, alertmodel.Firing))
	inc.RepeatFailures = 1
	d := &delivery{inc: inc, repeat: true, outcome: ready, status: alertmodel.Firing}
	notifyStage{n: &notifier{retry: true, err: slowDown}, sink: "chat", timeout: time.Second, backoff: backoff, maxDeliver: 10}.Exec(t.Context(), d)
	if want := (repeatRetry{failures: 2, backoff: 5 * time.Second, after: 10 * time.Second}); d.retryRepeat != want || d.redeliver != nil {
		t.Errorf("repeat plan %+v (redeliveries %v), want %+v", d.retryRepeat, d.redeliver, want)
	}

	// Nothing to send: the Notifier is not called.
	n := &notifier{}
	d = &delivery{inc: inc}
	notifyStage{n: n, sink: "chat", timeout: time.Second, backoff: backoff, maxDeliver: 10}.Exec(t.Context(), d)
	if len(n.got) != 0 || d.outcome != settled {
		t.Errorf("a settled delivery notified %v and became %v", n.got, d.outcome)
	}
}

// brokenStore fails every write to a hash.
type brokenStore struct{ store.Store }

func (brokenStore) HSet(context.Context, string, string, []byte) error {
	return errors.New("redis: connection refused")
}

// recorder is a record stage over a memory store, and what it dead-letters.
type recorder struct {
	stage   recordStage
	state   *incidentState
	metrics *SinkMetrics
	dead    []DeadLetter
}

func newRecorder(t *testing.T, st store.Store) *recorder {
	t.Helper()
	r := &recorder{metrics: NewSinkMetrics(prometheus.NewRegistry())}
	log := slog.New(slog.DiscardHandler)
	now := func() time.Time { return stageNow }
	r.state = newIncidentState(st, "chat", log)
	dead := deadLetterer{sink: "chat", retry: time.Minute, now: now, metrics: r.metrics, log: log,
		fn: func(_ context.Context, dl DeadLetter) error { r.dead = append(r.dead, dl); return nil }}
	r.stage = recordStage{state: r.state, dead: dead, sink: "chat", timeout: time.Second, retry: time.Second, now: now, metrics: r.metrics, log: log}
	return r
}

// track puts inc in the state, as the dispatcher does when it opens it.
func (r *recorder) track(inc *Incident) {
	r.state.byID[inc.ID] = inc
	for k := range inc.Members {
		r.state.byAlert[k] = inc.ID
	}
}

func (r *recorder) stored(t *testing.T) []Incident {
	t.Helper()
	incs, err := Incidents(t.Context(), r.state.st, "chat")
	if err != nil {
		t.Fatal(err)
	}
	return incs
}

func TestRecordStageAfterASentNotification(t *testing.T) {
	r := newRecorder(t, memory.New())
	inc := incidentOf(member("0x01", alertmodel.Firing, ""), member("0x02", alertmodel.Firing, ""))
	inc.Members[inc.Order[1]].Silenced = "sil-1"
	inc.RepeatFailures, inc.RetryAt = 2, stageNow
	r.track(inc)
	hs, ms := heldFor(inc, 1, 1)
	r.stage.Exec(t.Context(), &delivery{inc: inc, held: hs, outcome: sent, status: alertmodel.Firing})

	if got := answers(ms); !slices.Equal(got, []string{"ack", "ack"}) {
		t.Errorf("messages answered %v, want both acknowledged", got)
	}
	incs := r.stored(t)
	if len(incs) != 1 {
		t.Fatalf("%d incidents stored, want the one sent", len(incs))
	}
	got := incs[0]
	if !got.Notified || !got.LastSent.Equal(stageNow) || got.RepeatFailures != 0 || !got.RetryAt.IsZero() {
		t.Errorf("stored incident notified %v at %s, repeat failures %d, retry at %s; want notified now, no failures", got.Notified, got.LastSent, got.RepeatFailures, got.RetryAt)
	}
	if s0, s1 := got.Members[inc.Order[0]].Sent, got.Members[inc.Order[1]].Sent; s0 != alertmodel.Firing || s1 != "" {
		t.Errorf("members sent as %q and %q; want the first firing, the muted one unsent", s0, s1)
	}
	if n := count(t, r.metrics, "delivered"); n != 2 {
		t.Errorf("%v messages counted delivered, want 2", n)
	}

	// Its resolution closes it: nothing stored, the alerts remembered as done.
	for _, k := range inc.Order {
		inc.Members[k].Alert.Status = alertmodel.Resolved
	}
	hs, ms = heldFor(inc, 1, 1)
	r.stage.Exec(t.Context(), &delivery{inc: inc, held: hs, outcome: sent, status: alertmodel.Resolved})
	if got := answers(ms); !slices.Equal(got, []string{"ack", "ack"}) {
		t.Errorf("messages of the resolution answered %v, want both acknowledged", got)
	}
	if incs := r.stored(t); len(incs) != 0 {
		t.Errorf("a resolved incident is kept: %+v", incs)
	}
	for _, k := range inc.Order {
		if done, err := r.state.done(t.Context(), k); err != nil || !done {
			t.Errorf("alert %s after the resolution: done %v (%v), want done", k, done, err)
		}
	}
}

func TestRecordStageAfterAFailedNotification(t *testing.T) {
	r := newRecorder(t, memory.New())
	inc := incidentOf(member("0x01", alertmodel.Firing, ""), member("0x02", alertmodel.Firing, ""), member("0x03", alertmodel.Firing, alertmodel.Firing))
	r.track(inc)
	keys := slices.Clone(inc.Order) // the failure drops one
	hs, ms := heldFor(inc, 2, 10, 10)
	cause := errors.New("endpoint answered 503")
	r.stage.Exec(t.Context(), &delivery{inc: inc, held: hs, outcome: failed, err: cause, retry: true, status: alertmodel.Firing,
		redeliver: []redelivery{{attempt: 2, after: 5 * time.Second}, {attempt: 10, giveUp: true}, {attempt: 10, giveUp: true}}})

	if got, want := answers(ms), []string{"redeliver after 5s", "term", "term"}; !slices.Equal(got, want) {
		t.Errorf("messages answered %v, want %v", got, want)
	}
	var dead []string
	for _, dl := range r.dead {
		dead = append(dead, fmt.Sprintf("%s %d %s", dl.Alert.ID, dl.Deliveries, dl.Error))
	}
	if want := []string{keys[1] + " 10 endpoint answered 503", keys[2] + " 10 endpoint answered 503"}; !slices.Equal(dead, want) {
		t.Errorf("dead letters %q, want %q", dead, want)
	}
	// The member never delivered leaves the incident; the one sent before
	// stays, so that its resolution still goes out.
	incs := r.stored(t)
	if len(incs) != 1 || !slices.Equal(incs[0].Order, []string{keys[0], keys[2]}) || len(incs[0].Members) != 2 {
		t.Fatalf("stored %+v, want the incident without %s", incs, keys[1])
	}
	if _, ok := r.state.byAlert[keys[1]]; ok {
		t.Errorf("the dead-lettered alert is still indexed")
	}

	// When every member was given up on, the incident goes.
	lone := incidentOf(member("0x09", alertmodel.Firing, ""))
	r.track(lone)
	if err := r.state.save(t.Context(), lone); err != nil {
		t.Fatal(err)
	}
	hs, ms = heldFor(lone, 1)
	r.stage.Exec(t.Context(), &delivery{inc: lone, held: hs, outcome: failed, err: errors.New("400"), status: alertmodel.Firing,
		redeliver: []redelivery{{attempt: 1, giveUp: true}}})
	if got := answers(ms); !slices.Equal(got, []string{"term"}) {
		t.Errorf("the refused message answered %v, want term", got)
	}
	for _, got := range r.stored(t) {
		if got.ID == lone.ID {
			t.Errorf("an incident with no member left is kept: %+v", got)
		}
	}
	if _, ok := r.state.byID[lone.ID]; ok {
		t.Errorf("an incident with no member left is still tracked")
	}
}

func TestRecordStageAfterAFailedRepeat(t *testing.T) {
	cases := []struct {
		name     string
		plan     repeatRetry
		failures int
		retryAt  time.Time
		lastSent time.Time
	}{
		{"retried after the wait", repeatRetry{failures: 2, backoff: 5 * time.Second, after: 10 * time.Second}, 2, stageNow.Add(10 * time.Second), stageNow.Add(-time.Hour)},
		{"given up: the next repeat interval", repeatRetry{failures: 10, giveUp: true, backoff: 30 * time.Second, after: 30 * time.Second}, 0, time.Time{}, stageNow},
	}
	for _, c := range cases {
		r := newRecorder(t, memory.New())
		inc := incidentOf(member("0x01", alertmodel.Firing, alertmodel.Firing))
		inc.Notified, inc.LastSent = true, stageNow.Add(-time.Hour)
		r.track(inc)
		r.stage.Exec(t.Context(), &delivery{inc: inc, repeat: true, outcome: failed, err: errors.New("503"), retry: true, status: alertmodel.Firing, retryRepeat: c.plan})
		incs := r.stored(t)
		if len(incs) != 1 {
			t.Fatalf("%s: %d incidents stored, want 1", c.name, len(incs))
		}
		got := incs[0]
		if got.RepeatFailures != c.failures || !got.RetryAt.Equal(c.retryAt) || !got.LastSent.Equal(c.lastSent) {
			t.Errorf("%s: stored %d failures, retry at %s, last sent %s; want %d, %s, %s", c.name, got.RepeatFailures, got.RetryAt, got.LastSent, c.failures, c.retryAt, c.lastSent)
		}
	}
}

func TestRecordStageSettlesWhatHasNothingToSend(t *testing.T) {
	r := newRecorder(t, memory.New())
	inc := incidentOf(member("0x01", alertmodel.Firing, alertmodel.Firing), member("0x02", alertmodel.Resolved, alertmodel.Firing))
	r.track(inc)
	hs, ms := heldFor(inc, 1, 1)
	r.stage.Exec(t.Context(), &delivery{inc: inc, held: hs})
	if got := answers(ms); !slices.Equal(got, []string{"ack", "ack"}) {
		t.Errorf("messages answered %v, want both acknowledged", got)
	}
	if incs := r.stored(t); len(incs) != 1 || incs[0].Members[inc.Order[1]].Alert.Status != alertmodel.Resolved {
		t.Errorf("stored %+v, want the incident with its resolved member", incs)
	}
	if n := count(t, r.metrics, "unchanged"); n != 2 {
		t.Errorf("%v messages counted unchanged, want 2", n)
	}

	// A state it cannot write: the messages come again after the first
	// backoff, rather than be acknowledged for a state nobody kept.
	r = newRecorder(t, brokenStore{memory.New()})
	r.track(inc)
	hs, ms = heldFor(inc, 1, 1)
	r.stage.Exec(t.Context(), &delivery{inc: inc, held: hs})
	if got := answers(ms); !slices.Equal(got, []string{"redeliver after 1s", "redeliver after 1s"}) {
		t.Errorf("messages answered %v when the state cannot be written, want both redelivered after 1s", got)
	}
}
