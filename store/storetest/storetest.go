// Package storetest is the conformance suite every store.Store backend
// passes, so domain code can rely on one behaviour whichever backend runs.
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, storetest.Harness{New: newStore, Advance: advance})
//	}
package storetest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/keywatch/keywatch/store"
)

// Harness tells Run how to make stores and move their time.
type Harness struct {
	// New returns a new, empty store for one subtest and registers its own
	// cleanup (which must tolerate the store having been closed already).
	// Subtests run in parallel, so stores from different calls must not
	// share keys.
	New func(t *testing.T) store.Store

	// Advance moves the clock of every store New made for t forward by d.
	// Leave it nil for a backend on real time: the suite then uses real
	// TTLs of about a second and waits for expiry by polling with a
	// deadline, and skips the checks that need time to jump.
	Advance func(t *testing.T, d time.Duration)

	// NewNamespaced, when set, returns a store whose keys live in the
	// given namespace of one shared database: stores with different
	// namespaces must not see each other's keys, and stores with the same
	// namespace must share them. Namespaces are fresh per subtest only if
	// the implementation makes them so (prefix them with t.Name(), say).
	NewNamespaced func(t *testing.T, namespace string) store.Store
}

const (
	// realTTL is the TTL used against a backend on real time: long enough
	// to read the key back before it expires on a loaded machine.
	realTTL = time.Second
	// fakeTTL is the TTL used when the harness moves time.
	fakeTTL = time.Hour
	// waitTimeout bounds every wait for a condition.
	waitTimeout = 10 * time.Second
)

// Run runs the conformance suite against stores made by h.New.
func Run(t *testing.T, h Harness) {
	t.Helper()
	if h.New == nil {
		t.Fatal("storetest: Harness.New is nil")
	}
	tests := []struct {
		name string
		fn   func(t *testing.T, h Harness)
	}{
		{"GetMissing", testGetMissing},
		{"SetGet", testSetGet},
		{"ValuesAreCopied", testValuesAreCopied},
		{"SetNX", testSetNX},
		{"Delete", testDelete},
		{"TTL", testTTL},
		{"SetNXTTL", testSetNXTTL},
		{"Update", testUpdate},
		{"UpdateFnError", testUpdateFnError},
		{"UpdateNilDeletes", testUpdateNilDeletes},
		{"UpdateKeepsTTL", testUpdateKeepsTTL},
		{"UpdateConcurrent", testUpdateConcurrent},
		{"Hash", testHash},
		{"HashEmptied", testHashEmptied},
		{"SortedSetRange", testSortedSetRange},
		{"SortedSetUpdateAndRemove", testSortedSetUpdateAndRemove},
		{"SortedSetScores", testSortedSetScores},
		{"List", testList},
		{"ListRange", testListRange},
		{"WrongKind", testWrongKind},
		{"KeyCharacters", testKeyCharacters},
		{"CanceledContext", testCanceledContext},
		{"PingAndClose", testPingAndClose},
		{"Namespaces", testNamespaces},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, h)
		})
	}
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// ttl is the TTL a subtest sets on keys it expects to expire.
func (h Harness) ttl() time.Duration {
	if h.Advance != nil {
		return fakeTTL
	}
	return realTTL
}

// expire moves time past ttl when the harness can; on real time it does
// nothing and the caller polls with eventually.
func (h Harness) expire(t *testing.T, ttl time.Duration) {
	t.Helper()
	if h.Advance != nil {
		h.Advance(t, ttl+time.Millisecond)
	}
}

// eventually polls cond until it holds or waitTimeout passes.
func eventually(t *testing.T, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, err := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s (last error: %v)", what, waitTimeout, err)
		}
		<-tick.C
	}
}

func mustGet(t *testing.T, s store.Store, key string) []byte {
	t.Helper()
	v, err := s.Get(ctxFor(t), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	return v
}

func wantValue(t *testing.T, s store.Store, key, want string) {
	t.Helper()
	if got := mustGet(t, s, key); string(got) != want {
		t.Fatalf("Get(%q) = %q, want %q", key, got, want)
	}
}

func wantNotFound(t *testing.T, s store.Store, key string) {
	t.Helper()
	v, err := s.Get(ctxFor(t), key)
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get(%q) = %q, %v; want ErrNotFound", key, v, err)
	}
}

