package main

import (
	"context"
	"fmt"
	"math/big"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/ethclient"

	"github.com/keywatch/keywatch/contracts"
	"github.com/keywatch/keywatch/internal/simchain"
	"github.com/keywatch/keywatch/internal/testenv"
)

// TestKilledMidStreamMissesNothingAndRepeatsNothing runs the real binary
// against geth, redis-server and NATS, kills it with SIGKILL while deposits
// into a mixer keep landing, starts it again, and checks that every deposit
// was alerted and no message was published twice.
func TestKilledMidStreamMissesNothingAndRepeatsNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs geth")
	}
	ctx := context.Background()
	g := testenv.Geth(t)
	redisURL := testenv.Redis(t)
	ns := testenv.NATS(t)
	bin := filepath.Join(t.TempDir(), "keywatch")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	if err := g.Fund(ctx, simchain.Addr("treasury-hot"), simchain.Ether(100)); err != nil {
		t.Fatal(err)
	}
	head, _ := g.BlockNumber(ctx)
	port := testenv.FreePort(t)
	mixers, _ := filepath.Abs("../../configs/lists/mixers.csv")
	cfg := fmt.Sprintf(`store: {redis: %q}
nats: {url: %q}
api: {listen: "127.0.0.1:%d"}
chains:
  - {name: dev, kind: ethereum, rpc: [%q], chain_id: 1337, confirmations: 2, poll_interval: 200ms, start_block: %d}
wallets:
  - {name: treasury-hot, chain: dev, address: %q, role: hot}
lists:
  mixers: [%q]
policies:
  - {name: mixer-counterparty, detector: list-match, lists: [mixers], severity: critical, actions: [page, hold]}
`, redisURL, ns.URL(), port, g.WSURL, head+1, simchain.Addr("treasury-hot").Hex(), mixers)
	path := filepath.Join(t.TempDir(), "keywatch.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(t.TempDir(), "keywatch.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("keywatch log:\n%s", b)
		}
	}()
	startProc := func() *exec.Cmd {
		cmd := exec.Command(bin, "run", "-config", path)
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		testenv.WaitFor(t, 90*time.Second, func() bool {
			r, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/readyz", port))
			if err != nil {
				return false
			}
			r.Body.Close()
			return r.StatusCode == 200
		}, "keywatch ready")
		return cmd
	}
	proc := startProc()
	defer func() { proc.Process.Kill(); proc.Wait() }()

	c := testenv.ReadAlerts(t, ns.URL())

	// Twelve deposits, a few per block, from a sender that does not wait.
	client, err := ethclient.Dial(g.HTTPURL)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	var deposits []common.Hash
	for i := range 12 {
		tx, err := contracts.Transact(ctx, client, simchain.Key("treasury-hot"), big.NewInt(1337), &contracts.TornadoPool1ETH, simchain.Ether(1), nil)
		if err != nil {
			t.Fatal(err)
		}
		deposits = append(deposits, tx.Hash())
		if i == 3 {
			// Kill keywatch as soon as it has published something.
			testenv.WaitFor(t, 90*time.Second, func() bool { return len(c.All()) > 0 }, "the first alert")
			if err := proc.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			proc.Wait()
			t.Logf("killed keywatch after %d alert messages", len(c.All()))
		}
		if i == 7 {
			proc = startProc()
		}
		if _, err := g.WaitForReceipt(ctx, tx.Hash()); err != nil {
			t.Fatal(err)
		}
	}
	for _, tx := range deposits {
		testenv.WaitFor(t, 90*time.Second, func() bool { return c.Has(tx.Hex(), "mixer-counterparty", "confirmed") }, "a confirmed alert for every deposit")
	}
	for id, n := range c.MsgIDCounts() {
		if n != 1 {
			t.Errorf("message %s is in the stream %d times", id, n)
		}
	}
}
