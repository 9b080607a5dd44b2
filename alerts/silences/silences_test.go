package silences_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keywatch/keywatch/alertmodel"
	"github.com/keywatch/keywatch/alerts"
	"github.com/keywatch/keywatch/internal/alerttest"
	"github.com/keywatch/keywatch/alerts/silences"
	"github.com/keywatch/keywatch/api"
	"github.com/keywatch/keywatch/chains"
	"github.com/keywatch/keywatch/config"
	"github.com/keywatch/keywatch/store/memory"
)

type auditLog struct {
	mu   sync.Mutex
	fail bool
	got  []string
}

func (a *auditLog) Record(_ context.Context, action, actor string, details any) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.fail {
		return errors.New("audit store unreachable")
	}
	s := details.(silences.Silence)
	a.got = append(a.got, action+" by "+actor+": "+s.Matchers.String())
	return nil
}

type fixture struct {
	sil    *silences.Silences
	srv    *api.Server
	audit  *auditLog
	clock  *alerttest.Clock
	outbox *alerts.Outbox
	tokens map[string]string
}

func newFixture(t *testing.T, clock *alerttest.Clock, outbox *alerts.Outbox) *fixture {
	t.Helper()
	f := &fixture{audit: &auditLog{}, clock: clock, outbox: outbox}
	if f.clock == nil {
		f.clock = alerttest.NewClock(time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC))
	}
	if f.outbox == nil {
		f.outbox = alerts.NewOutbox(memory.New(), 0)
	}
	f.sil = silences.New(silences.Options{
		Store: memory.New(), Now: f.clock.Now, MaxDuration: 24 * time.Hour, Auditor: f.audit, Announce: f.outbox.Enqueue,
		Known: silences.Known{Chains: []string{"eth"}, Wallets: []string{"treasury-hot", "dev-deployer"},
			Roles: config.WalletRoles(), Policies: append([]string{"mixer-counterparty"}, alertmodel.SystemKinds()...)},
	})
	auth, err := api.NewAuthenticator([]config.Token{
		{Name: "olga", SHA256: api.HashToken("olga-token"), Roles: []string{"operator"}},
		{Name: "victor", SHA256: api.HashToken("victor-token"), Roles: []string{"viewer"}},
		{Name: "alice", SHA256: api.HashToken("alice-token"), Roles: []string{"approver"}},
	}, f.clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	f.srv = api.NewServer(auth, nil)
	f.sil.Register(f.srv)
	return f
}

func (f *fixture) do(t *testing.T, method, path, token, body string) (int, map[string]any) {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	f.srv.ServeHTTP(rec, req)
	var out map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatalf("%s %s: answer is not JSON: %s", method, path, rec.Body)
	}
	return rec.Code, out
}

const hotSilence = `{"matchers": {"wallet": "treasury-hot", "policy": "mixer-counterparty"}, "duration": "2h", "comment": "rebalancing through a new venue"}`

