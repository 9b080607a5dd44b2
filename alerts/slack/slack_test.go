package slack_test

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
	"github.com/keywatch/keywatch/internal/alerttest"
	"github.com/keywatch/keywatch/alerts/slack"
	"github.com/keywatch/keywatch/chains"
	"github.com/keywatch/keywatch/config"
)

// fakeSlack plays an incoming webhook: it checks the message against Block
// Kit's documented rules (400 invalid_blocks otherwise), answers the
// statuses scripted, then 200 "ok".
type fakeSlack struct {
	*httptest.Server
	mu       sync.Mutex
	script   []int
	messages []map[string]any
	calls    int
}

func newFakeSlack(t *testing.T, script ...int) *fakeSlack {
	f := &fakeSlack{script: script}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeSlack) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if len(f.script) > 0 {
		code := f.script[0]
		f.script = f.script[1:]
		if code == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "0")
		}
		w.WriteHeader(code)
		fmt.Fprint(w, map[int]string{429: "rate_limited", 500: "rollup_error", 404: "no_service"}[code])
		return
	}
	body, _ := io.ReadAll(r.Body)
	if r.Method != http.MethodPost || r.URL.Path != "/services/T000/B000/XXXX" || r.Header.Get("Content-Type") != "application/json" {
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, "no_service")
		return
	}
	if problem := checkBlocks(body); problem != "" {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, "invalid_blocks: "+problem)
		return
	}
	var m map[string]any
	_ = json.Unmarshal(body, &m)
	f.messages = append(f.messages, m)
	fmt.Fprint(w, "ok")
}

