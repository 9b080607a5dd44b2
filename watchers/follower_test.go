package watchers_test

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/keywatch/keywatch/chains"
	kwe "github.com/keywatch/keywatch/chains/ethereum"
	"github.com/keywatch/keywatch/internal/simchain"
	"github.com/keywatch/keywatch/internal/testenv"
	"github.com/keywatch/keywatch/store"
	"github.com/keywatch/keywatch/store/memory"
	"github.com/keywatch/keywatch/watchers"
)

// recorder collects delivered events.
type recorder struct {
	mu     sync.Mutex
	events []chains.Event
	fail   atomic.Bool
}

func (r *recorder) deliver(_ context.Context, evs []chains.Event) error {
	if r.fail.Load() {
		return errors.New("downstream unavailable")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, evs...)
	return nil
}

// seen lists "<status> <id> @<block>" in delivery order.
func (r *recorder) seen() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, len(r.events))
	for i, e := range r.events {
		out[i] = fmt.Sprintf("%s %s @%d", e.Status, e.ID, e.Block)
	}
	return out
}

func (r *recorder) count(id string, status chains.Status) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, e := range r.events {
		if e.ID == id && e.Status == status {
			n++
		}
	}
	return n
}

type env struct {
	t     *testing.T
	ctx   context.Context
	chain *simchain.Chain
	src   *kwe.Source
	st    store.Store
	rec   *recorder
}

func newEnv(t *testing.T) *env {
	t.Helper()
	c := simchain.New(map[string]int64{"hot": 1000, "outsider": 10}, nil)
	t.Cleanup(c.Close)
	return &env{t: t, ctx: context.Background(), chain: c, st: memory.New(), rec: &recorder{},
		src: kwe.NewSource(c.Client, kwe.Options{Chain: "eth", NativeSymbol: "ETH",
			Wallets: []kwe.Wallet{{Name: "hot", Address: simchain.Addr("hot"), Role: "hot"}}})}
}

func (e *env) follower(client kwe.Client, conf uint64) *watchers.Follower {
	e.t.Helper()
	src := e.src
	if client != nil {
		src = kwe.NewSource(client, kwe.Options{Chain: "eth", NativeSymbol: "ETH",
			Wallets: []kwe.Wallet{{Name: "hot", Address: simchain.Addr("hot"), Role: "hot"}}})
	}
	one := uint64(1)
	f, err := watchers.New(src, watchers.Options{Chain: "eth", Confirmations: conf, ReorgDepth: conf + 10,
		StartBlock: &one, Store: e.st, Deliver: e.rec.deliver, PollInterval: 20 * time.Millisecond, MaxBackoff: 50 * time.Millisecond})
	if err != nil {
		e.t.Fatal(err)
	}
	return f
}

// pay sends 1 ETH from hot and returns the event id of its outflow.
func (e *env) pay() (string, *types.Receipt) {
	e.t.Helper()
	to := simchain.Addr("vendor")
	r, err := e.chain.Send(e.ctx, "hot", &to, simchain.Ether(1), nil)
	if err != nil {
		e.t.Fatal(err)
	}
	return "eth:" + r.TxHash.Hex() + ":native", r
}

func (e *env) step(f *watchers.Follower) {
	e.t.Helper()
	if err := f.Step(e.ctx); err != nil {
		e.t.Fatal(err)
	}
}

func TestFollowerWaitsForConfirmations(t *testing.T) {
	e := newEnv(t)
	f := e.follower(nil, 3)
	id, r := e.pay()
	e.step(f)
	if e.rec.count(id, chains.StatusPending) != 1 || e.rec.count(id, chains.StatusConfirmed) != 0 {
		t.Fatalf("at depth 1: %v", e.rec.seen())
	}
	e.chain.Backend.Commit() // depth 2
	e.step(f)
	if e.rec.count(id, chains.StatusConfirmed) != 0 {
		t.Fatalf("confirmed at depth 2 of 3: %v", e.rec.seen())
	}
	e.chain.Backend.Commit() // depth 3
	e.step(f)
	e.step(f) // a second pass changes nothing
	if e.rec.count(id, chains.StatusConfirmed) != 1 || e.rec.count(id, chains.StatusPending) != 1 {
		t.Fatalf("at depth 3: %v", e.rec.seen())
	}
	h, ok, err := f.Checkpoint(e.ctx)
	if err != nil || !ok || h != r.BlockNumber.Uint64()+2 {
		t.Fatalf("checkpoint = %d, %v, %v; want %d", h, ok, err, r.BlockNumber.Uint64()+2)
	}
}

