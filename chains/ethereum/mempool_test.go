package ethereum_test

import (
	"context"
	"encoding/json"
	"errors"
	"math/big"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/keywatch/keywatch/chains"
	kwe "github.com/keywatch/keywatch/chains/ethereum"
	"github.com/keywatch/keywatch/internal/simchain"
	"github.com/keywatch/keywatch/internal/testenv"
	"github.com/keywatch/keywatch/store/memory"
	"github.com/keywatch/keywatch/watchers"
)

// fakeMempool is a node's mempool side that the test drives: it notifies
// what the test sends and answers look-ups from what the test sets.
type fakeMempool struct {
	mu         sync.Mutex
	notes      chan<- kwe.NodeTx
	sub        *fakeSub
	subscribed int
	txs        map[common.Hash]*kwe.NodeTx // nil value: unknown to the node
	nonces     map[common.Address]uint64
	lookups    int
}

func newFakeMempool() *fakeMempool {
	return &fakeMempool{txs: map[common.Hash]*kwe.NodeTx{}, nonces: map[common.Address]uint64{}}
}

type fakeSub struct {
	err  chan error
	once sync.Once
}

func (s *fakeSub) Unsubscribe()      { s.once.Do(func() { close(s.err) }) }
func (s *fakeSub) Err() <-chan error { return s.err }

func (f *fakeMempool) SubscribePendingTransactions(_ context.Context, ch chan<- kwe.NodeTx) (ethereum.Subscription, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.notes, f.sub = ch, &fakeSub{err: make(chan error, 1)}
	f.subscribed++
	return f.sub, nil
}

func (f *fakeMempool) NodeTransaction(_ context.Context, h common.Hash) (*kwe.NodeTx, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lookups++
	tx := f.txs[h]
	if tx == nil {
		return nil, ethereum.NotFound
	}
	c := *tx
	return &c, nil
}

func (f *fakeMempool) NonceAt(_ context.Context, a common.Address, _ *big.Int) (uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.nonces[a], nil
}

// notify sends a notification once the feed has subscribed, and records
// what look-ups answer (full: the transaction is pending).
func (f *fakeMempool) notify(t *testing.T, n kwe.NodeTx, full kwe.NodeTx) {
	t.Helper()
	testenv.WaitFor(t, 10*time.Second, func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		return f.notes != nil
	}, "the mempool feed to subscribe")
	f.mu.Lock()
	f.txs[full.Hash] = &full
	ch := f.notes
	f.mu.Unlock()
	ch <- n
}

func (f *fakeMempool) set(h common.Hash, tx *kwe.NodeTx) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.txs[h] = tx
}

// clock is a time the test moves.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

var mempoolWallets = []kwe.Wallet{
	{Name: "hot", Address: simchain.Addr("hot"), Role: "hot"},
	{Name: "ops", Address: simchain.Addr("ops"), Role: "warm"},
}

// nodeTx is the node's view of a signed transaction: what a full
// newPendingTransactions notification carries.
func nodeTx(t *testing.T, tx *types.Transaction) kwe.NodeTx {
	t.Helper()
	from, err := types.Sender(types.LatestSignerForChainID(tx.ChainId()), tx)
	if err != nil {
		t.Fatal(err)
	}
	return kwe.NodeTx{Hash: tx.Hash(), From: from, To: tx.To(), Nonce: tx.Nonce(), Value: tx.Value(), Input: tx.Data(), Full: true}
}

