package daemon_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/nats-io/nats.go"

	"github.com/keywatch/keywatch/contracts"
	"github.com/keywatch/keywatch/internal/simchain"
	"github.com/keywatch/keywatch/internal/testenv"
	"github.com/keywatch/keywatch/watchdog"
)

// heartbeats keeps the newest heartbeat of each instance.
type heartbeats struct {
	mu   sync.Mutex
	last map[string]watchdog.Heartbeat
}

func readHeartbeats(t *testing.T, url string) *heartbeats {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	h := &heartbeats{last: map[string]watchdog.Heartbeat{}}
	if _, err := nc.Subscribe("keywatch.heartbeat.*", func(m *nats.Msg) {
		var hb watchdog.Heartbeat
		if err := json.Unmarshal(m.Data, &hb); err != nil {
			t.Errorf("heartbeat on %s is not JSON: %v", m.Subject, err)
			return
		}
		h.mu.Lock()
		h.last[hb.Instance] = hb
		h.mu.Unlock()
	}); err != nil {
		t.Fatal(err)
	}
	return h
}

// chain is what instance last said of chain.
func (h *heartbeats) chain(instance, chain string) (watchdog.Chain, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, c := range h.last[instance].Chains {
		if c.Chain == chain {
			return c, true
		}
	}
	return watchdog.Chain{}, false
}

func (h *heartbeats) follows(instance string) func() bool {
	return func() bool {
		c, ok := h.chain(instance, "dev")
		return ok && !c.Standby && c.Processed > 0
	}
}

func (h *heartbeats) standsBy(instance, holder string) func() bool {
	return func() bool {
		c, ok := h.chain(instance, "dev")
		return ok && c.Standby && c.FollowedBy == holder
	}
}

// Two keywatch instances on one Redis and one node: one follows the chain,
// the other stands by and takes over when the first stops. Every deposit
// is alerted, none twice.
func TestTwoInstancesShareAChain(t *testing.T) {
	ctx := context.Background()
	g := testenv.Geth(t)
	redisURL := testenv.Redis(t)
	ns := testenv.NATS(t)
	if err := g.Fund(ctx, simchain.Addr("treasury-hot"), simchain.Ether(10)); err != nil {
		t.Fatal(err)
	}
	client, err := ethclient.Dial(g.HTTPURL)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	deposit := func() common.Hash {
		t.Helper()
		tx, err := contracts.Transact(ctx, client, simchain.Key("treasury-hot"), big.NewInt(1337), &contracts.TornadoPool1ETH, simchain.Ether(1), nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := g.WaitForReceipt(ctx, tx.Hash()); err != nil {
			t.Fatal(err)
		}
		return tx.Hash()
	}
	head, err := g.BlockNumber(ctx)
	if err != nil {
		t.Fatal(err)
	}
	root := testenv.RepoRoot(t)
	config := func(instance string) string {
		cfg := fmt.Sprintf(`instance: %s
store: {redis: %q, prefix: "share:"}
nats: {url: %q}
api: {listen: "127.0.0.1:0"}
chains:
  - {name: dev, kind: ethereum, rpc: [%q], chain_id: 1337, confirmations: 1, poll_interval: 250ms, start_block: %d}
wallets:
  - {name: treasury-hot, chain: dev, address: %q, role: hot}
lists:
  mixers: [%q]
policies:
  - {name: mixer-counterparty, detector: list-match, lists: [mixers], severity: critical, actions: [page]}
alerts:
  heartbeat: {interval: 200ms, timeout: 10s}
  sinks:
    - {name: log, kind: log}
`, instance, redisURL, ns.URL(), g.WSURL, head+1, simchain.Addr("treasury-hot").Hex(), filepath.Join(root, "configs/lists/mixers.csv"))
		path := filepath.Join(t.TempDir(), instance+".yaml")
		if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	hb := readHeartbeats(t, ns.URL())

	a := start(t, config("kw-a"))
	c := testenv.ReadAlerts(t, ns.URL())
	first := deposit()
	testenv.WaitFor(t, 0, func() bool { return c.Has(first.Hex(), "mixer-counterparty", "confirmed") }, "kw-a alerts on the first deposit")
	testenv.WaitFor(t, 0, hb.follows("kw-a"), "kw-a says it follows dev")

	b := start(t, config("kw-b"))
	defer b.stop(t)
	testenv.WaitFor(t, 0, hb.standsBy("kw-b", "kw-a"), "kw-b says it stands by for kw-a")
	second := deposit()
	testenv.WaitFor(t, 0, func() bool { return c.Has(second.Hex(), "mixer-counterparty", "confirmed") }, "an alert on the second deposit")
	if bc, _ := hb.chain("kw-b", "dev"); !bc.Standby || bc.Processed != 0 {
		t.Fatalf("kw-b followed dev while kw-a held it: %+v", bc)
	}

	// kw-a stops; kw-b takes over from the checkpoint.
	a.stop(t)
	third := deposit()
	testenv.WaitFor(t, 0, hb.follows("kw-b"), "kw-b takes dev over")
	testenv.WaitFor(t, 0, func() bool { return c.Has(third.Hex(), "mixer-counterparty", "confirmed") }, "kw-b alerts on the third deposit")

	// With a ws node the mempool may page a deposit before its block: then
	// pending, and confirmed under the same alert id.
	for _, tx := range []common.Hash{first, second, third} {
		got := c.ForTx(tx.Hex())
		if len(got) == 2 && strings.HasSuffix(got[0], ":pending:firing") {
			got = got[1:]
		}
		if len(got) != 1 || !strings.HasSuffix(got[0], ":confirmed:firing") {
			t.Errorf("deposit %s raised %v, want one confirmed alert (after at most one pending from the mempool)", tx.Hex(), c.ForTx(tx.Hex()))
		}
	}
	for id, n := range c.MsgIDCounts() {
		if n != 1 {
			t.Errorf("message %s published %d times", id, n)
		}
	}
}
