package daemon_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"

	"github.com/keywatch/keywatch/alertmodel"
	"github.com/keywatch/keywatch/chains/bitcoin/btcaddr"
	"github.com/keywatch/keywatch/config"
	"github.com/keywatch/keywatch/daemon"
	"github.com/keywatch/keywatch/internal/regtest"
	"github.com/keywatch/keywatch/internal/testenv"
	redisstore "github.com/keywatch/keywatch/store/redis"
)

const btcConfig = `
instance: it-btc
store:
  redis: {{redis}}
  prefix: "itbtc:"
nats:
  url: {{nats}}
api:
  listen: 127.0.0.1:0
chains:
  - name: btc
    kind: bitcoin
    network: regtest
    rpc: [{{rpc}}]
    rpc_cert: {{cert}}
    rpc_user: keywatch
    rpc_password_file: btcd.password
    confirmations: 2
    poll_interval: 250ms
    native_usd: 60000
wallets:
  - {name: btc-hot, chain: btc, address: {{hot}}, birthday: {{birthday}}, role: hot}
lists:
  sanctioned: [{{ofac}}]
policies:
  - {name: sanctioned-counterparty, detector: list-match, lists: [sanctioned], severity: critical, actions: [page, hold]}
  - {name: big-outflow, detector: threshold, usd_over: 100000, severity: high, actions: [page]}
  # Detectors that read state or the chain: on Bitcoin events they must
  # decide, not fail closed.
  - {name: drain, detector: drain, percent_over: 90, severity: critical, actions: [page, hold]}
  - {name: hourly-velocity, detector: velocity, scope: wallet, window: 1h, usd_over: 1000000, severity: high, actions: [page]}
  - {name: new-counterparty, detector: new-counterparty, lists: [sanctioned], severity: low}
alerts:
  sinks:
    - {name: log, kind: log}
`

// ofacBitcoin returns the first addresses of the real OFAC XBT list with the
// given prefixes (mainnet addresses).
func ofacBitcoin(t *testing.T, path string, prefixes ...string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for _, p := range prefixes {
		f.Seek(0, 0)
		sc = bufio.NewScanner(f)
		for sc.Scan() {
			if a := strings.TrimSpace(sc.Text()); strings.HasPrefix(a, p) {
				out = append(out, a)
				break
			}
		}
	}
	if len(out) != len(prefixes) {
		t.Fatalf("OFAC list %s: found %v for prefixes %v", path, out, prefixes)
	}
	return out
}

// findAlert returns the alert of policy on tx with the given event and alert
// status, with the subject it arrived on.
func findAlert(c *testenv.AlertStream, tx, policy, eventStatus, status string) (testenv.StreamedAlert, bool) {
	for _, m := range c.All() {
		a := m.Alert
		if a.Event.Tx == tx && a.Policy == policy && string(a.Event.Status) == eventStatus && string(a.Status) == status {
			return m, true
		}
	}
	return testenv.StreamedAlert{}, false
}

func forPolicy(c *testenv.AlertStream, tx, policy string) []string {
	var out []string
	for _, m := range c.All() {
		if m.Alert.Event.Tx == tx && m.Alert.Policy == policy {
			out = append(out, m.MsgID)
		}
	}
	return out
}

