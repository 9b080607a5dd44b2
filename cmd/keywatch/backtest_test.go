package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/big"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/keywatch/keywatch/alertmodel"
	"github.com/keywatch/keywatch/alerts"
	"github.com/keywatch/keywatch/contracts"
	"github.com/keywatch/keywatch/internal/simchain"
	"github.com/keywatch/keywatch/internal/testenv"
)

// alertLines parses the JSON lines a backtest prints.
func alertLines(t *testing.T, out string) []alertmodel.Alert {
	t.Helper()
	var as []alertmodel.Alert
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		var a alertmodel.Alert
		if err := json.Unmarshal([]byte(line), &a); err != nil {
			t.Fatalf("output line is not an alert: %v\n%s", err, line)
		}
		as = append(as, a)
	}
	return as
}

// brief is what a reader checks first in an alert: policy, event, amount,
// status and time.
func brief(a alertmodel.Alert) string {
	return fmt.Sprintf("%s %s %s %s %s %s %s", a.Policy, a.Severity, a.Event.ID, a.Event.Amount, a.Event.Asset, a.Event.Status, a.ObservedAt.Format(time.RFC3339))
}

func briefs(as []alertmodel.Alert) string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = brief(a)
	}
	return strings.Join(s, "\n")
}

// TestBacktestRecordedBlocks replays recorded mainnet JSON-RPC responses
// (ethereum-etl's test recordings of blocks 483920 and 1755635, from 2015 and
// 2016, whose receipts carry no status).
func TestBacktestRecordedBlocks(t *testing.T) {
	dir := testenv.Data(t, "eth_fixtures/ethereum-etl")
	tests := []struct {
		name  string
		args  []string
		want  []string
		stats string
	}{
		{
			name: "every recorded block",
			want: []string{
				// A native payment whose pre-Byzantium receipt says "status": null: counted as made.
				"big-outflow high eth:0x05287a561f218418892ab053adfb3d919860988b19458c570c5c30f51c146f02:native 1.53021962 ETH confirmed 2015-11-03T14:44:40Z",
				// A token transfer read from the recorded eth_getFilterLogs response.
				"flagged-counterparty critical eth:0x04cbcb236043d8fb7839e07bbc7f5eed692fb2ca55d897f1101eac3e3ad4fab8:0 100000 TKN confirmed 2015-11-03T14:44:40Z",
				// A payment whose receipt has no status field at all, only the state root.
				"flagged-counterparty critical eth:0x9a5437ec71b74ecf5930b406908ac6999966d38a86d1534b7190ece7599095eb:native 0.405738107 ETH confirmed 2016-06-23T08:12:42Z",
			},
			stats: "backtest of eth blocks 0..1755635: 6 blocks, 3 events: 3 alerts (big-outflow 1, flagged-counterparty 2); nothing was published",
		},
		{
			name: "a range",
			args: []string{"-from", "1000000", "-to", "1755635"},
			want: []string{
				"flagged-counterparty critical eth:0x9a5437ec71b74ecf5930b406908ac6999966d38a86d1534b7190ece7599095eb:native 0.405738107 ETH confirmed 2016-06-23T08:12:42Z",
			},
			stats: "backtest of eth blocks 1000000..1755635: 2 blocks, 1 event: 1 alert (flagged-counterparty 1)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"backtest", "-config", "testdata/recorded.yaml", "-chain", "eth", "-files", dir}, tt.args...)
			code, out, errs := runCmd(t, args...)
			if code != 0 {
				t.Fatalf("exit %d\n%s", code, errs)
			}
			if got := briefs(alertLines(t, out)); got != strings.Join(tt.want, "\n") {
				t.Errorf("alerts:\n%s\nwant:\n%s", got, strings.Join(tt.want, "\n"))
			}
			if !strings.Contains(errs, tt.stats) {
				t.Errorf("stderr does not say %q:\n%s", tt.stats, errs)
			}
			if !strings.Contains(errs, "skipped block 7444794 (") || !strings.Contains(errs, "recorded without its transactions") {
				t.Errorf("stderr does not name the header-only recording:\n%s", errs)
			}
		})
	}
}

func TestBacktestBadInput(t *testing.T) {
	dir := testenv.Data(t, "eth_fixtures/ethereum-etl")
	// A wallet whose payment in block 47218 has no recorded receipt.
	missing := writeConfig(t, `store: {memory: true}
nats: {url: "nats://127.0.0.1:4222"}
chains:
  - {name: eth, kind: ethereum, rpc: [https://eth.example.net]}
wallets:
  - {name: early, chain: eth, address: "0x1406854d149e081ac09cb4ca560da463f3123059", role: hot}
policies:
  - {name: big, detector: threshold, usd_over: 0, severity: low}
`)
	empty := t.TempDir()
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"a receipt not recorded", []string{"-config", missing, "-chain", "eth", "-files", dir}, 1,
			"keywatch backtest: block 47218: receipt of tx 0x"},
		{"no recorded block", []string{"-config", missing, "-chain", "eth", "-files", empty}, 1,
			"no eth_getBlockByNumber response with full transactions"},
		{"an unknown chain", []string{"-config", missing, "-chain", "btc", "-files", dir}, 2,
			`names no chain "btc" (chains: eth)`},
		{"no -from with a node", []string{"-config", missing, "-chain", "eth"}, 2,
			"-from N is required when replaying from the node"},
		{"a bad block number", []string{"-config", missing, "-chain", "eth", "-from", "ten"}, 2,
			`invalid value "ten" for flag -from: "ten" is not a block number`},
		{"-to below -from", []string{"-config", missing, "-chain", "eth", "-files", dir, "-from", "10", "-to", "9"}, 1,
			"the range 10..9 is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errs := runCmd(t, append([]string{"backtest"}, tt.args...)...)
			if code != tt.code || !strings.Contains(errs, tt.want) {
				t.Errorf("exit %d (want %d), stderr:\n%s\nwant it to contain %q", code, tt.code, errs, tt.want)
			}
			if out != "" {
				t.Errorf("stdout: %q", out)
			}
		})
	}
	// The missing receipt is named with the way to fix it.
	_, _, errs := runCmd(t, "backtest", "-config", missing, "-chain", "eth", "-files", dir)
	if !strings.Contains(errs, "not among the recorded responses (record its eth_getTransactionReceipt response)") {
		t.Errorf("stderr:\n%s", errs)
	}
}

