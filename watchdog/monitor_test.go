package watchdog_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keywatch/keywatch/alertmodel"
	"github.com/keywatch/keywatch/store/memory"
	"github.com/keywatch/keywatch/watchdog"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

var t0 = time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)

// raised records what a monitor raised as "<status> <id>".
type raised struct {
	mu  sync.Mutex
	got []string
	all []alertmodel.Alert
}

func (r *raised) Raise(_ context.Context, as ...alertmodel.Alert) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, a := range as {
		r.got = append(r.got, string(a.Status)+" "+a.ID)
		r.all = append(r.all, a)
	}
	return nil
}

func (r *raised) lines() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.got...)
}

func beat(instance string, at time.Time, chains ...watchdog.Chain) watchdog.Heartbeat {
	return watchdog.Heartbeat{Instance: instance, Role: watchdog.RoleInstance, StartedAt: t0, SentAt: at, IntervalSeconds: 5, Chains: chains}
}

func eth(head uint64, headAt, okAt time.Time) watchdog.Chain {
	return watchdog.Chain{Chain: "eth", Head: head, Processed: head, HeadAdvancedAt: headAt, ProcessedAt: headAt, LastOKAt: okAt,
		StaleAfterSeconds: 300, UnreachableAfterSeconds: 120}
}

func monitor(c *clock, r *raised, self string, expect ...string) *watchdog.Monitor {
	return watchdog.NewMonitor(watchdog.MonitorOptions{Self: self, Timeout: 30 * time.Second, Expect: expect,
		Now: c.Now, Raise: r.Raise, Store: memory.New()})
}