// TestDaemonOnBtcdRegtest runs the whole daemon against btcd regtest, redis
// and NATS, with the real OFAC XBT list (mainnet addresses) as the
// sanctions list. A hot wallet that held coins before keywatch started (its
// birthday finds them) pays a sanctioned address's script: the alert is
// published from the mempool with event status pending, then again
// confirmed. A second such payment is replaced by fee before a block: its
// alert is resolved with the event retracted. keywatch restarts in the
// middle; no message is published twice.
func TestDaemonOnBtcdRegtest(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ofacPath := testenv.Data(t, "ofac/brave-intl_lists_2025-11-19/sanctioned_addresses_XBT.txt")
	targets := ofacBitcoin(t, ofacPath, "1", "bc1q")
	node := testenv.Btcd(t)
	redisURL := testenv.Redis(t)
	ns := testenv.NATS(t)

	hot, err := regtest.NewKey("daemon hot wallet", regtest.P2WPKH)
	if err != nil {
		t.Fatal(err)
	}
	birthday, _ := node.Height(ctx)
	coin, _, err := node.Fund(ctx, hot, btcutil.Amount(regtest.Amount(10)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := node.Generate(ctx, 3); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "btcd.password"), []byte(regtest.Password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := strings.NewReplacer("{{redis}}", redisURL, "{{nats}}", ns.URL(), "{{rpc}}", node.WSURL, "{{cert}}", node.CertPath,
		"{{hot}}", hot.Address, "{{birthday}}", fmt.Sprint(birthday), "{{ofac}}", ofacPath).Replace(btcConfig)
	path := filepath.Join(dir, "keywatch.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	first := start(t, path)
	c := testenv.ReadAlerts(t, ns.URL())

	script0, _ := regtest.ScriptOf(targets[0])
	pay := func(coins []regtest.Coin, to []byte, value int64, fee int64) *wire.MsgTx {
		t.Helper()
		tx, err := regtest.Pay(coins, []regtest.Output{{Script: to, Value: value}}, hot.Script, fee)
		if err != nil {
			t.Fatal(err)
		}
		return tx
	}
	sendTx := func(tx *wire.MsgTx) string {
		t.Helper()
		if _, err := node.Send(ctx, tx); err != nil {
			t.Fatal(err)
		}
		return tx.TxHash().String()
	}
	// Wait until keywatch has started on the chain (its start block is the
	// head when it first runs), so the payment is after it.
	testenv.WaitFor(t, 0, func() bool { return started(t, redisURL, "itbtc:", "btc") }, "the bitcoin watcher to start")

	// 2 BTC (120,000 USD) to the first OFAC address, change back.
	first1 := pay([]regtest.Coin{coin}, script0, regtest.Amount(2), 2000)
	tx1 := sendTx(first1)
	testenv.WaitFor(t, 0, func() bool { _, ok := findAlert(c, tx1, "sanctioned-counterparty", "pending", "firing"); return ok }, "pending sanctions alert")
	m, _ := findAlert(c, tx1, "sanctioned-counterparty", "pending", "firing")
	a := m.Alert
	regtestForm := btcaddr.AddressOf(script0, &chaincfg.RegressionNetParams)
	if a.Event.Counterparty != regtestForm || a.Severity != alertmodel.Critical || a.Wallet != "btc-hot" || a.Event.Amount.String() != "2" {
		t.Errorf("alert: counterparty %s severity %s wallet %s amount %s", a.Event.Counterparty, a.Severity, a.Wallet, a.Event.Amount)
	}
	if len(a.Reasons) == 0 || !strings.Contains(a.Reasons[0], "is on list sanctioned") || !strings.Contains(a.Reasons[0], regtestForm) {
		t.Errorf("reasons %q", a.Reasons)
	}
	if m.Subject != "keywatch.alert.critical.btc" {
		t.Errorf("subject %q", m.Subject)
	}
	testenv.WaitFor(t, 0, func() bool { _, ok := findAlert(c, tx1, "big-outflow", "pending", "firing"); return ok }, "pending big-outflow alert")
	if _, err := node.Generate(ctx, 2); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 0, func() bool { _, ok := findAlert(c, tx1, "sanctioned-counterparty", "confirmed", "firing"); return ok }, "confirmed sanctions alert")

	// A second payment, to the bech32 OFAC address, replaced by fee with a
	// payment to a fresh address before any block.
	change := regtest.Coin{OutPoint: wire.OutPoint{Hash: first1.TxHash(), Index: 1}, Value: first1.TxOut[1].Value, Key: hot}
	script1, _ := regtest.ScriptOf(targets[1])
	tx2 := sendTx(pay([]regtest.Coin{change}, script1, regtest.Amount(1), 2000))
	testenv.WaitFor(t, 0, func() bool { _, ok := findAlert(c, tx2, "sanctioned-counterparty", "pending", "firing"); return ok }, "pending alert for the second payment")
	fresh, _ := regtest.NewKey("fresh", regtest.P2WPKH)
	repl := pay([]regtest.Coin{change}, fresh.Script, regtest.Amount(1), 50000)
	tx3 := sendTx(repl)
	testenv.WaitFor(t, 0, func() bool { _, ok := findAlert(c, tx2, "sanctioned-counterparty", "retracted", "resolved"); return ok }, "the replaced payment's alert to resolve")
	rm, _ := findAlert(c, tx2, "sanctioned-counterparty", "retracted", "resolved")
	r := rm.Alert
	if last := r.Reasons[len(r.Reasons)-1]; !strings.Contains(last, "replaced") || !strings.Contains(last, tx3) {
		t.Errorf("resolution reason %q, want the replacement named", last)
	}

	// keywatch restarts while the replacement is mined; the next payment
	// to a sanctioned script is caught by the new process.
	first.stop(t)
	if _, err := node.Generate(ctx, 2); err != nil {
		t.Fatal(err)
	}
	second := start(t, path)
	defer second.stop(t)
	left := regtest.Coin{OutPoint: wire.OutPoint{Hash: repl.TxHash(), Index: 1}, Value: repl.TxOut[1].Value, Key: hot}
	c4 := pay([]regtest.Coin{left}, script1, regtest.Amount(0.5), 2000)
	tx4 := sendTx(c4)
	testenv.WaitFor(t, 0, func() bool { _, ok := findAlert(c, tx4, "sanctioned-counterparty", "pending", "firing"); return ok }, "pending alert after the restart")
	if _, err := node.Generate(ctx, 2); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 0, func() bool { _, ok := findAlert(c, tx4, "sanctioned-counterparty", "confirmed", "firing"); return ok }, "confirmed alert after the restart")

	for id, n := range c.MsgIDCounts() {
		if n != 1 {
			t.Errorf("message %s published %d times", id, n)
		}
	}
	for _, m := range c.All() {
		for _, r := range m.Alert.Reasons {
			if strings.Contains(r, "could not decide") {
				t.Errorf("%s on %s failed closed: %s", m.Alert.Policy, m.Alert.Event.ID, r)
			}
		}
		if m.Alert.Policy == "drain" {
			t.Errorf("drain fired on %s (%s of a 10 BTC wallet): %v", m.Alert.Event.ID, m.Alert.Event.Amount, m.Alert.Reasons)
		}
	}

	// Emptying the wallet over two outputs of half each is a drain (over
	// 90% of it in one transaction, though no output is), caught in the
	// mempool too, with one alert naming both outputs.
	mule, _ := regtest.NewKey("mule", regtest.P2WPKH)
	rest := c4.TxOut[1].Value - 10000
	last, err := regtest.Pay([]regtest.Coin{{OutPoint: wire.OutPoint{Hash: mustHash(t, tx4), Index: 1}, Value: c4.TxOut[1].Value, Key: hot}},
		[]regtest.Output{{Script: fresh.Script, Value: rest / 2}, {Script: mule.Script, Value: rest - rest/2}}, hot.Script, 10000)
	if err != nil {
		t.Fatal(err)
	}
	tx5 := sendTx(last)
	testenv.WaitFor(t, 0, func() bool { _, ok := findAlert(c, tx5, "drain", "pending", "firing"); return ok }, "a drain alert from the mempool")
	dm, _ := findAlert(c, tx5, "drain", "pending", "firing")
	held := btcutil.Amount(c4.TxOut[1].Value).ToBTC() // everything btc-hot had left
	if want := fmt.Sprintf("outflows of transaction %s sum to %v BTC over 2 movements", tx5, btcutil.Amount(rest).ToBTC()); !strings.HasPrefix(dm.Alert.Reasons[0], want) ||
		!strings.Contains(dm.Alert.Reasons[0], fmt.Sprintf("of the %v BTC btc-hot held", held)) {
		t.Errorf("drain reason %q, want it to start %q and name the %v BTC held", dm.Alert.Reasons[0], want, held)
	}
	freshAddr := btcaddr.AddressOf(fresh.Script, &chaincfg.RegressionNetParams)
	muleAddr := btcaddr.AddressOf(mule.Script, &chaincfg.RegressionNetParams)
	if len(dm.Alert.Reasons) < 2 || !strings.Contains(dm.Alert.Reasons[1], freshAddr) || !strings.Contains(dm.Alert.Reasons[1], muleAddr) {
		t.Errorf("drain reasons %q, want both outputs (%s, %s) named", dm.Alert.Reasons, freshAddr, muleAddr)
	}
	// Confirmed, the spend's outputs are judged again: the same alert (the
	// output that crossed) and no other.
	if _, err := node.Generate(ctx, 2); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 0, func() bool { _, ok := findAlert(c, tx5, "drain", "confirmed", "firing"); return ok }, "the drain alert confirmed")
	for _, m := range c.All() {
		if m.Alert.Event.Tx == tx5 && m.Alert.Policy == "drain" && m.Alert.Event.ID != dm.Alert.Event.ID {
			t.Errorf("a second drain alert for %s, on %s: %v", tx5, m.Alert.Event.ID, m.Alert.Reasons)
		}
	}
	for _, tx := range []string{tx1, tx4} {
		if got := forPolicy(c, tx, "sanctioned-counterparty"); len(got) != 2 {
			t.Errorf("sanctions alerts for %s: %v, want pending and confirmed once each", tx, got)
		}
	}
	// The replacement paid a fresh address: no sanctions alert, but a new
	// counterparty (the sanctioned one counts as known: it is on the list
	// new-counterparty is given here).
	if got := forPolicy(c, tx3, "sanctioned-counterparty"); len(got) != 0 {
		t.Errorf("the payment to a fresh address raised %v", got)
	}
	if got := forPolicy(c, tx3, "new-counterparty"); len(got) != 2 {
		t.Errorf("new-counterparty on the payment to a fresh address: %v, want pending and confirmed", got)
	}
}