// TestBacktestGeth replays a block range from a real geth --dev node: the
// same decoding as the watcher, the alerts printed, nothing published to the
// configured NATS server.
func TestBacktestGeth(t *testing.T) {
	ctx := context.Background()
	g := testenv.Geth(t)
	ns := testenv.NATS(t)
	hot := simchain.Addr("treasury-hot")
	if err := g.Fund(ctx, hot, simchain.Ether(100)); err != nil {
		t.Fatal(err)
	}
	client, err := ethclient.Dial(g.HTTPURL)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	first, err := g.BlockNumber(ctx)
	if err != nil {
		t.Fatal(err)
	}
	send := func(to common.Address, eth *big.Int) string {
		t.Helper()
		tx, err := contracts.Transact(ctx, client, simchain.Key("treasury-hot"), big.NewInt(1337), &to, eth, nil)
		if err != nil {
			t.Fatal(err)
		}
		if r, err := g.WaitForReceipt(ctx, tx.Hash()); err != nil || r.Status != 1 {
			t.Fatalf("tx %s: %v %v", tx.Hash().Hex(), r, err)
		}
		return strings.ToLower(tx.Hash().Hex())
	}
	ordinary := send(common.HexToAddress("0xB374907D35f61DE043bedb18eE35f7228C83C3E4"), simchain.Ether(1)) // the vendor in the address book
	mix := send(contracts.TornadoPool1ETH, simchain.Ether(1))
	large := send(simchain.Addr("fresh"), simchain.Ether(60))
	last, err := g.BlockNumber(ctx)
	if err != nil {
		t.Fatal(err)
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, fmt.Sprintf(`store: {redis: "redis://127.0.0.1:1/0"}   # a backtest touches no shared state
nats: {url: %q}
chains:
  - {name: dev, kind: ethereum, rpc: [%q], chain_id: 1337, native_usd: 3000}
wallets:
  - {name: treasury-hot, chain: dev, address: %q, role: hot}
lists:
  mixers: [%q]
policies:
  - {name: mixer-counterparty, detector: list-match, lists: [mixers], severity: critical, actions: [page, hold]}
  - {name: big-outflow, detector: threshold, usd_over: 100000, severity: high, actions: [page]}
`, ns.URL(), g.HTTPURL, hot.Hex(), filepath.Join(root, "configs/lists/mixers.csv")))

	code, out, errs := runCmd(t, "backtest", "-config", cfg, "-chain", "dev", "-from", fmt.Sprint(first+1), "-to", fmt.Sprint(last))
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, errs)
	}
	as := alertLines(t, out)
	var got []string
	for _, a := range as {
		got = append(got, fmt.Sprintf("%s %s %s %s", a.Policy, a.Event.Tx, a.Event.Amount, a.Event.Status))
		if a.ObservedAt.IsZero() || !a.ObservedAt.Equal(a.Event.Time) {
			t.Errorf("%s: observed at %s, want the block's time %s", a.ID, a.ObservedAt, a.Event.Time)
		}
	}
	want := []string{
		"mixer-counterparty " + mix + " 1 confirmed",
		"big-outflow " + large + " 60 confirmed",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("alerts:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if strings.Contains(out, ordinary) {
		t.Errorf("the ordinary payment %s raised an alert", ordinary)
	}
	wantStats := fmt.Sprintf("backtest of dev blocks %d..%d: %d blocks, 3 events: 2 alerts (big-outflow 1, mixer-counterparty 1); nothing was published", first+1, last, last-first)
	if !strings.Contains(errs, wantStats) {
		t.Errorf("stderr does not say %q:\n%s", wantStats, errs)
	}
	// Nothing reached the configured NATS server: no alert stream exists.
	nc, err := nats.Connect(ns.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Stream(ctx, alerts.StreamName); err == nil {
		t.Error("the backtest created the alert stream on the configured NATS server")
	}

	// Beyond the node's head: an error naming the block.
	code, _, errs = runCmd(t, "backtest", "-config", cfg, "-chain", "dev", "-from", fmt.Sprint(last+1000), "-to", fmt.Sprint(last+1000))
	if code != 1 || !strings.Contains(errs, fmt.Sprintf("block %d: the node has no such block", last+1000)) {
		t.Errorf("exit %d\n%s", code, errs)
	}
}
