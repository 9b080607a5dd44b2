package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/keywatch/keywatch/alerts"
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
		waitUntil(t, func() bool {
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

	c := newStreamReader(t, ns.URL())

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
			waitUntil(t, func() bool { return c.count() > 0 }, "the first alert")
			if err := proc.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			proc.Wait()
			t.Logf("killed keywatch after %d alert messages", c.count())
		}
		if i == 7 {
			proc = startProc()
		}
		if _, err := g.WaitForReceipt(ctx, tx.Hash()); err != nil {
			t.Fatal(err)
		}
	}
	for _, tx := range deposits {
		waitUntil(t, func() bool { return c.has(tx, "confirmed") }, "a confirmed alert for every deposit")
	}
	for id, n := range c.ids() {
		if n != 1 {
			t.Errorf("message %s is in the stream %d times", id, n)
		}
	}
}

type streamReader struct {
	mu   sync.Mutex
	msgs []alerts.Alert
	hdrs []string
}

func newStreamReader(t *testing.T, url string) *streamReader {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, _ := jetstream.New(nc)
	var cons jetstream.Consumer
	waitUntil(t, func() bool {
		cons, err = js.OrderedConsumer(context.Background(), alerts.StreamName, jetstream.OrderedConsumerConfig{})
		return err == nil
	}, "the alert stream")
	r := &streamReader{}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		var a alerts.Alert
		if err := json.Unmarshal(m.Data(), &a); err != nil {
			t.Errorf("bad alert body: %v", err)
			return
		}
		r.mu.Lock()
		r.msgs = append(r.msgs, a)
		r.hdrs = append(r.hdrs, m.Headers().Get("Nats-Msg-Id"))
		r.mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cc.Stop)
	return r
}

func (r *streamReader) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.msgs)
}

func (r *streamReader) has(tx common.Hash, status string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, a := range r.msgs {
		if strings.EqualFold(a.Event.Tx, tx.Hex()) && string(a.Event.Status) == status {
			return true
		}
	}
	return false
}

func (r *streamReader) ids() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]int{}
	for _, h := range r.hdrs {
		out[h]++
	}
	return out
}

func waitUntil(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
