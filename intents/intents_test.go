package intents_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/keywatch/keywatch/chains"
	"github.com/keywatch/keywatch/intents"
	"github.com/keywatch/keywatch/internal/testenv"
	"github.com/keywatch/keywatch/store"
	"github.com/keywatch/keywatch/store/memory"
	"github.com/keywatch/keywatch/store/redis"
)

func amount(t *testing.T, s string) chains.Amount {
	t.Helper()
	a, err := chains.ParseAmount(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func outflow(t *testing.T, id, to, amt string) *chains.Event {
	return &chains.Event{ID: id, Chain: "eth", Wallet: "treasury-hot", Direction: chains.Out, To: to, Asset: "USDC", Amount: amount(t, amt)}
}

// stores runs a test on the memory store and on a real redis-server.
func stores(t *testing.T, run func(t *testing.T, st store.Store)) {
	t.Run("memory", func(t *testing.T) { run(t, memory.New()) })
	t.Run("redis", func(t *testing.T) {
		st, err := redis.Open(context.Background(), testenv.Redis(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		run(t, st)
	})
}

func TestReconcile(t *testing.T) { stores(t, testReconcile) }

func testReconcile(t *testing.T, st store.Store) {
	ctx := context.Background()
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	r := intents.New(st, clock)
	vendor := "0xB374907D35f61DE043bedb18eE35f7228C83C3E4"
	if err := r.Register(ctx, intents.Intent{ID: "w-1", Chain: "eth", Wallet: "treasury-hot", To: vendor, Asset: "USDC", Amount: amount(t, "25000"), Source: "screen"}); err != nil {
		t.Fatal(err)
	}
	m := intents.Match{Tolerance: 0.001, Window: time.Hour}
	cases := []struct {
		name string
		ev   *chains.Event
		want bool
	}{
		{"other destination", outflow(t, "e0", "0x0000000000000000000000000000000000000001", "25000"), false},
		{"other asset", func() *chains.Event { e := outflow(t, "e0", vendor, "25000"); e.Asset = "USDT"; return e }(), false},
		{"amount beyond tolerance", outflow(t, "e0", vendor, "24974.99"), false},
		{"amount within tolerance, lowercase address", outflow(t, "e1", "0xb374907d35f61de043bedb18ee35f7228c83c3e4", "24975"), true},
		{"the same event again (confirmed after pending)", outflow(t, "e1", vendor, "24975"), true},
		{"a second outflow: the intent is used", outflow(t, "e2", vendor, "25000"), false},
	}
	for _, c := range cases {
		in, ok, err := r.Reconcile(ctx, c.ev, m)
		if err != nil {
			t.Fatal(err)
		}
		if ok != c.want || (ok && in.ID != "w-1") {
			t.Errorf("%s: matched %v (%+v), want %v", c.name, ok, in, c.want)
		}
	}
	// A reorg retracts e1: the intent is free for the transaction's new block.
	if err := r.Release(ctx, outflow(t, "e1", vendor, "24975")); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := r.Reconcile(ctx, outflow(t, "e3", vendor, "25000"), m); !ok {
		t.Error("released intent not usable again")
	}
	// Past its window an intent explains nothing.
	if err := r.Register(ctx, intents.Intent{ID: "w-2", Chain: "eth", Wallet: "treasury-hot", To: vendor, Asset: "USDC", Amount: amount(t, "5")}); err != nil {
		t.Fatal(err)
	}
	now = now.Add(2 * time.Hour)
	if _, ok, _ := r.Reconcile(ctx, outflow(t, "e4", vendor, "5"), m); ok {
		t.Error("an intent past its window matched")
	}
}

func TestRegisterIsIdempotentAndValidates(t *testing.T) { stores(t, testRegister) }

func testRegister(t *testing.T, st store.Store) {
	ctx := context.Background()
	r := intents.New(st, nil)
	in := intents.Intent{ID: "w-1", Chain: "eth", Wallet: "hot", To: "0xab", Asset: "ETH", Amount: amount(t, "1")}
	for range 2 {
		if err := r.Register(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	if l, _ := r.List(ctx, "eth", "hot"); len(l) != 1 {
		t.Fatalf("%d intents after registering one twice", len(l))
	}
	other := in
	other.Amount = amount(t, "2")
	if err := r.Register(ctx, other); !errors.Is(err, intents.ErrInvalid) {
		t.Fatalf("reusing an id for another withdrawal: %v", err)
	}
	bad := in
	bad.ID, bad.Amount = "w-2", amount(t, "0")
	if err := r.Register(ctx, bad); !errors.Is(err, intents.ErrInvalid) {
		t.Fatalf("zero amount: %v", err)
	}
}

func TestOneIntentExplainsOneOutflowUnderContention(t *testing.T) { stores(t, testContention) }

func testContention(t *testing.T, st store.Store) {
	ctx := context.Background()
	r := intents.New(st, nil)
	if err := r.Register(ctx, intents.Intent{ID: "w-1", Chain: "eth", Wallet: "treasury-hot", To: "0xab", Asset: "USDC", Amount: amount(t, "10")}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, ok, err := r.Reconcile(ctx, outflow(t, "e"+string(rune('a'+i)), "0xab", "10"), intents.Match{})
			if err != nil {
				t.Error(err)
			}
			if ok {
				mu.Lock()
				wins++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if wins != 1 {
		t.Fatalf("%d outflows matched one intent", wins)
	}
}

// TestToleranceBoundsAreExact: a tolerance is a decimal share of the
// intent's amount, and an outflow exactly at its edge is within it, whatever
// the binary form of the share.
func TestToleranceBoundsAreExact(t *testing.T) {
	tests := []struct {
		tolerance float64
		intent    string
		outflow   string
		want      bool
	}{
		{0.03, "100", "97", true}, // 0.03 is a little under 3/100 as a float64
		{0.03, "100", "103", true},
		{0.03, "100", "96.99", false},
		{0.01, "100", "99", true},
		{0.01, "100", "98.99", false},
		{0.29, "100", "71", true},
		{0, "100", "100", true},
		{0, "100", "99.999999", false},
	}
	for _, tt := range tests {
		st := memory.New()
		r := intents.New(st, nil)
		ctx := context.Background()
		if err := r.Register(ctx, intents.Intent{ID: "w-1", Chain: "eth", Wallet: "treasury-hot", To: "0xab", Asset: "USDC", Amount: amount(t, tt.intent)}); err != nil {
			t.Fatal(err)
		}
		_, ok, err := r.Reconcile(ctx, outflow(t, "e1", "0xab", tt.outflow), intents.Match{Tolerance: tt.tolerance})
		if err != nil {
			t.Fatal(err)
		}
		if ok != tt.want {
			t.Errorf("tolerance %v, intent %s, outflow %s: matched %v, want %v", tt.tolerance, tt.intent, tt.outflow, ok, tt.want)
		}
		st.Close()
	}
}

// TestOldestIntentFirstTiesByID: of two intents that both explain an
// outflow, the older explains it; registered at the same instant, the one
// with the smaller id does, on every instance and every time.
func TestOldestIntentFirstTiesByID(t *testing.T) {
	at := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	for run := range 20 {
		st := memory.New()
		r := intents.New(st, func() time.Time { return at })
		ctx := context.Background()
		for _, id := range []string{"w-2", "w-1", "w-3"} {
			if err := r.Register(ctx, intents.Intent{ID: id, Chain: "eth", Wallet: "treasury-hot", To: "0xab", Asset: "USDC", Amount: amount(t, "10")}); err != nil {
				t.Fatal(err)
			}
		}
		if err := r.Register(ctx, intents.Intent{ID: "w-0", Chain: "eth", Wallet: "treasury-hot", To: "0xab", Asset: "USDC", Amount: amount(t, "10"), CreatedAt: at.Add(time.Second)}); err != nil {
			t.Fatal(err)
		}
		in, ok, err := r.Reconcile(ctx, outflow(t, "e1", "0xab", "10"), intents.Match{})
		if err != nil || !ok || in.ID != "w-1" {
			t.Fatalf("run %d: matched %q (%v, %v), want w-1", run, in.ID, ok, err)
		}
		st.Close()
	}
}
