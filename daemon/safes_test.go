package daemon_test

import (
	"context"
	"crypto/ecdsa"
	"fmt"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/keywatch/keywatch/chains/ethereum"
	"github.com/keywatch/keywatch/chains/ethereum/safe"
	"github.com/keywatch/keywatch/config"
	"github.com/keywatch/keywatch/daemon"
	"github.com/keywatch/keywatch/internal/safetest"
	"github.com/keywatch/keywatch/internal/simchain"
	"github.com/keywatch/keywatch/internal/testenv"
)

const safeConfig = `store: {memory: true}
nats: {url: %q}
api: {listen: "127.0.0.1:0"}
chains:
  - {name: eth, kind: ethereum, rpc: ["ws://127.0.0.1:1"], chain_id: 1337, confirmations: 0, poll_interval: 100ms, start_block: %d, native_usd: 3000}
wallets:
  - {name: treasury-safe, chain: eth, address: %q, role: warm, owner: treasury@firm.example, account: safe}
  - {name: dev-kim, chain: eth, address: %q, role: employee-key, owner: kim@firm.example, hours: %q}
policies:
  - {name: safe-delegatecall, detector: delegatecall, actions: [page, hold]}
  - {name: safe-admin, detector: admin-change, severity: critical, actions: [page]}
  - {name: off-hours, detector: off-hours, severity: medium}
alerts: {sinks: [{name: log, kind: log}]}
`