// pendingOf waits for the mempool to offer tx, and returns its events.
func pendingOf(t *testing.T, ctx context.Context, m *kwe.MempoolSource, tx common.Hash) []chains.Event {
	t.Helper()
	var got []chains.Event
	testenv.WaitFor(t, 10*time.Second, func() bool {
		txs, err := m.Pending(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range txs {
			if p.Tx == tx.Hex() {
				got = p.Events
				return true
			}
		}
		return false
	}, "the mempool to offer "+tx.Hex())
	return got
}

// sameMovement compares a pending event with the mined one as policies and
// alerts show them (their JSON): equal but for where and when (block, block
// hash, time) and status.
func sameMovement(t *testing.T, pending, mined chains.Event) {
	t.Helper()
	if pending.Block != 0 || pending.BlockHash != "" || pending.Time.IsZero() {
		t.Errorf("pending event %s: block %d, block hash %q, time %v; want block 0, no hash, the time it was seen", pending.ID, pending.Block, pending.BlockHash, pending.Time)
	}
	p := pending
	p.Block, p.BlockHash, p.Time, p.Status = mined.Block, mined.BlockHash, mined.Time, mined.Status
	pj, _ := json.Marshal(p)
	mj, _ := json.Marshal(mined)
	if string(pj) != string(mj) {
		t.Errorf("pending and mined events differ but for block, time and status:\npending %s\nmined   %s", pj, mj)
	}
}

// The events of a mempool transaction are those the block decoder gives the
// same transaction once mined: an outflow, an inflow, a payment between two
// watched wallets (two events), a contract creation funded by a watched
// wallet (its address known from sender and nonce); a transfer that touches
// no watched wallet is not offered.
func TestMempoolEventsAreTheBlockDecodersEvents(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := simchain.New(map[string]int64{"hot": 100, "ops": 100, "outsider": 100}, nil)
	defer c.Close()
	fm := newFakeMempool()
	src := kwe.NewSource(c.Client, kwe.Options{Chain: "eth", NativeSymbol: "ETH", NativeUSD: 3000, Wallets: mempoolWallets})
	m := kwe.NewMempoolSource(src, fm, kwe.MempoolOptions{})

	if _, err := m.Pending(ctx); err != nil { // starts the feed
		t.Fatal(err)
	}
	vendor, hot, ops := simchain.Addr("vendor"), simchain.Addr("hot"), simchain.Addr("ops")
	var sent []*types.Transaction
	for _, s := range []struct {
		from string
		to   *common.Address
		eth  int64
		data []byte
	}{
		{"hot", &vendor, 2, nil},
		{"outsider", &ops, 3, nil},
		{"ops", &hot, 4, nil},
		{"hot", nil, 1, []byte{0x60, 0x00, 0x60, 0x00, 0xf3}}, // a creation: PUSH 0 PUSH 0 RETURN
		{"outsider", &vendor, 5, nil},
	} {
		tx, err := c.Submit(ctx, s.from, s.to, simchain.Ether(s.eth), s.data)
		if err != nil {
			t.Fatal(err)
		}
		n := nodeTx(t, tx)
		fm.notify(t, n, n)
		sent = append(sent, tx)
	}
	pending := map[string]chains.Event{}
	for _, tx := range sent[:4] {
		for _, ev := range pendingOf(t, ctx, m, tx.Hash()) {
			pending[ev.ID] = ev
		}
	}
	offered, err := m.Pending(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range offered {
		if p.Tx == sent[4].Hash().Hex() {
			t.Errorf("a transfer between two outsiders was offered: %v", p.Events)
		}
	}

	c.Backend.Commit()
	r := must[*types.Receipt](t)(c.Receipt(ctx, sent[0]))
	mined := blockEvents(t, src, c, r)
	if len(mined) != 5 || len(pending) != 5 {
		t.Fatalf("mined %d events, pending %d; want 5 each (out, in, out and in, creation): %v / %v", len(mined), len(pending), mined, pending)
	}
	for _, ev := range mined {
		p, ok := pending[ev.ID]
		if !ok {
			t.Errorf("mined event %s (%s %s) had no pending event", ev.ID, ev.Direction, ev.Wallet)
			continue
		}
		sameMovement(t, p, ev)
	}
}

// A transaction the node forgets is offered until it has been missing for
// the grace period, then the follower retracts it with the reason; one whose
// sender's nonce moved past it was replaced by a transaction the mempool did
// not show.
func TestMempoolRetractsADroppedTransaction(t *testing.T) {
	for _, tc := range []struct {
		name      string
		nonceNow  uint64
		wantWords string
	}{
		{"dropped", 0, "left the node's mempool without being mined"},
		{"nonce used by another", 1, "was replaced: another transaction from the same sender"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			c := simchain.New(map[string]int64{"hot": 100}, nil)
			defer c.Close()
			fm := newFakeMempool()
			clk := &clock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
			src := kwe.NewSource(c.Client, kwe.Options{Chain: "eth", NativeSymbol: "ETH", Wallets: mempoolWallets})
			m := kwe.NewMempoolSource(src, fm, kwe.MempoolOptions{Now: clk.Now, DropGrace: 10 * time.Second})
			rec := &events{}
			head := must[uint64](t)(c.Client.BlockNumber(ctx))
			start := head + 1
			f := must[*watchers.Follower](t)(watchers.New(m, watchers.Options{Chain: "eth", StartBlock: &start, Store: memory.New(), Deliver: rec.deliver}))
			step := func() {
				t.Helper()
				if err := f.Step(ctx); err != nil {
					t.Fatal(err)
				}
			}
			step() // starts the feed

			to := simchain.Addr("vendor")
			tx, err := c.Submit(ctx, "hot", &to, simchain.Ether(1), nil)
			if err != nil {
				t.Fatal(err)
			}
			n := nodeTx(t, tx)
			fm.notify(t, n, n)
			id := "eth:" + tx.Hash().Hex() + ":native"
			testenv.WaitFor(t, 10*time.Second, func() bool {
				step()
				return rec.count(id, chains.StatusPending) == 1
			}, "the pending event")

			fm.set(tx.Hash(), nil) // the node forgets it
			fm.mu.Lock()
			fm.nonces[n.From] = tc.nonceNow
			fm.mu.Unlock()
			clk.add(2 * time.Second) // the next look-up finds it missing
			step()
			clk.add(9 * time.Second)
			step()
			if got := rec.count(id, chains.StatusRetracted); got != 0 {
				t.Fatalf("retracted within the grace period: %v", rec.all())
			}
			clk.add(2 * time.Second)
			step()
			ev := rec.last(id)
			if ev.Status != chains.StatusRetracted {
				t.Fatalf("after the grace period the last delivery is %s, want retracted: %v", ev.Status, rec.all())
			}
			if why := ev.Detail[chains.DetailRetracted]; !strings.Contains(why, tc.wantWords) || !strings.Contains(why, tx.Hash().Hex()) {
				t.Errorf("retraction reason %q, want it to name the transaction and say %q", why, tc.wantWords)
			}
			step()
			if got := rec.count(id, chains.StatusRetracted); got != 1 {
				t.Errorf("retracted %d times, want once", got)
			}
		})
	}
}

// A node that notifies hashes only: each is looked up, and a watched one is
// offered with the same events as a full notification gives.
func TestMempoolHashOnlyNode(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := simchain.New(map[string]int64{"hot": 100, "outsider": 100}, nil)
	defer c.Close()
	fm := newFakeMempool()
	src := kwe.NewSource(c.Client, kwe.Options{Chain: "eth", NativeSymbol: "ETH", Wallets: mempoolWallets})
	m := kwe.NewMempoolSource(src, fm, kwe.MempoolOptions{})
	to := simchain.Addr("vendor")
	tx, err := c.Submit(ctx, "hot", &to, simchain.Ether(1), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Pending(ctx); err != nil { // starts the feed
		t.Fatal(err)
	}
	fm.notify(t, kwe.NodeTx{Hash: tx.Hash()}, nodeTx(t, tx))
	evs := pendingOf(t, ctx, m, tx.Hash())
	if len(evs) != 1 || evs[0].ID != "eth:"+tx.Hash().Hex()+":native" || evs[0].Wallet != "hot" || evs[0].Amount.String() != "1" {
		t.Fatalf("events %+v, want hot's outflow of 1 ETH", evs)
	}
}

// The feed subscribes again after the node ends the subscription, and stops
// with the context that started it.
func TestMempoolFeedResubscribes(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	c := simchain.New(map[string]int64{"hot": 100}, nil)
	defer c.Close()
	fm := newFakeMempool()
	src := kwe.NewSource(c.Client, kwe.Options{Chain: "eth", NativeSymbol: "ETH", Wallets: mempoolWallets})
	m := kwe.NewMempoolSource(src, fm, kwe.MempoolOptions{})
	if _, err := m.Pending(ctx); err != nil { // starts the feed
		t.Fatal(err)
	}
	subscribed := func() int {
		fm.mu.Lock()
		defer fm.mu.Unlock()
		return fm.subscribed
	}
	testenv.WaitFor(t, 10*time.Second, func() bool { return subscribed() == 1 }, "the first subscription")
	fm.mu.Lock()
	fm.sub.err <- errors.New("connection reset")
	fm.mu.Unlock()
	testenv.WaitFor(t, 10*time.Second, func() bool { return subscribed() == 2 }, "the subscription again")

	to := simchain.Addr("vendor")
	tx, err := c.Submit(ctx, "hot", &to, simchain.Ether(1), nil)
	if err != nil {
		t.Fatal(err)
	}
	n := nodeTx(t, tx)
	fm.notify(t, n, n)
	pendingOf(t, ctx, m, tx.Hash())

	cancel()
	fm.mu.Lock()
	sub := fm.sub
	fm.mu.Unlock()
	select {
	case <-sub.err: // unsubscribed
	case <-time.After(10 * time.Second):
		t.Fatal("the feed did not unsubscribe when its context ended")
	}
}

// Notifications are read leniently (a garbled one must not end the
// subscription) and look-ups strictly.
func TestNodeTxJSON(t *testing.T) {
	h := "0x5c504ed432cb51138bcf09aa5e8a410dd4a1e204ef84bfed1be16dfba1b22060"
	for _, tc := range []struct {
		name, in string
		want     kwe.NodeTx
	}{
		{"hash", `"` + h + `"`, kwe.NodeTx{Hash: common.HexToHash(h)}},
		{"full", `{"hash":"` + h + `","from":"0x00000000000000000000000000000000000000aa","to":"0x00000000000000000000000000000000000000bb","nonce":"0x7","value":"0xde0b6b3a7640000","input":"0x","blockNumber":null}`,
			kwe.NodeTx{Hash: common.HexToHash(h), From: common.HexToAddress("0xaa"), To: addrPtr("0xbb"), Nonce: 7, Value: simchain.Ether(1), Input: []byte{}, Full: true}},
		{"no sender", `{"hash":"` + h + `","nonce":"0x7"}`, kwe.NodeTx{Hash: common.HexToHash(h), Value: new(big.Int)}},
		{"garbled", `{"hash":12}`, kwe.NodeTx{}},
		{"not json", `nonsense`, kwe.NodeTx{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got kwe.NodeTx
			if err := got.UnmarshalJSON([]byte(tc.in)); err != nil {
				t.Fatalf("error %v: a notification must never fail", err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func addrPtr(s string) *common.Address {
	a := common.HexToAddress(s)
	return &a
}

// events records what a follower delivers.
type events struct {
	mu  sync.Mutex
	evs []chains.Event
	at  []time.Time
}

func (r *events) deliver(_ context.Context, evs []chains.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	for _, ev := range evs {
		r.evs = append(r.evs, ev)
		r.at = append(r.at, now)
	}
	return nil
}

func (r *events) count(id string, s chains.Status) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, ev := range r.evs {
		if ev.ID == id && ev.Status == s {
			n++
		}
	}
	return n
}

// first returns the first delivery of id with status s.
func (r *events) first(id string, s chains.Status) (chains.Event, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, ev := range r.evs {
		if ev.ID == id && ev.Status == s {
			return ev, true
		}
	}
	return chains.Event{}, false
}

func (r *events) last(id string) chains.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.evs) - 1; i >= 0; i-- {
		if r.evs[i].ID == id {
			return r.evs[i]
		}
	}
	return chains.Event{}
}

func (r *events) all() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, ev := range r.evs {
		out = append(out, string(ev.Status)+" "+ev.ID)
	}
	return out
}
