package main

import (
	"context"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/keywatch/keywatch/alertmodel"
	"github.com/keywatch/keywatch/api"
	"github.com/keywatch/keywatch/audit"
	"github.com/keywatch/keywatch/audit/anchor"
	"github.com/keywatch/keywatch/chains"
	"github.com/keywatch/keywatch/holds"
	"github.com/keywatch/keywatch/intents"
	"github.com/keywatch/keywatch/internal/apitest"
	"github.com/keywatch/keywatch/internal/testenv"
	"github.com/keywatch/keywatch/store"
	"github.com/keywatch/keywatch/store/redis"
)

// apiServer serves holds and the audit log over a real Redis, with one hold
// on kim's key; it returns the API address, the configuration file and the
// store.
func apiServer(t *testing.T) (base, cfgPath, holdID string, st store.Store) {
	t.Helper()
	ctx := context.Background()
	rs := testenv.StartRedis(t)
	cfg := apitest.Config(t, "redis: "+rs.URL, "")
	st, err := redis.Open(ctx, rs.URL, redis.WithPrefix(cfg.Store.Prefix))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	lg := audit.New(st, audit.Options{})
	hm := holds.New(holds.Options{Store: st, Config: cfg, Intents: intents.New(st, nil), Audit: lg})
	auth, err := api.NewAuthenticator(cfg.API.Tokens, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := api.NewServer(auth, nil)
	hm.Register(srv)
	lg.Register(srv)
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	amount, _ := chains.ParseAmount("1")
	as := []alertmodel.Alert{{ID: "eth:0xabc:native:mixer-counterparty", Policy: "mixer-counterparty", Severity: alertmodel.Critical,
		Status: alertmodel.Firing, Chain: "eth", Wallet: "dev-deployer", Actions: []alertmodel.Action{alertmodel.ActionHold},
		Reasons: []string{"counterparty " + apitest.Mixer + " is on list mixers (Tornado Cash 1 ETH pool)"},
		Event: chains.Event{ID: "eth:0xabc:native", Chain: "eth", Tx: "0xabc", Status: chains.StatusPending, Kind: chains.KindTransfer,
			Direction: chains.Out, Wallet: "dev-deployer", From: apitest.DevDeployer, To: apitest.Mixer, Counterparty: apitest.Mixer, Asset: "ETH", Amount: amount}}}
	if err := hm.Apply(ctx, as); err != nil {
		t.Fatal(err)
	}
	return hs.URL, cfg.File(), as[0].HoldID, st
}

func TestHoldsCLI(t *testing.T) {
	base, _, id, _ := apiServer(t)
	as := func(who string) { t.Setenv("KEYWATCH_TOKEN", apitest.Tokens[who]) }
	cases := []struct {
		who  string
		args []string
		code int
		out  []string
	}{
		{"vic", []string{"holds", "list", "-api", base}, 0, []string{"ID", id, "held", "dev-deployer", "0/2", "mixer-counterparty: counterparty"}},
		{"vic", []string{"holds", "show", id, "-api", base}, 0, []string{"hold " + id + ": held (0 of 2 approvals)", "frozen keys:  dev-deployer, kim-laptop",
			"owners:       kim@firm.example (may not approve)", "critical mixer-counterparty (firing, event pending): transfer out 1 ETH", "tx https://etherscan.io/tx/0xabc"}},
		{"vic", []string{"holds", "approve", id, "-api", base}, 1, []string{"403 Forbidden: token vic lacks the approver role"}},
		{"kim", []string{"holds", "approve", id, "-api", base}, 1, []string{"403 Forbidden: kim owns a key this hold involves"}},
		{"alice", []string{"holds", "approve", id, "-comment", "called kim", "-api", base}, 0, []string{"your approval is counted, 1 of 2 approvals; still held"}},
		{"alice", []string{"holds", "approve", "-api", base, id}, 0, []string{"you had approved it already (it counts once), 1 of 2 approvals"}},
		{"vic", []string{"holds", "show", id, "-api", base}, 0, []string{"approved by alice at", ": called kim"}},
		{"bob", []string{"holds", "reject", id, "-comment", "kim sent nothing", "-api", base}, 0, []string{"hold " + id + " rejected: it is ended; dev-deployer, kim-laptop stay frozen"}},
		{"carol", []string{"holds", "approve", id, "-api", base}, 1, []string{"409 Conflict: hold " + id + " is rejected"}},
		{"vic", []string{"holds", "list", "-api", base}, 0, []string{"no held holds"}},
		{"vic", []string{"holds", "list", "-status", "all", "-api", base}, 0, []string{id, "rejected"}},
		{"vic", []string{"holds", "show", "h-0000000000000000", "-api", base}, 1, []string{"404 Not Found: id: no hold"}},
		{"", []string{"holds", "list", "-api", base}, 1, []string{"KEYWATCH_TOKEN is not set"}},
		{"vic", []string{"holds", "approve", "-api", base}, 2, []string{"give one hold ID"}},
		{"vic", []string{"holds", "frobnicate"}, 2, []string{`unknown subcommand "frobnicate"`}},
	}
	for _, c := range cases {
		as(c.who)
		code, out, errs := runCmd(t, c.args...)
		all := out + errs
		if code != c.code {
			t.Errorf("%s as %s: exit %d, want %d\n%s", strings.Join(c.args, " "), c.who, code, c.code, all)
			continue
		}
		for _, want := range c.out {
			if !strings.Contains(all, want) {
				t.Errorf("%s as %s: output lacks %q:\n%s", strings.Join(c.args, " "), c.who, want, all)
			}
		}
		for _, tok := range apitest.Tokens {
			if strings.Contains(all, tok) {
				t.Fatalf("a token was printed: %s", all)
			}
		}
	}
}

func TestAuditVerifyCLI(t *testing.T) {
	base, cfgPath, id, st := apiServer(t)
	t.Setenv("KEYWATCH_TOKEN", apitest.Tokens["alice"])
	if code, out, errs := runCmd(t, "holds", "approve", id, "-api", base); code != 0 {
		t.Fatal(out, errs)
	}
	t.Setenv("KEYWATCH_TOKEN", apitest.Tokens["root"])
	for _, args := range [][]string{{"audit", "verify", "-config", cfgPath}, {"audit", "verify", "-api", base}} {
		code, out, errs := runCmd(t, args...)
		if code != 0 || !strings.Contains(out, "audit log OK: 2 entries, head 2") {
			t.Fatalf("%v: exit %d\n%s%s", args, code, out, errs)
		}
	}
	// Someone edits the approval out of the record.
	if err := st.Set(context.Background(), "audit:e:2", []byte(`{"seq":2,"action":"hold.approve","actor":"mallory"}`), 0); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"audit", "verify", "-config", cfgPath}, {"audit", "verify", "-api", base}} {
		code, out, errs := runCmd(t, args...)
		if code != 1 || !strings.Contains(out, "audit log BROKEN at entry 2: entry 2 was altered") {
			t.Fatalf("%v after tampering: exit %d\n%s%s", args, code, out, errs)
		}
	}
	if err := st.Delete(context.Background(), "audit:e:2"); err != nil {
		t.Fatal(err)
	}
	code, out, _ := runCmd(t, "audit", "verify", "-config", cfgPath)
	if code != 1 || !strings.Contains(out, "entry 2, the last, was removed") {
		t.Fatalf("after removal: exit %d %s", code, out)
	}
	// The API refuses a token without the admin role.
	t.Setenv("KEYWATCH_TOKEN", apitest.Tokens["alice"])
	if code, _, errs := runCmd(t, "audit", "verify", "-api", base); code != 1 || !strings.Contains(errs, "403 Forbidden") {
		t.Fatalf("as an approver: exit %d %s", code, errs)
	}
}

