package daemon_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keywatch/keywatch/alertmodel"
	"github.com/keywatch/keywatch/alerts/feed"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/keywatch/keywatch/chains"
	"github.com/keywatch/keywatch/daemon"
	"github.com/keywatch/keywatch/internal/testenv"
)

// syncBuffer collects log output written from several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// listDaemon is a running keywatch without chains, for list refresh tests.
type listDaemon struct {
	d    *daemon.Daemon
	reg  *prometheus.Registry
	logs *syncBuffer
	c    *testenv.AlertStream
}

func startListDaemon(t *testing.T, path string, now func() time.Time) *listDaemon {
	t.Helper()
	cfg, set, err := daemon.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	logs := &syncBuffer{}
	reg := prometheus.NewRegistry()
	d, err := daemon.New(ctx, cfg, set, daemon.Options{
		Logger:   slog.New(slog.NewTextHandler(logs, nil)),
		Registry: reg,
		Now:      now,
	})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("daemon: %v", err)
		}
		d.Close()
		if t.Failed() {
			t.Logf("daemon log:\n%s", logs.String())
		}
	})
	return &listDaemon{d: d, reg: reg, logs: logs, c: testenv.ReadAlerts(t, d.NATSURL())}
}

// writeFile replaces a file the way an editor or a download does: a new
// file renamed over the old one.
func writeFile(t *testing.T, path, data string, mtime time.Time) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	if !mtime.IsZero() {
		if err := os.Chtimes(tmp, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

const (
	lazarus = "0x098B716B8Aaf21512996dC57EB0615e2383E2f96" // OFAC SDN 27307, Lazarus Group
	sinbad  = "0x723B78e67497E85279CB204544566F4dC5d2acA0" // a Tornado Cash pool (SDN 39796 until 2025-03-21)
)

// outflow is an outflow from the hot wallet to addr, as the watcher would
// deliver it.
func outflow(addr string) *chains.Event {
	return &chains.Event{
		ID: "eth:0x01:native", Chain: "eth", Tx: "0x01", Status: chains.StatusConfirmed, Kind: chains.KindTransfer,
		Direction: chains.Out, Wallet: "treasury-hot", WalletRole: "hot", From: "0x1111111111111111111111111111111111111111",
		To: strings.ToLower(addr), Counterparty: strings.ToLower(addr), Asset: "ETH", Amount: chains.NewAmount(nil, 18),
	}
}

func (ld *listDaemon) flags(t *testing.T, addr string) bool {
	t.Helper()
	as, err := ld.d.Engine.Evaluate(context.Background(), outflow(addr))
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range as {
		if a.Policy == "sanctioned-counterparty" {
			return true
		}
	}
	return false
}

func (ld *listDaemon) gauge(t *testing.T, name, list string) (float64, bool) {
	t.Helper()
	mfs, err := ld.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if labelOf(m, "list") == list {
				return m.GetGauge().GetValue(), true
			}
		}
	}
	return 0, false
}

