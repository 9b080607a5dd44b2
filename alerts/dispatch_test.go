package alerts_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keywatch/keywatch/alertmodel"
	"github.com/keywatch/keywatch/alerts"
	"github.com/keywatch/keywatch/internal/alerttest"
	"github.com/keywatch/keywatch/chains"
)

// notes records notifications as "<incident> <status> [repeat]: <alert>=<status>, …".
type notes struct {
	mu  sync.Mutex
	got []string
}

func (n *notes) Notify(ctx context.Context, as ...*alertmodel.Alert) (bool, error) {
	note := alerts.NotificationFrom(ctx, as)
	var parts []string
	for _, a := range as {
		parts = append(parts, short(a.ID)+"="+string(a.Status))
	}
	line := short(note.Incident) + " " + string(note.Status)
	if note.Repeat {
		line += " repeat"
	}
	n.mu.Lock()
	n.got = append(n.got, line+": "+strings.Join(parts, ", "))
	n.mu.Unlock()
	return false, nil
}

func (n *notes) all() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]string(nil), n.got...)
}

func (n *notes) count() int { return len(n.all()) }

// short turns eth:0x01:3:mixer-counterparty into 0x01.
func short(id string) string {
	if p := strings.Split(id, ":"); len(p) > 2 {
		return p[1]
	}
	return id
}

func on(wallet string, a alertmodel.Alert) alertmodel.Alert {
	a.Wallet, a.Event.Wallet = wallet, wallet
	return a
}

