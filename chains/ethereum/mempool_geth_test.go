package ethereum_test

import (
	"context"
	"log/slog"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/ethereum/go-ethereum/params"

	"github.com/keywatch/keywatch/chains"
	kwe "github.com/keywatch/keywatch/chains/ethereum"
	"github.com/keywatch/keywatch/internal/simchain"
	"github.com/keywatch/keywatch/internal/testenv"
	"github.com/keywatch/keywatch/store/memory"
	"github.com/keywatch/keywatch/watchers"
)

// devPeriod is the block period of the geth --dev nodes of these tests: long
// enough that a transaction waits in the mempool.
const devPeriod = 12

var devChainID = big.NewInt(1337)

// logLines records what a component logs, for tests that wait on what an
// operator would read.
type logLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *logLines) Enabled(context.Context, slog.Level) bool { return true }
func (l *logLines) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logLines) WithGroup(string) slog.Handler            { return l }
func (l *logLines) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Level.String() + " " + r.Message)
	r.Attrs(func(a slog.Attr) bool {
		b.WriteString(" " + a.Key + "=" + a.Value.String())
		return true
	})
	l.mu.Lock()
	l.lines = append(l.lines, b.String())
	l.mu.Unlock()
	return nil
}

// count returns how many lines contain s.
func (l *logLines) count(s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, line := range l.lines {
		if strings.Contains(line, s) {
			n++
		}
	}
	return n
}

func (l *logLines) dump() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// gethWatcher is a watchers.Follower over the real Source and mempool on a
// geth --dev node's WebSocket endpoint.
type gethWatcher struct {
	rec  *events
	logs *logLines
}

func watchGeth(t *testing.T, ctx context.Context, g *testenv.GethNode, wallets ...string) *gethWatcher {
	t.Helper()
	w := &gethWatcher{rec: &events{}, logs: &logLines{}}
	log := slog.New(w.logs)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("watcher log:\n%s", w.logs.dump())
		}
	})
	pool := kwe.NewPool([]string{g.WSURL}, 0, log)
	t.Cleanup(pool.Close)
	var ws []kwe.Wallet
	for _, name := range wallets {
		ws = append(ws, kwe.Wallet{Name: name, Address: simchain.Addr(name), Role: "hot"})
	}
	src := kwe.NewSource(pool, kwe.Options{Chain: "dev", NativeSymbol: "ETH", NativeUSD: 3000, Wallets: ws})
	m := kwe.NewMempoolSource(src, pool, kwe.MempoolOptions{Logger: log})
	head := must[uint64](t)(g.BlockNumber(ctx))
	start := head + 1
	f := must[*watchers.Follower](t)(watchers.New(m, watchers.Options{Chain: "dev", Confirmations: 2, StartBlock: &start,
		Store: memory.New(), Deliver: w.rec.deliver, PollInterval: 250 * time.Millisecond, MaxBackoff: time.Second, Logger: log}))
	fctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.Run(fctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	testenv.WaitFor(t, 30*time.Second, func() bool { return w.logs.count("subscribed to the node's pending transactions") > 0 }, "the mempool subscription")
	return w
}

