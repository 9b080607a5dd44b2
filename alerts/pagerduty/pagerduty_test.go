package pagerduty_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keywatch/keywatch/alertmodel"
	"github.com/keywatch/keywatch/alerts"
	"github.com/keywatch/keywatch/internal/alerttest"
	"github.com/keywatch/keywatch/alerts/pagerduty"
	"github.com/keywatch/keywatch/chains"
	"github.com/keywatch/keywatch/config"
)

const routingKey = "R0UT1NGKEY0123456789abcdefABCDEF" // 32 characters, as PagerDuty issues them

// fakePagerDuty plays the Events API v2: it checks each request the way
// PagerDuty documents it (400 for an invalid event) and answers with the
// statuses scripted, then 202.
type fakePagerDuty struct {
	*httptest.Server
	mu     sync.Mutex
	script []int
	events []map[string]any
	raw    [][]byte
	calls  int
}

func newFakePagerDuty(t *testing.T, script ...int) *fakePagerDuty {
	f := &fakePagerDuty{script: script}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.Close)
	return f
}

func (f *fakePagerDuty) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	w.Header().Set("Content-Type", "application/json")
	if len(f.script) > 0 {
		code := f.script[0]
		f.script = f.script[1:]
		if code == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "0")
		}
		w.WriteHeader(code)
		fmt.Fprintf(w, `{"status":"error","message":"scripted %d"}`, code)
		return
	}
	body, _ := io.ReadAll(r.Body)
	if problem := checkEvent(r, body); problem != "" {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `{"status":"invalid event","message":"Event object is invalid","errors":[%q]}`, problem)
		return
	}
	var ev map[string]any
	_ = json.Unmarshal(body, &ev)
	f.events = append(f.events, ev)
	f.raw = append(f.raw, body)
	w.WriteHeader(http.StatusAccepted)
	fmt.Fprintf(w, `{"status":"success","message":"Event processed","dedup_key":%q}`, ev["dedup_key"])
}

// checkEvent applies the rules of PagerDuty's Events API v2 reference.
func checkEvent(r *http.Request, body []byte) string {
	if r.Method != http.MethodPost || r.URL.Path != "/v2/enqueue" {
		return fmt.Sprintf("%s %s is not the enqueue endpoint", r.Method, r.URL.Path)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		return "Content-Type " + ct
	}
	var ev struct {
		RoutingKey  *string `json:"routing_key"`
		EventAction string  `json:"event_action"`
		DedupKey    string  `json:"dedup_key"`
		Payload     *struct {
			Summary, Source, Severity, Timestamp string
		} `json:"payload"`
		Links []struct{ Href, Text string } `json:"links"`
	}
	if err := json.Unmarshal(body, &ev); err != nil {
		return "body is not JSON: " + err.Error()
	}
	switch {
	case len(body) > 512<<10:
		return "event is larger than 512 KB"
	case ev.RoutingKey == nil || len(*ev.RoutingKey) != 32:
		return "Length of 'routing_key' is incorrect (should be 32 characters)"
	case ev.EventAction != "trigger" && ev.EventAction != "acknowledge" && ev.EventAction != "resolve":
		return "'event_action' is invalid"
	case len(ev.DedupKey) > 255:
		return "'dedup_key' is too long"
	case ev.EventAction == "resolve" && ev.DedupKey == "":
		return "'dedup_key' is required to resolve"
	}
	if ev.EventAction == "trigger" {
		p := ev.Payload
		switch {
		case p == nil:
			return "'payload' is missing"
		case p.Summary == "" || len([]rune(p.Summary)) > 1024:
			return "'payload.summary' is missing or too long"
		case p.Source == "":
			return "'payload.source' is missing"
		case p.Severity != "critical" && p.Severity != "error" && p.Severity != "warning" && p.Severity != "info":
			return "'payload.severity' is invalid"
		}
		if p.Timestamp != "" {
			if _, err := time.Parse(time.RFC3339Nano, p.Timestamp); err != nil {
				return "'payload.timestamp' is not ISO 8601"
			}
		}
	}
	for _, l := range ev.Links {
		if l.Href == "" {
			return "'links[].href' is required"
		}
	}
	return ""
}