func (ld *listDaemon) counter(t *testing.T, name, trigger, result string) float64 {
	t.Helper()
	mfs, err := ld.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if labelOf(m, "trigger") == trigger && labelOf(m, "result") == result {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func (ld *listDaemon) checks(t *testing.T) float64 {
	t.Helper()
	mfs, err := ld.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "keywatch_list_checks_total" {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatal("no keywatch_list_checks_total")
	return 0
}

func labelOf(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// system returns the system alerts of kind on the stream, as "status: first reason".
func (ld *listDaemon) system(kind string) []string {
	var out []string
	for _, m := range ld.c.All() {
		if m.Alert.Policy == kind && m.Alert.Event.Kind == chains.KindSystem {
			out = append(out, string(m.Alert.Status)+": "+strings.Join(m.Alert.Reasons, " / "))
		}
	}
	return out
}

func listConfig(t *testing.T, dir, natsURL, refresh string) string {
	t.Helper()
	cfg := fmt.Sprintf(`store: {memory: true}
nats: {url: %q}
api: {listen: "127.0.0.1:0"}
chains:
  - {name: eth, kind: ethereum, rpc: ["http://127.0.0.1:1"]}
wallets:
  - {name: treasury-hot, chain: eth, address: "0x1111111111111111111111111111111111111111", role: hot}
lists:
  sanctioned: [sanctioned.csv]
list_refresh:
%s
policies:
  - {name: sanctioned-counterparty, detector: list-match, lists: [sanctioned], severity: critical, actions: [page, hold]}
`, natsURL, refresh)
	path := filepath.Join(dir, "keywatch.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestListRefresh: a changed list file is loaded without a restart; a
// broken one leaves the list in force, says why in the log and raises an
// alert, which a later good version resolves.
func TestListRefresh(t *testing.T) {
	ns := testenv.NATS(t)
	dir := t.TempDir()
	list := filepath.Join(dir, "sanctioned.csv")
	writeFile(t, list, "chain,address,label,source\nethereum,"+lazarus+",Lazarus Group (SDN 27307; DPRK3),OFAC SDN\n", time.Time{})
	// The chain's node is unreachable: the watcher retries in the background
	// while the lists are exercised.
	path := listConfig(t, dir, ns.URL(), "  interval: 100ms\n")
	ld := startListDaemon(t, path, nil)

	if !ld.flags(t, lazarus) || ld.flags(t, sinbad) {
		t.Fatal("the list at start is not the one in the file")
	}
	if n, _ := ld.gauge(t, "keywatch_list_entries", "sanctioned"); n != 1 {
		t.Errorf("keywatch_list_entries{list=sanctioned} = %v, want 1", n)
	}

	// A new version adds an address: picked up by the periodic check.
	writeFile(t, list, "chain,address,label,source\nethereum,"+lazarus+",Lazarus Group (SDN 27307; DPRK3),OFAC SDN\nethereum,"+sinbad+",Tornado Cash (SDN 39796),OFAC SDN\n", time.Time{})
	testenv.WaitFor(t, 10*time.Second, func() bool { return ld.flags(t, sinbad) }, "the new list version to be in force")
	testenv.WaitFor(t, 10*time.Second, func() bool { n, _ := ld.gauge(t, "keywatch_list_entries", "sanctioned"); return n == 2 }, "keywatch_list_entries to follow")
	if !strings.Contains(ld.logs.String(), `msg="list loaded" trigger=file-change list=sanctioned entries=2 added=1 removed=0 files="[`+list+` sha256:`) {
		t.Errorf("no audit line for the reload; log:\n%s", ld.logs.String())
	}

	// A broken version (a truncated address): the list in force stays.
	writeFile(t, list, "chain,address,label,source\nethereum,"+lazarus[:20]+",cut short,OFAC SDN\n", time.Time{})
	testenv.WaitFor(t, 10*time.Second, func() bool { return len(ld.system(alertmodel.KindReloadFailed)) > 0 }, "a reload-failed alert")
	if !ld.flags(t, lazarus) || !ld.flags(t, sinbad) {
		t.Error("after a failed reload the previous list is no longer in force")
	}
	want := fmt.Sprintf(`%s:2: address: "%s" is not an EVM address (chain ethereum wants 0x and 40 hex digits)`, list, lazarus[:20])
	if got := ld.system(alertmodel.KindReloadFailed); len(got) != 1 || !strings.HasPrefix(got[0], "firing: reload of "+path+" (file-change) refused") || !strings.Contains(got[0], want) {
		t.Errorf("reload-failed alerts: %q\nwant one firing alert naming %s", got, want)
	}
	// Operators see it in the alert feed (GET /v1/alerts) as the pager does.
	feed, err := ld.d.Feed.List(context.Background(), feed.Filter{Status: alertmodel.Firing})
	if err != nil {
		t.Fatal(err)
	}
	if len(feed) != 1 || feed[0].Policy != alertmodel.KindReloadFailed {
		t.Errorf("alert feed: %+v, want the firing reload-failed alert", feed)
	}
	if !strings.Contains(ld.logs.String(), "reload refused; the policies and lists in force stay") {
		t.Errorf("the log does not say the reload was refused:\n%s", ld.logs.String())
	}
	// Not retried (nor alerted again) while the broken file stays as it is.
	before := ld.counter(t, "keywatch_list_reloads_total", "file-change", "failed")
	checks := ld.checks(t)
	testenv.WaitFor(t, 10*time.Second, func() bool { return ld.checks(t) >= checks+5 }, "five more checks of the list files")
	if after := ld.counter(t, "keywatch_list_reloads_total", "file-change", "failed"); after != before || before != 1 {
		t.Errorf("failed reloads: %v then %v, want 1 and no retry of an unchanged file", before, after)
	}
	// A SIGHUP with the file still broken: refused again, the same incident.
	if err := ld.d.Reload(context.Background()); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Reload = %v, want the problem named", err)
	}

	// Fixed: loaded, and the incident resolved.
	writeFile(t, list, "chain,address,label,source\nethereum,"+sinbad+",Tornado Cash (SDN 39796),OFAC SDN\n", time.Time{})
	testenv.WaitFor(t, 10*time.Second, func() bool { return !ld.flags(t, lazarus) }, "the fixed list to be in force")
	testenv.WaitFor(t, 10*time.Second, func() bool { return len(ld.system(alertmodel.KindReloadFailed)) == 2 }, "the reload-failed alert to be resolved")
	if got := ld.system(alertmodel.KindReloadFailed); !strings.HasPrefix(got[1], "resolved:") || !strings.HasSuffix(got[1], "a later reload succeeded") {
		t.Errorf("reload-failed alerts: %q", got)
	}
	if !strings.Contains(ld.logs.String(), `msg="list loaded" trigger=file-change list=sanctioned entries=1 added=0 removed=1`) {
		t.Errorf("no audit line for the fixed list; log:\n%s", ld.logs.String())
	}
}

// TestListMaxAge: a list file older than its maximum age raises a system
// alert (dated by its "# published:" line, else its modification time); a
// fresh version resolves it.
func TestListMaxAge(t *testing.T) {
	ns := testenv.NATS(t)
	dir := t.TempDir()
	var mu sync.Mutex
	now := time.Date(2025, 11, 25, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	list := filepath.Join(dir, "sanctioned.csv")
	body := "chain,address,label,source\nethereum," + lazarus + ",Lazarus Group (SDN 27307; DPRK3),OFAC SDN 2025-11-19 (ETH)\n"
	// Published six days before now, written to disk an hour ago.
	writeFile(t, list, "# published: 2025-11-19T00:00:00Z\n"+body, now.Add(-time.Hour))
	path := listConfig(t, dir, ns.URL(), "  interval: 100ms\n  max_age: 720h\n  max_age_per_list: {sanctioned: 48h}\n")
	ld := startListDaemon(t, path, clock)

	testenv.WaitFor(t, 10*time.Second, func() bool { return len(ld.system(alertmodel.KindListStale)) > 0 }, "a list-stale alert")
	got := ld.system(alertmodel.KindListStale)
	want := "firing: list sanctioned: file " + list + " is dated 2025-11-19T00:00:00Z (published comment), 6.5 days old: older than the maximum age of 48h0m0s"
	if len(got) != 1 || got[0] != want {
		t.Errorf("list-stale alerts:\n got %q\nwant %q", got, want)
	}
	for _, m := range ld.c.All() {
		if m.Alert.Policy == alertmodel.KindListStale {
			if m.Subject != "keywatch.alert.high.keywatch" || m.Alert.Severity != alertmodel.High {
				t.Errorf("list-stale alert on %s with severity %s", m.Subject, m.Alert.Severity)
			}
		}
	}
	if age, ok := ld.gauge(t, "keywatch_list_age_seconds", "sanctioned"); !ok || age != clock().Sub(time.Date(2025, 11, 19, 0, 0, 0, 0, time.UTC)).Seconds() {
		t.Errorf("keywatch_list_age_seconds{list=sanctioned} = %v (%v), want 6.5 days", age, ok)
	}
	if mx, _ := ld.gauge(t, "keywatch_list_max_age_seconds", "sanctioned"); mx != 48*3600 {
		t.Errorf("keywatch_list_max_age_seconds = %v", mx)
	}

	// A new release: fresh, so the alert resolves.
	writeFile(t, list, "# published: 2025-11-25T00:00:00Z\n"+body, now)
	testenv.WaitFor(t, 10*time.Second, func() bool { return len(ld.system(alertmodel.KindListStale)) == 2 }, "the list-stale alert to be resolved")
	if got := ld.system(alertmodel.KindListStale); !strings.HasPrefix(got[1], "resolved: ") {
		t.Errorf("list-stale alerts: %q", got)
	}

	// Without a published line, the modification time counts: a file
	// written now, 50 hours later.
	writeFile(t, list, body, clock())
	testenv.WaitFor(t, 10*time.Second, func() bool { return ld.counter(t, "keywatch_list_reloads_total", "file-change", "ok") == 2 }, "the third version to be loaded")
	mu.Lock()
	now = now.Add(50 * time.Hour)
	mu.Unlock()
	testenv.WaitFor(t, 10*time.Second, func() bool { return len(ld.system(alertmodel.KindListStale)) == 3 }, "a list-stale alert dated by the modification time")
	if got := ld.system(alertmodel.KindListStale); !strings.Contains(got[2], "(modification time), 2.1 days old: older than the maximum age of 48h0m0s") {
		t.Errorf("list-stale alerts: %q", got)
	}
	for id, n := range ld.c.MsgIDCounts() {
		if n != 1 {
			t.Errorf("message %s published %d times", id, n)
		}
	}
}