// devTx signs a transfer of the named key with an explicit nonce and tip
// (in gwei) and sends it over HTTP; it returns once eth_sendRawTransaction
// has returned.
func devTx(t *testing.T, ctx context.Context, c *ethclient.Client, from string, nonce uint64, to common.Address, value *big.Int, tipGwei int64) *types.Transaction {
	t.Helper()
	head, err := c.HeaderByNumber(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	tip := new(big.Int).Mul(big.NewInt(tipGwei), big.NewInt(params.GWei))
	feeCap := new(big.Int).Add(new(big.Int).Mul(head.BaseFee, big.NewInt(2)), tip)
	tx, err := types.SignNewTx(simchain.Key(from), types.LatestSignerForChainID(devChainID), &types.DynamicFeeTx{
		ChainID: devChainID, Nonce: nonce, GasTipCap: tip, GasFeeCap: feeCap, Gas: 21000, To: &to, Value: value,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SendTransaction(ctx, tx); err != nil {
		t.Fatalf("send %s: %v", tx.Hash().Hex(), err)
	}
	return tx
}

// freshBlock waits for the next block, so that a transaction sent now
// waits about a whole period in the mempool.
func freshBlock(t *testing.T, ctx context.Context, g *testenv.GethNode) {
	t.Helper()
	head := must[uint64](t)(g.BlockNumber(ctx))
	wctx, cancel := context.WithTimeout(ctx, 3*devPeriod*time.Second)
	defer cancel()
	if err := g.WaitForBlock(wctx, head+1); err != nil {
		t.Fatal(err)
	}
}

// notMinedYet fails unless the node has no receipt for tx.
func notMinedYet(t *testing.T, ctx context.Context, g *testenv.GethNode, tx common.Hash) {
	t.Helper()
	var r *testenv.Receipt
	if err := g.Call(ctx, &r, "eth_getTransactionReceipt", tx); err != nil {
		t.Fatal(err)
	}
	if r != nil {
		t.Fatalf("transaction %s is already in block %d: the pending event was not seen before the block", tx.Hex(), uint64(r.BlockNumber))
	}
}

func fundAll(t *testing.T, ctx context.Context, g *testenv.GethNode, names ...string) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make([]error, len(names))
	for i, name := range names {
		wg.Go(func() { errs[i] = g.Fund(ctx, simchain.Addr(name), simchain.Ether(100)) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// On a real geth --dev whose blocks come every 12 s, a transfer is pending
// from the mempool before any block, then confirmed at depth under the same
// id; a transaction replaced by the same nonce with a higher fee is
// retracted naming its replacement, which is pending in its place.
func TestMempoolOnGeth(t *testing.T) {
	ctx := context.Background()
	g := testenv.Geth(t, testenv.GethDevPeriod(devPeriod))
	fundAll(t, ctx, g, "mp-hot", "mp-ops")
	client := must[*ethclient.Client](t)(ethclient.Dial(g.HTTPURL))
	defer client.Close()

	t.Run("pending before the block, then confirmed", func(t *testing.T) {
		t.Parallel()
		w := watchGeth(t, ctx, g, "mp-hot")
		freshBlock(t, ctx, g)
		tx := devTx(t, ctx, client, "mp-hot", 0, simchain.Addr("vendor"), simchain.Ether(3), 1)
		id := "dev:" + tx.Hash().Hex() + ":native"
		testenv.WaitFor(t, 10*time.Second, func() bool { return w.rec.count(id, chains.StatusPending) > 0 }, "the pending event")
		notMinedYet(t, ctx, g, tx.Hash())
		pending, _ := w.rec.first(id, chains.StatusPending)
		if pending.Block != 0 || pending.Wallet != "mp-hot" || pending.Direction != chains.Out || pending.Amount.String() != "3" || pending.USD != 9000 {
			t.Fatalf("pending event %+v, want mp-hot's outflow of 3 ETH from the mempool (block 0)", pending)
		}

		testenv.WaitFor(t, 5*devPeriod*time.Second, func() bool { return w.rec.count(id, chains.StatusConfirmed) > 0 }, "the confirmed event")
		confirmed, _ := w.rec.first(id, chains.StatusConfirmed)
		sameMovement(t, pending, confirmed)
		// Pending from the mempool and again from its shallow block (the
		// alert's Nats-Msg-Id is the same, so it is published once), then
		// confirmed once; nothing retracted.
		if p, c, r := w.rec.count(id, chains.StatusPending), w.rec.count(id, chains.StatusConfirmed), w.rec.count(id, chains.StatusRetracted); p != 2 || c != 1 || r != 0 {
			t.Fatalf("pending %d, confirmed %d, retracted %d times; want 2 (mempool, block), 1, 0: %v", p, c, r, w.rec.all())
		}
	})

	t.Run("replaced by the same nonce", func(t *testing.T) {
		t.Parallel()
		w := watchGeth(t, ctx, g, "mp-ops")
		freshBlock(t, ctx, g)
		first := devTx(t, ctx, client, "mp-ops", 0, simchain.Addr("vendor"), simchain.Ether(1), 1)
		firstID := "dev:" + first.Hash().Hex() + ":native"
		testenv.WaitFor(t, 10*time.Second, func() bool { return w.rec.count(firstID, chains.StatusPending) > 0 }, "the first transaction's pending event")
		// The same nonce, three times the tip, to another address.
		second := devTx(t, ctx, client, "mp-ops", 0, simchain.Addr("fresh"), simchain.Ether(50), 3)
		secondID := "dev:" + second.Hash().Hex() + ":native"
		testenv.WaitFor(t, 10*time.Second, func() bool { return w.rec.count(firstID, chains.StatusRetracted) > 0 }, "the replaced transaction's retraction")
		notMinedYet(t, ctx, g, second.Hash())
		why := w.rec.last(firstID).Detail[chains.DetailRetracted]
		if !strings.Contains(why, "replaced in the mempool by "+second.Hash().Hex()) || !strings.Contains(why, "nonce 0") {
			t.Errorf("retraction reason %q, want it to name the replacement %s and the nonce", why, second.Hash().Hex())
		}
		testenv.WaitFor(t, 10*time.Second, func() bool { return w.rec.count(secondID, chains.StatusPending) > 0 }, "the replacement's pending event")
		if ev, _ := w.rec.first(secondID, chains.StatusPending); ev.Block != 0 || ev.Amount.String() != "50" || ev.Counterparty != lower(simchain.Addr("fresh")) {
			t.Errorf("replacement's pending event %+v, want 50 ETH to fresh from the mempool", ev)
		}
		testenv.WaitFor(t, 5*devPeriod*time.Second, func() bool { return w.rec.count(secondID, chains.StatusConfirmed) > 0 }, "the replacement confirmed")
		if n := w.rec.count(firstID, chains.StatusConfirmed) + w.rec.count(firstID, chains.StatusRetracted); n != 1 {
			t.Errorf("the replaced transaction was delivered confirmed or retracted %d times in all, want one retraction: %v", n, w.rec.all())
		}
	})
}

// A node restart: the subscription comes back, so a transfer sent after it
// is pending before its block; and a transfer pending before it is not
// retracted for the seconds the restarted node does not know it (geth puts
// its local transactions back 10 s after starting), but mined and
// confirmed under its id.
func TestMempoolSubscriptionSurvivesANodeRestart(t *testing.T) {
	ctx := context.Background()
	g := testenv.Geth(t, testenv.GethDevPeriod(devPeriod))
	fundAll(t, ctx, g, "mp-restart")
	w := watchGeth(t, ctx, g, "mp-restart")
	client := must[*ethclient.Client](t)(ethclient.Dial(g.HTTPURL))
	defer client.Close()

	freshBlock(t, ctx, g)
	before := devTx(t, ctx, client, "mp-restart", 0, simchain.Addr("vendor"), simchain.Ether(1), 1)
	beforeID := "dev:" + before.Hash().Hex() + ":native"
	testenv.WaitFor(t, 10*time.Second, func() bool { return w.rec.count(beforeID, chains.StatusPending) > 0 }, "the pending event before the restart")
	g.Stop()
	g.Start()
	var known map[string]any
	if err := g.Call(ctx, &known, "eth_getTransactionByHash", before.Hash()); err != nil || known != nil {
		t.Logf("note: the restarted node still knows %s (%v, %v)", before.Hash().Hex(), known, err)
	}
	testenv.WaitFor(t, time.Minute, func() bool { return w.logs.count("mempool subscription restored") > 0 }, "the subscription to be restored")
	if n := w.logs.count("mempool subscription failed"); n != 1 {
		t.Errorf("the lost subscription was logged %d times, want once until restored:\n%s", n, w.logs.dump())
	}
	testenv.WaitFor(t, 8*devPeriod*time.Second, func() bool { return w.rec.count(beforeID, chains.StatusConfirmed) > 0 }, "the transfer sent before the restart to be confirmed")
	if n := w.rec.count(beforeID, chains.StatusRetracted); n != 0 {
		t.Errorf("the transfer was retracted %d times while the restarted node did not know it: %v", n, w.rec.all())
	}

	freshBlock(t, ctx, g)
	tx := devTx(t, ctx, client, "mp-restart", 1, simchain.Addr("vendor"), simchain.Ether(2), 1)
	id := "dev:" + tx.Hash().Hex() + ":native"
	testenv.WaitFor(t, 10*time.Second, func() bool { return w.rec.count(id, chains.StatusPending) > 0 }, "the pending event after the restart")
	notMinedYet(t, ctx, g, tx.Hash())
}