func (f *fakePagerDuty) snapshot() (int, []map[string]any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls, append([]map[string]any(nil), f.events...)
}

func (f *fakePagerDuty) accepted() int { _, evs := f.snapshot(); return len(evs) }

func notifier(f *fakePagerDuty) *pagerduty.Notifier {
	return pagerduty.New(pagerduty.Config{
		URL:        f.URL + "/v2/enqueue",
		RoutingKey: config.NewSecret(routingKey),
		Timeout:    2 * time.Second,
		Explorers:  map[string]string{"eth": "https://etherscan.io/tx/{tx}"},
	})
}

func jsonOf(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestTriggerIsTheDocumentedEvent(t *testing.T) {
	h := alerttest.New(t)
	pd := newFakePagerDuty(t)
	h.RunSink(notifier(pd), h.SinkOptions("pager"))
	tx := "0x9f2c5e3c1bb8d2a1e0f2e7d8a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7"
	a := alerttest.Alert(tx, chains.StatusPending)
	h.Publish(a)
	alerttest.WaitFor(t, func() bool { return pd.accepted() == 1 }, "the trigger")
	_, evs := pd.snapshot()
	got := evs[0]

	want := map[string]any{
		"routing_key":  routingKey,
		"event_action": "trigger",
		"dedup_key":    "eth:" + tx + ":3:mixer-counterparty",
		"client":       "keywatch",
		"payload": map[string]any{
			"summary":        "critical mixer-counterparty on treasury-hot: counterparty 0x47ce…2936 is on list mixers (Tornado Cash 1 ETH pool)",
			"source":         "eth/treasury-hot",
			"severity":       "critical",
			"timestamp":      "2026-11-29T12:00:00Z",
			"component":      "treasury-hot",
			"group":          "eth",
			"class":          "mixer-counterparty",
			"custom_details": jsonOf(t, a),
		},
		"links": []any{map[string]any{
			"href": "https://etherscan.io/tx/" + tx,
			"text": "transaction 0x9f2c5e3c…a8b7 on eth",
		}},
	}
	if !reflect.DeepEqual(got, want) {
		gb, _ := json.MarshalIndent(got, "", "  ")
		wb, _ := json.MarshalIndent(want, "", "  ")
		t.Fatalf("event:\n%s\nwant:\n%s", gb, wb)
	}
	// What the on-call engineer reads in custom_details: the event and why.
	details := got["payload"].(map[string]any)["custom_details"].(map[string]any)
	if details["reasons"].([]any)[0] != a.Reasons[0] || details["event"].(map[string]any)["tx"] != tx ||
		details["event"].(map[string]any)["amount"] != "1" {
		t.Errorf("custom_details lack the event and reasons: %v", details)
	}
}

func TestSeverityMapping(t *testing.T) {
	cases := []struct {
		in   alertmodel.Severity
		want string
	}{
		{alertmodel.Critical, "critical"},
		{alertmodel.High, "error"},
		{alertmodel.Medium, "warning"},
		{alertmodel.Low, "info"},
		{alertmodel.Info, "info"},
	}
	pd := newFakePagerDuty(t)
	n := notifier(pd)
	for _, c := range cases {
		a := alerttest.Alert("0x01", chains.StatusConfirmed)
		a.Severity = c.in
		if retry, err := n.Notify(t.Context(), &a); err != nil {
			t.Fatalf("%s: %v (retry %v)", c.in, err, retry)
		}
	}
	_, evs := pd.snapshot()
	for i, c := range cases {
		if got := evs[i]["payload"].(map[string]any)["severity"]; got != c.want {
			t.Errorf("severity %s sent as %v, want %s", c.in, got, c.want)
		}
	}
}

func TestOnePagePerIncidentAndResolveAfterRetraction(t *testing.T) {
	h := alerttest.New(t)
	pd := newFakePagerDuty(t)
	h.RunSink(notifier(pd), h.SinkOptions("pager"))
	pending := alerttest.Alert("0xabc", chains.StatusPending)
	h.Publish(pending, alerttest.Alert("0xabc", chains.StatusConfirmed))
	// A later, unrelated alert shows the sink has handled the confirmation.
	other := alerttest.Alert("0xdef", chains.StatusPending)
	other.Wallet, other.Event.Wallet = "dev-deployer", "dev-deployer"
	h.Publish(other)
	alerttest.WaitFor(t, func() bool { return pd.accepted() == 2 }, "two triggers")
	h.Publish(alerttest.Alert("0xabc", chains.StatusRetracted))
	alerttest.WaitFor(t, func() bool { return pd.accepted() == 3 }, "the resolve")
	_, evs := pd.snapshot()
	var got []string
	for _, e := range evs {
		got = append(got, fmt.Sprint(e["event_action"], " ", e["dedup_key"]))
	}
	want := []string{
		"trigger eth:0xabc:3:mixer-counterparty",
		"trigger eth:0xdef:3:mixer-counterparty",
		"resolve eth:0xabc:3:mixer-counterparty",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if len(evs[2]) != 3 {
		t.Errorf("a resolve carries routing_key, dedup_key and event_action only: %v", evs[2])
	}
}

func TestRetriesOn5xxAnd429(t *testing.T) {
	h := alerttest.New(t)
	pd := newFakePagerDuty(t, 500, 503, 429)
	h.RunSink(notifier(pd), h.SinkOptions("pager"))
	h.Publish(alerttest.Alert("0xabc", chains.StatusPending))
	alerttest.WaitFor(t, func() bool { return pd.accepted() == 1 }, "the trigger after three failures")
	if calls, _ := pd.snapshot(); calls != 4 {
		t.Fatalf("%d requests, want 4 (500, 503, 429, then 202)", calls)
	}
	if dls := h.DeadLetters(); len(dls) != 0 {
		t.Fatalf("dead letters after a successful retry: %v", dls)
	}
}

func TestA400IsNotRetriedButDeadLettered(t *testing.T) {
	h := alerttest.New(t)
	pd := newFakePagerDuty(t)
	bad := pagerduty.New(pagerduty.Config{URL: pd.URL + "/v2/enqueue", RoutingKey: config.NewSecret("too-short"), Timeout: time.Second})
	h.RunSink(bad, h.SinkOptions("pager"))
	a := alerttest.Alert("0xabc", chains.StatusPending)
	h.Publish(a)
	alerttest.WaitFor(t, func() bool { return len(h.DeadLetters()) == 1 }, "the dead letter")
	dl := h.DeadLetters()[0]
	if dl.Sink != "pager" || dl.Alert.ID != a.ID || dl.Deliveries != 1 ||
		!strings.Contains(dl.Error, "400") || !strings.Contains(dl.Error, "routing_key") {
		t.Fatalf("dead letter %+v", dl)
	}
	if calls, _ := pd.snapshot(); calls != 1 {
		t.Fatalf("%d requests: a 400 must not be retried", calls)
	}
	// The loss is itself an alert, on its way to every sink.
	q, err := h.Outbox.Pending(h.Ctx)
	if err != nil || len(q) != 1 {
		t.Fatalf("outbox %v %v, want the dead-letter alert", q, err)
	}
	raised := q[0].Alert
	if raised.Policy != alertmodel.KindDeadLettered || raised.Severity != alertmodel.Critical || !raised.Has(alertmodel.ActionPage) ||
		!strings.Contains(raised.Reasons[0], "sink pager could not deliver alert "+a.ID) {
		t.Fatalf("dead-letter alert %+v", raised)
	}
}

func TestMaxDeliverBoundsRetries(t *testing.T) {
	h := alerttest.New(t)
	pd := newFakePagerDuty(t, 503, 503, 503, 503, 503)
	o := h.SinkOptions("pager")
	o.MaxDeliver = 3
	h.RunSink(notifier(pd), o)
	h.Publish(alerttest.Alert("0xabc", chains.StatusPending))
	alerttest.WaitFor(t, func() bool { return len(h.DeadLetters()) == 1 }, "the dead letter")
	if calls, _ := pd.snapshot(); calls != 3 {
		t.Fatalf("%d requests, want max_deliver = 3", calls)
	}
	if dl := h.DeadLetters()[0]; dl.Deliveries != 3 || !strings.Contains(dl.Error, "503") {
		t.Fatalf("dead letter %+v", dl)
	}
}

func TestNothingSentTwiceAcrossARestart(t *testing.T) {
	h := alerttest.New(t)
	pd := newFakePagerDuty(t)
	stop := h.RunSink(notifier(pd), h.SinkOptions("pager"))
	h.Publish(alerttest.Alert("0xabc", chains.StatusPending))
	alerttest.WaitFor(t, func() bool { return pd.accepted() == 1 }, "the trigger")
	stop()

	// While the sink is down the alert is confirmed, then a new one fires.
	h.Publish(alerttest.Alert("0xabc", chains.StatusConfirmed))
	next := alerttest.Alert("0xdef", chains.StatusPending)
	next.Wallet, next.Event.Wallet = "dev-deployer", "dev-deployer"
	h.Publish(next)
	h.RunSink(notifier(pd), h.SinkOptions("pager"))
	alerttest.WaitFor(t, func() bool { return pd.accepted() == 2 }, "the new alert after the restart")
	h.Publish(alerttest.Alert("0xabc", chains.StatusRetracted))
	alerttest.WaitFor(t, func() bool { return pd.accepted() == 3 }, "the resolve")
	_, evs := pd.snapshot()
	triggers := map[any]int{}
	for _, e := range evs {
		if e["event_action"] == "trigger" {
			triggers[e["dedup_key"]]++
		}
	}
	if triggers["eth:0xabc:3:mixer-counterparty"] != 1 || triggers["eth:0xdef:3:mixer-counterparty"] != 1 {
		t.Fatalf("triggers per incident %v, want one each", triggers)
	}
}

func TestLongIncidentIDsAreHashedToFit(t *testing.T) {
	long := strings.Repeat("x", 300)
	k := pagerduty.DedupKey(long)
	if len(k) > 255 || !strings.HasPrefix(k, "sha256:") || k != pagerduty.DedupKey(long) {
		t.Fatalf("DedupKey = %q", k)
	}
	if pagerduty.DedupKey("eth:0xabc:3:p") != "eth:0xabc:3:p" {
		t.Fatal("a short id must be kept as it is")
	}
}

// An incident too large for one event keeps its first alerts, says how many
// were left out, and still names the incident.
func TestAHugeIncidentFitsOneEvent(t *testing.T) {
	pd := newFakePagerDuty(t)
	var as []*alertmodel.Alert
	for i := range 3000 {
		a := alerttest.Alert(fmt.Sprintf("0x%064x", i), chains.StatusPending)
		as = append(as, &a)
	}
	incident := as[0].ID
	ctx := alerts.WithNotification(t.Context(), alerts.Notification{Sink: "pager", Incident: incident, Status: alertmodel.Firing})
	if _, err := notifier(pd).Notify(ctx, as...); err != nil {
		t.Fatal(err)
	}
	_, evs := pd.snapshot()
	if len(evs) != 1 {
		t.Fatalf("%d events accepted, want 1", len(evs))
	}
	d := evs[0]["payload"].(map[string]any)["custom_details"].(map[string]any)
	kept, left := len(d["alerts"].([]any)), int(d["alerts_left_out"].(float64))
	if d["incident"] != incident || d["alert_count"] != float64(3000) || kept == 0 || kept+left != 3000 {
		t.Fatalf("custom_details: incident %v, alert_count %v, %d alerts kept, %d left out", d["incident"], d["alert_count"], kept, left)
	}
}
