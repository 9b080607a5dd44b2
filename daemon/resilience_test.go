package daemon_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/ethclient"

	"github.com/keywatch/keywatch/chains/ethereum"
	"github.com/keywatch/keywatch/config"
	"github.com/keywatch/keywatch/contracts"
	"github.com/keywatch/keywatch/daemon"
	"github.com/keywatch/keywatch/internal/simchain"
	"github.com/keywatch/keywatch/internal/testenv"
)

// TestDaemonSurvivesTheNodeGoingAway stops geth under a running keywatch
// (WebSocket, so the head subscription breaks too) and starts it again: the
// watcher reconnects, resubscribes, and alerts on what happens next.
func TestDaemonSurvivesTheNodeGoingAway(t *testing.T) {
	ctx := context.Background()
	g := testenv.Geth(t)
	ns := testenv.NATS(t)
	if err := g.Fund(ctx, simchain.Addr("treasury-hot"), simchain.Ether(10)); err != nil {
		t.Fatal(err)
	}
	head, err := g.BlockNumber(ctx)
	if err != nil {
		t.Fatal(err)
	}
	root := testenv.RepoRoot(t)
	cfg := fmt.Sprintf(`store: {memory: true}
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
`, ns.URL(), g.WSURL, head+1, simchain.Addr("treasury-hot").Hex(), filepath.Join(root, "configs/lists/mixers.csv"))
	path := filepath.Join(t.TempDir(), "keywatch.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	d := start(t, path)
	defer d.stop(t)
	c := testenv.ReadAlerts(t, ns.URL())

	g.Stop()
	g.Start()

	client, err := ethclient.Dial(g.HTTPURL)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	tx, err := contracts.Transact(ctx, client, simchain.Key("treasury-hot"), big.NewInt(1337), &contracts.TornadoPool1ETH, simchain.Ether(1), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.WaitForReceipt(ctx, tx.Hash()); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 0, func() bool { return c.Has(tx.Hash().Hex(), "mixer-counterparty", "confirmed") }, "an alert after the node came back")
	if got := c.ForTx(tx.Hash().Hex()); len(got) != 1 || !strings.HasSuffix(got[0], ":confirmed:firing") { // confirmations: 1 = confirmed on inclusion
		t.Fatalf("alerts for the deposit: %v", got)
	}
}

// TestRunThatCannotStartLeavesNothingRunning: when Run cannot build a part
// (here the chain's node cannot be dialled), it returns the error with
// nothing of keywatch left behind: no API still answering on the listener.
func TestRunThatCannotStartLeavesNothingRunning(t *testing.T) {
	ns := testenv.NATS(t)
	cfg := fmt.Sprintf(`store: {memory: true}
nats: {url: %q}
api: {listen: "127.0.0.1:0"}
chains:
  - {name: dev, kind: ethereum, rpc: ["ws://127.0.0.1:1"]}
wallets:
  - {name: treasury-hot, chain: dev, address: %q, role: hot}
`, ns.URL(), simchain.Addr("treasury-hot").Hex())
	path := filepath.Join(t.TempDir(), "keywatch.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	c, set, err := daemon.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	d, err := daemon.New(ctx, c, set, daemon.Options{Logger: slog.New(slog.DiscardHandler),
		EthDial: func(context.Context, config.Chain) (ethereum.Client, error) {
			return nil, errors.New("node unreachable")
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Listen(); err != nil {
		t.Fatal(err)
	}
	addr := d.HTTPAddr()
	if err := d.Run(ctx); err == nil || !strings.Contains(err.Error(), "node unreachable") {
		t.Fatalf("Run: %v, want the dial error", err)
	}
	client := &http.Client{Timeout: 2 * time.Second}
	if resp, err := client.Get("http://" + addr + "/healthz"); err == nil {
		resp.Body.Close()
		t.Fatalf("the API still answers (%s) after Run returned", resp.Status)
	}
}