// startSafeDaemon runs keywatch over the simulated chain with the Safe
// configuration; the employee key's working hours exclude the chain's
// present time.
func startSafeDaemon(t *testing.T, c *simchain.Chain, natsURL string, safeAddr common.Address) (run func(context.Context) error, d *daemon.Daemon) {
	t.Helper()
	ctx := context.Background()
	head, err := c.Client.HeaderByNumber(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(int64(head.Time), 0).UTC()
	hours := fmt.Sprintf("%s-%s UTC", now.Add(3*time.Hour).Format("15:04"), now.Add(4*time.Hour).Format("15:04"))
	body := fmt.Sprintf(safeConfig, natsURL, head.Number.Uint64()+1, safeAddr.Hex(), simchain.Addr("dev-kim").Hex(), hours)
	path := filepath.Join(t.TempDir(), "keywatch.yaml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, set, err := daemon.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	d, err = daemon.New(ctx, cfg, set, daemon.Options{Logger: log,
		EthDial: func(context.Context, config.Chain) (ethereum.Client, error) { return c.Client, nil }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	return d.Run, d
}

// TestSafeTakeoverPagesOnTheDelegatecall: a watched Safe 1.4.1 batches a
// payment through Safe's own MultiSend (no alert), adds an owner (an admin
// alert), then runs the Bybit delegatecall, signed by an owner and an
// employee key outside its hours: the delegatecall pages, and off-hours
// names the employee.
func TestSafeTakeoverPagesOnTheDelegatecall(t *testing.T) {
	ctx := context.Background()
	ns := testenv.NATS(t)
	c := simchain.New(map[string]int64{"deployer": 100, "alice": 10, "dev-kim": 10, "relayer": 10}, safetest.DeployerAlloc())
	defer c.Close()
	chain := safetest.Sim(c)
	dep, err := safetest.Deploy(ctx, chain, simchain.Key("deployer"), "1.4.1")
	if err != nil {
		t.Fatal(err)
	}
	if l, ok := safe.LibraryAt(dep.MultiSend.Hex()); !ok || l.Contract != "MultiSend" {
		t.Fatalf("the npm package's MultiSend landed at %s, not at Safe's canonical deployment", dep.MultiSend.Hex())
	}
	s, err := dep.NewSafe(ctx, chain, simchain.Key("deployer"), []common.Address{simchain.Addr("alice"), simchain.Addr("dev-kim")}, 2, false, 1)
	if err != nil {
		t.Fatal(err)
	}
	run, _ := startSafeDaemon(t, c, ns.URL(), s.Address)
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- run(runCtx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("daemon: %v", err)
		}
	}()
	col := testenv.ReadAlerts(t, ns.URL())

	signers := []*ecdsa.PrivateKey{simchain.Key("alice"), simchain.Key("dev-kim")}
	relayer := simchain.Key("relayer")
	batch, err := safetest.MultiSendData(safetest.MultiSendTx{Op: safe.Call, To: simchain.Addr("vendor")})
	if err != nil {
		t.Fatal(err)
	}
	ordinary, err := s.Run(ctx, relayer, dep.MultiSend, nil, batch, safe.DelegateCall, signers...)
	if err != nil {
		t.Fatal(err)
	}
	added, err := s.Admin(ctx, relayer, signers, "addOwnerWithThreshold", simchain.Addr("carol"), big.NewInt(2))
	if err != nil {
		t.Fatal(err)
	}
	attacker, err := safetest.DeploySlotWriter(ctx, chain, simchain.Key("deployer"))
	if err != nil {
		t.Fatal(err)
	}
	theft, err := s.Run(ctx, relayer, attacker, nil, safetest.SlotWriterCall(simchain.Addr("evil")), safe.DelegateCall, signers...)
	if err != nil {
		t.Fatal(err)
	}
	tx := theft.TxHash.Hex()
	testenv.WaitFor(t, 0, func() bool { return col.Has(tx, "safe-delegatecall", "confirmed") }, "the delegatecall alert")
	testenv.WaitFor(t, 0, func() bool { return col.Has(tx, "off-hours", "confirmed") }, "the off-hours alert on the employee's signature")
	testenv.WaitFor(t, 0, func() bool { return col.Has(added.TxHash.Hex(), "safe-admin", "confirmed") }, "the added-owner alert")
	for _, m := range col.All() {
		a := m.Alert
		switch {
		case strings.EqualFold(a.Event.Tx, tx) && a.Policy == "safe-delegatecall":
			if a.Severity != "critical" || a.Event.Operation != "delegatecall" || a.Event.Target != strings.ToLower(attacker.Hex()) ||
				a.Event.Owner != "kim@firm.example" || !strings.Contains(strings.Join(a.Reasons, " "), "not in allow (safe-libraries)") || a.HoldID == "" {
				t.Errorf("delegatecall alert: severity %s, event %+v, reasons %v, hold %q", a.Severity, a.Event, a.Reasons, a.HoldID)
			}
		case strings.EqualFold(a.Event.Tx, tx) && a.Policy == "off-hours":
			if !strings.Contains(a.Reasons[0], "dev-kim (employee key of kim@firm.example) signed at") {
				t.Errorf("off-hours reasons: %v", a.Reasons)
			}
		case strings.EqualFold(a.Event.Tx, added.TxHash.Hex()) && a.Policy == "safe-admin":
			if a.Event.Detail["change"] != "added-owner" || !strings.Contains(a.Reasons[0], "owner "+strings.ToLower(simchain.Addr("carol").Hex())+" added") {
				t.Errorf("added-owner alert: detail %v reasons %v", a.Event.Detail, a.Reasons)
			}
		case strings.EqualFold(a.Event.Tx, ordinary.TxHash.Hex()) && a.Policy == "safe-delegatecall":
			t.Errorf("a delegatecall to Safe's own MultiSend fired: %v", a.Reasons)
		}
	}
}

// TestDaemonRefusesASafeThatIsNotOne: a wallet marked account: safe whose
// address is a plain account stops keywatch at start, naming the wallet.
func TestDaemonRefusesASafeThatIsNotOne(t *testing.T) {
	ns := testenv.NATS(t)
	c := simchain.New(map[string]int64{"alice": 10}, nil)
	defer c.Close()
	run, d := startSafeDaemon(t, c, ns.URL(), simchain.Addr("alice"))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := run(ctx)
	want := fmt.Sprintf("chain eth: wallet treasury-safe is marked account: safe, but %s is not a Safe: %s has no contract code",
		simchain.Addr("alice").Hex(), strings.ToLower(simchain.Addr("alice").Hex()))
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("Run: %v\nwant it to say: %s", err, want)
	}
	if _, err := d.Store.Get(context.Background(), "watch:eth:checkpoint"); err == nil {
		t.Error("the watcher started with a Safe that is not one")
	}
}