func expectLines(t *testing.T, r *raised, want ...string) {
	t.Helper()
	if got := r.lines(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("raised:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

func TestASilentInstancePagesAndIsResolvedWhenItReturns(t *testing.T) {
	c := &clock{t: t0}
	r := &raised{}
	m := monitor(c, r, "keywatch-1")
	ctx := t.Context()
	m.Observe(beat("keywatch-1", c.Now()))
	m.Observe(beat("keywatch-2", c.Now()))
	for range 6 { // both beat every 5s for 30s
		c.Advance(5 * time.Second)
		m.Observe(beat("keywatch-1", c.Now()))
		m.Observe(beat("keywatch-2", c.Now()))
		m.Check(ctx)
	}
	expectLines(t, r)
	lastB := c.Now()
	// keywatch-2 stops; keywatch-1 goes on.
	for range 7 {
		c.Advance(5 * time.Second)
		m.Observe(beat("keywatch-1", c.Now()))
		m.Check(ctx)
	}
	id := "system:heartbeat-lost:keywatch-2@" + lastB.Format(time.RFC3339)
	expectLines(t, r, "firing "+id)
	a := r.all[0]
	if a.Severity != alertmodel.Critical || !a.Has(alertmodel.ActionPage) || a.Chain != "keywatch" ||
		a.Reasons[0] != "instance keywatch-2 has sent no heartbeat since 2026-11-29T12:00:30Z (35s ago; timeout 30s): it stopped, lost its network or was stopped" {
		t.Fatalf("alert %+v", a)
	}
	// It comes back.
	c.Advance(time.Minute)
	m.Observe(beat("keywatch-2", c.Now()))
	m.Check(ctx)
	m.Check(ctx)
	expectLines(t, r, "firing "+id, "resolved "+id)
	if got := r.all[1].Reasons[len(r.all[1].Reasons)-1]; got != "heartbeats from keywatch-2 resumed (last at 2026-11-29T12:02:05Z)" {
		t.Fatalf("resolution reason %q", got)
	}
}

func TestEveryObserverRaisesTheSameAlert(t *testing.T) {
	c := &clock{t: t0}
	r1, r2 := &raised{}, &raised{}
	m1, m2 := monitor(c, r1, "keywatch-1"), monitor(c, r2, "watchdog-a")
	for _, m := range []*watchdog.Monitor{m1, m2} {
		m.Observe(beat("keywatch-3", c.Now()))
	}
	c.Advance(31 * time.Second)
	m1.Observe(beat("keywatch-1", c.Now()))
	m1.Check(t.Context())
	c.Advance(4 * time.Second) // the second notices a little later
	m2.Observe(beat("watchdog-a", c.Now()))
	m2.Check(t.Context())
	if len(r1.all) != 1 || len(r2.all) != 1 || r1.all[0].MsgID() != r2.all[0].MsgID() {
		t.Fatalf("observers raised %v and %v: JetStream can only drop the copy if the message ids are equal", r1.lines(), r2.lines())
	}
}

func TestItsOwnSilenceIsForOthersToNotice(t *testing.T) {
	c := &clock{t: t0}
	r := &raised{}
	m := monitor(c, r, "keywatch-1")
	m.Observe(beat("keywatch-1", c.Now()))
	m.Observe(beat("watchdog-a", c.Now()))
	c.Advance(time.Minute)
	m.Observe(beat("watchdog-a", c.Now()))
	m.Check(t.Context())
	expectLines(t, r)
}

func TestChains(t *testing.T) {
	cases := []struct {
		name  string
		chain func(now time.Time) watchdog.Chain
		want  string
	}{
		{"advancing", func(now time.Time) watchdog.Chain { return eth(100, now.Add(-12*time.Second), now) }, ""},
		{"head stuck", func(now time.Time) watchdog.Chain { return eth(100, now.Add(-6*time.Minute), now) },
			"firing system:chain-stale:keywatch-1/eth@2026-11-29T12:04:00Z: the head of eth seen by instance keywatch-1 has stayed at block 100 since 2026-11-29T12:04:00Z (6m0s; stale_after 5m0s): the node is stuck or cut off"},
		{"node unreachable", func(now time.Time) watchdog.Chain { return eth(100, now.Add(-6*time.Minute), now.Add(-3*time.Minute)) },
			"firing system:node-unreachable:keywatch-1/eth@2026-11-29T12:07:00Z: the eth node of instance keywatch-1 has not answered since 2026-11-29T12:07:00Z (3m0s ago; unreachable_after 2m0s): nothing on this chain is watched"},
		{"never answered", func(now time.Time) watchdog.Chain { return eth(0, time.Time{}, time.Time{}) },
			"firing system:node-unreachable:keywatch-1/eth@2026-11-29T12:00:00Z: the eth node of instance keywatch-1 has not answered since the instance started at 2026-11-29T12:00:00Z (10m0s ago; unreachable_after 2m0s): nothing on this chain is watched"},
		{"processing stuck", func(now time.Time) watchdog.Chain {
			c := eth(200, now.Add(-10*time.Second), now)
			c.Processed, c.Lag, c.ProcessedAt = 150, 50, now.Add(-7*time.Minute)
			return c
		}, "firing system:chain-stale:keywatch-1/eth@2026-11-29T12:03:00Z: instance keywatch-1 has processed eth only up to block 150, 50 behind the head, since 2026-11-29T12:03:00Z (7m0s; stale_after 5m0s): events are not being judged"},
		// Another instance holds the chain's lease: this one never read the
		// node, and that is no blindness.
		{"standing by", func(now time.Time) watchdog.Chain {
			return watchdog.Chain{Chain: "eth", Standby: true, FollowedBy: "keywatch-2", StaleAfterSeconds: 300, UnreachableAfterSeconds: 120}
		}, ""},
		// Took the chain over a minute ago and has not reached the node
		// since: counted from the takeover, not from the start.
		{"taken over, not yet answered", func(now time.Time) watchdog.Chain {
			return watchdog.Chain{Chain: "eth", FollowingSince: now.Add(-time.Minute), StaleAfterSeconds: 300, UnreachableAfterSeconds: 120}
		}, ""},
		{"taken over, never answered", func(now time.Time) watchdog.Chain {
			return watchdog.Chain{Chain: "eth", FollowingSince: now.Add(-3 * time.Minute), StaleAfterSeconds: 300, UnreachableAfterSeconds: 120}
		}, "firing system:node-unreachable:keywatch-1/eth@2026-11-29T12:07:00Z: the eth node of instance keywatch-1 has not answered since the instance took the chain over at 2026-11-29T12:07:00Z (3m0s ago; unreachable_after 2m0s): nothing on this chain is watched"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := &clock{t: t0.Add(10 * time.Minute)}
			r := &raised{}
			m := monitor(c, r, "keywatch-1")
			m.Observe(beat("keywatch-1", c.Now(), tc.chain(c.Now())))
			m.Check(t.Context())
			var got []string
			for _, a := range r.all {
				got = append(got, fmt.Sprintf("%s %s: %s", a.Status, a.ID, a.Reasons[0]))
			}
			if strings.Join(got, "\n") != tc.want {
				t.Fatalf("raised:\n%s\nwant:\n%s", strings.Join(got, "\n"), tc.want)
			}
			if tc.want != "" && (r.all[0].Chain != "eth" || r.all[0].Severity != alertmodel.Critical) {
				t.Fatalf("alert %+v", r.all[0])
			}
		})
	}
}

func TestAStaleHeadResolvesWhenItAdvances(t *testing.T) {
	c := &clock{t: t0.Add(10 * time.Minute)}
	r := &raised{}
	m := monitor(c, r, "keywatch-1")
	stuckSince := c.Now().Add(-6 * time.Minute)
	m.Observe(beat("keywatch-1", c.Now(), eth(100, stuckSince, c.Now())))
	m.Check(t.Context())
	c.Advance(5 * time.Second)
	m.Observe(beat("keywatch-1", c.Now(), eth(101, c.Now(), c.Now())))
	m.Check(t.Context())
	id := "system:chain-stale:keywatch-1/eth@" + stuckSince.Format(time.RFC3339)
	expectLines(t, r, "firing "+id, "resolved "+id)
}

func TestAChainHandedOverResolvesItsStaleAlert(t *testing.T) {
	c := &clock{t: t0.Add(10 * time.Minute)}
	r := &raised{}
	m := monitor(c, r, "keywatch-1")
	stuckSince := c.Now().Add(-6 * time.Minute)
	m.Observe(beat("keywatch-2", c.Now(), eth(100, stuckSince, c.Now())))
	m.Check(t.Context())
	c.Advance(5 * time.Second)
	m.Observe(beat("keywatch-2", c.Now(), watchdog.Chain{Chain: "eth", Standby: true, FollowedBy: "keywatch-3"}))
	m.Check(t.Context())
	id := "system:chain-stale:keywatch-2/eth@" + stuckSince.Format(time.RFC3339)
	expectLines(t, r, "firing "+id, "resolved "+id)
	if got := r.all[1].Reasons[len(r.all[1].Reasons)-1]; got != "instance keywatch-2 handed eth over to instance keywatch-3" {
		t.Fatalf("resolution reason %q", got)
	}
}

func TestExpectedInstancesAndRetirement(t *testing.T) {
	c := &clock{t: t0}
	r := &raised{}
	m := monitor(c, r, "watchdog-a", "keywatch-1", "keywatch-2")
	m.Observe(beat("keywatch-1", c.Now()))
	m.Check(t.Context())
	expectLines(t, r) // a grace period: instances may still be starting
	c.Advance(31 * time.Second)
	m.Observe(beat("keywatch-1", c.Now()))
	m.Observe(beat("watchdog-a", c.Now()))
	m.Check(t.Context())
	expectLines(t, r, "firing system:heartbeat-lost:keywatch-2@never")
	m.Observe(watchdog.Heartbeat{Instance: "keywatch-2", Retired: true, RetiredBy: "ops", SentAt: c.Now()})
	m.Check(t.Context())
	expectLines(t, r, "firing system:heartbeat-lost:keywatch-2@never", "resolved system:heartbeat-lost:keywatch-2@never")
	if got := r.all[1].Reasons[len(r.all[1].Reasons)-1]; got != "instance keywatch-2 was retired by ops at 2026-11-29T12:00:31Z" {
		t.Fatalf("reason %q", got)
	}
}

func TestNoHeartbeatsAtAllMeansBlind(t *testing.T) {
	c := &clock{t: t0}
	r := &raised{}
	m := monitor(c, r, "watchdog-a")
	m.Observe(beat("watchdog-a", c.Now()))
	c.Advance(31 * time.Second)
	m.Check(t.Context())
	expectLines(t, r, "firing system:heartbeat-lost:watchdog-a/all@2026-11-29T12:00:00Z")
	m.Observe(beat("watchdog-a", c.Now()))
	m.Check(t.Context())
	expectLines(t, r, "firing system:heartbeat-lost:watchdog-a/all@2026-11-29T12:00:00Z", "resolved system:heartbeat-lost:watchdog-a/all@2026-11-29T12:00:00Z")
}

func TestARestartedMonitorResolvesWhatWasRaisedBefore(t *testing.T) {
	c := &clock{t: t0}
	st := memory.New()
	r := &raised{}
	opts := watchdog.MonitorOptions{Self: "keywatch-1", Timeout: 30 * time.Second, Now: c.Now, Raise: r.Raise, Store: st}
	m := watchdog.NewMonitor(opts)
	m.Observe(beat("keywatch-2", c.Now()))
	c.Advance(31 * time.Second)
	m.Observe(beat("keywatch-1", c.Now()))
	m.Check(t.Context())
	// An unreadable record beside it is skipped, not a reason to forget it.
	if err := st.HSet(t.Context(), "watchdog:firing", "heartbeat/keywatch-3", []byte("garbage")); err != nil {
		t.Fatal(err)
	}
	// A new monitor (after a restart) sees keywatch-2 again and resolves
	// the page the previous one raised.
	again := watchdog.NewMonitor(opts)
	c.Advance(time.Second)
	again.Observe(beat("keywatch-1", c.Now()))
	again.Observe(beat("keywatch-2", c.Now()))
	again.Load(t.Context())
	again.Check(t.Context())
	id := "system:heartbeat-lost:keywatch-2@2026-11-29T12:00:00Z"
	expectLines(t, r, "firing "+id, "resolved "+id)
}