func gone(s store.Store, ctx context.Context, key string) func() (bool, error) {
	return func() (bool, error) {
		_, err := s.Get(ctx, key)
		if errors.Is(err, store.ErrNotFound) {
			return true, nil
		}
		return false, err
	}
}

func must(t *testing.T, err error, what string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func testGetMissing(t *testing.T, h Harness) {
	s := h.New(t)
	wantNotFound(t, s, "missing")
	_, err := s.HGet(ctxFor(t), "missing", "f")
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("HGet on a missing key: %v, want ErrNotFound", err)
	}
}

func testSetGet(t *testing.T, h Harness) {
	ctx, s := ctxFor(t), h.New(t)
	tests := []struct {
		name  string
		value []byte
	}{
		{"text", []byte("hello")},
		{"json", []byte(`{"block":123,"hash":"0xabc"}`)},
		{"binary", []byte{0, 1, 2, 0xff, 0xfe, '\n', 0}},
		{"empty", []byte{}},
		{"large", bytes.Repeat([]byte("k"), 1<<20)},
	}
	for _, tc := range tests {
		key := "set-get:" + tc.name
		must(t, s.Set(ctx, key, tc.value, 0), "Set "+tc.name)
		got := mustGet(t, s, key)
		if !bytes.Equal(got, tc.value) {
			t.Errorf("%s: Get returned %d bytes, want %d equal bytes", tc.name, len(got), len(tc.value))
		}
	}
	must(t, s.Set(ctx, "set-get:text", []byte("replaced"), 0), "Set over a value")
	wantValue(t, s, "set-get:text", "replaced")
}

func testValuesAreCopied(t *testing.T, h Harness) {
	ctx, s := ctxFor(t), h.New(t)
	in := []byte("original")
	must(t, s.Set(ctx, "copy", in, 0), "Set")
	copy(in, "XXXXXXXX")
	out := mustGet(t, s, "copy")
	if string(out) != "original" {
		t.Fatalf("changing the slice given to Set changed the stored value to %q", out)
	}
	copy(out, "YYYYYYYY")
	wantValue(t, s, "copy", "original")

	field := []byte("hv")
	must(t, s.HSet(ctx, "copy-h", "f", field), "HSet")
	field[0] = 'X'
	hv, err := s.HGet(ctx, "copy-h", "f")
	must(t, err, "HGet")
	if string(hv) != "hv" {
		t.Fatalf("changing the slice given to HSet changed the field to %q", hv)
	}

	item := []byte("item")
	_, err = s.RPush(ctx, "copy-l", item)
	must(t, err, "RPush")
	item[0] = 'X'
	l, err := s.LRange(ctx, "copy-l", 0, -1)
	must(t, err, "LRange")
	if len(l) != 1 || string(l[0]) != "item" {
		t.Fatalf("changing the slice given to RPush changed the list to %q", l)
	}

	errAbort := errors.New("abort")
	err = s.Update(ctx, "copy", func(old []byte, found bool) ([]byte, error) {
		copy(old, "ZZZZZZZZ") // scribbling on old must not write through
		return nil, errAbort
	})
	if !errors.Is(err, errAbort) {
		t.Fatalf("Update returned %v, want fn's error", err)
	}
	wantValue(t, s, "copy", "original")
}

func testSetNX(t *testing.T, h Harness) {
	ctx, s := ctxFor(t), h.New(t)
	ok, err := s.SetNX(ctx, "lock", []byte("first"), 0)
	must(t, err, "SetNX on an absent key")
	if !ok {
		t.Fatal("SetNX on an absent key reported false")
	}
	ok, err = s.SetNX(ctx, "lock", []byte("second"), 0)
	must(t, err, "SetNX on a present key")
	if ok {
		t.Fatal("SetNX on a present key reported true")
	}
	wantValue(t, s, "lock", "first")
	must(t, s.Delete(ctx, "lock"), "Delete")
	ok, err = s.SetNX(ctx, "lock", []byte("third"), 0)
	must(t, err, "SetNX after Delete")
	if !ok {
		t.Fatal("SetNX after Delete reported false")
	}
	wantValue(t, s, "lock", "third")
}