func TestFollowerZeroConfirmationsDeliversConfirmedAtOnce(t *testing.T) {
	e := newEnv(t)
	f := e.follower(nil, 0)
	id, _ := e.pay()
	e.step(f)
	if got := e.rec.seen(); len(got) != 1 || e.rec.count(id, chains.StatusConfirmed) != 1 {
		t.Fatalf("got %v", got)
	}
}

func TestFollowerCatchesUpDeepBlocksAsConfirmed(t *testing.T) {
	e := newEnv(t)
	id, _ := e.pay()
	for range 5 {
		e.chain.Backend.Commit()
	}
	f := e.follower(nil, 3)
	e.step(f)
	if got := e.rec.seen(); len(got) != 1 || e.rec.count(id, chains.StatusConfirmed) != 1 {
		t.Fatalf("a block already 6 deep should be delivered once, confirmed: %v", got)
	}
}

func TestFollowerRetractsReorgedBlocks(t *testing.T) {
	e := newEnv(t)
	f := e.follower(nil, 3)
	e.chain.Backend.Commit()
	id, r := e.pay()
	e.step(f)
	if e.rec.count(id, chains.StatusPending) != 1 {
		t.Fatalf("before the reorg: %v", e.rec.seen())
	}
	parent, err := e.chain.Client.HeaderByNumber(e.ctx, new(big.Int).Sub(r.BlockNumber, big.NewInt(1)))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.chain.Backend.Fork(parent.Hash()); err != nil {
		t.Fatal(err)
	}
	// The other branch: an unrelated transfer, then one more block.
	to := simchain.Addr("vendor")
	if _, err := e.chain.Submit(e.ctx, "outsider", &to, simchain.Ether(1), nil); err != nil {
		t.Fatal(err)
	}
	e.chain.Backend.Commit()
	e.chain.Backend.Commit()
	e.step(f)
	if e.rec.count(id, chains.StatusRetracted) != 1 {
		t.Fatalf("the outflow's block left the chain but no retraction: %v", e.rec.seen())
	}
	// If the node put the transaction back in the new branch, it is pending
	// again, in its new block.
	if nr, err := e.chain.Client.TransactionReceipt(e.ctx, r.TxHash); err == nil {
		t.Logf("the new branch re-included the outflow in block %d", nr.BlockNumber)
		if nr.BlockHash == r.BlockHash {
			t.Fatalf("the reorg did not replace the block")
		}
		e.rec.mu.Lock()
		last := e.rec.events[len(e.rec.events)-1]
		e.rec.mu.Unlock()
		if last.ID != id || last.Status != chains.StatusPending || last.BlockHash != nr.BlockHash.Hex() {
			t.Fatalf("re-included outflow not delivered in its new block: %v", e.rec.seen())
		}
	}
}

func TestFollowerResumesFromCheckpointWithoutGapsOrRepeats(t *testing.T) {
	e := newEnv(t)
	first, _ := e.pay()
	e.step(e.follower(nil, 0))

	// While the watcher is down, three more outflows land in three blocks.
	var later []string
	for range 3 {
		id, _ := e.pay()
		later = append(later, id)
	}
	e.step(e.follower(nil, 0)) // a new process, the same store
	if e.rec.count(first, chains.StatusConfirmed) != 1 {
		t.Fatalf("the first outflow was delivered again after the restart: %v", e.rec.seen())
	}
	for _, id := range later {
		if e.rec.count(id, chains.StatusConfirmed) != 1 {
			t.Fatalf("outflow %s missed or repeated: %v", id, e.rec.seen())
		}
	}
}

