package daemon_test

import (
	"context"
	"fmt"
	"math"
	"math/big"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/ethereum/go-ethereum/params"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/keywatch/keywatch/contracts"
	"github.com/keywatch/keywatch/internal/simchain"
	"github.com/keywatch/keywatch/internal/testenv"
)

const mempoolConfig = `
instance: mempool
store: {memory: true}
nats:
  url: {{nats}}
api:
  listen: 127.0.0.1:0
chains:
  - name: dev
    kind: ethereum
    rpc: [{{rpc}}]
    chain_id: 1337
    confirmations: 2
    start_block: {{start}}
    native_usd: 3000
wallets:
  - {name: treasury-hot, chain: dev, address: "{{hot}}", role: hot}
lists:
  mixers: [{{mixers}}]
policies:
  - {name: mixer-counterparty, detector: list-match, lists: [mixers], severity: critical, actions: [page]}
  - {name: any-outflow, when: 'event.direction == "out"', severity: low}
alerts:
  sinks:
    - {name: log, kind: log}
`

// pendingAt returns when the first alert of policy about transaction tx
// with its event pending reached the stream's reader.
func pendingAt(s *testenv.AlertStream, tx, policy string) (time.Time, bool) {
	for _, m := range alertsOf(s, tx) {
		if m.Alert.Policy == policy && m.Alert.Event.Status == "pending" {
			return m.Received, true
		}
	}
	return time.Time{}, false
}

// nodeNotifications is a bare subscriber to geth's own newPendingTransactions
// notifications: the baseline of the measurement.
type nodeNotifications struct {
	mu    sync.Mutex
	first map[common.Hash]time.Time
}

