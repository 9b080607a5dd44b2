package holds_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keywatch/keywatch/alertmodel"
	"github.com/keywatch/keywatch/api"
	"github.com/keywatch/keywatch/audit"
	"github.com/keywatch/keywatch/chains"
	"github.com/keywatch/keywatch/config"
	"github.com/keywatch/keywatch/holds"
	"github.com/keywatch/keywatch/intents"
	"github.com/keywatch/keywatch/internal/apitest"
	"github.com/keywatch/keywatch/internal/testenv"
	"github.com/keywatch/keywatch/store"
	"github.com/keywatch/keywatch/store/redis"
)

type fixture struct {
	base  string
	cfg   *config.Config
	st    store.Store
	redis *testenv.RedisServer
	clock *apitest.Clock
	m     *holds.Manager
	audit *audit.Log

	mu       sync.Mutex
	notified []alertmodel.Alert
	// onNotify, when set, sees each alert as it is published, outside mu.
	onNotify func(alertmodel.Alert)
}

func setup(t testing.TB) *fixture {
	t.Helper()
	rs := testenv.StartRedis(t)
	f := &fixture{redis: rs, clock: apitest.NewClock()}
	f.cfg = apitest.Config(t, "redis: "+rs.URL, "")
	f.st = openStore(t, rs.URL)
	f.audit = audit.New(f.st, audit.Options{Now: f.clock.Now})
	f.m = f.manager(f.st)
	auth, err := api.NewAuthenticator(f.cfg.API.Tokens, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := api.NewServer(auth, nil)
	f.m.Register(srv)
	f.audit.Register(srv)
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	f.base = hs.URL
	return f
}

func openStore(t testing.TB, url string) store.Store {
	t.Helper()
	st, err := redis.Open(context.Background(), url, redis.WithPrefix("holds-test:"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// manager makes a holds manager over st: several stand for several
// keywatch instances sharing one Redis.
func (f *fixture) manager(st store.Store) *holds.Manager {
	return f.managerWith(st, f.audit)
}

// managerWith makes a holds manager that records in al.
func (f *fixture) managerWith(st store.Store, al *audit.Log) *holds.Manager {
	return holds.New(holds.Options{
		Store: st, Config: f.cfg, Intents: intents.New(st, f.clock.Now), Audit: al, Now: f.clock.Now,
		Notify: func(_ context.Context, as ...alertmodel.Alert) error {
			f.mu.Lock()
			f.notified = append(f.notified, as...)
			hook := f.onNotify
			f.mu.Unlock()
			if hook != nil {
				for _, a := range as {
					hook(a)
				}
			}
			return nil
		},
		Labeler: func(_, addr string) []string {
			if strings.EqualFold(addr, apitest.Mixer) {
				return []string{"mixers: Tornado Cash 1 ETH pool"}
			}
			return nil
		},
	})
}

func (f *fixture) policiesNotified() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, a := range f.notified {
		out = append(out, a.Policy)
	}
	return out
}

// mixerAlert is what the engine raises when dev-deployer (kim's key) pays
// the Tornado Cash pool.
func mixerAlert(tx string, status chains.Status, actions ...alertmodel.Action) alertmodel.Alert {
	if len(actions) == 0 {
		actions = []alertmodel.Action{alertmodel.ActionPage, alertmodel.ActionHold}
	}
	ev := chains.Event{
		ID: "eth:" + tx + ":native", Chain: "eth", Tx: tx, Block: 100, Status: status, Kind: chains.KindTransfer,
		Direction: chains.Out, Wallet: "dev-deployer", WalletRole: "employee-key", Owner: "kim@firm.example",
		From: apitest.DevDeployer, To: apitest.Mixer, Counterparty: apitest.Mixer, Asset: "ETH",
		Amount: chains.Amount{}, USD: 3000,
	}
	ev.Amount, _ = chains.ParseAmount("1")
	return alertmodel.Alert{
		ID: alertmodel.AlertID(ev.ID, "mixer-counterparty"), Policy: "mixer-counterparty", Severity: alertmodel.Critical,
		Status: alertmodel.Firing, Chain: "eth", Wallet: "dev-deployer", Event: ev,
		Reasons: []string{"counterparty " + apitest.Mixer + " is on list mixers (Tornado Cash 1 ETH pool)"},
		Actions: actions,
	}
}

// hold raises the mixer alert through Apply and returns the hold id it got.
func (f *fixture) hold(t *testing.T, tx string) string {
	t.Helper()
	as := []alertmodel.Alert{mixerAlert(tx, chains.StatusPending)}
	if err := f.m.Apply(context.Background(), as); err != nil {
		t.Fatal(err)
	}
	if as[0].HoldID == "" {
		t.Fatal("the alert carries no hold_id")
	}
	return as[0].HoldID
}

func TestAHoldAlertFreezesTheWalletAndItsOwnersOtherKeysOnce(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	pending := []alertmodel.Alert{mixerAlert("0xabc", chains.StatusPending)}
	if err := f.m.Apply(ctx, pending); err != nil {
		t.Fatal(err)
	}
	confirmed := []alertmodel.Alert{mixerAlert("0xabc", chains.StatusConfirmed)}
	if err := f.m.Apply(ctx, confirmed); err != nil {
		t.Fatal(err)
	}
	id := pending[0].HoldID
	if id == "" || confirmed[0].HoldID != id {
		t.Fatalf("pending got hold %q, confirmed %q: want one hold for the event", id, confirmed[0].HoldID)
	}
	// An alert without the hold action holds nothing.
	pageOnly := []alertmodel.Alert{mixerAlert("0xdef", chains.StatusPending, alertmodel.ActionPage)}
	if err := f.m.Apply(ctx, pageOnly); err != nil || pageOnly[0].HoldID != "" {
		t.Fatalf("page-only alert: hold %q, %v", pageOnly[0].HoldID, err)
	}

	var list struct{ Holds []holds.Hold }
	apitest.Do(t, f.base, "GET", "/v1/holds", "vic", nil).JSON(t, &list)
	if len(list.Holds) != 1 {
		t.Fatalf("%d holds, want 1", len(list.Holds))
	}
	var h holds.Hold
	apitest.Do(t, f.base, "GET", "/v1/holds/"+id, "vic", nil).JSON(t, &h)
	if h.Status != holds.Held || h.ApprovalsRequired != 2 || len(h.Approvals) != 0 || !h.ExpiresAt.Equal(f.clock.Now().Add(time.Hour)) {
		t.Fatalf("hold: %+v", h)
	}
	if strings.Join(h.Wallets, ",") != "dev-deployer,kim-laptop" {
		t.Errorf("frozen wallets %v, want dev-deployer and kim's other key kim-laptop", h.Wallets)
	}
	if len(h.Alerts) != 1 || h.Alerts[0].Event.Status != chains.StatusConfirmed || h.Alerts[0].HoldID != id {
		t.Errorf("evidence alerts: %+v", h.Alerts)
	}
	if h.Links["0xabc"] != "https://etherscan.io/tx/0xabc" || len(h.Labels[apitest.Mixer]) != 1 {
		t.Errorf("links %v labels %v", h.Links, h.Labels)
	}
	if len(h.Reasons) != 1 || !strings.HasPrefix(h.Reasons[0], "mixer-counterparty: counterparty") {
		t.Errorf("reasons %q", h.Reasons)
	}

	for wallet, frozen := range map[string]bool{"dev-deployer": true, "kim-laptop": true, "treasury-hot": false} {
		var ws holds.WalletStatus
		r := apitest.Do(t, f.base, "GET", "/v1/wallets/"+wallet+"/status", "svc", nil)
		r.JSON(t, &ws)
		if r.Code != 200 || ws.Frozen != frozen || (frozen && (len(ws.Holds) != 1 || ws.Holds[0].ID != id)) {
			t.Errorf("%s: %s", wallet, r)
		}
	}
	if r := apitest.Do(t, f.base, "GET", "/v1/wallets/nope/status", "svc", nil); r.Code != 404 {
		t.Errorf("unknown wallet: %s", r)
	}

	page := auditPage(t, f)
	if n := countAction(page, "hold.create"); n != 1 {
		t.Errorf("%d hold.create audit entries, want 1", n)
	}
}

func TestListingFiltersAndOrdersNewestFirst(t *testing.T) {
	f := setup(t)
	var ids []string
	for _, tx := range []string{"0x1", "0x2", "0x3", "0x4"} {
		ids = append(ids, f.hold(t, tx))
		f.clock.Add(time.Minute)
	}
	approve := func(id string) {
		for _, who := range []string{"alice", "bob"} {
			if r := apitest.Do(t, f.base, "POST", "/v1/holds/"+id+"/approve", who, nil); r.Code != 200 {
				t.Fatal(r)
			}
		}
	}
	approve(ids[1])
	if r := apitest.Do(t, f.base, "POST", "/v1/holds/"+ids[2]+"/reject", "alice", nil); r.Code != 200 {
		t.Fatal(r)
	}
	cases := []struct {
		query string
		want  []string
	}{
		{"", []string{ids[3], ids[2], ids[1], ids[0]}},
		{"?status=held", []string{ids[3], ids[0]}},
		{"?status=held&limit=1", []string{ids[3]}},
		{"?status=approved", []string{ids[1]}},
		{"?status=rejected&wallet=kim-laptop", []string{ids[2]}},
		{"?status=held&wallet=treasury-hot", []string{}},
		{"?limit=2", []string{ids[3], ids[2]}},
	}
	for _, c := range cases {
		var list struct{ Holds []holds.Hold }
		r := apitest.Do(t, f.base, "GET", "/v1/holds"+c.query, "vic", nil)
		r.JSON(t, &list)
		got := []string{}
		for _, h := range list.Holds {
			got = append(got, h.ID)
		}
		if r.Code != 200 || strings.Join(got, ",") != strings.Join(c.want, ",") {
			t.Errorf("GET /v1/holds%s: %d %v, want %v", c.query, r.Code, got, c.want)
		}
	}
}

// failingZAdd is a store whose first ZAdd to a wallet's freeze index
// fails: Redis going away between two writes.
type failingZAdd struct {
	store.Store
	failed bool
}

func (s *failingZAdd) ZAdd(ctx context.Context, key string, score float64, member string) error {
	if !s.failed && strings.HasPrefix(key, "holds:freeze:") {
		s.failed = true
		return errors.New("connection reset")
	}
	return s.Store.ZAdd(ctx, key, score, member)
}

// TestAHoldMadeDuringAStoreFailureIsStillAudited: the hold's record was
// written, then freezing its wallets failed; the event comes again (the
// watcher retries it) and the hold's creation is recorded once.
func TestAHoldMadeDuringAStoreFailureIsStillAudited(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	m := f.manager(&failingZAdd{Store: f.st})
	as := []alertmodel.Alert{mixerAlert("0xabc", chains.StatusPending)}
	if err := m.Apply(ctx, as); err == nil {
		t.Fatal("Apply succeeded while the store failed")
	}
	as = []alertmodel.Alert{mixerAlert("0xabc", chains.StatusPending)}
	if err := m.Apply(ctx, as); err != nil {
		t.Fatal(err)
	}
	as = []alertmodel.Alert{mixerAlert("0xabc", chains.StatusConfirmed)}
	if err := m.Apply(ctx, as); err != nil {
		t.Fatal(err)
	}
	if ws := status(t, f, "kim-laptop"); !ws.Frozen {
		t.Fatal("the retry did not freeze the owner's other key")
	}
	if n := countAction(auditPage(t, f), "hold.create"); n != 1 {
		t.Fatalf("%d hold.create audit entries, want 1", n)
	}
}

// failingAudit is a store whose audit log appends fail while down is set:
// Redis going away between a decision and its audit entry.
type failingAudit struct {
	store.Store
	down atomic.Bool
}

func (s *failingAudit) SetNX(ctx context.Context, key string, v []byte, ttl time.Duration) (bool, error) {
	if s.down.Load() && strings.HasPrefix(key, "audit:") {
		return false, errors.New("connection reset")
	}
	return s.Store.SetNX(ctx, key, v, ttl)
}

// TestDecisionsTheAuditLogMissedAreRecordedLater: the store fails after a
// decision was made and before its audit entry was appended. The approver's
// retry records the approval; the sweep records the rejection and the
// approval that completed a quorum, and finishes those holds. Nothing is
// recorded twice.
func TestDecisionsTheAuditLogMissedAreRecordedLater(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	st := &failingAudit{Store: f.st}
	m := f.managerWith(f.st, audit.New(st, audit.Options{Now: f.clock.Now}))
	approved, rejected := f.hold(t, "0xabc"), f.hold(t, "0xdef")

	st.down.Store(true)
	if _, _, err := m.Approve(ctx, approved, "alice", "looked at it"); err == nil {
		t.Fatal("an approval the audit log missed succeeded")
	}
	st.down.Store(false)
	// alice retries: her approval counts once and is recorded now.
	if _, out, err := m.Approve(ctx, approved, "alice", "looked at it"); err != nil || out.Counted {
		t.Fatalf("retried approval: %+v, %v", out, err)
	}
	st.down.Store(true)
	if _, out, err := m.Approve(ctx, approved, "bob", ""); err == nil || !out.Released {
		t.Fatalf("quorum approval the audit log missed: %+v, %v", out, err)
	}
	if _, err := m.Reject(ctx, rejected, "carol", "kim sent nothing"); err == nil {
		t.Fatal("a rejection the audit log missed succeeded")
	}
	if n := countAction(auditPage(t, f), "hold.approve") + countAction(auditPage(t, f), "hold.reject"); n != 1 {
		t.Fatalf("%d decisions recorded while the store failed, want alice's retry only", n)
	}
	if ws := status(t, f, "dev-deployer"); !ws.Frozen {
		t.Fatal("the rejected hold no longer freezes the wallet")
	}

	st.down.Store(false)
	if err := m.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if err := m.Sweep(ctx); err != nil { // a second pass records nothing again
		t.Fatal(err)
	}
	page := auditPage(t, f)
	var got []string
	for _, e := range page.Entries {
		if strings.HasPrefix(e.Action, "hold.") && e.Action != "hold.create" {
			got = append(got, e.Action+" by "+e.Actor)
		}
	}
	if strings.Join(got, ", ") != "hold.approve by alice, hold.approve by bob, hold.reject by carol" {
		t.Fatalf("audit log: %v", got)
	}
	for _, id := range []string{approved, rejected} {
		h, err := m.Get(ctx, id)
		if err != nil || h.Status == holds.Held {
			t.Fatalf("hold %s: %+v, %v", id, h, err)
		}
	}
	if ws := status(t, f, "dev-deployer"); !ws.Frozen || len(ws.Holds) != 1 || ws.Holds[0].ID != rejected {
		t.Fatalf("after the sweep, dev-deployer should be frozen by the rejected hold alone: %+v", ws)
	}
	if rep, err := f.audit.Verify(ctx); err != nil || !rep.OK {
		t.Fatalf("audit verify: %v, %v", rep, err)
	}
}

func TestWhoMayDoWhat(t *testing.T) {
	f := setup(t)
	id := f.hold(t, "0xabc")
	cases := []struct {
		method, path, who string
		want              int
		says              string
	}{
		{"GET", "/v1/holds", "", 401, "missing bearer token"},
		{"GET", "/v1/holds", "not-a-token", 401, "unknown token"},
		{"GET", "/v1/holds", "svc", 403, "lacks the viewer role"},
		{"GET", "/v1/holds/" + id, "vic", 200, ""},
		{"GET", "/v1/holds/h-0000000000000000", "vic", 404, "no hold"},
		{"POST", "/v1/holds/" + id + "/approve", "", 401, ""},
		{"POST", "/v1/holds/" + id + "/approve", "vic", 403, "lacks the approver role"},
		{"POST", "/v1/holds/" + id + "/approve", "olga", 403, "lacks the approver role"},
		{"POST", "/v1/holds/" + id + "/approve", "root", 403, "lacks the approver role"},
		{"POST", "/v1/holds/" + id + "/reject", "svc", 403, "lacks the approver role"},
		{"POST", "/v1/holds/" + id + "/approve", "kim", 403, "kim owns a key this hold involves (dev-deployer, kim-laptop): an owner may not approve it"},
		{"GET", "/v1/wallets/dev-deployer/status", "vic", 403, "lacks the service role"},
		{"GET", "/v1/wallets/dev-deployer/status", "", 401, ""},
		{"GET", "/v1/audit", "alice", 403, "lacks the admin role"},
		{"GET", "/v1/audit", "root", 200, ""},
	}
	for _, c := range cases {
		r := apitest.Do(t, f.base, c.method, c.path, c.who, nil)
		if r.Code != c.want || !strings.Contains(string(r.Body), c.says) {
			t.Errorf("%s %s as %q: %s; want %d %q", c.method, c.path, c.who, r, c.want, c.says)
		}
	}
	var h holds.Hold
	apitest.Do(t, f.base, "GET", "/v1/holds/"+id, "vic", nil).JSON(t, &h)
	if len(h.Approvals) != 0 || h.Status != holds.Held {
		t.Fatalf("refused calls changed the hold: %+v", h)
	}
}

func TestQuorumOfDistinctApprovers(t *testing.T) {
	f := setup(t)
	id := f.hold(t, "0xabc")
	approve := func(who, comment string) apitest.Response {
		return apitest.Do(t, f.base, "POST", "/v1/holds/"+id+"/approve", who, map[string]string{"comment": comment})
	}
	var a holds.Answer
	r := approve("alice", "checked with kim: a test deposit gone wrong")
	r.JSON(t, &a)
	if r.Code != 200 || !a.Counted || a.Released || a.Status != holds.Held || len(a.Approvals) != 1 {
		t.Fatalf("first approval: %s", r)
	}
	// The same approver again counts once.
	r = approve("alice", "again")
	r.JSON(t, &a)
	if r.Code != 200 || a.Counted || a.Status != holds.Held || len(a.Approvals) != 1 {
		t.Fatalf("second approval by alice: %s", r)
	}
	if ws := status(t, f, "kim-laptop"); !ws.Frozen {
		t.Fatal("one approval of two released the wallet")
	}
	r = approve("bob", "")
	r.JSON(t, &a)
	if r.Code != 200 || !a.Counted || !a.Released || a.Status != holds.Approved || a.DecidedAt == nil {
		t.Fatalf("quorum approval: %s", r)
	}
	if got := strings.Join(a.ApprovedBy(), ","); got != "alice,bob" || a.Approvals[0].Comment != "checked with kim: a test deposit gone wrong" {
		t.Fatalf("approvals %+v", a.Approvals)
	}
	for _, w := range []string{"dev-deployer", "kim-laptop"} {
		if ws := status(t, f, w); ws.Frozen {
			t.Errorf("%s still frozen after the quorum approved", w)
		}
	}
	if r := approve("carol", ""); r.Code != 409 || !strings.Contains(string(r.Body), "is approved") {
		t.Fatalf("approval after release: %s", r)
	}
	if r := apitest.Do(t, f.base, "POST", "/v1/holds/"+id+"/reject", "carol", nil); r.Code != 409 {
		t.Fatalf("reject after release: %s", r)
	}
	page := auditPage(t, f)
	if n := countAction(page, "hold.approve"); n != 2 {
		t.Errorf("%d hold.approve audit entries, want 2 (the repeat counted once)", n)
	}
}

func TestOneRejectionEndsTheHoldAndKeepsTheFreeze(t *testing.T) {
	f := setup(t)
	id := f.hold(t, "0xabc")
	if r := apitest.Do(t, f.base, "POST", "/v1/holds/"+id+"/approve", "alice", nil); r.Code != 200 {
		t.Fatal(r)
	}
	var h holds.Hold
	r := apitest.Do(t, f.base, "POST", "/v1/holds/"+id+"/reject", "bob", map[string]string{"comment": "kim says she sent nothing"})
	r.JSON(t, &h)
	if r.Code != 200 || h.Status != holds.Rejected || h.Rejection == nil || h.Rejection.By != "bob" || h.Rejection.Comment != "kim says she sent nothing" {
		t.Fatalf("reject: %s", r)
	}
	if r := apitest.Do(t, f.base, "POST", "/v1/holds/"+id+"/approve", "carol", nil); r.Code != 409 || !strings.Contains(string(r.Body), "is rejected") {
		t.Fatalf("approval after rejection: %s", r)
	}
	if ws := status(t, f, "dev-deployer"); !ws.Frozen || ws.Holds[0].Status != holds.Rejected {
		t.Fatalf("a rejected hold must keep the wallet frozen: %+v", ws)
	}
	if n := countAction(auditPage(t, f), "hold.reject"); n != 1 {
		t.Errorf("%d hold.reject audit entries", n)
	}
}

func TestBadDecisionBodies(t *testing.T) {
	f := setup(t)
	id := f.hold(t, "0xabc")
	cases := []struct {
		body  string
		code  int
		field string
	}{
		{`{"comment": "ok"`, 400, ""},
		{`{"comment": 5}`, 400, "comment"},
		{`{"coment": "typo"}`, 400, "coment"},
		{`{"comment": "` + strings.Repeat("x", 2001) + `"}`, 400, "comment"},
		{`{"comment": "` + strings.Repeat("x", 20000) + `"}`, 413, ""},
	}
	for _, c := range cases {
		r := apitest.Do(t, f.base, "POST", "/v1/holds/"+id+"/approve", "alice", c.body)
		var e api.ErrorBody
		r.JSON(t, &e)
		if r.Code != c.code || e.Field != c.field {
			t.Errorf("%.30s: %d field %q, want %d %q", c.body, r.Code, e.Field, c.code, c.field)
		}
	}
	var h holds.Hold
	apitest.Do(t, f.base, "GET", "/v1/holds/"+id, "vic", nil).JSON(t, &h)
	if len(h.Approvals) != 0 {
		t.Fatal("a bad request was counted")
	}
}

func TestConcurrentApprovalsOnTwoInstancesCountOnceEach(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	// Two keywatch instances: two managers with their own Redis connections.
	instances := []*holds.Manager{f.m, f.manager(openStore(t, f.redis.URL))}
	for round := range 5 {
		id := f.hold(t, fmt.Sprintf("0x%d", round))
		var wg sync.WaitGroup
		for i, who := range []string{"alice", "bob", "alice", "bob", "alice", "bob"} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, _, err := instances[i%2].Approve(ctx, id, who, ""); err != nil {
					var ce *holds.ClosedError
					if !errorsAs(err, &ce) {
						t.Errorf("approve: %v", err)
					}
				}
			}()
		}
		wg.Wait()
		h, err := f.m.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if h.Status != holds.Approved || len(h.Approvals) != 2 || h.Approvals[0].By == h.Approvals[1].By {
			t.Fatalf("round %d: %s with approvals %+v", round, h.Status, h.Approvals)
		}
	}
}

func TestHoldsEscalateThenExpireUnreleased(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	id := f.hold(t, "0xabc")
	if r := apitest.Do(t, f.base, "POST", "/v1/holds/"+id+"/approve", "alice", nil); r.Code != 200 {
		t.Fatal(r)
	}
	sweep := func() {
		t.Helper()
		if err := f.m.Sweep(ctx); err != nil {
			t.Fatal(err)
		}
	}
	sweep()
	if got := f.policiesNotified(); len(got) != 0 {
		t.Fatalf("fresh hold escalated: %v", got)
	}
	f.clock.Add(49 * time.Minute) // 11 minutes left; escalate_before is 10m
	sweep()
	if got := f.policiesNotified(); len(got) != 0 {
		t.Fatalf("escalated too early: %v", got)
	}
	f.clock.Add(2 * time.Minute)
	sweep()
	sweep() // once only
	if got := f.policiesNotified(); strings.Join(got, ",") != "hold-expiring" {
		t.Fatalf("notified %v, want one hold-expiring alert", got)
	}
	f.mu.Lock()
	esc := f.notified[0]
	f.mu.Unlock()
	if esc.Severity != alertmodel.High || esc.Status != alertmodel.Firing || !strings.Contains(esc.Reasons[0], "expires in 9m0s with 1 of 2 approvals") {
		t.Fatalf("escalation alert: %+v", esc)
	}
	f.clock.Add(9 * time.Minute)
	// At the deadline an approval is refused even before the sweep runs.
	if r := apitest.Do(t, f.base, "POST", "/v1/holds/"+id+"/approve", "bob", nil); r.Code != 409 || !strings.Contains(string(r.Body), "expired") {
		t.Fatalf("approval at expiry: %s", r)
	}
	sweep()
	h, err := f.m.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if h.Status != holds.Expired || h.DecidedAt == nil {
		t.Fatalf("after expiry: %s", h.Status)
	}
	if got := f.policiesNotified(); strings.Join(got, ",") != "hold-expiring,hold-expired,hold-expiring" {
		t.Fatalf("notified %v, want the expiry and then the escalation resolved", got)
	}
	f.mu.Lock()
	expired, resolved := f.notified[1], f.notified[2]
	f.mu.Unlock()
	if expired.Status != alertmodel.Firing || !strings.Contains(expired.Reasons[0], "expired unreleased with 1 of 2 approvals") {
		t.Fatalf("expiry alert: %+v", expired)
	}
	if resolved.ID != esc.ID || resolved.Status != alertmodel.Resolved || !strings.Contains(strings.Join(resolved.Reasons, "; "), "expired unreleased") {
		t.Fatalf("escalation after expiry: %+v, want %s resolved", resolved, esc.ID)
	}
	if ws := status(t, f, "dev-deployer"); !ws.Frozen {
		t.Fatal("expiry released the wallet: it must stay frozen until approved")
	}
	page := auditPage(t, f)
	if countAction(page, "hold.escalate") != 1 || countAction(page, "hold.expire") != 1 {
		t.Fatalf("audit: %+v", page.Entries)
	}
}

// TestADecisionResolvesTheEscalation: once an escalated hold is approved
// or rejected, nobody needs to be chased any more: its hold-expiring alert
// is resolved, saying who decided.
func TestADecisionResolvesTheEscalation(t *testing.T) {
	cases := []struct {
		name   string
		decide func(t *testing.T, f *fixture, id string) apitest.Response
		says   string
	}{
		{"approved", func(t *testing.T, f *fixture, id string) apitest.Response {
			return apitest.Do(t, f.base, "POST", "/v1/holds/"+id+"/approve", "bob", nil)
		}, "was approved by alice, bob"},
		{"rejected", func(t *testing.T, f *fixture, id string) apitest.Response {
			return apitest.Do(t, f.base, "POST", "/v1/holds/"+id+"/reject", "bob", nil)
		}, "was rejected by bob"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := setup(t)
			id := f.hold(t, "0xabc")
			if r := apitest.Do(t, f.base, "POST", "/v1/holds/"+id+"/approve", "alice", nil); r.Code != 200 {
				t.Fatal(r)
			}
			f.clock.Add(55 * time.Minute)
			if err := f.m.Sweep(context.Background()); err != nil {
				t.Fatal(err)
			}
			if r := c.decide(t, f, id); r.Code != 200 {
				t.Fatal(r)
			}
			f.mu.Lock()
			got := append([]alertmodel.Alert(nil), f.notified...)
			f.mu.Unlock()
			if len(got) != 2 || got[0].Status != alertmodel.Firing || got[1].ID != got[0].ID || got[1].Status != alertmodel.Resolved {
				t.Fatalf("notified %+v, want the hold-expiring alert, then its resolution", got)
			}
			if why := got[1].Reasons[len(got[1].Reasons)-1]; !strings.Contains(why, c.says) {
				t.Fatalf("resolved because %q, want %q", why, c.says)
			}
			// A later sweep has nothing more to say.
			f.clock.Add(time.Hour)
			if err := f.m.Sweep(context.Background()); err != nil {
				t.Fatal(err)
			}
			if n := len(f.policiesNotified()); n != 2 {
				t.Fatalf("%d alerts after a later sweep, want still 2", n)
			}
		})
	}
}