func TestRolesAndLifecycle(t *testing.T) {
	f := newFixture(t, nil, nil)
	for _, c := range []struct {
		token string
		want  int
	}{{"", 401}, {"victor-token", 403}, {"alice-token", 403}} {
		if code, _ := f.do(t, "POST", "/v1/silences", c.token, hotSilence); code != c.want {
			t.Errorf("create with %q: %d, want %d", c.token, code, c.want)
		}
	}
	code, sil := f.do(t, "POST", "/v1/silences", "olga-token", hotSilence)
	if code != 201 || sil["created_by"] != "olga" || sil["state"] != "active" ||
		sil["ends_at"] != "2026-11-29T14:00:00Z" || sil["comment"] != "rebalancing through a new venue" {
		t.Fatalf("create: %d %v", code, sil)
	}
	id := sil["id"].(string)
	if code, one := f.do(t, "GET", "/v1/silences/"+id, "victor-token", ""); code != 200 || one["id"] != id || one["state"] != "active" {
		t.Fatalf("get: %d %v", code, one)
	}
	if code, _ := f.do(t, "GET", "/v1/silences/sil-nope", "victor-token", ""); code != 404 {
		t.Fatalf("get an unknown silence: %d, want 404", code)
	}
	code, list := f.do(t, "GET", "/v1/silences", "victor-token", "")
	if code != 200 || len(list["silences"].([]any)) != 1 {
		t.Fatalf("list: %d %v", code, list)
	}
	if code, _ := f.do(t, "POST", "/v1/silences/"+id+"/expire", "victor-token", ""); code != 403 {
		t.Fatalf("a viewer expired a silence: %d", code)
	}
	f.clock.Advance(30 * time.Minute)
	code, exp := f.do(t, "POST", "/v1/silences/"+id+"/expire", "olga-token", "")
	if code != 200 || exp["expired_by"] != "olga" || exp["state"] != "expired" || exp["expired_at"] != "2026-11-29T12:30:00Z" {
		t.Fatalf("expire: %d %v", code, exp)
	}
	if code, _ := f.do(t, "POST", "/v1/silences/"+id+"/expire", "olga-token", ""); code != 409 {
		t.Fatalf("expiring twice: %d, want 409", code)
	}
	if code, _ := f.do(t, "POST", "/v1/silences/sil-nope/expire", "olga-token", ""); code != 404 {
		t.Fatalf("unknown silence: %d, want 404", code)
	}
	if _, list := f.do(t, "GET", "/v1/silences", "victor-token", ""); len(list["silences"].([]any)) != 0 {
		t.Fatalf("an expired silence is listed as in force: %v", list)
	}
	if _, list := f.do(t, "GET", "/v1/silences?all=true", "victor-token", ""); len(list["silences"].([]any)) != 1 {
		t.Fatalf("all=true lacks the expired silence: %v", list)
	}
	want := "silence.create by olga: wallet=treasury-hot policy=mixer-counterparty\nsilence.expire by olga: wallet=treasury-hot policy=mixer-counterparty"
	if got := strings.Join(f.audit.got, "\n"); got != want {
		t.Fatalf("audit:\n%s\nwant:\n%s", got, want)
	}
	// The silence was announced while in force, and its end too.
	q, _ := f.outbox.Pending(t.Context())
	if len(q) != 2 || q[0].Alert.Policy != alertmodel.KindSilenceCreated || q[0].Alert.Status != alertmodel.Firing ||
		q[1].Alert.Status != alertmodel.Resolved || q[0].Alert.Has(alertmodel.ActionPage) ||
		!strings.Contains(q[0].Alert.Reasons[0], "olga silenced alerts matching wallet=treasury-hot policy=mixer-counterparty until 2026-11-29 14:00 UTC: rebalancing") ||
		!strings.Contains(q[1].Alert.Reasons[1], "expired early by olga") {
		t.Fatalf("announcements %+v", q)
	}
}