func testDelete(t *testing.T, h Harness) {
	ctx, s := ctxFor(t), h.New(t)
	for _, k := range []string{"a", "b", "c"} {
		must(t, s.Set(ctx, k, []byte(k), 0), "Set "+k)
	}
	must(t, s.HSet(ctx, "h", "f", []byte("v")), "HSet")
	must(t, s.ZAdd(ctx, "z", 1, "m"), "ZAdd")
	_, err := s.RPush(ctx, "l", []byte("x"))
	must(t, err, "RPush")

	must(t, s.Delete(ctx, "a", "b", "absent", "h", "z", "l"), "Delete several, one absent")
	wantNotFound(t, s, "a")
	wantNotFound(t, s, "b")
	wantValue(t, s, "c", "c")
	if m, err := s.HGetAll(ctx, "h"); err != nil || len(m) != 0 {
		t.Fatalf("HGetAll after Delete = %v, %v; want empty", m, err)
	}
	if z, err := s.ZRangeByScore(ctx, "z", math.Inf(-1), math.Inf(1)); err != nil || len(z) != 0 {
		t.Fatalf("ZRangeByScore after Delete = %v, %v; want empty", z, err)
	}
	if n, err := s.LLen(ctx, "l"); err != nil || n != 0 {
		t.Fatalf("LLen after Delete = %d, %v; want 0", n, err)
	}
	must(t, s.Delete(ctx), "Delete with no keys")
	must(t, s.Delete(ctx, "absent"), "Delete of an absent key")
}

func testTTL(t *testing.T, h Harness) {
	ctx, s := ctxFor(t), h.New(t)
	ttl := h.ttl()
	must(t, s.Set(ctx, "short", []byte("v"), ttl), "Set with ttl")
	must(t, s.Set(ctx, "forever", []byte("v"), 0), "Set without ttl")
	must(t, s.Set(ctx, "cleared", []byte("v"), ttl), "Set with ttl")
	must(t, s.Set(ctx, "cleared", []byte("v2"), 0), "Set without ttl over a key with one")
	wantValue(t, s, "short", "v")

	if h.Advance != nil {
		h.Advance(t, ttl-time.Millisecond)
		wantValue(t, s, "short", "v")
		h.Advance(t, 2*time.Millisecond)
		wantNotFound(t, s, "short")
		h.Advance(t, 1000*time.Hour)
		wantValue(t, s, "forever", "v")
		wantValue(t, s, "cleared", "v2")
	} else {
		eventually(t, "key with a ttl expires", gone(s, ctx, "short"))
		// Once "short" (set first) has expired, "cleared" would have too
		// had the second Set kept its ttl.
		wantValue(t, s, "forever", "v")
		wantValue(t, s, "cleared", "v2")
	}
	// An expired key is absent for every purpose.
	ok, err := s.SetNX(ctx, "short", []byte("again"), 0)
	must(t, err, "SetNX on an expired key")
	if !ok {
		t.Fatal("SetNX on an expired key reported false")
	}
	wantValue(t, s, "short", "again")
}

func testSetNXTTL(t *testing.T, h Harness) {
	ctx, s := ctxFor(t), h.New(t)
	ttl := h.ttl()
	ok, err := s.SetNX(ctx, "lease", []byte("holder-1"), ttl)
	must(t, err, "SetNX with ttl")
	if !ok {
		t.Fatal("SetNX on an absent key reported false")
	}
	ok, err = s.SetNX(ctx, "lease", []byte("holder-2"), ttl)
	must(t, err, "SetNX while held")
	if ok {
		t.Fatal("SetNX took a lease that is still held")
	}
	h.expire(t, ttl)
	eventually(t, "lease expires", func() (bool, error) {
		return s.SetNX(ctx, "lease", []byte("holder-2"), ttl)
	})
	wantValue(t, s, "lease", "holder-2")
}

type counter struct {
	N int `json:"n"`
}

func increment(old []byte, found bool) ([]byte, error) {
	var c counter
	if found {
		if err := json.Unmarshal(old, &c); err != nil {
			return nil, fmt.Errorf("decode counter %q: %w", old, err)
		}
	}
	c.N++
	return json.Marshal(c)
}