// TestTheExpiryAlertIsOnlyForAHoldThatExpired: an approver rejects the hold
// on another instance while the sweep expires it. Whichever wins, the
// alerts say what happened: a hold-expired alert only for a hold that
// expired.
func TestTheExpiryAlertIsOnlyForAHoldThatExpired(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	id := f.hold(t, "0xabc")
	other := f.manager(openStore(t, f.redis.URL))
	rejected := false
	f.onNotify = func(a alertmodel.Alert) {
		if a.Policy == alertmodel.KindHoldExpired && !rejected {
			rejected = true
			if _, err := other.Reject(ctx, id, "bob", "not ours"); err != nil {
				var ce *holds.ClosedError
				if !errorsAs(err, &ce) {
					t.Errorf("reject: %v", err)
				}
			}
		}
	}
	f.clock.Add(time.Hour)
	if err := f.m.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	h, err := f.m.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	notified := strings.Join(f.policiesNotified(), ",")
	switch h.Status {
	case holds.Expired:
		if notified != "hold-expired" {
			t.Fatalf("expired hold: notified %q, want one hold-expired alert", notified)
		}
	case holds.Rejected:
		if strings.Contains(notified, "hold-expired") {
			t.Fatalf("the hold was rejected, yet a hold-expired alert went out (%s)", notified)
		}
	default:
		t.Fatalf("hold is %s", h.Status)
	}
}