func mustHash(t *testing.T, s string) chainhash.Hash {
	t.Helper()
	h, err := chainhash.NewHashFromStr(s)
	if err != nil {
		t.Fatal(err)
	}
	return *h
}

// started reports whether the chain's watcher has written its checkpoint.
func started(t *testing.T, url, prefix, chain string) bool {
	t.Helper()
	st, err := redisstore.Open(context.Background(), url, redisstore.WithPrefix(prefix))
	if err != nil {
		return false
	}
	defer st.Close()
	_, err = st.Get(context.Background(), "watch:"+chain+":checkpoint")
	return err == nil
}

// TestBitcoinConfigProblemsNameFileLineAndWallet: what keywatch check (and
// run) report for bad bitcoin wallets, before anything starts.
func TestBitcoinConfigProblemsNameFileLineAndWallet(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "pw"), []byte("x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bad.cert"), []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "keywatch.yaml")
	body := `store: {memory: true}
nats: {embedded: true, data_dir: ` + dir + `}
chains:
  - {name: btc, kind: bitcoin, network: regtest, rpc: [wss://127.0.0.1:18334], rpc_cert: bad.cert, rpc_user: u, rpc_password_file: pw}
wallets:
  - {name: cold, chain: btc, address: bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu, role: cold}
  - {name: ops, chain: btc, xpub: xprv9s21ZrQH143K3QTDL4LXw2F7HEK3wJUD2nW2nRk4stbPy6cq3jPPqjiChkVvvNKmPGJxWUtg6LnF5kejMRNNU3TGtRBeJgk33yuGBxrMPHi, role: hot}
  - {name: typo, chain: btc, address: bcrt1qcr8te4kr609gcawutmrza0j4xv80jy8zeqchgy, role: hot}
`
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err := daemon.Load(path)
	var errs config.Errors
	if !errors.As(err, &errs) {
		t.Fatalf("Load: %v", err)
	}
	got := make([]string, len(errs))
	for i, e := range errs {
		got[i] = strings.TrimPrefix(e.Error(), path+":")
	}
	want := []string{
		`4:90: chains[0].rpc_cert: ` + filepath.Join(dir, "bad.cert") + ` is not a PEM certificate`,
		`6:39: wallets[0].address: "bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu" is a mainnet address, but the chain's network is regtest`,
		`7:35: wallets[1].xpub: private extended key (xprv…): keywatch watches with public keys only; give the account's public key and treat this one as exposed`,
		`8:39: wallets[2].address: "bcrt1qcr8te4kr609gcawutmrza0j4xv80jy8zeqchgy" is not a Bitcoin address: invalid checksum (expected (bech32=eqchgx, bech32m=eqchgxvugmdy), got eqchgy)`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("problems:\n got: %s\nwant: %s", strings.Join(got, "\n      "), strings.Join(want, "\n      "))
	}
	for _, e := range got {
		if strings.Contains(e, "xprv9s21ZrQH143K3QTDL4LX") {
			t.Errorf("a problem repeats the private key: %s", e)
		}
	}
}