// TestAuditVerifyAgainstAnchors: someone with write access to Redis
// replaces the audit log with a chain whose hashes all fit. The heads
// anchored in NATS catch it, from the store and through the API.
func TestAuditVerifyAgainstAnchors(t *testing.T) {
	ctx := context.Background()
	rs := testenv.StartRedis(t)
	ns := testenv.NATS(t)
	cfg := apitest.Config(t, "redis: "+rs.URL, "")
	text, err := os.ReadFile(cfg.File())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg.File(), []byte(strings.Replace(string(text), "nats://127.0.0.1:4222", ns.URL(), 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := redis.Open(ctx, rs.URL, redis.WithPrefix(cfg.Store.Prefix))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	_, js := ns.JetStream(t)
	record := func(l *audit.Log, actors ...string) {
		t.Helper()
		for _, who := range actors {
			if err := l.Record(ctx, audit.ActionHoldApprove, who, map[string]any{"hold": "h-1"}); err != nil {
				t.Fatal(err)
			}
		}
	}
	lg := audit.New(st, audit.Options{Anchors: func(ctx context.Context) ([]audit.Anchor, error) { return anchor.Read(ctx, js) }})
	auth, err := api.NewAuthenticator(cfg.API.Tokens, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := api.NewServer(auth, nil)
	lg.Register(srv)
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	t.Setenv("KEYWATCH_TOKEN", apitest.Tokens["root"])
	verify := func(wantCode int, want string) {
		t.Helper()
		for _, args := range [][]string{{"audit", "verify", "-config", cfg.File()}, {"audit", "verify", "-api", hs.URL}} {
			code, out, errs := runCmd(t, args...)
			if code != wantCode || !strings.Contains(out, want) {
				t.Errorf("%v: exit %d, want %d and %q:\n%s%s", args, code, wantCode, want, out, errs)
			}
		}
	}

	record(lg, "alice", "bob")
	verify(0, "audit log OK: 2 entries, head 2 ")
	verify(0, "NOT checked against anchored heads: ")
	verify(0, "no audit anchors: stream KEYWATCH_AUDIT_ANCHORS does not exist")
	head, err := lg.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := anchor.Publish(ctx, js, "keywatch", audit.Anchor{Seq: head.Seq, Hash: head.Hash, At: time.Now(), By: "keywatch-1"}); err != nil {
		t.Fatal(err)
	}
	record(lg, "carol")
	verify(0, "audit log OK: 3 entries, head 3 ")
	verify(0, "matches 1 anchored heads")

	// The chain is replaced: bob's approval becomes mallory's, every hash
	// recomputed, the head moved.
	if err := st.Delete(ctx, "audit:e:1", "audit:e:2", "audit:e:3", "audit:head"); err != nil {
		t.Fatal(err)
	}
	record(audit.New(st, audit.Options{}), "alice", "mallory", "carol")
	verify(1, "audit log BROKEN at entry 1: the chain was rewritten: keywatch-1 anchored entry 2 as "+head.Hash[:16])
}