func TestWalletStatusFailsClosedWhenRedisIsGone(t *testing.T) {
	f := setup(t)
	f.redis.Stop()
	r := apitest.Do(t, f.base, "GET", "/v1/wallets/treasury-hot/status", "svc", nil)
	m := r.Map(t)
	if r.Code != 503 || m["frozen"] != true {
		t.Fatalf("with Redis down: %s; want 503 and frozen", r)
	}
	if r := apitest.Do(t, f.base, "GET", "/v1/holds", "vic", nil); r.Code != 503 {
		t.Fatalf("holds with Redis down: %s", r)
	}
	f.redis.Start()
}

// A hold record that is not a hold's JSON is an error naming the hold,
// never an empty hold: nothing reads it as released, and no decision
// overwrites it.
func TestACorruptHoldRecordIsAnErrorNamingTheHold(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	id := f.hold(t, "0xc0")
	garbage := []byte(`{"id": "` + id)
	if err := f.st.Set(ctx, "holds:h:"+id, garbage, 0); err != nil {
		t.Fatal(err)
	}
	_, err := f.m.Get(ctx, id)
	if !errors.Is(err, store.ErrCorrupt) || !strings.Contains(err.Error(), "hold "+id+" is corrupt") {
		t.Fatalf("get a corrupt hold: %v; want it corrupt, naming %s", err, id)
	}
	if _, _, err := f.m.Approve(ctx, id, "vic", ""); !errors.Is(err, store.ErrCorrupt) {
		t.Fatalf("approve a corrupt hold: %v; want it corrupt", err)
	}
	if _, err := f.m.Reject(ctx, id, "vic", ""); !errors.Is(err, store.ErrCorrupt) {
		t.Fatalf("reject a corrupt hold: %v; want it corrupt", err)
	}
	if b, err := f.st.Get(ctx, "holds:h:"+id); err != nil || string(b) != string(garbage) {
		t.Fatalf("the record after the decisions: %q, %v; want it untouched", b, err)
	}
	if ws, err := f.m.Status(ctx, "dev-deployer"); err == nil {
		t.Fatalf("wallet status over a corrupt hold: %+v; want an error", ws)
	}
}

func status(t *testing.T, f *fixture, wallet string) holds.WalletStatus {
	t.Helper()
	var ws holds.WalletStatus
	r := apitest.Do(t, f.base, "GET", "/v1/wallets/"+wallet+"/status", "svc", nil)
	if r.Code != 200 {
		t.Fatalf("status of %s: %s", wallet, r)
	}
	r.JSON(t, &ws)
	return ws
}

func auditPage(t *testing.T, f *fixture) audit.Page {
	t.Helper()
	var p audit.Page
	r := apitest.Do(t, f.base, "GET", "/v1/audit?limit=1000", "root", nil)
	if r.Code != 200 {
		t.Fatal(r)
	}
	r.JSON(t, &p)
	return p
}

func countAction(p audit.Page, action string) int {
	n := 0
	for _, e := range p.Entries {
		if e.Action == action {
			n++
		}
	}
	return n
}

func errorsAs(err error, target any) bool { return errors.As(err, target) }
