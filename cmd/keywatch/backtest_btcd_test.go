package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/wire"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/keywatch/keywatch/alertmodel"
	"github.com/keywatch/keywatch/alerts"
	"github.com/keywatch/keywatch/chains/bitcoin/btcaddr"
	"github.com/keywatch/keywatch/internal/regtest"
	"github.com/keywatch/keywatch/internal/testenv"
)

// firstWith returns the first line of a list file that starts with each
// prefix.
func firstWith(t *testing.T, path string, prefixes ...string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, p := range prefixes {
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			if a := strings.TrimSpace(sc.Text()); strings.HasPrefix(a, p) {
				out = append(out, a)
				break
			}
		}
	}
	if len(out) != len(prefixes) {
		t.Fatalf("%s: found %v for prefixes %v", path, out, prefixes)
	}
	return out
}

// TestBacktestBtcd replays a block range of a real btcd regtest node, then
// the same blocks recorded in files (a gzip-compressed blk-style file and
// hex lines, as `getblock HASH 0` prints them): both print the same alerts.
// In the range, the hot wallet (whose coins were found from its birthday,
// before the range) pays two fresh addresses and a vendor; one fresh
// address's coins reach a sanctioned script in 3 hops (the forwarding
// alert, with the path), the other's in 4 (over the limit: nothing); the
// hot wallet also pays a sanctioned script directly (list-match). Nothing
// reaches the configured NATS server.
func TestBacktestBtcd(t *testing.T) {
	ctx := context.Background()
	ofac := testenv.Data(t, "ofac/brave-intl_lists_2025-11-19/sanctioned_addresses_XBT.txt")
	targets := firstWith(t, ofac, "1", "bc1q")
	node := testenv.Btcd(t)
	ns := testenv.NATS(t)
	key := func(seed string, kt regtest.KeyType) *regtest.Key {
		t.Helper()
		k, err := regtest.NewKey(seed, kt)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	hot, vendor := key("backtest hot", regtest.P2WPKH), key("backtest vendor", regtest.P2WPKH)
	f1, f2 := key("backtest fresh 1", regtest.P2TR), key("backtest fresh 2", regtest.P2PKH)
	g1, g2, g3 := key("backtest long 1", regtest.P2WPKH), key("backtest long 2", regtest.P2SHP2WPKH), key("backtest long 3", regtest.P2WPKH)
	script0, _ := regtest.ScriptOf(targets[0])
	script1, _ := regtest.ScriptOf(targets[1])

	coin, _, err := node.Fund(ctx, hot, btcutil.Amount(regtest.Amount(20)))
	if err != nil {
		t.Fatal(err)
	}
	mine := func() int64 {
		t.Helper()
		if _, err := node.Generate(ctx, 1); err != nil {
			t.Fatal(err)
		}
		h, err := node.Height(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	funded := mine()
	send := func(coins []regtest.Coin, outs []regtest.Output, change []byte) *wire.MsgTx {
		t.Helper()
		tx, err := regtest.Pay(coins, outs, change, 2000)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := node.Send(ctx, tx); err != nil {
			t.Fatal(err)
		}
		return tx
	}
	out := func(tx *wire.MsgTx, i uint32, k *regtest.Key) regtest.Coin {
		return regtest.Coin{OutPoint: wire.OutPoint{Hash: tx.TxHash(), Index: i}, Value: tx.TxOut[i].Value, Key: k}
	}
	// Hop 1, and an ordinary payment to the vendor in the address book.
	tx1 := send([]regtest.Coin{coin}, []regtest.Output{{Script: f1.Script, Value: regtest.Amount(3)}, {Script: g1.Script, Value: regtest.Amount(3)},
		{Script: vendor.Script, Value: regtest.Amount(0.5)}}, hot.Script)
	first := mine()
	tx2 := send([]regtest.Coin{out(tx1, 0, f1)}, []regtest.Output{{Script: f2.Script, Value: regtest.Amount(2.5)}}, f1.Script)
	tx3 := send([]regtest.Coin{out(tx1, 1, g1)}, []regtest.Output{{Script: g2.Script, Value: regtest.Amount(3) - 2000}}, nil)
	mine()
	tx4 := send([]regtest.Coin{out(tx3, 0, g2)}, []regtest.Output{{Script: g3.Script, Value: regtest.Amount(3) - 4000}}, nil)
	tx5 := send([]regtest.Coin{out(tx1, 3, hot)}, []regtest.Output{{Script: script0, Value: regtest.Amount(1)}}, hot.Script)
	mine()
	tx6 := send([]regtest.Coin{out(tx2, 0, f2)}, []regtest.Output{{Script: script1, Value: regtest.Amount(2.4)}}, f2.Script)
	tx7 := send([]regtest.Coin{out(tx4, 0, g3)}, []regtest.Output{{Script: script1, Value: regtest.Amount(2.9)}}, g3.Script)
	last := mine()

	dir := t.TempDir()
	pw := filepath.Join(dir, "btcd.password")
	book := filepath.Join(dir, "address_book.txt")
	if err := os.WriteFile(pw, []byte(regtest.Password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(book, []byte(vendor.Address+" vendor\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, fmt.Sprintf(`store: {memory: true}
nats: {url: %q}
chains:
  - {name: rt, kind: bitcoin, network: regtest, rpc: [%q], rpc_cert: %q, rpc_user: %s, rpc_password_file: %q, native_usd: 60000}
wallets:
  - {name: btc-hot, chain: rt, address: %s, birthday: %d, role: hot}
lists:
  sanctioned: [%q]
  address_book: [%q]
policies:
  - {name: sanctioned-counterparty, detector: list-match, lists: [sanctioned], severity: critical, actions: [page, hold]}
  - {name: funds-to-sanctioned, detector: forwarding, lists: [sanctioned], hops: 3, window: 72h, severity: critical, actions: [page, hold]}
  - {name: big-outflow, detector: threshold, usd_over: 100000, severity: high, actions: [page]}
`, ns.URL(), node.HTTPURL, node.CertPath, regtest.User, pw, hot.Address, funded, ofac, book))

	id := func(tx *wire.MsgTx, vout int) string { return fmt.Sprintf("rt:%s:%d", tx.TxHash(), vout) }
	want := []string{
		"big-outflow " + id(tx1, 0),
		"big-outflow " + id(tx1, 1),
		"sanctioned-counterparty " + id(tx5, 0),
		"funds-to-sanctioned " + id(tx6, 0),
	}
	listed := btcaddr.AddressOf(script1, &chaincfg.RegressionNetParams)
	wantReasons := []string{
		"funds that left btc-hot reached " + listed + ", on list sanctioned (",
		"listed as " + targets[1],
		"in 3 hops",
		"hop 1: btc-hot " + hot.Address + " sent 3 BTC to " + f1.Address + " (tx " + tx1.TxHash().String(),
		"hop 2: " + f1.Address + " sent 2.5 BTC to " + f2.Address + " (tx " + tx2.TxHash().String(),
		"hop 3: " + f2.Address + " sent 2.4 BTC to " + listed + " (tx " + tx6.TxHash().String(),
	}
	check := func(t *testing.T, out string) {
		t.Helper()
		var got []string
		for _, a := range alertLines(t, out) {
			got = append(got, a.Policy+" "+a.Event.ID)
			if a.Policy != "funds-to-sanctioned" {
				continue
			}
			if a.Wallet != "btc-hot" || a.Severity != alertmodel.Critical || a.Event.Wallet != f2.Address {
				t.Errorf("forwarding alert: wallet %s severity %s event wallet %s", a.Wallet, a.Severity, a.Event.Wallet)
			}
			all := strings.Join(a.Reasons, "\n")
			for _, w := range wantReasons {
				if !strings.Contains(all, w) {
					t.Errorf("reasons do not say %q:\n%s", w, all)
				}
			}
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("alerts:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		if strings.Contains(out, tx7.TxHash().String()) {
			t.Errorf("the fourth hop %s raised an alert", tx7.TxHash())
		}
	}

	// From the node (HTTP POST mode): the range starts after the funding
	// block; the birthday finds the coin.
	code, fromNode, errs := runCmd(t, "backtest", "-config", cfg, "-chain", "rt", "-from", fmt.Sprint(first), "-to", fmt.Sprint(last))
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, errs)
	}
	check(t, fromNode)
	// 8 events: the hot wallet's 3 outflows of tx1 and its payment tx5, and
	// the followed addresses' outflows tx2, tx3, tx4 (hop 3 of the long
	// path: its destination is not followed) and tx6. The change tx2 and
	// tx6 return to f1 and f2 is no event; tx7 is not decoded at all.
	wantStats := fmt.Sprintf("backtest of rt blocks %d..%d: 4 blocks, 8 events: 4 alerts (big-outflow 2, funds-to-sanctioned 1, sanctioned-counterparty 1); nothing was published", first, last)
	if !strings.Contains(errs, wantStats) || strings.Contains(errs, "warning:") {
		t.Errorf("stderr does not say %q, or warns:\n%s", wantStats, errs)
	}

	// The same blocks recorded in files, from the funding block on.
	rpc, err := node.RPC()
	if err != nil {
		t.Fatal(err)
	}
	var framed bytes.Buffer
	var lines strings.Builder
	for h := funded; h <= last; h++ {
		hash, err := rpc.GetBlockHash(h)
		if err != nil {
			t.Fatal(err)
		}
		blk, err := rpc.GetBlock(hash)
		if err != nil {
			t.Fatal(err)
		}
		var raw bytes.Buffer
		if err := blk.Serialize(&raw); err != nil {
			t.Fatal(err)
		}
		if h <= funded+2 {
			binary.Write(&framed, binary.LittleEndian, uint32(wire.TestNet)) // regtest's magic
			binary.Write(&framed, binary.LittleEndian, uint32(raw.Len()))
			framed.Write(raw.Bytes())
		} else {
			lines.WriteString(hex.EncodeToString(raw.Bytes()) + "\n")
		}
	}
	rec := filepath.Join(t.TempDir(), "recorded")
	if err := os.Mkdir(rec, 0o700); err != nil {
		t.Fatal(err)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(framed.Bytes())
	zw.Close()
	if err := os.WriteFile(filepath.Join(rec, "blk00000.dat.gz"), gz.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rec, "blocks.hex"), []byte(lines.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	code, fromFiles, errs := runCmd(t, "backtest", "-config", cfg, "-chain", "rt", "-files", rec, "-from", fmt.Sprint(first))
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, errs)
	}
	if fromFiles != fromNode {
		t.Errorf("the recorded blocks gave other alerts than the node:\n%s\nnode:\n%s", fromFiles, fromNode)
	}
	wantRec := fmt.Sprintf("recorded: %d blocks from 2 files, heights %d..%d", last-funded+1, funded, last)
	if !strings.Contains(errs, wantRec) || !strings.Contains(errs, wantStats) {
		t.Errorf("stderr does not say %q and %q:\n%s", wantRec, wantStats, errs)
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

	// A node on another network than configured is refused.
	mainnet := writeConfig(t, fmt.Sprintf(`store: {memory: true}
nats: {url: %q}
chains:
  - {name: main, kind: bitcoin, network: mainnet, rpc: [%q], rpc_cert: %q, rpc_user: %s, rpc_password_file: %q}
`, ns.URL(), node.HTTPURL, node.CertPath, regtest.User, pw))
	code, _, errs = runCmd(t, "backtest", "-config", mainnet, "-chain", "main", "-from", "1")
	if code != 1 || !strings.Contains(errs, "the node is on regtest, the chain is configured for mainnet") {
		t.Errorf("exit %d\n%s", code, errs)
	}
}
