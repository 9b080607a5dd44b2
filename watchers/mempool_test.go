package watchers_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/keywatch/keywatch/chains"
	"github.com/keywatch/keywatch/watchers"
)

// pool is a source with a mempool the test fills and empties.
type pool struct {
	watchers.Source
	mu  sync.Mutex
	txs []chains.PendingTx
}

func (p *pool) set(txs ...chains.PendingTx) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.txs = txs
}

func (p *pool) Pending(context.Context) ([]chains.PendingTx, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]chains.PendingTx(nil), p.txs...), nil
}

func (p *pool) Dropped(context.Context, string) string { return "replaced by fee" }

// mempoolSource is a source with a mempool.
type mempoolSource interface {
	watchers.Source
	watchers.PendingSource
}

func (e *env) mempoolFollower(p mempoolSource) *watchers.Follower {
	e.t.Helper()
	one := uint64(1)
	f, err := watchers.New(p, watchers.Options{Chain: "eth", ReorgDepth: 10, StartBlock: &one,
		Store: e.st, Deliver: e.rec.deliver, PollInterval: 20 * time.Millisecond})
	if err != nil {
		e.t.Fatal(err)
	}
	return f
}

func pendingTx(tx, id string) chains.PendingTx {
	return chains.PendingTx{Tx: tx, Events: []chains.Event{{ID: id, Chain: "eth", Tx: tx, Kind: chains.KindTransfer}}}
}

// A mempool transaction is delivered pending once however often it is seen,
// and retracted, with the reason as evidence, when it leaves the mempool
// unmined; the mempool state in the store then holds nothing.
func TestMempoolDeliversPendingOnceAndRetractsADrop(t *testing.T) {
	e := newEnv(t)
	p := &pool{Source: e.src}
	f := e.mempoolFollower(p)
	p.set(pendingTx("0xaa", "eth:0xaa:native"))
	e.step(f)
	e.step(f)
	if n := e.rec.count("eth:0xaa:native", chains.StatusPending); n != 1 {
		t.Fatalf("delivered pending %d times, want once: %v", n, e.rec.seen())
	}

	p.set()
	e.step(f)
	if n := e.rec.count("eth:0xaa:native", chains.StatusRetracted); n != 1 {
		t.Fatalf("delivered retracted %d times after the drop, want once: %v", n, e.rec.seen())
	}
	e.rec.mu.Lock()
	last := e.rec.events[len(e.rec.events)-1]
	e.rec.mu.Unlock()
	if got := last.Detail[chains.DetailRetracted]; got != "replaced by fee" {
		t.Fatalf("retraction says %q, want the source's reason", got)
	}
	b, err := e.st.Get(e.ctx, "watch:eth:mempool")
	if err != nil || string(b) != "{}" {
		t.Fatalf("mempool state after the drop = %q, %v; want {}", b, err)
	}
}

// A mempool transaction that a processed block mined leaves the mempool
// without a retraction.
func TestMempoolForgetsAMinedTransaction(t *testing.T) {
	e := newEnv(t)
	p := &pool{Source: e.src}
	f := e.mempoolFollower(p)
	id, r := e.pay()
	p.set(pendingTx(r.TxHash.Hex(), id))
	e.step(f)
	p.set()
	e.step(f)
	if pend, conf, retr := e.rec.count(id, chains.StatusPending), e.rec.count(id, chains.StatusConfirmed), e.rec.count(id, chains.StatusRetracted); pend != 1 || conf != 1 || retr != 0 {
		t.Fatalf("delivered pending %d, confirmed %d, retracted %d times; want 1, 1, 0: %v", pend, conf, retr, e.rec.seen())
	}
}

// A mempool state the store holds from before a restart is read: what it
// lists is not delivered again, and is retracted when it is gone.
func TestMempoolStateSurvivesARestart(t *testing.T) {
	e := newEnv(t)
	if err := e.st.Set(e.ctx, "watch:eth:mempool", []byte(`{"0xbb":[{"id":"eth:0xbb:native","chain":"eth","tx":"0xbb"}]}`), 0); err != nil {
		t.Fatal(err)
	}
	p := &pool{Source: e.src}
	f := e.mempoolFollower(p)
	p.set(pendingTx("0xbb", "eth:0xbb:native"))
	e.step(f)
	if n := e.rec.count("eth:0xbb:native", chains.StatusPending); n != 0 {
		t.Fatalf("delivered pending %d times after a restart, want 0: %v", n, e.rec.seen())
	}
	p.set()
	e.step(f)
	if n := e.rec.count("eth:0xbb:native", chains.StatusRetracted); n != 1 {
		t.Fatalf("delivered retracted %d times, want once: %v", n, e.rec.seen())
	}
}

// recallingPool is a pool that learns the mempool from notifications: it
// must be told what the follower tracks, and says which it still sees.
type recallingPool struct {
	pool
	recalled [][]string
	fail     bool
	known    map[string]bool // what a look-up finds still pending
}

func (p *recallingPool) Recall(_ context.Context, tracked []chains.PendingTx) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fail {
		return errors.New("node unreachable")
	}
	var txs []string
	for _, tx := range tracked {
		txs = append(txs, tx.Tx)
		if p.known[tx.Tx] {
			p.txs = append(p.txs, tx)
		}
	}
	p.recalled = append(p.recalled, txs)
	return nil
}

// A source that learns the mempool from notifications is handed what the
// follower delivered before a restart: one still pending stays pending
// (neither delivered again nor retracted), and when the source cannot look
// them up the pass fails and nothing is retracted on a guess.
func TestMempoolRecallAfterARestart(t *testing.T) {
	e := newEnv(t)
	if err := e.st.Set(e.ctx, "watch:eth:mempool", []byte(`{"0xbb":[{"id":"eth:0xbb:native","chain":"eth","tx":"0xbb"}],"0xcc":[{"id":"eth:0xcc:native","chain":"eth","tx":"0xcc"}]}`), 0); err != nil {
		t.Fatal(err)
	}
	p := &recallingPool{pool: pool{Source: e.src}, fail: true, known: map[string]bool{"0xbb": true}}
	f := e.mempoolFollower(p)
	if err := f.Step(e.ctx); err == nil {
		t.Fatal("a pass whose recall failed succeeded")
	}
	if got := e.rec.seen(); len(got) != 0 {
		t.Fatalf("delivered %v while the source could not say what is pending", got)
	}
	p.mu.Lock()
	p.fail = false
	p.mu.Unlock()
	e.step(f)
	if got := p.recalled; len(got) != 1 || len(got[0]) != 2 || got[0][0] != "0xbb" || got[0][1] != "0xcc" {
		t.Fatalf("recalled %v, want [[0xbb 0xcc]]", got)
	}
	if n := e.rec.count("eth:0xbb:native", chains.StatusRetracted) + e.rec.count("eth:0xbb:native", chains.StatusPending); n != 0 {
		t.Fatalf("the transaction still pending was delivered again or retracted: %v", e.rec.seen())
	}
	if n := e.rec.count("eth:0xcc:native", chains.StatusRetracted); n != 1 {
		t.Fatalf("the transaction gone while keywatch was down was retracted %d times, want once: %v", n, e.rec.seen())
	}
}
