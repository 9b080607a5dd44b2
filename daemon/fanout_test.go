package daemon_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ethereum/go-ethereum/crypto"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/keywatch/keywatch/alertmodel"
	"github.com/keywatch/keywatch/alerts"
	"github.com/keywatch/keywatch/api"
	"github.com/keywatch/keywatch/chains/ethereum"
	"github.com/keywatch/keywatch/config"
	"github.com/keywatch/keywatch/contracts"
	"github.com/keywatch/keywatch/daemon"
	"github.com/keywatch/keywatch/internal/simchain"
	"github.com/keywatch/keywatch/internal/testenv"
	"github.com/keywatch/keywatch/watchdog"
)

const fanoutConfig = `
instance: fanout
store: {memory: true}
nats: {embedded: true, url: "nats://127.0.0.1:0", data_dir: "{{data}}"}
api:
  listen: "127.0.0.1:0"
  tokens:
    - {name: olga, sha256: "{{olga}}", roles: [operator]}
chains:
  - name: eth
    kind: ethereum
    rpc: [ws://127.0.0.1:8546]   # replaced by the in-process chain
    confirmations: 0
    poll_interval: 100ms
    start_block: {{start}}
    explorer: https://etherscan.io/tx/{tx}
wallets:
  - {name: treasury-hot, chain: eth, address: "{{hot}}", role: hot}
lists:
  mixers: ["{{root}}/configs/lists/mixers.csv"]
policies:
  - {name: mixer-counterparty, detector: list-match, lists: [mixers], severity: critical, actions: [page, hold]}
alerts:
  heartbeat: {interval: 200ms, timeout: 2s}
  sinks:
    - {name: pager, kind: pagerduty, url: "{{pd}}/v2/enqueue", routing_key_env: KW_FANOUT_PD_KEY, group_window: 0s}
    - {name: soc, kind: webhook, url: "{{hook}}", secret_env: KW_FANOUT_SECRET}
`

// collector records the JSON bodies posted to it.
type collector struct {
	mu     sync.Mutex
	bodies []map[string]any
}

func (c *collector) handler(status int) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m map[string]any
		b, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(b, &m)
		c.mu.Lock()
		c.bodies = append(c.bodies, m)
		c.mu.Unlock()
		w.WriteHeader(status)
	})
}

func (c *collector) all() []map[string]any {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]map[string]any(nil), c.bodies...)
}