func testUpdate(t *testing.T, h Harness) {
	ctx, s := ctxFor(t), h.New(t)
	var gotOld []byte
	var gotFound bool
	must(t, s.Update(ctx, "u", func(old []byte, found bool) ([]byte, error) {
		gotOld, gotFound = old, found
		return []byte("created"), nil
	}), "Update of an absent key")
	if gotFound || len(gotOld) != 0 {
		t.Fatalf("fn saw old=%q found=%v for an absent key; want empty, false", gotOld, gotFound)
	}
	wantValue(t, s, "u", "created")

	must(t, s.Update(ctx, "u", func(old []byte, found bool) ([]byte, error) {
		gotOld, gotFound = append([]byte(nil), old...), found
		return append(old, "+changed"...), nil
	}), "Update of a present key")
	if !gotFound || string(gotOld) != "created" {
		t.Fatalf("fn saw old=%q found=%v; want \"created\", true", gotOld, gotFound)
	}
	wantValue(t, s, "u", "created+changed")

	must(t, s.Update(ctx, "u", func([]byte, bool) ([]byte, error) { return []byte{}, nil }),
		"Update to an empty value")
	if v := mustGet(t, s, "u"); len(v) != 0 {
		t.Fatalf("after Update to an empty value Get = %q", v)
	}
}

func testUpdateFnError(t *testing.T, h Harness) {
	ctx, s := ctxFor(t), h.New(t)
	errRefused := errors.New("refused by policy")
	refuse := func([]byte, bool) ([]byte, error) { return []byte("must not be written"), errRefused }

	err := s.Update(ctx, "absent", refuse)
	if !errors.Is(err, errRefused) {
		t.Fatalf("Update returned %v, want fn's error", err)
	}
	wantNotFound(t, s, "absent")

	must(t, s.Set(ctx, "present", []byte("kept"), 0), "Set")
	err = s.Update(ctx, "present", refuse)
	if !errors.Is(err, errRefused) {
		t.Fatalf("Update returned %v, want fn's error", err)
	}
	wantValue(t, s, "present", "kept")
}

func testUpdateNilDeletes(t *testing.T, h Harness) {
	ctx, s := ctxFor(t), h.New(t)
	drop := func([]byte, bool) ([]byte, error) { return nil, nil }
	must(t, s.Set(ctx, "k", []byte("v"), 0), "Set")
	must(t, s.Update(ctx, "k", drop), "Update returning nil")
	wantNotFound(t, s, "k")
	must(t, s.Update(ctx, "never", drop), "Update returning nil for an absent key")
	wantNotFound(t, s, "never")
}

func testUpdateKeepsTTL(t *testing.T, h Harness) {
	ctx, s := ctxFor(t), h.New(t)
	ttl := h.ttl()
	must(t, s.Set(ctx, "window", []byte(`{"n":1}`), ttl), "Set with ttl")
	must(t, s.Update(ctx, "window", increment), "Update")
	wantValue(t, s, "window", `{"n":2}`)
	h.expire(t, ttl)
	eventually(t, "updated key keeps its ttl and expires", gone(s, ctx, "window"))

	// A key Update creates has no ttl.
	must(t, s.Update(ctx, "fresh", increment), "Update of an absent key")
	if h.Advance != nil {
		h.Advance(t, 1000*time.Hour)
		wantValue(t, s, "fresh", `{"n":1}`)
	}
}

