package backtest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keywatch/keywatch/alertmodel"
	"github.com/keywatch/keywatch/backtest"
	"github.com/keywatch/keywatch/contracts"
	"github.com/keywatch/keywatch/daemon"
	"github.com/keywatch/keywatch/internal/simchain"
)

// TestReplayFollowsForwardedFunds replays, on go-ethereum's simulated
// chain, a hot wallet paying a fresh address that passes the funds on to a
// Tornado Cash pool: the replay follows the fresh address exactly as the
// watcher does, and the forwarding alert names the whole path.
func TestReplayFollowsForwardedFunds(t *testing.T) {
	ctx := context.Background()
	sim := simchain.New(map[string]int64{"treasury-hot": 100}, nil)
	defer sim.Close()
	thief := simchain.Addr("thief")
	if _, err := sim.Send(ctx, "treasury-hot", &thief, simchain.Ether(10), nil); err != nil {
		t.Fatal(err)
	}
	pool := contracts.TornadoPool1ETH
	if _, err := sim.Send(ctx, "thief", &pool, simchain.Ether(1), nil); err != nil {
		t.Fatal(err)
	}
	head, err := sim.Client.BlockNumber(ctx)
	if err != nil {
		t.Fatal(err)
	}

	got, sum := replay(t, sim, head)
	out := fmt.Sprint(got)
	if len(got) != 1 || got[0].Policy != "funds-to-mixer" || got[0].Wallet != "treasury-hot" || got[0].Event.WalletRole != "followed" {
		t.Fatalf("alerts: %s", out)
	}
	reasons := strings.Join(got[0].Reasons, "\n")
	for _, want := range []string{"hop 1: treasury-hot", "hop 2: " + strings.ToLower(thief.Hex()), strings.ToLower(pool.Hex())} {
		if !strings.Contains(strings.ToLower(reasons), strings.ToLower(want)) {
			t.Errorf("reasons do not name %q:\n%s", want, reasons)
		}
	}
	if sum.Alerts != 1 || sum.Blocks != int(head) {
		t.Errorf("summary: %s", sum)
	}
}

// TestReplayFollowsAHopInTheSameBlock: the fresh address passes the funds on
// to the pool in the very block that paid it. The address is followed once
// the outflow is judged, and the block is read again for what it did next.
func TestReplayFollowsAHopInTheSameBlock(t *testing.T) {
	ctx := context.Background()
	sim := simchain.New(map[string]int64{"treasury-hot": 100, "thief": 2}, nil)
	defer sim.Close()
	thief, pool := simchain.Addr("thief"), contracts.TornadoPool1ETH
	steal, err := sim.Submit(ctx, "treasury-hot", &thief, simchain.Ether(10), nil)
	if err != nil {
		t.Fatal(err)
	}
	mix, err := sim.Submit(ctx, "thief", &pool, simchain.Ether(1), nil)
	if err != nil {
		t.Fatal(err)
	}
	sim.Backend.Commit()
	r1, err := sim.Receipt(ctx, steal)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := sim.Receipt(ctx, mix)
	if err != nil {
		t.Fatal(err)
	}
	if r1.BlockNumber.Cmp(r2.BlockNumber) != 0 {
		t.Fatalf("the two transactions landed in blocks %s and %s, want one", r1.BlockNumber, r2.BlockNumber)
	}
	if r2.TransactionIndex < r1.TransactionIndex {
		t.Logf("the deposit came first in the block (index %d before %d)", r2.TransactionIndex, r1.TransactionIndex)
	}
	got, _ := replay(t, sim, r1.BlockNumber.Uint64())
	if len(got) != 1 || got[0].Policy != "funds-to-mixer" || got[0].Event.Tx != mix.Hash().Hex() {
		t.Fatalf("alerts: %v, want funds-to-mixer on the deposit %s", got, mix.Hash().Hex())
	}
	reasons := strings.ToLower(strings.Join(got[0].Reasons, "\n"))
	for _, want := range []string{"hop 1: treasury-hot", "hop 2: " + thief.Hex(), pool.Hex()} {
		if !strings.Contains(reasons, strings.ToLower(want)) {
			t.Errorf("reasons do not name %q:\n%s", want, reasons)
		}
	}
}

// replay runs the blocks 1 to head of sim through a backtest with the
// forwarding policy and returns the alerts it printed.
func replay(t *testing.T, sim *simchain.Chain, head uint64) ([]alertmodel.Alert, backtest.Summary) {
	t.Helper()
	ctx := context.Background()
	root, _ := filepath.Abs("..")
	dir := t.TempDir()
	path := filepath.Join(dir, "keywatch.yaml")
	cfgText := fmt.Sprintf(`store: {memory: true}
nats: {url: "nats://127.0.0.1:4222"}
chains:
  - {name: sim, kind: ethereum, rpc: [http://127.0.0.1:8545], native_usd: 3000}
wallets:
  - {name: treasury-hot, chain: sim, address: %q, role: hot}
lists:
  mixers: [%q]
  address_book: [%q]
policies:
  - {name: mixer-counterparty, detector: list-match, lists: [mixers], severity: critical}
  - {name: funds-to-mixer, detector: forwarding, lists: [mixers], hops: 3, window: 72h, severity: critical, actions: [page, hold]}
`, simchain.Addr("treasury-hot").Hex(), filepath.Join(root, "configs/lists/mixers.csv"), filepath.Join(root, "configs/lists/address-book.csv"))
	if err := os.WriteFile(path, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, set, err := daemon.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	ch, _ := cfg.Chain("sim")

	var out bytes.Buffer
	r := backtest.New(backtest.Options{Set: set, Out: &out})
	defer r.Close()
	src := daemon.EthereumSource(cfg, ch, sim.Client, r.Hops())
	sum, err := r.Run(ctx, src, backtest.Range{From: 1, To: head})
	if err != nil {
		t.Fatal(err)
	}
	var got []alertmodel.Alert
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		if line == "" {
			continue
		}
		var a alertmodel.Alert
		if err := json.Unmarshal([]byte(line), &a); err != nil {
			t.Fatalf("%v: %s", err, line)
		}
		got = append(got, a)
	}
	return got, sum
}
