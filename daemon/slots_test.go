package daemon_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"

	"github.com/keywatch/keywatch/chains"
	"github.com/keywatch/keywatch/chains/ethereum"
	"github.com/keywatch/keywatch/config"
	"github.com/keywatch/keywatch/contracts"
	"github.com/keywatch/keywatch/daemon"
	"github.com/keywatch/keywatch/internal/simchain"
	"github.com/keywatch/keywatch/internal/testenv"
)

// TestSlotTakeoverPages: the Bybit pattern on a watched contract wallet. Its
// owner's delegatecall rewrites slot 0 and nothing is logged; the daemon
// reads the slot at the block and admin-change pages on the change, naming
// the old and new singleton.
func TestSlotTakeoverPages(t *testing.T) {
	ctx := context.Background()
	c := simchain.New(map[string]int64{"deployer": 10, "owner": 10}, nil)
	defer c.Close()
	deploy := func(name string, args ...any) common.Address {
		t.Helper()
		a, err := c.Deploy(ctx, "deployer", name, args...)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	singleton := deploy(contracts.NameVault)
	wallet := deploy(contracts.NameSingletonWallet, singleton, simchain.Addr("owner"))
	attacker := deploy(contracts.NameSlotZeroTakeover)
	head, err := c.Client.BlockNumber(ctx)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "keywatch.yaml")
	if err := os.WriteFile(cfgPath, []byte(fmt.Sprintf(`
instance: slots
store: {memory: true}
nats: {embedded: true, url: "nats://127.0.0.1:0", data_dir: %q}
api: {listen: "127.0.0.1:0"}
chains:
  - {name: eth, kind: ethereum, rpc: [ws://127.0.0.1:8546], confirmations: 0, poll_interval: 100ms, start_block: %d}
wallets:
  - {name: treasury-safe, chain: eth, address: %q, role: contract}
policies:
  - {name: admin-change, detector: admin-change, severity: critical, actions: [page]}
alerts:
  sinks:
    - {name: log, kind: log}
`, filepath.Join(dir, "nats"), head+1, wallet.Hex())), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, set, err := daemon.Load(cfgPath)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	d, err := daemon.New(runCtx, cfg, set, daemon.Options{Logger: slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})),
		EthDial: func(context.Context, config.Chain) (ethereum.Client, error) { return c.Client, nil }})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- d.Run(runCtx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("daemon: %v", err)
		}
		d.Close()
	}()
	col := testenv.ReadAlerts(t, d.NATSURL())

	walletArt, _ := contracts.Load(contracts.NameSingletonWallet)
	takeArt, _ := contracts.Load(contracts.NameSlotZeroTakeover)
	inner, err := takeArt.Pack("transfer", attacker, new(big.Int))
	if err != nil {
		t.Fatal(err)
	}
	data, err := walletArt.Pack("execTransaction", attacker, new(big.Int), inner, uint8(1))
	if err != nil {
		t.Fatal(err)
	}
	r, err := c.Send(ctx, "owner", &wallet, nil, data)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Logs) != 0 {
		t.Fatalf("the takeover logged %d events, want none", len(r.Logs))
	}
	lower := func(a common.Address) string { return strings.ToLower(a.Hex()) }
	id := "eth:" + r.BlockHash.Hex() + ":slot:" + lower(wallet) + ":" + ethereum.SlotZero.Hex() + ":admin-change"
	testenv.WaitFor(t, 0, func() bool {
		for _, m := range col.All() {
			if m.Alert.ID == id {
				return true
			}
		}
		return false
	}, "the admin-change alert on slot 0")
	for _, m := range col.All() {
		a := m.Alert
		if a.ID != id {
			t.Errorf("unexpected alert %s", a.ID)
			continue
		}
		e := a.Event
		if a.Wallet != "treasury-safe" || e.Kind != chains.KindAdmin || e.Detail[chains.DetailChange] != "slot" ||
			e.Detail[chains.DetailOld] != common.BytesToHash(singleton.Bytes()).Hex() || e.Detail[chains.DetailNew] != common.BytesToHash(attacker.Bytes()).Hex() ||
			e.Counterparty != lower(attacker) || e.Block != r.BlockNumber.Uint64() {
			t.Errorf("alert on wallet %s, event %+v; want slot 0 of treasury-safe from %s to %s", a.Wallet, e, singleton.Hex(), attacker.Hex())
		}
		if !strings.Contains(strings.Join(a.Reasons, "\n"), "treasury-safe") {
			t.Errorf("reasons %q do not name the wallet", a.Reasons)
		}
	}
}
