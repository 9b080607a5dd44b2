package watchers_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keywatch/keywatch/chains"
	kwe "github.com/keywatch/keywatch/chains/ethereum"
	"github.com/keywatch/keywatch/internal/simchain"
	"github.com/keywatch/keywatch/internal/testenv"
	"github.com/keywatch/keywatch/store"
	"github.com/keywatch/keywatch/watchers"
)

// behind is a node one block behind the chain's head, as one of two load
// balanced providers often is.
type behind struct{ *kwe.Source }

func (b behind) Head(ctx context.Context) (uint64, error) {
	h, err := b.Source.Head(ctx)
	if err != nil || h == 0 {
		return h, err
	}
	return h - 1, nil
}

func (b behind) BlockAt(ctx context.Context, n uint64) (chains.Block, error) {
	h, err := b.Head(ctx)
	if err != nil {
		return chains.Block{}, err
	}
	if n > h {
		return chains.Block{}, chains.ErrNoBlock
	}
	return b.Source.BlockAt(ctx, n)
}

// darkStore is a store an instance loses its connection to when dark is set.
type darkStore struct {
	store.Store
	dark atomic.Bool
}

var errDark = errors.New("connection refused")

func (d *darkStore) Get(ctx context.Context, key string) ([]byte, error) {
	if d.dark.Load() {
		return nil, errDark
	}
	return d.Store.Get(ctx, key)
}

func (d *darkStore) Set(ctx context.Context, key string, v []byte, ttl time.Duration) error {
	if d.dark.Load() {
		return errDark
	}
	return d.Store.Set(ctx, key, v, ttl)
}

func (d *darkStore) Update(ctx context.Context, key string, fn func([]byte, bool) ([]byte, error)) error {
	if d.dark.Load() {
		return errDark
	}
	return d.Store.Update(ctx, key, fn)
}

// instance is one keywatch process following the chain.
type instance struct {
	name    string
	f       *watchers.Follower
	metrics *watchers.Metrics
	stop    context.CancelFunc
	done    chan struct{}
}

func (e *env) instance(name string, src watchers.Source, st store.Store, ttl time.Duration) *instance {
	e.t.Helper()
	one := uint64(1)
	m := watchers.NewMetrics(nil)
	f, err := watchers.New(src, watchers.Options{Chain: "eth", Confirmations: 2, ReorgDepth: 12,
		StartBlock: &one, Store: st, Deliver: e.rec.deliver, PollInterval: 20 * time.Millisecond,
		MaxBackoff: 50 * time.Millisecond, Metrics: m,
		Lease: &watchers.LeaseOptions{Instance: name, TTL: ttl}})
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(e.ctx)
	in := &instance{name: name, f: f, metrics: m, stop: cancel, done: make(chan struct{})}
	go func() {
		defer close(in.done)
		if err := f.Run(ctx); err != nil {
			e.t.Errorf("%s: Run: %v", name, err)
		}
	}()
	e.t.Cleanup(func() { cancel(); <-in.done })
	return in
}

// status is what the instance's heartbeat would say of the chain.
func (in *instance) status() watchers.ChainStatus {
	for _, s := range in.metrics.Status() {
		if s.Chain == "eth" {
			return s
		}
	}
	return watchers.ChainStatus{}
}

func (in *instance) following() bool {
	s := in.status()
	return !s.Standby && !s.FollowingSince.IsZero()
}

func (e *env) lagging() watchers.Source {
	return behind{kwe.NewSource(e.chain.Client, kwe.Options{Chain: "eth", NativeSymbol: "ETH",
		Wallets: []kwe.Wallet{{Name: "hot", Address: simchain.Addr("hot"), Role: "hot"}}})}
}

// delivered waits until the outflow id was delivered pending and confirmed.
func (e *env) delivered(id string) {
	e.t.Helper()
	e.chain.Backend.Commit() // depth 2: confirmed
	testenv.WaitFor(e.t, 10*time.Second, func() bool { return e.rec.count(id, chains.StatusConfirmed) == 1 },
		"outflow "+id+" delivered confirmed")
}

// onceEach checks that each outflow was delivered confirmed once, pending
// at most once (not at all when its block was already deep when first
// read), and never retracted.
func (e *env) onceEach(ids ...string) {
	e.t.Helper()
	for _, id := range ids {
		if p, c, r := e.rec.count(id, chains.StatusPending), e.rec.count(id, chains.StatusConfirmed), e.rec.count(id, chains.StatusRetracted); p > 1 || c != 1 || r != 0 {
			e.t.Errorf("%s delivered pending %d, confirmed %d, retracted %d times; want at most 1, 1, 0: %v", id, p, c, r, e.rec.seen())
		}
	}
}

