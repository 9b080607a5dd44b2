package daemon_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/ethclient"

	"github.com/keywatch/keywatch/contracts"
	"github.com/keywatch/keywatch/daemon"
	"github.com/keywatch/keywatch/internal/simchain"
	"github.com/keywatch/keywatch/internal/testenv"
)

const configTemplate = `
instance: {{instance}}
store:
  redis: {{redis}}
  prefix: "it:"
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
    poll_interval: 250ms
    start_block: {{start}}
    native_usd: 3000
    tokens:
      - {symbol: USDC, address: "{{token}}", decimals: 6, usd: 1}
wallets:
  - {name: treasury-hot, chain: dev, address: "{{hot}}", role: hot}
lists:
  mixers: [{{mixers}}]
  address_book: [{{book}}]
policies:
  - {name: mixer-counterparty, detector: list-match, lists: [mixers], severity: critical, actions: [page, hold]}
  - {name: big-usdc-outflow, detector: threshold, asset: USDC, amount_over: "100000", severity: high, actions: [page]}
alerts:
  sinks:
    - {name: log, kind: log}
`

type running struct {
	cancel context.CancelFunc
	done   chan error
}

func (r *running) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		if err != nil {
			t.Fatalf("daemon: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("daemon did not stop within 30s")
	}
}

func start(t *testing.T, path string) *running { return startLogging(t, path, nil) }

// startLogging is start with the daemon's log also written to w.
func startLogging(t *testing.T, path string, w io.Writer) *running {
	t.Helper()
	cfg, set, err := daemon.Load(path)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var out io.Writer = testWriter{t}
	if w != nil {
		out = io.MultiWriter(out, w)
	}
	log := slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: slog.LevelInfo}))
	d, err := daemon.New(ctx, cfg, set, daemon.Options{Logger: log})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	r := &running{cancel: cancel, done: make(chan error, 1)}
	go func() {
		defer d.Close()
		r.done <- d.Run(ctx)
	}()
	return r
}

func TestDaemonOnGethWithRedis(t *testing.T) {
	for _, transport := range []string{"ws", "http"} {
		t.Run(transport, func(t *testing.T) {
			t.Parallel()
			testDaemonOnGeth(t, transport)
		})
	}
}

func testDaemonOnGeth(t *testing.T, transport string) {
	ctx := context.Background()
	g := testenv.Geth(t)
	redisURL := testenv.Redis(t)
	ns := testenv.NATS(t)
	for name, eth := range map[string]int64{"treasury-hot": 100, "issuer": 1} {
		if err := g.Fund(ctx, simchain.Addr(name), simchain.Ether(eth)); err != nil {
			t.Fatal(err)
		}
	}
	client, err := ethclient.Dial(g.HTTPURL)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	chainID := big.NewInt(1337)
	send := func(from string, to common.Address, value *big.Int, data []byte) common.Hash {
		t.Helper()
		tx, err := contracts.Transact(ctx, client, simchain.Key(from), chainID, &to, value, data)
		if err != nil {
			t.Fatal(err)
		}
		r, err := g.WaitForReceipt(ctx, tx.Hash())
		if err != nil || r.Status != 1 {
			t.Fatalf("tx %s: status %v, %v", tx.Hash().Hex(), r, err)
		}
		return tx.Hash()
	}
	token, tx, err := contracts.Deploy(ctx, client, simchain.Key("issuer"), chainID, contracts.NameTestToken, "USD Coin", "USDC", uint8(6))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.WaitForReceipt(ctx, tx.Hash()); err != nil {
		t.Fatal(err)
	}
	tokenABI, _ := contracts.Load(contracts.NameTestToken)
	mint, _ := tokenABI.Pack("mint", simchain.Addr("treasury-hot"), big.NewInt(10_000_000_000_000))
	send("issuer", token, nil, mint)
	head, err := g.BlockNumber(ctx)
	if err != nil {
		t.Fatal(err)
	}

	rpc := g.WSURL
	if transport == "http" {
		rpc = g.HTTPURL
	}
	dir := t.TempDir()
	root := testenv.RepoRoot(t)
	cfg := strings.NewReplacer(
		"{{instance}}", "it-"+transport, "{{redis}}", redisURL, "{{nats}}", ns.URL(), "{{rpc}}", rpc,
		"{{start}}", fmt.Sprint(head+1), "{{token}}", token.Hex(), "{{hot}}", simchain.Addr("treasury-hot").Hex(),
		"{{mixers}}", filepath.Join(root, "configs/lists/mixers.csv"), "{{book}}", filepath.Join(root, "configs/lists/address-book.csv"),
	).Replace(configTemplate)
	path := filepath.Join(dir, "keywatch.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}

	first := start(t, path)
	c := testenv.ReadAlerts(t, ns.URL())

	// An ordinary payment to the vendor in the address book: no alert.
	ordinary := send("treasury-hot", simchain.Addr("vendor"), simchain.Ether(1), nil)
	// Straight into the Tornado Cash 1 ETH pool's address.
	mix := send("treasury-hot", contracts.TornadoPool1ETH, simchain.Ether(1), nil)
	testenv.WaitFor(t, 0, func() bool { return c.Has(mix.Hex(), "mixer-counterparty", "pending") }, "pending mixer alert")
	testenv.WaitFor(t, 0, func() bool { return c.Has(mix.Hex(), "mixer-counterparty", "confirmed") }, "confirmed mixer alert")
	// 200,000 USDC to a fresh address, over the 100,000 USDC threshold.
	data, _ := tokenABI.Pack("transfer", simchain.Addr("fresh"), big.NewInt(200_000_000_000))
	big1 := send("treasury-hot", token, nil, data)
	testenv.WaitFor(t, 0, func() bool { return c.Has(big1.Hex(), "big-usdc-outflow", "confirmed") }, "confirmed threshold alert")

	// keywatch goes down; three deposits land while it is away.
	first.stop(t)
	pool01 := common.HexToAddress("0x12D66f87A04A9E220743712cE6d9bB1B5616B8Fc") // Tornado 0.1 ETH pool
	var missed []common.Hash
	for range 3 {
		missed = append(missed, send("treasury-hot", pool01, new(big.Int).Div(simchain.Ether(1), big.NewInt(10)), nil))
	}
	last, _ := g.BlockNumber(ctx)
	if err := g.WaitForBlock(ctx, last+2); err != nil {
		t.Fatal(err)
	}

	second := start(t, path)
	defer second.stop(t)
	for _, tx := range missed {
		testenv.WaitFor(t, 0, func() bool { return c.Has(tx.Hex(), "mixer-counterparty", "confirmed") }, "alert for a deposit made while keywatch was down")
	}

	for id, n := range c.MsgIDCounts() {
		if n != 1 {
			t.Errorf("message %s published %d times", id, n)
		}
	}
	if got := c.ForTx(ordinary.Hex()); len(got) != 0 {
		t.Errorf("the ordinary payment raised %v", got)
	}
	if got := c.ForTx(mix.Hex()); len(got) != 2 {
		t.Errorf("the mixer deposit raised %v, want pending and confirmed once each", got)
	}
	for _, tx := range missed {
		// Already deep when the second process caught up: confirmed at once.
		if got := c.ForTx(tx.Hex()); len(got) != 1 {
			t.Errorf("deposit %s raised %v, want one confirmed alert", tx.Hex(), got)
		}
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