func testUpdateConcurrent(t *testing.T, h Harness) {
	ctx, s := ctxFor(t), h.New(t)
	const workers = 50
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Go(func() {
			if err := s.Update(ctx, "counter", increment); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent Update: %v", err)
	}
	var c counter
	if err := json.Unmarshal(mustGet(t, s, "counter"), &c); err != nil {
		t.Fatalf("decode counter: %v", err)
	}
	if c.N != workers {
		t.Fatalf("after %d concurrent increments the counter is %d", workers, c.N)
	}
}

func testHash(t *testing.T, h Harness) {
	ctx, s := ctxFor(t), h.New(t)
	if m, err := s.HGetAll(ctx, "h"); err != nil || m == nil || len(m) != 0 {
		t.Fatalf("HGetAll of an absent key = %#v, %v; want an empty, non-nil map", m, err)
	}
	must(t, s.HSet(ctx, "h", "a", []byte("1")), "HSet a")
	must(t, s.HSet(ctx, "h", "b", []byte("2")), "HSet b")
	must(t, s.HSet(ctx, "h", "b", []byte("22")), "HSet b again")
	must(t, s.HSet(ctx, "h", "empty", []byte{}), "HSet empty")

	v, err := s.HGet(ctx, "h", "b")
	must(t, err, "HGet b")
	if string(v) != "22" {
		t.Fatalf("HGet b = %q, want 22", v)
	}
	if _, err := s.HGet(ctx, "h", "missing"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("HGet of a missing field: %v, want ErrNotFound", err)
	}
	m, err := s.HGetAll(ctx, "h")
	must(t, err, "HGetAll")
	want := map[string]string{"a": "1", "b": "22", "empty": ""}
	if len(m) != len(want) {
		t.Fatalf("HGetAll = %q, want %q", m, want)
	}
	for f, w := range want {
		if got, ok := m[f]; !ok || string(got) != w {
			t.Fatalf("HGetAll = %q, want %q", m, want)
		}
	}
	must(t, s.HDel(ctx, "h", "a", "missing"), "HDel a and a missing field")
	if _, err := s.HGet(ctx, "h", "a"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("HGet after HDel: %v, want ErrNotFound", err)
	}
	must(t, s.HDel(ctx, "h"), "HDel with no fields")
	must(t, s.HDel(ctx, "absent", "f"), "HDel on an absent key")
	if m, _ := s.HGetAll(ctx, "h"); len(m) != 2 {
		t.Fatalf("HGetAll after HDel = %q, want fields b and empty", m)
	}
}

func testHashEmptied(t *testing.T, h Harness) {
	ctx, s := ctxFor(t), h.New(t)
	must(t, s.HSet(ctx, "h", "only", []byte("v")), "HSet")
	must(t, s.HDel(ctx, "h", "only"), "HDel")
	// Like Redis, a hash with no fields left is no key at all.
	ok, err := s.SetNX(ctx, "h", []byte("now a string"), 0)
	must(t, err, "SetNX on an emptied hash")
	if !ok {
		t.Fatal("SetNX on an emptied hash reported false: the empty hash still exists")
	}
}

func zMembers(zs []store.ZEntry) []string {
	out := make([]string, len(zs))
	for i, z := range zs {
		out[i] = z.Member
	}
	return out
}

func testSortedSetRange(t *testing.T, h Harness) {
	ctx, s := ctxFor(t), h.New(t)
	entries := []store.ZEntry{
		{Member: "e", Score: 5}, {Member: "a", Score: 1}, {Member: "c", Score: 3},
		{Member: "b", Score: 2}, {Member: "d", Score: 4}, {Member: "neg", Score: -10},
		{Member: "tie-b", Score: 3}, {Member: "tie-a", Score: 3},
	}
	for _, e := range entries {
		must(t, s.ZAdd(ctx, "z", e.Score, e.Member), "ZAdd "+e.Member)
	}
	inf := math.Inf(1)
	tests := []struct {
		name     string
		min, max float64
		want     []string
	}{
		{"all", math.Inf(-1), inf, []string{"neg", "a", "b", "c", "tie-a", "tie-b", "d", "e"}},
		{"inclusive bounds", 2, 4, []string{"b", "c", "tie-a", "tie-b", "d"}},
		{"single score", 3, 3, []string{"c", "tie-a", "tie-b"}},
		{"up to", math.Inf(-1), 1, []string{"neg", "a"}},
		{"from", 4, inf, []string{"d", "e"}},
		{"between scores", 1.5, 1.9, nil},
		{"min above max", 4, 2, nil},
		{"fractional bounds", 0.5, 2.5, []string{"a", "b"}},
	}
	for _, tc := range tests {
		got, err := s.ZRangeByScore(ctx, "z", tc.min, tc.max)
		must(t, err, "ZRangeByScore "+tc.name)
		if !slices.Equal(zMembers(got), tc.want) && !(len(got) == 0 && len(tc.want) == 0) {
			t.Errorf("%s: ZRangeByScore(%v, %v) = %q, want %q", tc.name, tc.min, tc.max, zMembers(got), tc.want)
		}
		for _, z := range got {
			for _, e := range entries {
				if e.Member == z.Member && e.Score != z.Score {
					t.Errorf("%s: %s has score %v, want %v", tc.name, z.Member, z.Score, e.Score)
				}
			}
		}
	}
	got, err := s.ZRangeByScore(ctx, "absent", math.Inf(-1), inf)
	if err != nil || len(got) != 0 {
		t.Fatalf("ZRangeByScore of an absent key = %v, %v; want empty", got, err)
	}
}

func testSortedSetUpdateAndRemove(t *testing.T, h Harness) {
	ctx, s := ctxFor(t), h.New(t)
	for i, m := range []string{"t1", "t2", "t3", "t4", "t5"} {
		must(t, s.ZAdd(ctx, "z", float64(i+1)*10, m), "ZAdd "+m)
	}
	must(t, s.ZAdd(ctx, "z", 35, "t1"), "ZAdd of an existing member")
	got, err := s.ZRangeByScore(ctx, "z", math.Inf(-1), math.Inf(1))
	must(t, err, "ZRangeByScore")
	if want := []string{"t2", "t3", "t1", "t4", "t5"}; !slices.Equal(zMembers(got), want) {
		t.Fatalf("after moving t1 to 35: %q, want %q", zMembers(got), want)
	}

	must(t, s.ZRem(ctx, "z", "t3", "missing"), "ZRem")
	must(t, s.ZRem(ctx, "z"), "ZRem with no members")
	must(t, s.ZRem(ctx, "absent", "m"), "ZRem on an absent key")

	n, err := s.ZRemRangeByScore(ctx, "z", 20, 40)
	must(t, err, "ZRemRangeByScore")
	if n != 3 { // t2 (20), t1 (35), t4 (40)
		t.Fatalf("ZRemRangeByScore(20, 40) removed %d, want 3", n)
	}
	got, _ = s.ZRangeByScore(ctx, "z", math.Inf(-1), math.Inf(1))
	if want := []string{"t5"}; !slices.Equal(zMembers(got), want) {
		t.Fatalf("after removals: %q, want %q", zMembers(got), want)
	}
	n, err = s.ZRemRangeByScore(ctx, "z", math.Inf(-1), math.Inf(1))
	must(t, err, "ZRemRangeByScore over everything")
	if n != 1 {
		t.Fatalf("ZRemRangeByScore(-Inf, +Inf) removed %d, want 1", n)
	}
	n, err = s.ZRemRangeByScore(ctx, "absent", 0, 1)
	if err != nil || n != 0 {
		t.Fatalf("ZRemRangeByScore on an absent key = %d, %v; want 0", n, err)
	}
	// An emptied sorted set is no key at all.
	ok, err := s.SetNX(ctx, "z", []byte("x"), 0)
	if err != nil || !ok {
		t.Fatalf("SetNX on an emptied sorted set = %v, %v; want true", ok, err)
	}
}

func testSortedSetScores(t *testing.T, h Harness) {
	ctx, s := ctxFor(t), h.New(t)
	scores := map[string]float64{
		"unix-ms":  1764400000123,
		"tenth":    0.1,
		"tiny":     1e-9,
		"negative": -2.5,
		"huge":     1.7976931348623157e308,
		"plus-inf": math.Inf(1),
		"min-inf":  math.Inf(-1),
		"zero":     0,
	}
	for m, sc := range scores {
		must(t, s.ZAdd(ctx, "z", sc, m), "ZAdd "+m)
	}
	got, err := s.ZRangeByScore(ctx, "z", math.Inf(-1), math.Inf(1))
	must(t, err, "ZRangeByScore")
	if len(got) != len(scores) {
		t.Fatalf("got %d members, want %d: %v", len(got), len(scores), got)
	}
	for i, z := range got {
		if z.Score != scores[z.Member] {
			t.Errorf("%s: score %v, want exactly %v", z.Member, z.Score, scores[z.Member])
		}
		if i > 0 && got[i-1].Score > z.Score {
			t.Errorf("not in score order: %v", got)
		}
	}
	if got[0].Member != "min-inf" || got[len(got)-1].Member != "plus-inf" {
		t.Errorf("infinite scores not at the ends: %v", got)
	}
	only, err := s.ZRangeByScore(ctx, "z", math.Inf(1), math.Inf(1))
	must(t, err, "ZRangeByScore(+Inf, +Inf)")
	if len(only) != 1 || only[0].Member != "plus-inf" {
		t.Errorf("ZRangeByScore(+Inf, +Inf) = %v, want plus-inf", only)
	}
	if err := s.ZAdd(ctx, "z", math.NaN(), "nan"); err == nil {
		t.Error("ZAdd with a NaN score succeeded")
	}
}

func testList(t *testing.T, h Harness) {
	ctx, s := ctxFor(t), h.New(t)
	if n, err := s.LLen(ctx, "l"); err != nil || n != 0 {
		t.Fatalf("LLen of an absent key = %d, %v; want 0", n, err)
	}
	if l, err := s.LRange(ctx, "l", 0, -1); err != nil || len(l) != 0 {
		t.Fatalf("LRange of an absent key = %q, %v; want empty", l, err)
	}
	n, err := s.RPush(ctx, "l", []byte("a"))
	must(t, err, "RPush a")
	if n != 1 {
		t.Fatalf("RPush returned length %d, want 1", n)
	}
	n, err = s.RPush(ctx, "l", []byte("b"), []byte("c"), []byte{})
	must(t, err, "RPush b c ''")
	if n != 4 {
		t.Fatalf("RPush returned length %d, want 4", n)
	}
	n, err = s.RPush(ctx, "l")
	must(t, err, "RPush with no values")
	if n != 4 {
		t.Fatalf("RPush with no values returned %d, want the length 4", n)
	}
	if n, err := s.LLen(ctx, "l"); err != nil || n != 4 {
		t.Fatalf("LLen = %d, %v; want 4", n, err)
	}
	if n, err := s.RPush(ctx, "never", nil...); err != nil || n != 0 {
		t.Fatalf("RPush with no values on an absent key = %d, %v; want 0", n, err)
	}
}

func testListRange(t *testing.T, h Harness) {
	ctx, s := ctxFor(t), h.New(t)
	for _, v := range []string{"a", "b", "c", "d", "e"} {
		_, err := s.RPush(ctx, "l", []byte(v))
		must(t, err, "RPush "+v)
	}
	tests := []struct {
		start, stop int64
		want        string
	}{
		{0, -1, "abcde"},
		{0, 0, "a"},
		{1, 3, "bcd"},
		{-2, -1, "de"},
		{-1, -1, "e"},
		{-3, 3, "cd"},
		{2, 100, "cde"},
		{-100, 1, "ab"},
		{-100, 100, "abcde"},
		{3, 1, ""},
		{5, 10, ""},
		{-1, -2, ""},
		{0, -6, ""},
	}
	for _, tc := range tests {
		got, err := s.LRange(ctx, "l", tc.start, tc.stop)
		must(t, err, fmt.Sprintf("LRange(%d, %d)", tc.start, tc.stop))
		if string(bytes.Join(got, nil)) != tc.want || len(got) != len(tc.want) {
			t.Errorf("LRange(%d, %d) = %q, want %q", tc.start, tc.stop, got, tc.want)
		}
	}
}

func testWrongKind(t *testing.T, h Harness) {
	ctx, s := ctxFor(t), h.New(t)
	must(t, s.HSet(ctx, "hash", "f", []byte("v")), "HSet")
	must(t, s.Set(ctx, "string", []byte("v"), 0), "Set")

	if _, err := s.Get(ctx, "hash"); err == nil || errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get on a hash: %v, want a wrong-kind error", err)
	}
	if err := s.Update(ctx, "hash", increment); err == nil {
		t.Error("Update on a hash succeeded")
	}
	if _, err := s.RPush(ctx, "string", []byte("x")); err == nil {
		t.Error("RPush on a string succeeded")
	}
	if err := s.ZAdd(ctx, "hash", 1, "m"); err == nil {
		t.Error("ZAdd on a hash succeeded")
	}
	if _, err := s.HGet(ctx, "string", "f"); err == nil || errors.Is(err, store.ErrNotFound) {
		t.Errorf("HGet on a string: %v, want a wrong-kind error", err)
	}
	// Set replaces whatever the key held.
	must(t, s.Set(ctx, "hash", []byte("now a string"), 0), "Set over a hash")
	wantValue(t, s, "hash", "now a string")
}