func TestBadRequestsNameTheField(t *testing.T) {
	f := newFixture(t, nil, nil)
	cases := []struct {
		body, field string
	}{
		{`{"matchers": {}, "duration": "1h", "comment": "x"}`, "matchers"},
		{`{"matchers": {"wallet": "nobody"}, "duration": "1h", "comment": "x"}`, "matchers.wallet"},
		{`{"matchers": {"role": "boss"}, "duration": "1h", "comment": "x"}`, "matchers.role"},
		{`{"matchers": {"policy": "silence-created"}, "duration": "1h", "comment": "x"}`, "matchers.policy"},
		{`{"matchers": {"wallet": "treasury-hot"}, "comment": "x"}`, "duration"},
		{`{"matchers": {"wallet": "treasury-hot"}, "duration": "forever", "comment": "x"}`, "duration"},
		{`{"matchers": {"wallet": "treasury-hot"}, "duration": "25h", "comment": "x"}`, "duration"},
		{`{"matchers": {"wallet": "treasury-hot"}, "ends_at": "2026-11-29T11:00:00Z", "comment": "x"}`, "ends_at"},
		{`{"matchers": {"wallet": "treasury-hot"}, "duration": "1h"}`, "comment"},
		{`{"matchers": {"walet": "treasury-hot"}, "duration": "1h", "comment": "x"}`, "walet"},
		{`{"matchers": {"wallet": 7}, "duration": "1h", "comment": "x"}`, "matchers.wallet"},
	}
	for _, c := range cases {
		code, body := f.do(t, "POST", "/v1/silences", "olga-token", c.body)
		if code != 400 || body["field"] != c.field {
			t.Errorf("%s: %d %v, want 400 naming %s", c.body, code, body, c.field)
		}
	}
	if _, list := f.do(t, "GET", "/v1/silences?all=true", "olga-token", ""); len(list["silences"].([]any)) != 0 {
		t.Fatalf("a refused request left a silence: %v", list)
	}
}

func TestNoAuditNoSilence(t *testing.T) {
	f := newFixture(t, nil, nil)
	f.audit.fail = true
	if code, body := f.do(t, "POST", "/v1/silences", "olga-token", hotSilence); code != 503 || !strings.Contains(body["error"].(string), "audit") {
		t.Fatalf("create with the audit log down: %d %v", code, body)
	}
	if _, list := f.do(t, "GET", "/v1/silences?all=true", "olga-token", ""); len(list["silences"].([]any)) != 0 {
		t.Fatalf("an unaudited silence was kept: %v", list)
	}
}

// recorder records the ids of alerts delivered.
type recorder struct {
	mu  sync.Mutex
	got []string
}

func (r *recorder) Notify(_ context.Context, as ...*alertmodel.Alert) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, a := range as {
		r.got = append(r.got, a.ID+" "+string(a.Status))
	}
	return false, nil
}

func (r *recorder) has(s string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, g := range r.got {
		if g == s {
			return true
		}
	}
	return false
}

func TestSilencedAlertsAreNotSentUntilTheSilenceEnds(t *testing.T) {
	h := alerttest.New(t)
	f := newFixture(t, h.Clock, h.Outbox)
	rec := &recorder{}
	o := h.SinkOptions("chat")
	o.Silencer = f.sil
	h.RunSink(rec, o)

	code, sil := f.do(t, "POST", "/v1/silences", "olga-token", hotSilence)
	if code != 201 {
		t.Fatalf("create: %d %v", code, sil)
	}
	muted := alerttest.Alert("0x01", chains.StatusPending)
	other := alerttest.Alert("0x02", chains.StatusPending)
	other.Wallet, other.Event.Wallet = "dev-deployer", "dev-deployer"
	h.Publish(muted, other) // the announcement goes out with them
	alerttest.WaitFor(t, func() bool {
		return rec.has(other.ID+" firing") && rec.has("system:silence-created:"+sil["id"].(string)+" firing")
	}, "the unsilenced alert and the announcement")
	alerttest.WaitFor(t, func() bool {
		incs, _ := alerts.Incidents(h.Ctx, h.Store, "chat")
		for _, inc := range incs {
			if m, ok := inc.Members[muted.ID]; ok && m.Silenced == sil["id"] {
				return true
			}
		}
		return false
	}, "the muted alert to be recorded as silenced")
	if rec.has(muted.ID + " firing") {
		t.Fatal("a silenced alert was sent")
	}

	// Two hours later the silence has ended: the alert's confirmation is
	// judged by the silences then in force, and goes out.
	h.Clock.Advance(2 * time.Hour)
	h.Publish(alerttest.Alert("0x01", chains.StatusConfirmed))
	alerttest.WaitFor(t, func() bool { return rec.has(muted.ID + " firing") }, "the alert after the silence")
}