func check(t *testing.T, n *notes, want ...string) {
	t.Helper()
	if got := n.all(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("notifications:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

func TestGroupingPerPolicyAndWalletInsideTheWindow(t *testing.T) {
	h := alerttest.New(t)
	n := &notes{}
	tk := alerttest.NewTicker()
	o := h.SinkOptions("chat")
	o.GroupWindow, o.Ticks = time.Minute, tk.C
	h.RunSink(n, o)

	// The first alert of an incident goes out at once.
	h.Publish(alerttest.Alert("0x01", chains.StatusPending))
	alerttest.WaitFor(t, func() bool { return n.count() == 1 }, "the first page")

	// Two more on the same wallet inside the window wait for its end; one on
	// another wallet is its own incident and goes out at once.
	h.Clock.Advance(10 * time.Second)
	h.Publish(alerttest.Alert("0x02", chains.StatusPending), alerttest.Alert("0x03", chains.StatusPending),
		on("dev-deployer", alerttest.Alert("0x04", chains.StatusPending)))
	h.WaitHeld("chat", 4)
	alerttest.WaitFor(t, func() bool { return n.count() == 2 }, "the other wallet's page")
	h.Clock.Advance(49 * time.Second)
	tk.Check(t)
	check(t, n,
		"0x01 firing: 0x01=firing",
		"0x04 firing: 0x04=firing")

	// At the window's end: one update with the whole incident.
	h.Clock.Advance(time.Second)
	tk.Check(t)
	// After the window a new alert of the same group is a new incident.
	h.Clock.Advance(time.Minute)
	h.Publish(alerttest.Alert("0x05", chains.StatusPending))
	alerttest.WaitFor(t, func() bool { return n.count() == 4 }, "the new incident")
	check(t, n,
		"0x01 firing: 0x01=firing",
		"0x04 firing: 0x04=firing",
		"0x01 firing: 0x01=firing, 0x02=firing, 0x03=firing",
		"0x05 firing: 0x05=firing")
}

func TestGroupWaitSendsTheFirstNotificationLater(t *testing.T) {
	h := alerttest.New(t)
	n := &notes{}
	tk := alerttest.NewTicker()
	o := h.SinkOptions("chat")
	o.GroupWait, o.GroupWindow, o.Ticks = 30*time.Second, 30*time.Second, tk.C
	h.RunSink(n, o)
	h.Publish(alerttest.Alert("0x01", chains.StatusPending), alerttest.Alert("0x02", chains.StatusPending))
	h.WaitHeld("chat", 2)
	h.Clock.Advance(29 * time.Second)
	tk.Check(t)
	check(t, n)
	h.Clock.Advance(time.Second)
	tk.Check(t)
	check(t, n, "0x01 firing: 0x01=firing, 0x02=firing")
}

func TestIncidentResolvesWhenEveryAlertHas(t *testing.T) {
	h := alerttest.New(t)
	n := &notes{}
	tk := alerttest.NewTicker()
	o := h.SinkOptions("chat")
	o.GroupWait, o.GroupWindow, o.Ticks = 10*time.Second, 10*time.Second, tk.C
	h.RunSink(n, o)
	h.Publish(alerttest.Alert("0x01", chains.StatusPending), alerttest.Alert("0x02", chains.StatusPending))
	h.WaitHeld("chat", 2)
	h.Clock.Advance(10 * time.Second)
	tk.Check(t)
	// Confirmation changes nothing; one retraction alone says nothing.
	h.Publish(alerttest.Alert("0x01", chains.StatusConfirmed), alerttest.Alert("0x02", chains.StatusConfirmed),
		alerttest.Alert("0x01", chains.StatusRetracted))
	alerttest.WaitFor(t, func() bool {
		incs, _ := alerts.Incidents(h.Ctx, h.Store, "chat")
		return len(incs) == 1 && incs[0].Members["eth:0x01:3:mixer-counterparty"].Alert.Status == alertmodel.Resolved
	}, "the first retraction to be recorded")
	check(t, n, "0x01 firing: 0x01=firing, 0x02=firing")
	h.Publish(alerttest.Alert("0x02", chains.StatusRetracted))
	alerttest.WaitFor(t, func() bool { return n.count() == 2 }, "the resolution")
	check(t, n,
		"0x01 firing: 0x01=firing, 0x02=firing",
		"0x01 resolved: 0x01=resolved, 0x02=resolved")
	if incs, _ := alerts.Incidents(h.Ctx, h.Store, "chat"); len(incs) != 0 {
		t.Fatalf("a resolved incident is kept: %+v", incs)
	}
}

func TestRepeatIntervalForFiringIncidents(t *testing.T) {
	h := alerttest.New(t)
	n := &notes{}
	tk := alerttest.NewTicker()
	o := h.SinkOptions("pager")
	o.RepeatInterval, o.Ticks = time.Hour, tk.C
	h.RunSink(n, o)
	h.Publish(alerttest.Alert("0x01", chains.StatusPending))
	alerttest.WaitFor(t, func() bool { return n.count() == 1 }, "the page")
	h.Clock.Advance(59 * time.Minute)
	tk.Check(t)
	check(t, n, "0x01 firing: 0x01=firing")
	h.Clock.Advance(time.Minute)
	tk.Check(t)
	h.Clock.Advance(time.Hour)
	tk.Check(t)
	h.Publish(alerttest.Alert("0x01", chains.StatusRetracted))
	alerttest.WaitFor(t, func() bool { return n.count() == 4 }, "the resolution")
	h.Clock.Advance(2 * time.Hour)
	tk.Check(t) // nothing repeats once resolved
	check(t, n,
		"0x01 firing: 0x01=firing",
		"0x01 firing repeat: 0x01=firing",
		"0x01 firing repeat: 0x01=firing",
		"0x01 resolved: 0x01=resolved")
}

type silenceFunc func(a *alertmodel.Alert) string

func (f silenceFunc) Silencing(_ context.Context, a *alertmodel.Alert) (string, error) {
	return f(a), nil
}

func TestRoutingAndSilencing(t *testing.T) {
	h := alerttest.New(t)
	pager, chat := &notes{}, &notes{}
	po := h.SinkOptions("pager")
	po.Route = alertmodel.Route{MinSeverity: alertmodel.High, Paging: true}
	h.RunSink(pager, po)
	co := h.SinkOptions("chat")
	co.Route = alertmodel.Route{Wallets: []string{"treasury-hot"}}
	co.Silencer = silenceFunc(func(a *alertmodel.Alert) string {
		if a.Event.Tx == "0x03" {
			return "silence-1"
		}
		return ""
	})
	h.RunSink(chat, co)

	medium := alerttest.Alert("0x01", chains.StatusPending)
	medium.Severity = alertmodel.Medium
	noPage := alerttest.Alert("0x02", chains.StatusPending)
	noPage.Actions = []alertmodel.Action{alertmodel.ActionAlert}
	noPage.Policy, noPage.ID = "big-outflow", "eth:0x02:3:big-outflow"
	other := on("dev-deployer", alerttest.Alert("0x04", chains.StatusPending))
	stale := alertmodel.System(alertmodel.KindChainStale, "keywatch-1/eth", alertmodel.Critical, "eth", []string{"head stuck"}, h.Clock.Now())
	h.Publish(medium, noPage, alerttest.Alert("0x03", chains.StatusPending), other, stale)
	alerttest.WaitFor(t, func() bool { return pager.count() == 3 && chat.count() == 3 }, "every routed alert")
	check(t, pager,
		"0x03 firing: 0x03=firing",
		"0x04 firing: 0x04=firing",
		"chain-stale firing: chain-stale=firing",
	)
	check(t, chat,
		"0x01 firing: 0x01=firing",
		"0x02 firing: 0x02=firing",
		"chain-stale firing: chain-stale=firing", // keywatch's own alerts ignore the wallet matcher
	)
}

func TestRouteMatch(t *testing.T) {
	hot := alerttest.Alert("0x01", chains.StatusPending)
	sys := alertmodel.System(alertmodel.KindHeartbeatLost, "keywatch-2", alertmodel.Critical, "", []string{"silent"}, time.Now())
	cases := []struct {
		name  string
		route alertmodel.Route
		a     alertmodel.Alert
		want  bool
	}{
		{"empty route takes all", alertmodel.Route{}, hot, true},
		{"min severity met", alertmodel.Route{MinSeverity: alertmodel.Critical}, hot, true},
		{"min severity missed", alertmodel.Route{MinSeverity: alertmodel.Critical}, func() alertmodel.Alert { a := hot; a.Severity = alertmodel.High; return a }(), false},
		{"paging takes page", alertmodel.Route{Paging: true}, hot, true},
		{"paging skips alert-only", alertmodel.Route{Paging: true}, func() alertmodel.Alert { a := hot; a.Actions = []alertmodel.Action{alertmodel.ActionAlert}; return a }(), false},
		{"chain", alertmodel.Route{Chains: []string{"btc"}}, hot, false},
		{"wallet", alertmodel.Route{Wallets: []string{"treasury-hot", "decoy"}}, hot, true},
		{"role", alertmodel.Route{Roles: []string{"employee-key"}}, hot, false},
		{"policy", alertmodel.Route{Policies: []string{"mixer-counterparty"}}, hot, true},
		{"all lists must match", alertmodel.Route{Wallets: []string{"treasury-hot"}, Roles: []string{"cold"}}, hot, false},
		{"system alert passes chain, wallet and role", alertmodel.Route{Chains: []string{"eth"}, Wallets: []string{"decoy"}, Roles: []string{"cold"}}, sys, true},
		{"system alert obeys policy", alertmodel.Route{Policies: []string{"mixer-counterparty"}}, sys, false},
		{"system alert obeys severity", alertmodel.Route{MinSeverity: alertmodel.Critical, Paging: true}, sys, true},
	}
	for _, c := range cases {
		if got := c.route.Match(&c.a); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

func TestOneInstanceDeliversASinkAndAnotherTakesOver(t *testing.T) {
	h := alerttest.New(t)
	first, second := &notes{}, &notes{}
	stopFirst := h.RunSink(first, h.SinkOptions("pager"))
	h.Publish(alerttest.Alert("0x01", chains.StatusPending))
	alerttest.WaitFor(t, func() bool { return first.count() == 1 }, "the first instance to deliver")
	so := h.SinkOptions("pager") // a second instance with the same sink
	tk := alerttest.NewTicker()
	so.Ticks = tk.C
	h.RunSink(second, so)
	tk.Check(t) // it has started, and read the state as it is now
	h.Publish(on("dev-deployer", alerttest.Alert("0x02", chains.StatusPending)), on("decoy", alerttest.Alert("0x03", chains.StatusPending)))
	alerttest.WaitFor(t, func() bool { return first.count()+second.count() == 3 }, "both alerts")
	if second.count() != 0 {
		t.Fatalf("two instances delivered the same sink: %v and %v", first.all(), second.all())
	}
	stopFirst()
	// The second instance knows what the first sent: no page again for the
	// confirmations, and the resolution of an incident the first opened.
	h.Publish(on("vault-proxy", alerttest.Alert("0x04", chains.StatusPending)),
		on("dev-deployer", alerttest.Alert("0x02", chains.StatusConfirmed)), alerttest.Alert("0x01", chains.StatusConfirmed))
	alerttest.WaitFor(t, func() bool { return second.count() == 1 }, "the second instance to take over")
	h.Publish(on("dev-deployer", alerttest.Alert("0x02", chains.StatusRetracted)))
	alerttest.WaitFor(t, func() bool { return second.count() == 2 }, "the resolution")
	check(t, second, "0x04 firing: 0x04=firing", "0x02 resolved: 0x02=resolved")
}

// refuser refuses every notification, as an endpoint that answers 400.
type refuser struct{}

func (refuser) Notify(context.Context, ...*alertmodel.Alert) (bool, error) {
	return false, errors.New("endpoint answered 400 Bad Request")
}

// An alert pending and then confirmed while its incident waits is two
// messages of one alert: a refusal dead-letters that alert, whole, once.
func TestARefusedAlertHeldTwiceIsDeadLetteredOnce(t *testing.T) {
	h := alerttest.New(t)
	tk := alerttest.NewTicker()
	o := h.SinkOptions("chat")
	o.GroupWait, o.Ticks = 30*time.Second, tk.C
	h.RunSink(refuser{}, o)
	a := alerttest.Alert("0x01", chains.StatusPending)
	h.Publish(a, alerttest.Alert("0x01", chains.StatusConfirmed))
	alerttest.WaitFor(t, func() bool {
		incs, _ := alerts.Incidents(h.Ctx, h.Store, "chat")
		return len(incs) == 1 && incs[0].Members[a.ID].Alert.Event.Status == chains.StatusConfirmed
	}, "both messages to be held")
	h.Clock.Advance(30 * time.Second)
	tk.Check(t)
	alerttest.WaitFor(t, func() bool { return len(h.DeadLetters()) > 0 }, "the dead letter")
	tk.Check(t) // every held message has been judged
	for _, dl := range h.DeadLetters() {
		if dl.Alert.ID != a.ID || dl.Alert.Policy != a.Policy || dl.Alert.Severity != a.Severity || dl.Alert.Event.Status != chains.StatusConfirmed {
			t.Errorf("dead letter of %+v, want the confirmed alert %s", dl.Alert, a.ID)
		}
	}
	q, err := h.Outbox.Pending(h.Ctx)
	if err != nil {
		t.Fatal(err)
	}
	var raised []string
	for _, e := range q {
		raised = append(raised, e.Alert.Reasons[0])
	}
	if len(raised) != 1 || !strings.Contains(raised[0], "alert "+a.ID+" (mixer-counterparty, critical on treasury-hot)") {
		t.Fatalf("alert-dead-lettered alerts raised: %q, want one about %s", raised, a.ID)
	}
}

// A message on the alert stream that is not an alert is dead-lettered with
// the reason, not delivered.
func TestMessagesThatAreNotAlertsAreDeadLettered(t *testing.T) {
	h := alerttest.New(t)
	n := &notes{}
	h.RunSink(n, h.SinkOptions("chat"))
	for _, body := range []string{`{"policy": "no id"}`, `not json`} {
		if _, err := h.JS.Publish(h.Ctx, alerttest.Prefix+".alert.critical.eth", []byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	alerttest.WaitFor(t, func() bool { return len(h.DeadLetters()) == 2 }, "two dead letters")
	var got []string
	for _, dl := range h.DeadLetters() {
		got = append(got, dl.Error)
	}
	want := []string{"not a valid alert: it has no id", "not a valid alert: invalid character 'o' in literal null (expecting 'u')"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("dead letters say %q, want %q", got, want)
	}
	if q, err := h.Outbox.Pending(h.Ctx); err != nil || len(q) != 2 {
		t.Fatalf("%d alert-dead-lettered alerts queued (%v), want one for each message", len(q), err)
	}
	check(t, n)
}

// slow is a notifier whose calls wait until released, as a service that
// takes its time to answer and acts on the request whatever the caller does
// meanwhile.
type slow struct {
	notes
	started chan struct{}
	release chan struct{}
}

func (s *slow) Notify(ctx context.Context, as ...*alertmodel.Alert) (bool, error) {
	s.started <- struct{}{}
	<-s.release
	return s.notes.Notify(ctx, as...)
}

// TestAStopDuringANotificationFinishesIt: keywatch is stopped while a sink's
// request is under way, and the service acts on it. Its outcome is recorded
// all the same, so when the alert is confirmed while keywatch is down, the
// next run does not page the incident a second time.
func TestAStopDuringANotificationFinishesIt(t *testing.T) {
	h := alerttest.New(t)
	n := &slow{started: make(chan struct{}, 4), release: make(chan struct{})}
	ctx, cancel := context.WithCancel(h.Ctx)
	done := make(chan error, 1)
	go func() { done <- alerts.RunSink(ctx, h.JS, n, h.SinkOptions("pager")) }()
	h.Publish(alerttest.Alert("0x01", chains.StatusPending))
	<-n.started
	cancel() // keywatch stops while the request is under way
	close(n.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	check(t, &n.notes, "0x01 firing: 0x01=firing")

	h.Publish(alerttest.Alert("0x01", chains.StatusConfirmed))
	h.RunSink(n, h.SinkOptions("pager"))
	h.Publish(on("dev-deployer", alerttest.Alert("0x02", chains.StatusPending)))
	alerttest.WaitFor(t, func() bool { return n.count() >= 2 }, "the next alert")
	check(t, &n.notes, "0x01 firing: 0x01=firing", "0x02 firing: 0x02=firing")
}
