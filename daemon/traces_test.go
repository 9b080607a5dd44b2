package daemon_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/keywatch/keywatch/alertmodel"
	"github.com/keywatch/keywatch/chains/ethereum"
	"github.com/keywatch/keywatch/config"
	"github.com/keywatch/keywatch/contracts"
	"github.com/keywatch/keywatch/daemon"
	"github.com/keywatch/keywatch/internal/simchain"
	"github.com/keywatch/keywatch/internal/testenv"
)

const tracesConfig = `
instance: traces
store:
  memory: true
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
    traces: auto
wallets:
  - {name: vault, chain: dev, address: "{{vault}}", role: contract, owner: treasury@firm.example}
policies:
  - {name: vault-outflow, detector: threshold, asset: ETH, amount_over: "100", severity: critical, actions: [page]}
alerts:
  sinks:
    - {name: log, kind: log}
`

// TestDaemonAlertsOnInternalOutflowsOnGeth: 500 ETH swept out of a watched
// contract by an internal call, on a real geth --dev. With the debug API
// the alert carries the sweep's frame, initiator and counterparty; on a
// geth without it (--http.api eth,net,web3) traces: auto falls back to the
// balance check, says so once in the log, and the alert is on an outflow to
// unknown. A sweep undone by a reverted frame raises nothing.
func TestDaemonAlertsOnInternalOutflowsOnGeth(t *testing.T) {
	for _, c := range []struct {
		name, apis string
	}{
		{"debug API", "eth,net,web3,debug"},
		{"no debug API", "eth,net,web3"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			g := testenv.Geth(t, testenv.GethAPIs(c.apis))
			ns := testenv.NATS(t)
			for name, eth := range map[string]int64{"deployer": 1000, "outsider": 10} {
				if err := g.Fund(ctx, simchain.Addr(name), simchain.Ether(eth)); err != nil {
					t.Fatal(err)
				}
			}
			client, err := ethclient.Dial(g.HTTPURL)
			if err != nil {
				t.Fatal(err)
			}
			defer client.Close()
			deploy := func(name string) common.Address {
				addr, tx, err := contracts.Deploy(ctx, client, simchain.Key("deployer"), simchain.ChainID, name)
				if err != nil {
					t.Fatal(err)
				}
				if r, err := g.WaitForReceipt(ctx, tx.Hash()); err != nil || r.Status != 1 {
					t.Fatalf("deploy %s: %v %v", name, r, err)
				}
				return addr
			}
			sweeper, caller := deploy(contracts.NameSweeper), deploy(contracts.NameSweepCaller)
			if err := g.Fund(ctx, sweeper, simchain.Ether(600)); err != nil {
				t.Fatal(err)
			}
			head, err := g.BlockNumber(ctx)
			if err != nil {
				t.Fatal(err)
			}
			cfg := strings.NewReplacer("{{nats}}", ns.URL(), "{{rpc}}", g.HTTPURL, "{{start}}", fmt.Sprint(head+1), "{{vault}}", sweeper.Hex()).Replace(tracesConfig)
			path := filepath.Join(t.TempDir(), "keywatch.yaml")
			if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
				t.Fatal(err)
			}
			var logs syncBuffer
			d := startLogging(t, path, &logs)
			defer d.stop(t)
			alerts := testenv.ReadAlerts(t, ns.URL())

			callerABI, _ := contracts.Load(contracts.NameSweepCaller)
			send := func(method string, amount *big.Int) *testenv.Receipt {
				t.Helper()
				data, err := callerABI.Pack(method, sweeper, simchain.Addr("thief"), amount)
				if err != nil {
					t.Fatal(err)
				}
				tx, err := contracts.Transact(ctx, client, simchain.Key("outsider"), simchain.ChainID, &caller, nil, data)
				if err != nil {
					t.Fatal(err)
				}
				r, err := g.WaitForReceipt(ctx, tx.Hash())
				if err != nil || r.Status != 1 {
					t.Fatalf("%s: %v %v", method, r, err)
				}
				return r
			}
			undone := send("sweepReverted", simchain.Ether(200))
			swept := send("sweepVia", simchain.Ether(500))

			wantID := "dev:" + swept.TxHash.Hex() + ":call:0.0"
			counterparty, initiator := strings.ToLower(simchain.Addr("thief").Hex()), strings.ToLower(simchain.Addr("outsider").Hex())
			if c.apis == "eth,net,web3" {
				wantID = "dev:" + swept.BlockHash.Hex() + ":balance:" + strings.ToLower(sweeper.Hex())
				counterparty, initiator = "unknown", ""
			}
			var got *alertmodel.Alert
			testenv.WaitFor(t, 0, func() bool {
				for _, m := range alerts.All() {
					if m.Alert.Policy == "vault-outflow" && m.Alert.Event.ID == wantID && m.Alert.Event.Status == "confirmed" {
						got = &m.Alert
						return true
					}
				}
				return false
			}, "the confirmed vault-outflow alert on "+wantID)
			e := got.Event
			if e.Wallet != "vault" || e.Direction != "out" || e.Counterparty != counterparty || e.Initiator != initiator ||
				e.Amount.String() != "500" || got.Severity != alertmodel.Critical {
				t.Fatalf("alert %+v", got)
			}
			for _, m := range alerts.All() {
				if m.Alert.Event.Block == uint64(undone.BlockNumber) || strings.EqualFold(m.Alert.Event.Tx, undone.TxHash.Hex()) {
					t.Errorf("the undone sweep raised %s", m.Alert.ID)
				}
				if m.Alert.Policy == alertmodel.KindTraceFallback {
					t.Errorf("a node that answers raised %s", m.Alert.ID)
				}
			}
			fallbacks := strings.Count(logs.String(), "falling back to balance")
			if want := map[bool]int{true: 1, false: 0}[c.apis == "eth,net,web3"]; fallbacks != want {
				t.Fatalf("the log says %d times that traces fall back to balance checks, want %d", fallbacks, want)
			}
		})
	}
}

