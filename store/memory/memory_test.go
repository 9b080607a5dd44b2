package memory_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/keywatch/keywatch/store"
	"github.com/keywatch/keywatch/store/memory"
	"github.com/keywatch/keywatch/store/storetest"
)

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func TestConformance(t *testing.T) {
	var mu sync.Mutex
	clocks := map[*testing.T]*fakeClock{}
	clockFor := func(t *testing.T) *fakeClock {
		mu.Lock()
		defer mu.Unlock()
		c, ok := clocks[t]
		if !ok {
			c = &fakeClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
			clocks[t] = c
			t.Cleanup(func() {
				mu.Lock()
				defer mu.Unlock()
				delete(clocks, t)
			})
		}
		return c
	}
	storetest.Run(t, storetest.Harness{
		New: func(t *testing.T) store.Store {
			s := memory.New(memory.WithClock(clockFor(t).Now))
			t.Cleanup(func() { _ = s.Close() })
			return s
		},
		Advance: func(t *testing.T, d time.Duration) { clockFor(t).Advance(d) },
	})
}

// TestRealClock checks expiry against the default clock, with the suite's
// real-time path.
func TestRealClock(t *testing.T) {
	storetest.Run(t, storetest.Harness{
		New: func(t *testing.T) store.Store {
			s := memory.New()
			t.Cleanup(func() { _ = s.Close() })
			return s
		},
	})
}

func TestClosed(t *testing.T) {
	s := memory.New()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := s.Set(context.Background(), "k", []byte("v"), 0); !errors.Is(err, memory.ErrClosed) {
		t.Fatalf("Set after Close: %v, want ErrClosed", err)
	}
}

func TestWrongTypeError(t *testing.T) {
	ctx := context.Background()
	s := memory.New()
	if err := s.HSet(ctx, "h", "f", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "h"); !errors.Is(err, memory.ErrWrongType) {
		t.Fatalf("Get on a hash: %v, want ErrWrongType", err)
	}
}