// A checkpoint as the store holds it (written before this process started,
// by any version) is resumed from: blocks at or below its height are not
// delivered again.
func TestFollowerResumesFromAStoredCheckpoint(t *testing.T) {
	e := newEnv(t)
	before, _ := e.pay()
	height, err := e.src.Head(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.st.Set(e.ctx, "watch:eth:checkpoint", fmt.Appendf(nil, `{"height":%d,"started":true,"blocks":[]}`, height), 0); err != nil {
		t.Fatal(err)
	}
	after, _ := e.pay()
	f := e.follower(nil, 0)
	e.step(f)
	if e.rec.count(before, chains.StatusConfirmed) != 0 || e.rec.count(after, chains.StatusConfirmed) != 1 {
		t.Fatalf("resumed from the wrong block: %v", e.rec.seen())
	}
	if h, started, err := f.Checkpoint(e.ctx); err != nil || !started || h != height+1 {
		t.Fatalf("Checkpoint = %d, %v, %v; want %d, true, nil", h, started, err, height+1)
	}
}

// A checkpoint that does not parse stops the follower, saying which chain's
// checkpoint it is, rather than starting over and raising everything again.
func TestFollowerStopsOnACorruptCheckpoint(t *testing.T) {
	e := newEnv(t)
	if err := e.st.Set(e.ctx, "watch:eth:checkpoint", []byte("{"), 0); err != nil {
		t.Fatal(err)
	}
	e.pay()
	err := e.follower(nil, 0).Step(e.ctx)
	if !errors.Is(err, store.ErrCorrupt) || !strings.HasPrefix(err.Error(), "checkpoint of chain eth is corrupt") {
		t.Fatalf("Step = %v; want the corrupt checkpoint of chain eth", err)
	}
	if got := e.rec.seen(); len(got) != 0 {
		t.Fatalf("delivered %v from a corrupt checkpoint", got)
	}
}

func TestFollowerDoesNotAdvanceWhenDeliveryFails(t *testing.T) {
	e := newEnv(t)
	f := e.follower(nil, 0)
	e.step(f)
	before, _, _ := f.Checkpoint(e.ctx)
	id, _ := e.pay()
	e.rec.fail.Store(true)
	if err := f.Step(e.ctx); err == nil {
		t.Fatal("Step succeeded although delivery failed")
	}
	if h, _, _ := f.Checkpoint(e.ctx); h != before {
		t.Fatalf("checkpoint moved from %d to %d past an undelivered block", before, h)
	}
	e.rec.fail.Store(false)
	e.step(f)
	if e.rec.count(id, chains.StatusConfirmed) != 1 {
		t.Fatalf("the outflow was not delivered once after recovery: %v", e.rec.seen())
	}
}

// flaky is a client whose node can be switched off.
type flaky struct {
	kwe.Client
	down  atomic.Bool
	calls atomic.Int32
}

var errDown = errors.New("dial tcp 127.0.0.1:8545: connect: connection refused")

func (c *flaky) BlockNumber(ctx context.Context) (uint64, error) {
	c.calls.Add(1)
	if c.down.Load() {
		return 0, errDown
	}
	return c.Client.BlockNumber(ctx)
}

func (c *flaky) HeaderByNumber(ctx context.Context, n *big.Int) (*types.Header, error) {
	if c.down.Load() {
		return nil, errDown
	}
	return c.Client.HeaderByNumber(ctx, n)
}

func (c *flaky) BlockByHash(ctx context.Context, h common.Hash) (*types.Block, error) {
	if c.down.Load() {
		return nil, errDown
	}
	return c.Client.BlockByHash(ctx, h)
}

func TestFollowerRidesOutAnUnreachableNode(t *testing.T) {
	e := newEnv(t)
	client := &flaky{Client: e.chain.Client}
	f := e.follower(client, 0)
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()

	client.down.Store(true)
	var ids []string
	for range 3 {
		id, _ := e.pay()
		ids = append(ids, id)
	}
	// Wait until the watcher has tried the dead node several times.
	waitFor(t, func() bool { return client.calls.Load() >= 3 }, "retries against the dead node")
	if got := e.rec.seen(); len(got) != 0 {
		t.Fatalf("events delivered while the node was down: %v", got)
	}
	client.down.Store(false)
	waitFor(t, func() bool {
		for _, id := range ids {
			if e.rec.count(id, chains.StatusConfirmed) != 1 {
				return false
			}
		}
		return true
	}, "every outflow delivered once the node is back")
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if got := e.rec.seen(); len(got) != len(ids) {
		t.Fatalf("delivered %d events, want %d: %v", len(got), len(ids), got)
	}
}

func TestFollowerRunFollowsNewHeads(t *testing.T) {
	e := newEnv(t)
	f := e.follower(nil, 2)
	ctx, cancel := context.WithCancel(e.ctx)
	defer cancel()
	go f.Run(ctx)
	id, _ := e.pay()
	waitFor(t, func() bool { return e.rec.count(id, chains.StatusPending) == 1 }, "pending outflow")
	e.chain.Backend.Commit()
	waitFor(t, func() bool { return e.rec.count(id, chains.StatusConfirmed) == 1 }, "confirmed outflow")
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	testenv.WaitFor(t, 20*time.Second, cond, what)
}

func TestStatusReportsHeadProgressAndNodeAnswers(t *testing.T) {
	e := newEnv(t)
	client := &flaky{Client: e.chain.Client}
	m := watchers.NewMetrics(nil)
	one := uint64(1)
	f, err := watchers.New(kwe.NewSource(client, kwe.Options{Chain: "eth", NativeSymbol: "ETH",
		Wallets: []kwe.Wallet{{Name: "hot", Address: simchain.Addr("hot"), Role: "hot"}}}),
		watchers.Options{Chain: "eth", StartBlock: &one, Store: e.st, Deliver: e.rec.deliver, Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	if st := m.Status(); len(st) != 1 || st[0].Chain != "eth" || !st[0].LastOKAt.IsZero() {
		t.Fatalf("before the first pass: %+v", st)
	}
	e.pay()
	e.step(f)
	first := m.Status()[0]
	head, _ := e.chain.Client.BlockNumber(e.ctx)
	if first.Head != head || first.Processed != head || first.Lag() != 0 || first.LastOKAt.IsZero() ||
		first.HeadAdvancedAt.IsZero() || first.ProcessedAt.IsZero() || first.Errors != 0 {
		t.Fatalf("after a pass: %+v (node head %d)", first, head)
	}
	client.down.Store(true)
	if err := f.Step(e.ctx); err == nil {
		t.Fatal("a pass against a dead node succeeded")
	}
	down := m.Status()[0]
	if down.Head != first.Head || !down.LastOKAt.Equal(first.LastOKAt) || !down.HeadAdvancedAt.Equal(first.HeadAdvancedAt) {
		t.Fatalf("a failed pass moved the status: %+v", down)
	}
	client.down.Store(false)
	e.pay()
	e.step(f)
	if again := m.Status()[0]; again.Head != head+1 || again.Errors != 0 || !again.HeadAdvancedAt.After(first.HeadAdvancedAt) {
		t.Fatalf("after recovery: %+v", again)
	}
}

// following is forwarding reduced to its effect on the watcher: an outflow
// of a watched wallet makes its recipient followed.
type following struct {
	mu   sync.Mutex
	set  []string
	next watchers.DeliverFunc
}

func (fl *following) Addresses(context.Context, string, time.Time) ([]string, error) {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	return append([]string(nil), fl.set...), nil
}

func (fl *following) deliver(ctx context.Context, evs []chains.Event) error {
	fl.mu.Lock()
	for _, ev := range evs {
		if ev.Direction == chains.Out && ev.WalletRole == "hot" {
			fl.set = append(fl.set, ev.Counterparty)
		}
	}
	fl.mu.Unlock()
	return fl.next(ctx, evs)
}

// TestFollowerReadsABlockAgainForHopsMadeInIt: the hot wallet pays a fresh
// address, which passes the funds on in the same block. Once the outflow
// made the address followed, the block is read again and the second hop is
// delivered with the block's status, confirmed with it, and retracted with
// it.
func TestFollowerReadsABlockAgainForHopsMadeInIt(t *testing.T) {
	e := newEnv(t)
	fl := &following{next: e.rec.deliver}
	src := kwe.NewSource(e.chain.Client, kwe.Options{Chain: "eth", NativeSymbol: "ETH", Followed: fl,
		Wallets: []kwe.Wallet{{Name: "hot", Address: simchain.Addr("hot"), Role: "hot"}}})
	one := uint64(1)
	f, err := watchers.New(src, watchers.Options{Chain: "eth", Confirmations: 2, ReorgDepth: 12, StartBlock: &one,
		Store: e.st, Deliver: fl.deliver})
	if err != nil {
		t.Fatal(err)
	}
	e.chain.Backend.Commit()
	parent, err := e.chain.Client.HeaderByNumber(e.ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	fresh, vendor := simchain.Addr("outsider"), simchain.Addr("vendor")
	steal, err := e.chain.Submit(e.ctx, "hot", &fresh, simchain.Ether(5), nil)
	if err != nil {
		t.Fatal(err)
	}
	hop, err := e.chain.Submit(e.ctx, "outsider", &vendor, simchain.Ether(1), nil)
	if err != nil {
		t.Fatal(err)
	}
	e.chain.Backend.Commit()
	stealID, hopID := "eth:"+steal.Hash().Hex()+":native", "eth:"+hop.Hash().Hex()+":native"
	e.step(f)
	if e.rec.count(stealID, chains.StatusPending) != 1 || e.rec.count(hopID, chains.StatusPending) != 1 {
		t.Fatalf("want the outflow and the hop after it, pending: %v", e.rec.seen())
	}
	e.chain.Backend.Commit()
	e.step(f)
	if e.rec.count(hopID, chains.StatusConfirmed) != 1 {
		t.Fatalf("the hop was not confirmed with its block: %v", e.rec.seen())
	}
	// The block leaves the chain: both are retracted.
	if err := e.chain.Backend.Fork(parent.Hash()); err != nil {
		t.Fatal(err)
	}
	for range 4 {
		e.chain.Backend.Commit()
	}
	e.step(f)
	if e.rec.count(stealID, chains.StatusRetracted) != 1 || e.rec.count(hopID, chains.StatusRetracted) != 1 {
		t.Fatalf("want both retracted after the reorg: %v", e.rec.seen())
	}
}
