package daemon_test

import (
	"context"
	"crypto/ecdsa"
	"fmt"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/keywatch/keywatch/chains/ethereum"
	"github.com/keywatch/keywatch/chains/ethereum/safe"
	"github.com/keywatch/keywatch/config"
	"github.com/keywatch/keywatch/contracts"
	"github.com/keywatch/keywatch/daemon"
	"github.com/keywatch/keywatch/internal/safeservice"
	"github.com/keywatch/keywatch/internal/simchain"
	"github.com/keywatch/keywatch/internal/testenv"
)

// TestSafeQueueThroughTheDaemon runs the daemon with real Redis and NATS
// on a simulated chain holding a Safe stand-in, and a Safe Transaction
// Service whose queue shows the owners another hash than the delegatecall
// they are asked to sign: safe-hash pages and holds the Safe while the
// transaction is only proposed, and the same alert is published again,
// once, when the chain executes it.
func TestSafeQueueThroughTheDaemon(t *testing.T) {
	ctx := context.Background()
	redisURL := testenv.Redis(t)
	ns := testenv.NATS(t)
	chain := simchain.New(map[string]int64{"deployer": 10}, nil)
	defer chain.Close()
	safeAddr, err := chain.Deploy(ctx, "deployer", contracts.NameSafeStandIn, "1.3.0", big.NewInt(0), []common.Address{simchain.Addr("alice")})
	if err != nil {
		t.Fatal(err)
	}
	svc := safeservice.New(t, "")
	owners := []*ecdsa.PrivateKey{simchain.Key("safe-owner-1"), simchain.Key("safe-owner-2")}
	svc.SetInfo(safeAddr, 0, 2, nil, "1.3.0")
	shown := common.HexToHash("0x5afe")
	rec, hash := safeservice.Record(t, safeAddr, simchain.ChainID, "1.3.0", safeservice.Proposal{
		To: common.HexToAddress("0x96221423681A6d52E184D440a8eFCEbB105C7242"), Op: safe.DelegateCall,
		Data: common.FromHex("0xa9059cbb"), Signers: owners, Shown: &shown})
	svc.Add(safeAddr, rec)

	cfg := fmt.Sprintf(`store: {redis: %q, prefix: "safequeue-it:"}
nats: {url: %q}
api: {listen: 127.0.0.1:0}
chains:
  - {name: eth, kind: ethereum, rpc: ["ws://127.0.0.1:1"], chain_id: 1337, confirmations: 1, poll_interval: 100ms, safe_tx_service: %q}
wallets:
  - {name: treasury-safe, chain: eth, address: %q, role: cold, account: safe}
policies:
  - {name: safe-hash, detector: safe-hash, actions: [page, hold]}
`, redisURL, ns.URL(), svc.URL(), safeAddr.Hex())
	path := filepath.Join(t.TempDir(), "keywatch.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	c, set, err := daemon.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	d, err := daemon.New(ctx, c, set, daemon.Options{Logger: log, SafeQueueInterval: 100 * time.Millisecond,
		EthDial: func(context.Context, config.Chain) (ethereum.Client, error) { return chain.Client, nil }})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	r := &running{cancel: cancel, done: make(chan error, 1)}
	go func() {
		defer d.Close()
		r.done <- d.Run(runCtx)
	}()
	defer r.stop(t)

	col := testenv.ReadAlerts(t, ns.URL())
	id := "eth:safe-tx:" + hash.Hex()
	find := func(status string) *testenv.StreamedAlert {
		for _, m := range col.All() {
			if m.Alert.Event.ID == id && m.Alert.Policy == "safe-hash" && string(m.Alert.Event.Status) == status {
				return &m
			}
		}
		return nil
	}
	testenv.WaitFor(t, 0, func() bool { return find("proposed") != nil }, "the safe-hash alert on the proposed transaction")
	m := find("proposed")
	if m.Alert.Severity != "critical" || m.Alert.HoldID == "" || m.Alert.Wallet != "treasury-safe" || m.MsgID != id+":safe-hash:proposed:firing" {
		t.Fatalf("alert %s: severity %s, hold %q, wallet %s", m.MsgID, m.Alert.Severity, m.Alert.HoldID, m.Alert.Wallet)
	}

	exec, err := chain.Call(ctx, "deployer", safeAddr, contracts.NameSafeStandIn, "execute", hash, true)
	if err != nil {
		t.Fatal(err)
	}
	svc.MarkExecuted(safeAddr, shown, exec.TxHash, exec.BlockNumber.Uint64(), simchain.Addr("deployer"))
	chain.Backend.Commit() // to confirmation depth
	testenv.WaitFor(t, 0, func() bool { return find("confirmed") != nil }, "the alert again with the execution confirmed")
	if got := find("confirmed"); got.Alert.Event.Tx != exec.TxHash.Hex() {
		t.Errorf("confirmed in tx %s, want %s", got.Alert.Event.Tx, exec.TxHash.Hex())
	}
	for msgID, n := range col.MsgIDCounts() {
		if n > 1 {
			t.Errorf("%s published %d times", msgID, n)
		}
	}
}
