package audit_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keywatch/keywatch/audit"
	"github.com/keywatch/keywatch/internal/testenv"
	"github.com/keywatch/keywatch/store"
	"github.com/keywatch/keywatch/store/memory"
	"github.com/keywatch/keywatch/store/redis"
)

func openRedis(t *testing.T) store.Store {
	t.Helper()
	rs := testenv.StartRedis(t)
	st, err := redis.Open(context.Background(), rs.URL, redis.WithPrefix("audit-test:"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func fill(t *testing.T, l *audit.Log, n int) {
	t.Helper()
	for i := 1; i <= n; i++ {
		if err := l.Record(context.Background(), audit.ActionHoldApprove, fmt.Sprintf("op%d", i), map[string]any{"hold": "h1", "n": i}); err != nil {
			t.Fatal(err)
		}
	}
}

func TestTamperingIsNamed(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name   string
		tamper func(t *testing.T, st store.Store)
		bad    int64
		says   string
	}{
		{"untouched", func(*testing.T, store.Store) {}, 0, ""},
		{"details of entry 3 changed", func(t *testing.T, st store.Store) {
			edit(t, st, 3, func(e *audit.Entry) { e.Details = json.RawMessage(`{"hold":"h1","n":999}`) })
		}, 3, "entry 3 was altered"},
		{"actor of entry 2 changed and its hash recomputed", func(t *testing.T, st store.Store) {
			edit(t, st, 2, func(e *audit.Entry) { e.Actor = "mallory"; e.Hash = e.ComputeHash() })
		}, 2, "entry 2 was altered or replaced"},
		{"entry 4 removed", func(t *testing.T, st store.Store) { del(t, st, 4) }, 4, "entry 4 was removed"},
		{"entries 2 and 3 removed", func(t *testing.T, st store.Store) { del(t, st, 2); del(t, st, 3) }, 2, "entries 2 to 3 were removed"},
		{"the last entry removed", func(t *testing.T, st store.Store) { del(t, st, 6) }, 6, "entry 6, the last, was removed"},
		{"the last two removed", func(t *testing.T, st store.Store) { del(t, st, 5); del(t, st, 6) }, 5, "entries 5 to 6 were removed from the end"},
		{"the last entry rewritten with a consistent hash", func(t *testing.T, st store.Store) {
			edit(t, st, 6, func(e *audit.Entry) { e.Action = "hold.reject"; e.Hash = e.ComputeHash() })
		}, 6, "entry 6, the last, was altered or replaced"},
		{"entry 5 is not JSON any more", func(t *testing.T, st store.Store) {
			if err := st.Set(ctx, "audit:e:5", []byte("garbage"), 0); err != nil {
				t.Fatal(err)
			}
		}, 5, "entry 5 was altered"},
		{"entry 1 copied over entry 2", func(t *testing.T, st store.Store) {
			b, _ := st.Get(ctx, "audit:e:1")
			if err := st.Set(ctx, "audit:e:2", b, 0); err != nil {
				t.Fatal(err)
			}
		}, 2, "entry 2 was altered"},
	}
	st := openRedis(t)
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// A fresh namespace per case over the same real Redis.
			ns := prefixed{st, fmt.Sprintf("case%d:", i)}
			l := audit.New(ns, audit.Options{})
			fill(t, l, 6)
			c.tamper(t, ns)
			rep, err := audit.New(ns, audit.Options{}).Verify(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if c.bad == 0 {
				if !rep.OK || rep.Entries != 6 || rep.Head.Seq != 6 {
					t.Fatalf("untouched log: %+v", rep)
				}
				return
			}
			if rep.OK || rep.FirstBad != c.bad || !strings.Contains(rep.Problem, c.says) {
				t.Fatalf("got %s (first bad %d), want entry %d: %q", rep, rep.FirstBad, c.bad, c.says)
			}
		})
	}
}

// TestAnUnreadableHeadIsOverwritten damages audit:head under a running log:
// its next append writes a readable head again instead of failing.
func TestAnUnreadableHeadIsOverwritten(t *testing.T) {
	ctx := context.Background()
	st := memory.New()
	t.Cleanup(func() { st.Close() })
	l := audit.New(st, audit.Options{})
	fill(t, l, 1)
	if err := st.Set(ctx, "audit:head", []byte("garbage"), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Head(ctx); !errors.Is(err, store.ErrCorrupt) || !strings.Contains(err.Error(), "audit head is corrupt") {
		t.Fatalf("Head of a damaged head = %v, want it named corrupt", err)
	}
	fill(t, l, 1)
	r, err := l.Verify(ctx)
	if err != nil || !r.OK || r.Head.Seq != 2 {
		t.Fatalf("after one more append: %v, %v; want an intact chain with its head at entry 2", r, err)
	}
}

func TestConcurrentWritersKeepOneChain(t *testing.T) {
	ctx := context.Background()
	for name, st := range map[string]store.Store{"redis": openRedis(t), "memory": memory.New()} {
		t.Run(name, func(t *testing.T) {
			// Three logs over one store stand for three keywatch instances.
			logs := []*audit.Log{audit.New(st, audit.Options{}), audit.New(st, audit.Options{}), audit.New(st, audit.Options{})}
			var wg sync.WaitGroup
			for i, l := range logs {
				for j := range 4 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for k := range 10 {
							if err := l.Record(ctx, "screen.decision", fmt.Sprintf("w%d-%d", i, j), k); err != nil {
								t.Error(err)
							}
						}
					}()
				}
			}
			wg.Wait()
			rep, err := logs[0].Verify(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if !rep.OK || rep.Entries != 120 || rep.Head.Seq != 120 {
				t.Fatalf("%s: %+v", rep, rep)
			}
		})
	}
}