// TestDaemonRefusesNodeOnAnotherNetwork: a chain configured for testnet
// pointed at a regtest node stops the daemon with an error saying so, before
// its watcher reads anything.
func TestDaemonRefusesNodeOnAnotherNetwork(t *testing.T) {
	t.Parallel()
	node := testenv.Btcd(t)
	key, err := regtest.NewKey("testnet-form key", regtest.P2PKH) // m/n… addresses are valid on testnet too
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "pw"), []byte(regtest.Password), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "keywatch.yaml")
	body := `store: {memory: true}
nats: {embedded: true, url: "nats://127.0.0.1:0", data_dir: ` + filepath.Join(dir, "nats") + `}
api: {listen: "127.0.0.1:0"}
chains:
  - {name: btc, kind: bitcoin, network: testnet, rpc: [` + node.WSURL + `], rpc_cert: ` + node.CertPath + `, rpc_user: keywatch, rpc_password_file: pw}
wallets:
  - {name: hot, chain: btc, address: ` + key.Address + `, role: hot}
alerts: {sinks: [{name: log, kind: log}]}
`
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, set, err := daemon.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	d, err := daemon.New(context.Background(), cfg, set, daemon.Options{Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err = d.Run(ctx)
	if err == nil || !strings.Contains(err.Error(), "chain btc: node on the wrong network: the node is on regtest, the chain is configured for testnet") {
		t.Fatalf("Run: %v", err)
	}
	if _, err := d.Store.Get(context.Background(), "watch:btc:checkpoint"); err == nil {
		t.Error("the watcher started on the wrong network")
	}
}