func testKeyCharacters(t *testing.T, h Harness) {
	ctx, s := ctxFor(t), h.New(t)
	keys := []string{"checkpoint:eth:1", "with space", "ключ", "a/b\\c", "*", "{tag}", "x\ny"}
	for i, k := range keys {
		must(t, s.Set(ctx, k, []byte{byte(i)}, 0), fmt.Sprintf("Set %q", k))
	}
	for i, k := range keys {
		if v := mustGet(t, s, k); len(v) != 1 || v[0] != byte(i) {
			t.Errorf("Get(%q) = %v, want [%d]", k, v, i)
		}
	}
}

func testCanceledContext(t *testing.T, h Harness) {
	s := h.New(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := s.Set(ctx, "k", []byte("v"), 0); !errors.Is(err, context.Canceled) {
		t.Errorf("Set with a canceled context: %v, want context.Canceled", err)
	}
	if _, err := s.Get(ctx, "k"); !errors.Is(err, context.Canceled) {
		t.Errorf("Get with a canceled context: %v, want context.Canceled", err)
	}
	called := false
	err := s.Update(ctx, "k", func([]byte, bool) ([]byte, error) { called = true; return []byte("v"), nil })
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Update with a canceled context: %v, want context.Canceled", err)
	}
	if called {
		t.Error("Update ran fn with a canceled context")
	}
	wantNotFound(t, s, "k")
}

