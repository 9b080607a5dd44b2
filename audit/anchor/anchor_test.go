package anchor_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/keywatch/keywatch/audit"
	"github.com/keywatch/keywatch/audit/anchor"
	"github.com/keywatch/keywatch/internal/testenv"
)

// heads is an audit log whose head the test moves.
type heads struct {
	mu sync.Mutex
	h  audit.Head
}

func (l *heads) Head(context.Context) (audit.Head, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.h, nil
}

func (l *heads) set(seq int64, hash string) {
	l.mu.Lock()
	l.h = audit.Head{Seq: seq, Hash: hash}
	l.mu.Unlock()
}

// TestTwoInstancesAnchorEachHeadOnce: two instances anchor the same log;
// each head is stored once, with who anchored it and when; a head that did
// not change is not anchored again; nobody can delete an anchor or purge
// the stream.
func TestTwoInstancesAnchorEachHeadOnce(t *testing.T) {
	ctx := t.Context()
	_, js := testenv.NATS(t).JetStream(t)
	if _, err := anchor.Read(ctx, js); !errors.Is(err, anchor.ErrNoAnchors) {
		t.Fatalf("before any anchoring: %v, want ErrNoAnchors", err)
	}
	log := &heads{}
	log.set(1, "aaaa")
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	run := func(name string) {
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = anchor.Run(rctx, log, anchor.Options{JS: js, Prefix: "keywatch", Instance: name, Every: 20 * time.Millisecond,
				Now: func() time.Time { return now }})
		}()
		t.Cleanup(func() { cancel(); <-done })
	}
	run("keywatch-1")
	run("keywatch-2")
	count := func() uint64 {
		s, err := js.Stream(ctx, anchor.StreamName)
		if err != nil {
			return 0
		}
		info, err := s.Info(ctx)
		if err != nil {
			return 0
		}
		return info.State.Msgs
	}
	testenv.WaitFor(t, 10*time.Second, func() bool { return count() == 1 }, "the first head anchored")
	log.set(2, "bbbb")
	testenv.WaitFor(t, 10*time.Second, func() bool { return count() == 2 }, "the second head anchored")
	log.set(3, "cccc")
	testenv.WaitFor(t, 10*time.Second, func() bool { return count() == 3 }, "the third head anchored")

	got, err := anchor.Read(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("anchors %+v, want one per head", got)
	}
	for i, want := range []audit.Head{{Seq: 1, Hash: "aaaa"}, {Seq: 2, Hash: "bbbb"}, {Seq: 3, Hash: "cccc"}} {
		a := got[i]
		if a.Seq != want.Seq || a.Hash != want.Hash || !a.At.Equal(now) || (a.By != "keywatch-1" && a.By != "keywatch-2") {
			t.Errorf("anchor %d: %+v, want %+v", i, a, want)
		}
	}
	s, err := js.Stream(ctx, anchor.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteMsg(ctx, 1); err == nil {
		t.Error("an anchor could be deleted")
	}
	if err := s.Purge(ctx); err == nil {
		t.Error("the anchors could be purged")
	}
	if got, err := anchor.Read(ctx, js); err != nil || len(got) != 3 {
		t.Fatalf("after the attempts: %d anchors, %v", len(got), err)
	}
}
