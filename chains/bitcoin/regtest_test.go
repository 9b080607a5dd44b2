package bitcoin_test

import (
	"context"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"

	"github.com/keywatch/keywatch/chains"
	"github.com/keywatch/keywatch/chains/bitcoin"
	"github.com/keywatch/keywatch/chains/bitcoin/btcaddr"
	"github.com/keywatch/keywatch/internal/regtest"
	"github.com/keywatch/keywatch/internal/testenv"
	"github.com/keywatch/keywatch/store"
	"github.com/keywatch/keywatch/store/memory"
	"github.com/keywatch/keywatch/watchers"
)

// sanctioned is an address from OFAC's XBT list (SDN list of 2025-11-19),
// a mainnet address: paid on regtest, its script is the same.
const sanctioned = "123WBUDmSJv4GctdVEz6Qq6z8nXSKrJ4KX"

const waitFor = 30 * time.Second

// recorder keeps every delivered event and wakes waiters.
type recorder struct {
	mu   sync.Mutex
	evs  []chains.Event
	at   []time.Time
	wake chan struct{}
}

func newRecorder() *recorder { return &recorder{wake: make(chan struct{}, 1)} }

func (r *recorder) deliver(_ context.Context, evs []chains.Event) error {
	r.mu.Lock()
	now := time.Now()
	for _, ev := range evs {
		r.evs = append(r.evs, ev)
		r.at = append(r.at, now)
	}
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
	return nil
}

// find returns the first delivery of id with status (and, when block is
// not -1, at that block; 0 is the mempool).
func (r *recorder) find(id string, status chains.Status, block int64) (chains.Event, time.Time, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, ev := range r.evs {
		if ev.ID == id && ev.Status == status && (block < 0 || ev.Block == uint64(block)) {
			return ev, r.at[i], true
		}
	}
	return chains.Event{}, time.Time{}, false
}

func (r *recorder) count(id string, status chains.Status, block int64) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, ev := range r.evs {
		if ev.ID == id && ev.Status == status && (block < 0 || ev.Block == uint64(block)) {
			n++
		}
	}
	return n
}

func (r *recorder) all() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, len(r.evs))
	for i, ev := range r.evs {
		out[i] = fmt.Sprintf("%s %s %s %s @%d", ev.Status, ev.ID, ev.Direction, ev.Amount, ev.Block)
	}
	return out
}

// wait waits until the event is delivered and returns it.
func (r *recorder) wait(t *testing.T, id string, status chains.Status, block int64) chains.Event {
	t.Helper()
	var ev chains.Event
	r.waitUntil(t, fmt.Sprintf("%s event %s (block %d)", status, id, block), func() (ok bool) {
		ev, _, ok = r.find(id, status, block)
		return ok
	})
	return ev
}

// waitUntil waits, woken by deliveries, until cond holds; past the deadline
// it fails the test listing what was delivered.
func (r *recorder) waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(waitFor)
	defer deadline.Stop()
	for !cond() {
		select {
		case <-r.wake:
		case <-time.After(200 * time.Millisecond): // re-check after misses of the wake signal
		case <-deadline.C:
			t.Fatalf("no %s within %s; delivered:\n%s", what, waitFor, strings.Join(r.all(), "\n"))
		}
	}
}

// watcher is a Source and Follower running against a node.
type watcher struct {
	src      *bitcoin.Source
	client   *bitcoin.Client
	follower *watchers.Follower
	metrics  *watchers.Metrics
	cancel   context.CancelFunc
	done     chan error
}

type watchOpts struct {
	url          string
	pollInterval time.Duration
	reorgDepth   uint64 // default 12
	lease        string // instance name: share the chain with other watchers
}

