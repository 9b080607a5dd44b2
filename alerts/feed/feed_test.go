package feed_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keywatch/keywatch/alertmodel"
	"github.com/keywatch/keywatch/alerts/feed"
	"github.com/keywatch/keywatch/api"
	"github.com/keywatch/keywatch/audit"
	"github.com/keywatch/keywatch/chains"
	"github.com/keywatch/keywatch/internal/apitest"
	"github.com/keywatch/keywatch/internal/testenv"
	"github.com/keywatch/keywatch/store"
	"github.com/keywatch/keywatch/store/memory"
	"github.com/keywatch/keywatch/store/redis"
)

func TestFeedListsAlertsAndOperatorsResolveThem(t *testing.T) {
	ctx := context.Background()
	rs := testenv.StartRedis(t)
	cfg := apitest.Config(t, "redis: "+rs.URL, "")
	st, err := redis.Open(ctx, rs.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	clock := apitest.NewClock()
	lg := audit.New(st, audit.Options{Now: clock.Now})
	var mu sync.Mutex
	var published []alertmodel.Alert
	fd := feed.New(feed.Options{Store: st, Audit: lg, Now: clock.Now, Notify: func(_ context.Context, as ...alertmodel.Alert) error {
		mu.Lock()
		defer mu.Unlock()
		published = append(published, as...)
		return nil
	}})
	auth, err := api.NewAuthenticator(cfg.API.Tokens, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := api.NewServer(auth, nil)
	fd.Register(srv)
	hs := httptest.NewServer(srv)
	defer hs.Close()

	ev := chains.Event{ID: "eth:0xabc:native", Chain: "eth", Tx: "0xabc", Status: chains.StatusPending}
	a := alertmodel.Alert{ID: "eth:0xabc:native:big-outflow", Policy: "big-outflow", Severity: alertmodel.High, Status: alertmodel.Firing,
		Chain: "eth", Wallet: "treasury-hot", Event: ev, Reasons: []string{"outflow of 60 ETH"}}
	if err := fd.Record(ctx, a); err != nil {
		t.Fatal(err)
	}
	clock.Add(30 * time.Second) // the confirmed state of the same alert
	a.Event.Status = chains.StatusConfirmed
	other := a
	other.ID, other.Policy = "eth:0xdef:native:decoy-touched", "decoy-touched"
	if err := fd.Record(ctx, a, other); err != nil {
		t.Fatal(err)
	}

	var list struct{ Alerts []feed.Entry }
	apitest.Do(t, hs.URL, "GET", "/v1/alerts", "vic", nil).JSON(t, &list)
	if len(list.Alerts) != 2 {
		t.Fatalf("%d alerts, want 2 (one per alert id)", len(list.Alerts))
	}
	for _, e := range list.Alerts {
		if e.ID == a.ID && (e.Event.Status != chains.StatusConfirmed || e.FirstSeen.Equal(e.UpdatedAt)) {
			t.Fatalf("latest state: %+v", e)
		}
	}

	path := "/v1/alerts/" + a.ID + "/resolve"
	for who, want := range map[string]int{"": 401, "vic": 403, "alice": 403, "svc": 403} {
		if r := apitest.Do(t, hs.URL, "POST", path, who, nil); r.Code != want {
			t.Errorf("resolve as %q: %s, want %d", who, r, want)
		}
	}
	if r := apitest.Do(t, hs.URL, "POST", "/v1/alerts/nope/resolve", "olga", nil); r.Code != 404 {
		t.Errorf("unknown alert: %s", r)
	}
	if r := apitest.Do(t, hs.URL, "POST", path, "olga", `{"coment": "x"}`); r.Code != 400 || r.Map(t)["field"] != "coment" {
		t.Errorf("bad body: %s", r)
	}
	var e feed.Entry
	r := apitest.Do(t, hs.URL, "POST", path, "olga", map[string]string{"comment": "treasury confirmed the payment"})
	r.JSON(t, &e)
	if r.Code != 200 || e.Status != alertmodel.Resolved || e.ResolvedBy != "olga" {
		t.Fatalf("resolve: %s", r)
	}
	mu.Lock()
	if len(published) != 1 || published[0].Status != alertmodel.Resolved || published[0].MsgID() != a.ID+":confirmed:resolved" ||
		!strings.Contains(strings.Join(published[0].Reasons, " "), "resolved by olga: treasury confirmed the payment") {
		t.Fatalf("published %+v", published)
	}
	mu.Unlock()
	if r := apitest.Do(t, hs.URL, "POST", path, "root", nil); r.Code != 409 {
		t.Errorf("second resolve: %s", r)
	}
	apitest.Do(t, hs.URL, "GET", "/v1/alerts?status=firing", "vic", nil).JSON(t, &list)
	if len(list.Alerts) != 1 || list.Alerts[0].ID != other.ID {
		t.Fatalf("firing alerts: %+v", list.Alerts)
	}
	p, err := lg.Read(ctx, 0, 10)
	if err != nil || len(p.Entries) != 1 || p.Entries[0].Action != "alert.resolve" || p.Entries[0].Actor != "olga" {
		t.Fatalf("audit: %+v %v", p.Entries, err)
	}
}

// A resolution the outbox could not take is published when the operator
// tries again, though the feed already shows it resolved; and a failing
// audit log does not keep it from the pager.
func TestAResolutionThatCouldNotBePublishedIsPublishedOnRetry(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name                  string
		notifyDown, auditDown bool
	}{
		{"outbox down", true, false},
		{"audit log down", false, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var published []alertmodel.Alert
			notifyDown, auditDown := c.notifyDown, c.auditDown
			fd := feed.New(feed.Options{Store: memory.New(),
				Audit: recorderFunc(func() error {
					if auditDown {
						return errors.New("audit log unreachable")
					}
					return nil
				}),
				Notify: func(_ context.Context, as ...alertmodel.Alert) error {
					if notifyDown {
						return errors.New("store unreachable")
					}
					published = append(published, as...)
					return nil
				}})
			a := alertmodel.Alert{ID: "eth:0xabc:native:big-outflow", Policy: "big-outflow", Severity: alertmodel.High, Status: alertmodel.Firing,
				Chain: "eth", Wallet: "treasury-hot", Event: chains.Event{ID: "eth:0xabc:native", Chain: "eth", Status: chains.StatusConfirmed}}
			if err := fd.Record(ctx, a); err != nil {
				t.Fatal(err)
			}
			if _, err := fd.Resolve(ctx, a.ID, "olga", "paid"); err == nil {
				t.Fatal("resolve reported success though part of it failed")
			}
			notifyDown, auditDown = false, false
			if _, err := fd.Resolve(ctx, a.ID, "olga", "paid"); !errors.Is(err, feed.ErrResolved) {
				t.Fatalf("second resolve: %v, want %v", err, feed.ErrResolved)
			}
			if len(published) == 0 || published[len(published)-1].MsgID() != a.ID+":confirmed:resolved" {
				t.Fatalf("published %+v, want the resolution", published)
			}
		})
	}
}