// checkBlocks applies Block Kit's limits to the layout blocks used here.
func checkBlocks(body []byte) string {
	var m struct {
		Text   string `json:"text"`
		Blocks []struct {
			Type     string `json:"type"`
			Text     *struct{ Type, Text string }
			Fields   []struct{ Type, Text string }
			Elements []struct {
				Type string          `json:"type"`
				Text json.RawMessage `json:"text"`
				URL  string          `json:"url"`
			}
		} `json:"blocks"`
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	if err := dec.Decode(&m); err != nil {
		return "not JSON"
	}
	if m.Text == "" && len(m.Blocks) == 0 {
		return "no_text"
	}
	if len(m.Blocks) > 50 {
		return "more than 50 blocks"
	}
	for i, b := range m.Blocks {
		switch b.Type {
		case "header":
			if b.Text == nil || b.Text.Type != "plain_text" || len([]rune(b.Text.Text)) > 150 {
				return fmt.Sprintf("blocks[%d]: header wants plain_text of at most 150 characters", i)
			}
		case "section":
			if b.Text == nil && len(b.Fields) == 0 {
				return fmt.Sprintf("blocks[%d]: section wants text or fields", i)
			}
			if b.Text != nil && len([]rune(b.Text.Text)) > 3000 {
				return fmt.Sprintf("blocks[%d]: section text over 3000", i)
			}
			if len(b.Fields) > 10 {
				return fmt.Sprintf("blocks[%d]: more than 10 fields", i)
			}
			for _, f := range b.Fields {
				if (f.Type != "mrkdwn" && f.Type != "plain_text") || len([]rune(f.Text)) > 2000 {
					return fmt.Sprintf("blocks[%d]: bad field", i)
				}
			}
		case "actions":
			if len(b.Elements) == 0 || len(b.Elements) > 25 {
				return fmt.Sprintf("blocks[%d]: actions want 1 to 25 elements", i)
			}
			for _, e := range b.Elements {
				var t struct{ Type, Text string }
				if e.Type != "button" || json.Unmarshal(e.Text, &t) != nil || t.Type != "plain_text" || len([]rune(t.Text)) > 75 || len(e.URL) > 3000 {
					return fmt.Sprintf("blocks[%d]: bad button", i)
				}
			}
		case "context":
			if len(b.Elements) == 0 || len(b.Elements) > 10 {
				return fmt.Sprintf("blocks[%d]: context wants 1 to 10 elements", i)
			}
		case "divider":
		default:
			return fmt.Sprintf("blocks[%d]: unknown type %q", i, b.Type)
		}
	}
	return ""
}

func (f *fakeSlack) snapshot() (int, []map[string]any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls, append([]map[string]any(nil), f.messages...)
}

func (f *fakeSlack) posted() int { _, ms := f.snapshot(); return len(ms) }

func notifier(f *fakeSlack) *slack.Notifier {
	return slack.New(slack.Config{
		WebhookURL: config.NewSecret(f.URL + "/services/T000/B000/XXXX"),
		Timeout:    2 * time.Second,
		Explorers:  map[string]string{"eth": "https://etherscan.io/tx/{tx}"},
	})
}

func TestMessageIsBlockKit(t *testing.T) {
	h := alerttest.New(t)
	sl := newFakeSlack(t)
	h.RunSink(notifier(sl), h.SinkOptions("chat"))
	a := alerttest.Alert("0xabc", chains.StatusPending)
	a.HoldID = "hold-7"
	a.Reasons = append(a.Reasons, "outflow of 1 ETH is <not> explained & unapproved")
	h.Publish(a)
	alerttest.WaitFor(t, func() bool { return sl.posted() == 1 }, "the message")
	_, ms := sl.snapshot()
	var want map[string]any
	if err := json.Unmarshal([]byte(`{
	  "text": "critical mixer-counterparty on treasury-hot: counterparty 0x47ce…2936 is on list mixers (Tornado Cash 1 ETH pool)",
	  "blocks": [
	    {"type": "header", "text": {"type": "plain_text", "text": ":rotating_light: CRITICAL mixer-counterparty on treasury-hot", "emoji": true}},
	    {"type": "section", "fields": [
	      {"type": "mrkdwn", "text": "*Severity*\ncritical"},
	      {"type": "mrkdwn", "text": "*Status*\nfiring (event pending)"},
	      {"type": "mrkdwn", "text": "*Wallet*\ntreasury-hot (hot) on eth"},
	      {"type": "mrkdwn", "text": "*Amount*\nout 1 ETH (3,000.00 USD)"},
	      {"type": "mrkdwn", "text": "*Counterparty*\n`+"`0x47ce0c6ed5b0ce3d3a51fdb1c52dc66a7c3c2936`"+`"},
	      {"type": "mrkdwn", "text": "*Hold*\n`+"`hold-7`"+`"}
	    ]},
	    {"type": "section", "text": {"type": "mrkdwn", "text": "*Reasons*\n• counterparty 0x47ce…2936 is on list mixers (Tornado Cash 1 ETH pool)\n• outflow of 1 ETH is &lt;not&gt; explained &amp; unapproved"}},
	    {"type": "actions", "elements": [{"type": "button", "text": {"type": "plain_text", "text": "View transaction on eth"}, "url": "https://etherscan.io/tx/0xabc"}]},
	    {"type": "context", "elements": [{"type": "mrkdwn", "text": "alert `+"`eth:0xabc:3:mixer-counterparty`"+` · observed 2026-11-29 12:00:00 UTC"}]}
	  ]
	}`), &want); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(ms[0], want) {
		gb, _ := json.MarshalIndent(ms[0], "", "  ")
		t.Fatalf("message:\n%s", gb)
	}
}

func TestResolvedIncidentSaysSo(t *testing.T) {
	h := alerttest.New(t)
	sl := newFakeSlack(t)
	h.RunSink(notifier(sl), h.SinkOptions("chat"))
	h.Publish(alerttest.Alert("0xabc", chains.StatusPending), alerttest.Alert("0xabc", chains.StatusRetracted))
	alerttest.WaitFor(t, func() bool { return sl.posted() == 2 }, "firing and resolved messages")
	_, ms := sl.snapshot()
	header := ms[1]["blocks"].([]any)[0].(map[string]any)["text"].(map[string]any)["text"]
	if header != ":white_check_mark: Resolved: CRITICAL mixer-counterparty on treasury-hot" {
		t.Fatalf("resolved header %q", header)
	}
}

func TestRateLimitAndServerErrorsAreRetried(t *testing.T) {
	h := alerttest.New(t)
	sl := newFakeSlack(t, 429, 500)
	h.RunSink(notifier(sl), h.SinkOptions("chat"))
	h.Publish(alerttest.Alert("0xabc", chains.StatusPending))
	alerttest.WaitFor(t, func() bool { return sl.posted() == 1 }, "the message after 429 and 500")
	if calls, _ := sl.snapshot(); calls != 3 {
		t.Fatalf("%d requests, want 3", calls)
	}
}

func TestARemovedWebhookIsDeadLettered(t *testing.T) {
	h := alerttest.New(t)
	sl := newFakeSlack(t, 404)
	h.RunSink(notifier(sl), h.SinkOptions("chat"))
	h.Publish(alerttest.Alert("0xabc", chains.StatusPending))
	alerttest.WaitFor(t, func() bool { return len(h.DeadLetters()) == 1 }, "the dead letter")
	dl := h.DeadLetters()[0]
	if !strings.Contains(dl.Error, "404") || !strings.Contains(dl.Error, "no_service") {
		t.Fatalf("dead letter error %q", dl.Error)
	}
	if strings.Contains(dl.Error, "/services/") {
		t.Fatalf("the webhook URL leaked into the error: %q", dl.Error)
	}
}

func TestGroupedAlertsAreOneMessage(t *testing.T) {
	h := alerttest.New(t)
	sl := newFakeSlack(t)
	o := h.SinkOptions("chat")
	o.GroupWait, o.GroupWindow = 30*time.Second, time.Minute
	h.RunSink(notifier(sl), o)
	for _, tx := range []string{"0x01", "0x02", "0x03"} {
		h.Publish(alerttest.Alert(tx, chains.StatusPending))
	}
	h.WaitHeld("chat", 3)
	if sl.posted() != 0 {
		t.Fatal("posted before group_wait passed")
	}
	h.Clock.Advance(30 * time.Second)
	alerttest.WaitFor(t, func() bool { return sl.posted() == 1 }, "one message")
	_, ms := sl.snapshot()
	blocks := ms[0]["blocks"].([]any)
	header := blocks[0].(map[string]any)["text"].(map[string]any)["text"]
	if header != ":rotating_light: CRITICAL: 3 alerts · mixer-counterparty on treasury-hot" {
		t.Fatalf("header %q", header)
	}
	dividers := 0
	for _, b := range blocks {
		if b.(map[string]any)["type"] == "divider" {
			dividers++
		}
	}
	if dividers != 2 {
		t.Fatalf("%d dividers, want one between each of the 3 alerts", dividers)
	}
}

func TestNotifyWithoutTheDispatcher(t *testing.T) {
	sl := newFakeSlack(t)
	a := alerttest.Alert("0xabc", chains.StatusConfirmed)
	a.Severity = alertmodel.Medium
	if _, err := notifier(sl).Notify(t.Context(), &a); err != nil {
		t.Fatal(err)
	}
	_, ms := sl.snapshot()
	if h := ms[0]["blocks"].([]any)[0].(map[string]any)["text"].(map[string]any)["text"]; h != ":large_orange_circle: MEDIUM mixer-counterparty on treasury-hot" {
		t.Fatalf("header %q", h)
	}
}