// Two instances share the store; the second one's node is a block behind.
// Without the lease it would read the first one's checkpoint, find the
// newest block missing from its node, and retract that block's events.
func TestLeaseOneInstanceFollowsTheChain(t *testing.T) {
	e := newEnv(t)
	a := e.instance("a", e.src, e.st, time.Second)
	testenv.WaitFor(t, 5*time.Second, a.following, "instance a follows the chain")
	b := e.instance("b", e.lagging(), e.st, time.Second)
	testenv.WaitFor(t, 5*time.Second, func() bool { return b.status().Standby }, "instance b stands by")
	if got := b.status().FollowedBy; got != "a" {
		t.Fatalf("b says the chain is followed by %q, want a", got)
	}

	var ids []string
	for range 4 {
		id, _ := e.pay()
		e.delivered(id)
		ids = append(ids, id)
	}
	e.onceEach(ids...)
	if !b.status().Standby || b.status().Processed != 0 {
		t.Fatalf("b followed the chain while a held the lease: %+v", b.status())
	}
}

// A clean stop releases the lease: the standby takes over at once, from the
// checkpoint, and nothing is delivered twice or missed.
func TestLeaseHandoverOnStop(t *testing.T) {
	e := newEnv(t)
	a := e.instance("a", e.src, e.st, time.Minute) // a crash would take a minute to notice
	testenv.WaitFor(t, 5*time.Second, a.following, "instance a follows the chain")
	b := e.instance("b", e.src, e.st, time.Minute)
	testenv.WaitFor(t, 5*time.Second, func() bool { return b.status().Standby }, "instance b stands by")
	first, _ := e.pay()
	e.delivered(first)

	a.stop()
	<-a.done
	// Paid while nobody follows: b must pick it up from the checkpoint.
	second, _ := e.pay()
	testenv.WaitFor(t, 10*time.Second, b.following, "instance b takes over well before the minute-long lease would run out")
	e.delivered(second)
	third, _ := e.pay()
	e.delivered(third)
	e.onceEach(first, second, third)
}

// An instance that loses its store stops following when its lease runs out,
// and the standby takes over after that, not before.
func TestLeaseTakeoverWhenTheHolderGoesDark(t *testing.T) {
	e := newEnv(t)
	dark := &darkStore{Store: e.st}
	a := e.instance("a", e.src, dark, 600*time.Millisecond)
	testenv.WaitFor(t, 5*time.Second, a.following, "instance a follows the chain")
	b := e.instance("b", e.src, e.st, 600*time.Millisecond)
	testenv.WaitFor(t, 5*time.Second, func() bool { return b.status().Standby }, "instance b stands by")
	first, _ := e.pay()
	e.delivered(first)

	dark.dark.Store(true)
	lost := time.Now()
	second, _ := e.pay()
	testenv.WaitFor(t, 10*time.Second, b.following, "instance b takes over once a's lease ran out")
	if waited := time.Since(lost); waited < 400*time.Millisecond {
		t.Fatalf("b took over %s after a lost the store, before a's 600ms lease could run out", waited)
	}
	e.delivered(second)
	e.onceEach(first, second)
	if a.status().Processed >= b.status().Processed {
		t.Fatalf("a kept up without its store: a %+v, b %+v", a.status(), b.status())
	}

	// a's store comes back: it finds b holding the lease and stands by.
	dark.dark.Store(false)
	testenv.WaitFor(t, 5*time.Second, func() bool { return a.status().Standby && a.status().FollowedBy == "b" }, "instance a stands by for b")
	third, _ := e.pay()
	e.delivered(third)
	e.onceEach(first, second, third)
}

// A lease record that does not parse names no live holder: the chain is
// taken over, not left unfollowed.
func TestLeaseTakesOverACorruptRecord(t *testing.T) {
	e := newEnv(t)
	if err := e.st.Set(e.ctx, "watch:eth:lease", []byte("{"), 0); err != nil {
		t.Fatal(err)
	}
	a := e.instance("a", e.src, e.st, time.Second)
	testenv.WaitFor(t, 5*time.Second, a.following, "instance a follows the chain")
	id, _ := e.pay()
	e.delivered(id)
	e.onceEach(id)
}