// failingTracer is a node whose tracer fails on every block (it times
// out), and which answers everything else.
type failingTracer struct {
	ethereum.Client
	raw *rpc.Client
}

func (f failingTracer) CallContext(ctx context.Context, result any, method string, args ...any) error {
	if method == "debug_traceBlockByHash" {
		return errors.New("execution timeout")
	}
	return f.raw.CallContext(ctx, result, method, args...)
}

// TestDaemonRaisesTraceFallback: a node whose tracer fails on a block is
// asked again; after the retries the block's watched contract is checked
// by balance (its sweep is an outflow to unknown) and a trace-fallback
// system alert names the block.
func TestDaemonRaisesTraceFallback(t *testing.T) {
	ctx := context.Background()
	c, err := simchain.NewTraced(map[string]int64{"deployer": 1000, "outsider": 10}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sweeper, err := c.Deploy(ctx, "deployer", contracts.NameSweeper)
	if err != nil {
		t.Fatal(err)
	}
	caller, err := c.Deploy(ctx, "deployer", contracts.NameSweepCaller)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Send(ctx, "deployer", &sweeper, simchain.Ether(600), nil); err != nil {
		t.Fatal(err)
	}
	head, err := c.Client.BlockNumber(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ns := testenv.NATS(t)
	cfg := strings.NewReplacer("{{nats}}", ns.URL(), "{{rpc}}", "ws://127.0.0.1:1", "{{start}}", fmt.Sprint(head+1), "{{vault}}", sweeper.Hex(),
		"poll_interval: 250ms", "poll_interval: 50ms").Replace(tracesConfig)
	path := filepath.Join(t.TempDir(), "keywatch.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	loaded, set, err := daemon.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	dctx, cancel := context.WithCancel(ctx)
	defer cancel()
	raw := c.Client.(interface{ Client() *rpc.Client }).Client()
	d, err := daemon.New(dctx, loaded, set, daemon.Options{Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil)),
		EthDial: func(context.Context, config.Chain) (ethereum.Client, error) {
			return failingTracer{Client: c.Client, raw: raw}, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		defer d.Close()
		done <- d.Run(dctx)
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("daemon: %v", err)
		}
	}()
	alerts := testenv.ReadAlerts(t, ns.URL())

	a, _ := contracts.Load(contracts.NameSweepCaller)
	data, _ := a.Pack("sweepVia", sweeper, simchain.Addr("thief"), simchain.Ether(500))
	r, err := c.Send(ctx, "outsider", &caller, nil, data)
	if err != nil {
		t.Fatal(err)
	}
	c.Backend.Commit() // one block more: the sweep's is confirmed
	balanceID := "dev:" + r.BlockHash.Hex() + ":balance:" + strings.ToLower(sweeper.Hex())
	var fallback *alertmodel.Alert
	testenv.WaitFor(t, 0, func() bool {
		fallback = nil
		outflow := false
		for _, m := range alerts.All() {
			if m.Alert.Policy == alertmodel.KindTraceFallback && m.Alert.Event.Block == r.BlockNumber.Uint64() {
				fallback = &m.Alert
			}
			if m.Alert.Policy == "vault-outflow" && m.Alert.Event.ID == balanceID && m.Alert.Event.Counterparty == "unknown" {
				outflow = true
			}
		}
		return fallback != nil && outflow
	}, "a trace-fallback alert and the balance check's outflow alert")
	if fallback.Chain != "dev" || fallback.Severity != alertmodel.High || fallback.Event.BlockHash != r.BlockHash.Hex() ||
		!strings.Contains(strings.Join(fallback.Reasons, "\n"), "execution timeout") {
		t.Fatalf("trace-fallback alert %+v", fallback)
	}
}

// TestTraceModesAgree: the configuration's chains[].traces values are the
// modes the EVM source knows (it may not import config, so each has its
// own names).
func TestTraceModesAgree(t *testing.T) {
	for cfg, src := range map[string]string{
		config.TracesAuto: ethereum.TracesAuto, config.TracesDebug: ethereum.TracesDebug, config.TracesParity: ethereum.TracesParity,
		config.TracesBalance: ethereum.TracesBalance, config.TracesOff: ethereum.TracesOff,
	} {
		if cfg != src {
			t.Errorf("config says %q, chains/ethereum %q", cfg, src)
		}
	}
}