type recorderFunc func() error

func (f recorderFunc) Record(context.Context, string, string, any) error { return f() }

// A feed record that is not an entry's JSON: Get and Resolve say so, naming
// the alert, and change nothing; a newer state of the alert replaces it.
func TestACorruptFeedRecordIsReportedAndReplacedByTheNextState(t *testing.T) {
	ctx := context.Background()
	st := memory.New()
	fd := feed.New(feed.Options{Store: st})
	id := "eth:0xabc:native:big-outflow"
	garbage := []byte(`{"id": "` + id)
	if err := st.Set(ctx, "feed:a:"+id, garbage, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := fd.Get(ctx, id); !errors.Is(err, store.ErrCorrupt) || !strings.HasPrefix(err.Error(), "alert feed: record "+id+" is corrupt") {
		t.Fatalf("get a corrupt record: %v; want it corrupt, naming %s", err, id)
	}
	if _, err := fd.Resolve(ctx, id, "vic", ""); !errors.Is(err, store.ErrCorrupt) {
		t.Fatalf("resolve a corrupt record: %v; want it corrupt", err)
	}
	if b, err := st.Get(ctx, "feed:a:"+id); err != nil || string(b) != string(garbage) {
		t.Fatalf("the record after resolving: %q, %v; want it untouched", b, err)
	}
	a := alertmodel.Alert{ID: id, Policy: "big-outflow", Severity: alertmodel.High, Status: alertmodel.Firing, Chain: "eth", Wallet: "treasury-hot"}
	if err := fd.Record(ctx, a); err != nil {
		t.Fatalf("record over a corrupt record: %v; want it replaced", err)
	}
	if e, err := fd.Get(ctx, id); err != nil || e.Status != alertmodel.Firing || e.FirstSeen.IsZero() {
		t.Fatalf("after recording: %+v, %v; want the firing alert, first seen now", e, err)
	}
}