func subscribeNode(t *testing.T, wsURL string) *nodeNotifications {
	t.Helper()
	c, err := rpc.Dial(wsURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	ch := make(chan struct {
		Hash common.Hash `json:"hash"`
	}, 1024)
	sub, err := c.EthSubscribe(context.Background(), ch, "newPendingTransactions", true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sub.Unsubscribe)
	n := &nodeNotifications{first: map[common.Hash]time.Time{}}
	go func() {
		for {
			select {
			case tx := <-ch:
				now := time.Now()
				n.mu.Lock()
				if _, ok := n.first[tx.Hash]; !ok {
					n.first[tx.Hash] = now
				}
				n.mu.Unlock()
			case <-sub.Err():
				return
			}
		}
	}()
	return n
}

func (n *nodeNotifications) at(h common.Hash) (time.Time, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	t, ok := n.first[h]
	return t, ok
}

// signTransfers signs n transfers of the named key with consecutive nonces
// from nonce, before any is sent, so that sending is only
// eth_sendRawTransaction.
func signTransfers(t *testing.T, ctx context.Context, c *ethclient.Client, from string, nonce uint64, n int, to common.Address, value *big.Int) []*types.Transaction {
	t.Helper()
	head, err := c.HeaderByNumber(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	id := big.NewInt(1337)
	tip := big.NewInt(params.GWei)
	feeCap := new(big.Int).Add(new(big.Int).Mul(head.BaseFee, big.NewInt(4)), tip)
	out := make([]*types.Transaction, n)
	for i := range out {
		tx, err := types.SignNewTx(simchain.Key(from), types.LatestSignerForChainID(id), &types.DynamicFeeTx{
			ChainID: id, Nonce: nonce + uint64(i), GasTipCap: tip, GasFeeCap: feeCap, Gas: 21000, To: &to, Value: value,
		})
		if err != nil {
			t.Fatal(err)
		}
		out[i] = tx
	}
	return out
}

// alertsOf returns the messages of the alert stream about transaction tx.
func alertsOf(s *testenv.AlertStream, tx string) []testenv.StreamedAlert {
	var out []testenv.StreamedAlert
	for _, m := range s.All() {
		if strings.EqualFold(m.Alert.Event.Tx, tx) {
			out = append(out, m)
		}
	}
	return out
}

// percentile is the nearest-rank p-th percentile of sorted durations.
func percentile(sorted []time.Duration, p float64) time.Duration {
	i := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	return sorted[max(i, 0)]
}

// TestEVMMempoolPendingAlertsOnNATS runs keywatch against a real geth --dev
// whose blocks come every 12 s, over WebSocket: a deposit from the hot
// wallet straight into a Tornado Cash pool is paged from the mempool, before
// any block holds it, then confirmed at depth under the same alert id, each
// message once. It then measures, over 40 transfers, the time from a
// transaction's broadcast (eth_sendRawTransaction returning) to its pending
// alert on NATS JetStream, against the time to geth's own
// newPendingTransactions notification to a bare subscriber in the same run:
//
//	go test -run TestEVMMempoolPendingAlertsOnNATS -v ./daemon/
func TestEVMMempoolPendingAlertsOnNATS(t *testing.T) {
	ctx := context.Background()
	const period = 12
	g := testenv.Geth(t, testenv.GethDevPeriod(period))
	ns := testenv.NATS(t)
	hot := simchain.Addr("treasury-hot")
	if err := g.Fund(ctx, hot, simchain.Ether(1000)); err != nil {
		t.Fatal(err)
	}
	client, err := ethclient.Dial(g.HTTPURL)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	head, err := g.BlockNumber(ctx)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg := strings.NewReplacer("{{nats}}", ns.URL(), "{{rpc}}", g.WSURL, "{{start}}", fmt.Sprint(head+1), "{{hot}}", hot.Hex(),
		"{{mixers}}", filepath.Join(testenv.RepoRoot(t), "configs/lists/mixers.csv")).Replace(mempoolConfig)
	path := filepath.Join(dir, "keywatch.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	d := start(t, path)
	defer d.stop(t)
	stream := testenv.ReadAlerts(t, ns.URL())
	baseline := subscribeNode(t, g.WSURL)

	// keywatch's mempool feed is up once a transfer is paged from the
	// mempool (block 0) rather than from its block: send one every few
	// seconds until one is.
	nonce := uint64(0)
	fromMempool := func(tx common.Hash, policy string) bool {
		for _, m := range alertsOf(stream, tx.Hex()) {
			if m.Alert.Policy == policy && m.Alert.Event.Status == "pending" && m.Alert.Event.Block == 0 {
				return true
			}
		}
		return false
	}
	for up := false; !up; nonce++ {
		if nonce == 10 {
			t.Fatal("no transfer was paged from the mempool: keywatch's mempool feed did not start")
		}
		warm := signTransfers(t, ctx, client, "treasury-hot", nonce, 1, simchain.Addr("vendor"), simchain.Ether(1))[0]
		if err := client.SendTransaction(ctx, warm); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(3 * time.Second)
		for !up && time.Now().Before(deadline) {
			up = fromMempool(warm.Hash(), "any-outflow")
			time.Sleep(10 * time.Millisecond) // poll interval
		}
	}
	last, _ := g.BlockNumber(ctx)
	if err := g.WaitForBlock(ctx, last+1); err != nil { // a whole period ahead
		t.Fatal(err)
	}

	// The theft: 1 ETH from the hot wallet into the 1 ETH pool's address.
	theft := signTransfers(t, ctx, client, "treasury-hot", nonce, 1, contracts.TornadoPool1ETH, simchain.Ether(1))[0]
	nonce++
	if err := client.SendTransaction(ctx, theft); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 10*time.Second, func() bool { return stream.Has(theft.Hash().Hex(), "mixer-counterparty", "pending") }, "the pending mixer alert")
	var r *testenv.Receipt
	if err := g.Call(ctx, &r, "eth_getTransactionReceipt", theft.Hash()); err != nil || r != nil {
		t.Fatalf("the theft's pending alert came after its block (receipt %+v, %v)", r, err)
	}
	if !fromMempool(theft.Hash(), "mixer-counterparty") {
		t.Fatalf("the pending mixer alert's event carries a block, want the mempool's (block 0): %+v", alertsOf(stream, theft.Hash().Hex()))
	}
	testenv.WaitFor(t, 5*period*time.Second, func() bool { return stream.Has(theft.Hash().Hex(), "mixer-counterparty", "confirmed") }, "the confirmed mixer alert")
	alertID := "dev:" + theft.Hash().Hex() + ":native:mixer-counterparty"
	var ids []string
	for _, m := range alertsOf(stream, theft.Hash().Hex()) {
		if m.Alert.Policy == "mixer-counterparty" {
			if m.Alert.ID != alertID {
				t.Errorf("alert id %s, want %s: pending and confirmed are one alert", m.Alert.ID, alertID)
			}
			ids = append(ids, m.MsgID)
		}
	}
	if want := []string{alertID + ":pending:firing", alertID + ":confirmed:firing"}; strings.Join(ids, " ") != strings.Join(want, " ") {
		t.Errorf("mixer alert messages %v, want %v (once each)", ids, want)
	}

	// The measurement: 40 transfers, one every 150 ms, inside one block
	// period.
	const n = 40
	txs := signTransfers(t, ctx, client, "treasury-hot", nonce, n, simchain.Addr("vendor"), big.NewInt(params.GWei))
	last, _ = g.BlockNumber(ctx)
	if err := g.WaitForBlock(ctx, last+1); err != nil {
		t.Fatal(err)
	}
	sent, took := make([]time.Time, n), make([]time.Duration, n)
	pace := time.NewTicker(150 * time.Millisecond)
	defer pace.Stop()
	for i, tx := range txs {
		before := time.Now()
		if err := client.SendTransaction(ctx, tx); err != nil {
			t.Fatal(err)
		}
		sent[i] = time.Now()
		took[i] = sent[i].Sub(before)
		<-pace.C
	}
	var toAlert, toNode []time.Duration
	for i, tx := range txs {
		h := tx.Hash()
		testenv.WaitFor(t, 30*time.Second, func() bool {
			_, ok := pendingAt(stream, h.Hex(), "any-outflow")
			return ok
		}, "the pending alert of transfer "+h.Hex())
		at, _ := pendingAt(stream, h.Hex(), "any-outflow")
		toAlert = append(toAlert, at.Sub(sent[i]))
		if nt, ok := baseline.at(h); ok {
			toNode = append(toNode, nt.Sub(sent[i]))
		}
	}
	inBlock := 0
	for _, m := range stream.All() {
		if m.Alert.Policy == "any-outflow" && m.Alert.Event.Status == "pending" && m.Alert.Event.Block != 0 {
			for _, tx := range txs {
				if strings.EqualFold(m.Alert.Event.Tx, tx.Hash().Hex()) {
					inBlock++
				}
			}
		}
	}
	if inBlock > 0 {
		t.Errorf("%d of the %d pending alerts carry a block: they were not first seen in the mempool", inBlock, n)
	}
	for id, c := range stream.MsgIDCounts() {
		if c != 1 {
			t.Errorf("message %s published %d times", id, c)
		}
	}
	if len(toNode) != n {
		t.Fatalf("the bare subscriber saw %d of the %d transfers", len(toNode), n)
	}
	sort.Slice(toAlert, func(i, j int) bool { return toAlert[i] < toAlert[j] })
	sort.Slice(toNode, func(i, j int) bool { return toNode[i] < toNode[j] })
	sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
	round := func(d time.Duration) time.Duration { return d.Round(10 * time.Microsecond) }
	t.Logf("broadcast (eth_sendRawTransaction returned) to, over %d transfers on geth --dev.period %d:", n, period)
	t.Logf("  geth's newPendingTransactions at a bare subscriber (baseline): p50 %v, p99 %v, max %v", round(percentile(toNode, 50)), round(percentile(toNode, 99)), round(toNode[n-1]))
	t.Logf("  keywatch's pending alert on NATS JetStream:                 p50 %v, p99 %v, max %v", round(percentile(toAlert, 50)), round(percentile(toAlert, 99)), round(toAlert[n-1]))
	t.Logf("(eth_sendRawTransaction itself, over HTTP: p50 %v, p99 %v; geth can notify before its answer is read, so the baseline may be below zero)", round(percentile(took, 50)), round(percentile(took, 99)))
}