func testPingAndClose(t *testing.T, h Harness) {
	s := h.New(t)
	must(t, s.Ping(ctxFor(t)), "Ping")
	must(t, s.Close(), "Close")
	if err := s.Ping(ctxFor(t)); err == nil {
		t.Error("Ping after Close succeeded")
	}
	if _, err := s.Get(ctxFor(t), "k"); err == nil || errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get after Close: %v, want an error other than ErrNotFound", err)
	}
}

func testNamespaces(t *testing.T, h Harness) {
	if h.NewNamespaced == nil {
		t.Skip("backend has no namespaces")
	}
	ctx := ctxFor(t)
	a, b, a2 := h.NewNamespaced(t, "a"), h.NewNamespaced(t, "b"), h.NewNamespaced(t, "a")

	must(t, a.Set(ctx, "k", []byte("from a"), 0), "Set in a")
	wantNotFound(t, b, "k")
	wantValue(t, a2, "k", "from a")
	must(t, b.Set(ctx, "k", []byte("from b"), 0), "Set in b")
	wantValue(t, a, "k", "from a")
	must(t, b.Delete(ctx, "k"), "Delete in b")
	wantValue(t, a, "k", "from a")

	must(t, a.HSet(ctx, "h", "f", []byte("v")), "HSet in a")
	if m, err := b.HGetAll(ctx, "h"); err != nil || len(m) != 0 {
		t.Errorf("b sees a's hash: %q, %v", m, err)
	}
	must(t, a.ZAdd(ctx, "z", 1, "m"), "ZAdd in a")
	if z, err := b.ZRangeByScore(ctx, "z", math.Inf(-1), math.Inf(1)); err != nil || len(z) != 0 {
		t.Errorf("b sees a's sorted set: %v, %v", z, err)
	}
	_, err := a.RPush(ctx, "l", []byte("x"))
	must(t, err, "RPush in a")
	if n, err := b.LLen(ctx, "l"); err != nil || n != 0 {
		t.Errorf("b sees a's list: %d, %v", n, err)
	}
	must(t, b.Update(ctx, "k", func(_ []byte, found bool) ([]byte, error) {
		if found {
			return nil, errors.New("b's Update saw a's key")
		}
		return nil, nil
	}), "Update in b")
	ok, err := b.SetNX(ctx, "k", []byte("b's own"), 0)
	if err != nil || !ok {
		t.Errorf("SetNX in b of a key only a has = %v, %v; want true", ok, err)
	}
	wantValue(t, a, "k", "from a")
}