func TestReadPages(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	l := audit.New(memory.New(), audit.Options{Now: func() time.Time { return now }})
	fill(t, l, 5)
	p, err := l.Read(ctx, 0, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Entries) != 2 || p.Entries[0].Seq != 1 || p.Next != 2 || p.Head.Seq != 5 {
		t.Fatalf("first page: %+v", p)
	}
	if p.Entries[1].Prev != p.Entries[0].Hash || p.Entries[0].Prev != audit.Genesis {
		t.Fatal("entries are not chained")
	}
	p, _ = l.Read(ctx, 4, 2)
	if len(p.Entries) != 1 || p.Entries[0].Seq != 5 || p.Next != 0 {
		t.Fatalf("last page: %+v", p)
	}
	if p.Entries[0].Actor != "op5" || p.Entries[0].Action != audit.ActionHoldApprove || !p.Entries[0].At.Equal(now) {
		t.Fatalf("entry: %+v", p.Entries[0])
	}
}

func edit(t *testing.T, st store.Store, seq int64, fn func(*audit.Entry)) {
	t.Helper()
	key := fmt.Sprintf("audit:e:%d", seq)
	b, err := st.Get(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	var e audit.Entry
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatal(err)
	}
	fn(&e)
	b, _ = json.Marshal(e)
	if err := st.Set(context.Background(), key, b, 0); err != nil {
		t.Fatal(err)
	}
}

func del(t *testing.T, st store.Store, seq int64) {
	t.Helper()
	if err := st.Delete(context.Background(), fmt.Sprintf("audit:e:%d", seq)); err != nil {
		t.Fatal(err)
	}
}

// prefixed gives each case its own key space in one store.
type prefixed struct {
	store.Store
	p string
}

func (s prefixed) Get(ctx context.Context, k string) ([]byte, error) { return s.Store.Get(ctx, s.p+k) }
func (s prefixed) Set(ctx context.Context, k string, v []byte, ttl time.Duration) error {
	return s.Store.Set(ctx, s.p+k, v, ttl)
}
func (s prefixed) SetNX(ctx context.Context, k string, v []byte, ttl time.Duration) (bool, error) {
	return s.Store.SetNX(ctx, s.p+k, v, ttl)
}
func (s prefixed) Delete(ctx context.Context, ks ...string) error {
	for i := range ks {
		ks[i] = s.p + ks[i]
	}
	return s.Store.Delete(ctx, ks...)
}
func (s prefixed) Update(ctx context.Context, k string, fn func([]byte, bool) ([]byte, error)) error {
	return s.Store.Update(ctx, s.p+k, fn)
}

// TestAnchorsCatchAConsistentRewrite: someone with write access to the
// store replaces the whole chain with one whose hashes all fit. Check
// cannot tell; the heads anchored outside the store can.
func TestAnchorsCatchAConsistentRewrite(t *testing.T) {
	ctx := context.Background()
	at := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	chain := func(actor string, n int) ([]audit.Entry, audit.Head) {
		st := memory.New()
		l := audit.New(st, audit.Options{Now: func() time.Time { return at }})
		for i := range n {
			who := "alice"
			if i >= 2 {
				who = actor // entries 3 on are the ones rewritten
			}
			if err := l.Record(ctx, audit.ActionHoldApprove, who, map[string]any{"hold": "h1", "n": i}); err != nil {
				t.Fatal(err)
			}
		}
		p, err := l.Read(ctx, 0, 1000)
		if err != nil {
			t.Fatal(err)
		}
		return p.Entries, p.Head
	}
	genuine, head := chain("bob", 5)
	anchorOf := func(seq int64) audit.Anchor {
		return audit.Anchor{Seq: seq, Hash: genuine[seq-1].Hash, At: at.Add(time.Duration(seq) * time.Minute), By: "keywatch-1"}
	}
	anchors := []audit.Anchor{anchorOf(4), anchorOf(2)} // any order
	if r := audit.CheckAnchored(genuine, head, anchors); !r.OK || r.Anchors != 2 || !r.AnchoredAt.Equal(at.Add(4*time.Minute)) {
		t.Fatalf("the real chain: %+v", r)
	}
	if r := audit.CheckAnchored(genuine, head, nil); !r.OK || r.Anchors != 0 {
		t.Fatalf("no anchors: %+v", r)
	}

	forged, fhead := chain("mallory", 5) // bob's approvals become mallory's
	if r := audit.Check(forged, fhead); !r.OK {
		t.Fatalf("the forged chain should fit together: %+v", r)
	}
	r := audit.CheckAnchored(forged, fhead, anchors)
	if r.OK || r.FirstBad != 3 || !strings.Contains(r.Problem, "keywatch-1 anchored entry 4 as "+genuine[3].Hash[:16]) ||
		!strings.Contains(r.Problem, "the rewrite begins between entries 3 and 4") {
		t.Fatalf("rewritten chain: %+v", r)
	}

	short, shead := chain("bob", 3) // the last two entries dropped, the head moved back
	r = audit.CheckAnchored(short, shead, anchors)
	if r.OK || r.FirstBad != 3 || !strings.Contains(r.Problem, "the log ends at entry 3, but keywatch-1 anchored entry 4") {
		t.Fatalf("truncated chain: %+v", r)
	}

	r = audit.CheckAgainst(genuine, head, nil, nil)
	if !r.OK || r.Unanchored != "no head has been anchored yet" || !strings.Contains(r.String(), "NOT checked against anchored heads") {
		t.Fatalf("no anchors at all: %+v", r)
	}
}