func startWatcher(t *testing.T, node *regtest.Node, st store.Store, rec *recorder, wallets []bitcoin.Wallet, o watchOpts) *watcher {
	t.Helper()
	if o.url == "" {
		o.url = node.WSURL
	}
	if o.pollInterval == 0 {
		o.pollInterval = 200 * time.Millisecond
	}
	if o.reorgDepth == 0 {
		o.reorgDepth = 12
	}
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	client, err := bitcoin.NewClient(bitcoin.ClientConfig{URLs: []string{o.url}, User: regtest.User, Password: regtest.Password, Cert: node.Cert, Timeout: 5 * time.Second, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	src, err := bitcoin.NewSource(client, bitcoin.Options{Chain: "btc", Network: &chaincfg.RegressionNetParams, NativeUSD: 60000, Wallets: wallets, Store: st, ReorgDepth: o.reorgDepth, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	var lease *watchers.LeaseOptions
	if o.lease != "" {
		lease = &watchers.LeaseOptions{Instance: o.lease}
	}
	m := watchers.NewMetrics(nil)
	f, err := watchers.New(src, watchers.Options{Chain: "btc", Confirmations: 2, ReorgDepth: o.reorgDepth, PollInterval: o.pollInterval, Store: st, Deliver: rec.deliver, MaxBackoff: 2 * time.Second, Logger: log, Metrics: m, Lease: lease})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &watcher{src: src, client: client, follower: f, metrics: m, cancel: cancel, done: make(chan error, 1)}
	go func() { w.done <- f.Run(ctx) }()
	t.Cleanup(w.stop)
	// The follower starts at the node's head: wait until it has, so that
	// what the test does next is after its start.
	testenv.WaitFor(t, waitFor, func() bool {
		_, started, err := f.Checkpoint(ctx)
		return err == nil && started
	}, "the watcher to start")
	return w
}

// caughtUp waits until the watcher's checkpoint reaches the node's head:
// every block so far is processed and recorded, so an instance taking the
// chain over next starts after them. (Without the wait a handover may land
// between a block's delivery and its checkpoint, and the next instance
// delivers that block again, as after a crash: delivery is at least once.)
func (w *watcher) caughtUp(t *testing.T, node *regtest.Node) {
	t.Helper()
	head, err := node.Height(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, waitFor, func() bool {
		h, _, err := w.follower.Checkpoint(context.Background())
		return err == nil && h >= uint64(head)
	}, "the watcher's checkpoint to reach the head")
}

// following reports whether the watcher follows the chain rather than
// standing by for another.
func (w *watcher) following() bool {
	for _, s := range w.metrics.Status() {
		if s.Chain == "btc" {
			return !s.Standby && !s.FollowingSince.IsZero()
		}
	}
	return false
}

func (w *watcher) stop() {
	if w.cancel == nil {
		return
	}
	w.cancel()
	<-w.done
	w.client.Close()
	w.cancel = nil
}

func newKey(t *testing.T, seed string, kt regtest.KeyType) *regtest.Key {
	t.Helper()
	k, err := regtest.NewKey(seed, kt)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mine(t *testing.T, node *regtest.Node, n int) []*chainhash.Hash {
	t.Helper()
	hs, err := node.Generate(context.Background(), n)
	if err != nil {
		t.Fatal(err)
	}
	return hs
}

func send(t *testing.T, node *regtest.Node, tx *wire.MsgTx) string {
	t.Helper()
	if _, err := node.Send(context.Background(), tx); err != nil {
		t.Fatal(err)
	}
	return tx.TxHash().String()
}

func pay(t *testing.T, coins []regtest.Coin, outs []regtest.Output, change []byte, fee int64) *wire.MsgTx {
	t.Helper()
	tx, err := regtest.Pay(coins, outs, change, fee)
	if err != nil {
		t.Fatal(err)
	}
	return tx
}

func scriptOf(t *testing.T, addr string) []byte {
	t.Helper()
	s, err := regtest.ScriptOf(addr)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// funded pays value to key from the miner, mines it to depth and waits
// until the watcher confirmed the inflow; it returns the coin.
func funded(t *testing.T, node *regtest.Node, rec *recorder, key *regtest.Key, value int64) regtest.Coin {
	t.Helper()
	coin, tx, err := node.Fund(context.Background(), key, btcAmount(value))
	if err != nil {
		t.Fatal(err)
	}
	mine(t, node, 2)
	rec.wait(t, "btc:"+tx.TxHash().String()+":0", chains.StatusConfirmed, -1)
	return coin
}

func btcAmount(sat int64) btcutil.Amount { return btcutil.Amount(sat) }

func id(tx string, vout int) string { return fmt.Sprintf("btc:%s:%d", tx, vout) }

// TestMempoolFirstOutflowWithChange: a hot wallet pays a sanctioned
// address's script with change back to itself. The outflow is published as
// pending from the mempool, before any block, and again at depth as
// confirmed; the change is no movement at all.
func TestMempoolFirstOutflowWithChange(t *testing.T) {
	t.Parallel()
	node := testenv.Btcd(t)
	hot := newKey(t, "treasury-hot", regtest.P2WPKH)
	rec := newRecorder()
	startWatcher(t, node, memory.New(), rec, []bitcoin.Wallet{{Name: "treasury-hot", Address: hot.Address, Role: "hot"}}, watchOpts{pollInterval: 5 * time.Second})

	// The funding is an inflow, seen in the mempool first too.
	coin, fund, err := node.Fund(context.Background(), hot, btcAmount(regtest.Amount(2)))
	if err != nil {
		t.Fatal(err)
	}
	in := rec.wait(t, id(fund.TxHash().String(), 0), chains.StatusPending, 0)
	if in.Direction != chains.In || in.Amount.String() != "2" || in.Counterparty != node.Miner.Address || in.Wallet != "treasury-hot" {
		t.Errorf("inflow: %+v", in)
	}
	mine(t, node, 2)
	rec.wait(t, id(fund.TxHash().String(), 0), chains.StatusConfirmed, -1)

	spend := pay(t, []regtest.Coin{coin}, []regtest.Output{{Script: scriptOf(t, sanctioned), Value: regtest.Amount(0.5)}}, hot.Script, 2000)
	sent := time.Now()
	tx := send(t, node, spend)
	out := rec.wait(t, id(tx, 0), chains.StatusPending, 0)
	_, seenAt, _ := rec.find(id(tx, 0), chains.StatusPending, 0)
	t.Logf("outflow seen in the mempool %s after it was sent", seenAt.Sub(sent).Round(time.Millisecond))

	wantScript := hex.EncodeToString(scriptOf(t, sanctioned))
	checks := []struct{ what, got, want string }{
		{"direction", string(out.Direction), "out"},
		{"wallet", out.Wallet, "treasury-hot"},
		{"wallet_role", out.WalletRole, "hot"},
		{"amount", out.Amount.String(), "0.5"},
		{"asset", out.Asset, "BTC"},
		{"usd", fmt.Sprint(out.USD), "30000"},
		{"from", out.From, hot.Address},
		{"counterparty", out.Counterparty, btcaddr.AddressOf(scriptOf(t, sanctioned), &chaincfg.RegressionNetParams)},
		{"script", out.Detail["script"], wantScript},
		{"fee", out.Detail["fee"], "0.00002"},
		{"rbf", out.Detail["rbf"], "true"},
		{"block", fmt.Sprint(out.Block), "0"},
		{"balance before", out.Detail[bitcoin.DetailBalanceBefore], "2"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("outflow %s = %q, want %q", c.what, c.got, c.want)
		}
	}
	hs := mine(t, node, 1)
	height, _ := node.Height(context.Background())
	atBlock := rec.wait(t, id(tx, 0), chains.StatusPending, height)
	if atBlock.BlockHash != hs[0].String() {
		t.Errorf("block hash %s, want %s", atBlock.BlockHash, hs[0])
	}
	mine(t, node, 1)
	rec.wait(t, id(tx, 0), chains.StatusConfirmed, height)

	if n := rec.count(id(tx, 1), chains.StatusPending, -1) + rec.count(id(tx, 1), chains.StatusConfirmed, -1); n != 0 {
		t.Errorf("the change output was reported %d times; change is no movement", n)
	}
	if n := rec.count(id(tx, 0), chains.StatusPending, 0); n != 1 {
		t.Errorf("the mempool outflow was delivered %d times, want once", n)
	}
	if n := rec.count(id(tx, 0), chains.StatusRetracted, -1); n != 0 {
		t.Errorf("the outflow was retracted %d times", n)
	}
}

// testWriter sends the watcher's log to the test log (shown on failure or
// with -v).
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func outpoint(tx *wire.MsgTx, vout uint32) wire.OutPoint {
	return wire.OutPoint{Hash: tx.TxHash(), Index: vout}
}