// The daemon builds its sinks from the configuration: a theft pages
// PagerDuty and reaches the webhook; an operator's silence, made over the
// API, keeps the pager quiet and is itself announced; the instance's
// heartbeat carries its chain's state.
func TestDaemonPagesAndSilencesThroughItsSinks(t *testing.T) {
	ctx := context.Background()
	mixers, err := contracts.MixerAlloc()
	if err != nil {
		t.Fatal(err)
	}
	c := simchain.New(map[string]int64{"treasury-hot": 100}, mixers)
	defer c.Close()
	head, err := c.Client.BlockNumber(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pd, hook := &collector{}, &collector{}
	pdSrv, hookSrv := httptest.NewServer(pd.handler(http.StatusAccepted)), httptest.NewServer(hook.handler(http.StatusOK))
	defer pdSrv.Close()
	defer hookSrv.Close()
	t.Setenv("KW_FANOUT_PD_KEY", "R0UT1NGKEY0123456789abcdefABCDEF")
	t.Setenv("KW_FANOUT_SECRET", "fanout-test-secret-0123456789")

	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "keywatch.yaml")
	body := strings.NewReplacer("{{data}}", filepath.Join(dir, "nats"), "{{start}}", fmt.Sprint(head+1),
		"{{hot}}", simchain.Addr("treasury-hot").Hex(), "{{root}}", testenv.RepoRoot(t), "{{olga}}", api.HashToken("olga-token"),
		"{{pd}}", pdSrv.URL, "{{hook}}", hookSrv.URL).Replace(fanoutConfig)
	if err := os.WriteFile(cfgPath, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, set, err := daemon.Load(cfgPath)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	d, err := daemon.New(runCtx, cfg, set, daemon.Options{Logger: log,
		EthDial: func(context.Context, config.Chain) (ethereum.Client, error) { return c.Client, nil }})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if err := d.Listen(); err != nil {
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

	pool := contracts.TornadoPool1ETH
	poolABI, err := contracts.Load(contracts.NameTornadoPool)
	if err != nil {
		t.Fatal(err)
	}
	deposit := func(note string) []byte {
		data, err := poolABI.Pack("deposit", crypto.Keccak256Hash([]byte(note)))
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	first, err := c.Send(ctx, "treasury-hot", &pool, simchain.Ether(1), deposit("first"))
	if err != nil {
		t.Fatal(err)
	}
	alertID := "eth:" + first.TxHash.Hex() + ":native:mixer-counterparty"
	testenv.WaitFor(t, 0, func() bool { return len(pd.all()) == 1 }, "the page")
	ev := pd.all()[0]
	payload := ev["payload"].(map[string]any)
	if ev["event_action"] != "trigger" || !strings.EqualFold(ev["dedup_key"].(string), alertID) || payload["severity"] != "critical" ||
		!strings.EqualFold(ev["links"].([]any)[0].(map[string]any)["href"].(string), "https://etherscan.io/tx/"+first.TxHash.Hex()) {
		t.Fatalf("PagerDuty event %v", ev)
	}
	testenv.WaitFor(t, 0, func() bool { return len(hook.all()) >= 1 }, "the webhook")

	// An operator silences the wallet for an hour, over the API.
	req, _ := http.NewRequest("POST", "http://"+d.HTTPAddr()+"/v1/silences",
		bytes.NewReader([]byte(`{"matchers": {"wallet": "treasury-hot"}, "duration": "1h", "comment": "drill"}`)))
	req.Header.Set("Authorization", "Bearer olga-token")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("silence: %d", resp.StatusCode)
	}
	second, err := c.Send(ctx, "treasury-hot", &pool, simchain.Ether(1), deposit("second"))
	if err != nil {
		t.Fatal(err)
	}
	// The webhook hears of the silence (medium, not a page) and not of the
	// silenced alert; the pager hears of neither.
	testenv.WaitFor(t, 0, func() bool {
		for _, b := range hook.all() {
			for _, a := range b["alerts"].([]any) {
				if a.(map[string]any)["policy"] == alertmodel.KindSilenceCreated {
					return true
				}
			}
		}
		return false
	}, "the announcement of the silence")
	testenv.WaitFor(t, 0, func() bool {
		incs, err := alerts.Incidents(ctx, d.Store, "pager")
		if err != nil {
			t.Fatal(err)
		}
		for _, inc := range incs {
			for _, m := range inc.Members {
				if strings.EqualFold(m.Alert.Event.Tx, second.TxHash.Hex()) && m.Silenced != "" {
					return true
				}
			}
		}
		return false
	}, "the second theft to be silenced at the pager")
	if n := len(pd.all()); n != 1 {
		t.Fatalf("the pager got %d events, want only the first page: %v", n, pd.all())
	}

	// The instance's heartbeat says where its watcher is.
	js, err := jetstream.New(d.NATS)
	if err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 0, func() bool {
		s, err := js.Stream(ctx, watchdog.StreamName)
		if err != nil {
			return false
		}
		m, err := s.GetLastMsgForSubject(ctx, watchdog.Subject("keywatch", "fanout"))
		if err != nil {
			return false
		}
		var hb watchdog.Heartbeat
		if json.Unmarshal(m.Data, &hb) != nil || len(hb.Chains) != 1 {
			return false
		}
		ch := hb.Chains[0]
		return ch.Chain == "eth" && ch.Head >= second.BlockNumber.Uint64() && ch.Processed == ch.Head && !ch.LastOKAt.IsZero() &&
			ch.StaleAfterSeconds == 300
	}, "a heartbeat with the chain's head and progress")
}
