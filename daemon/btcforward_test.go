package daemon_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/wire"

	"github.com/keywatch/keywatch/alertmodel"
	"github.com/keywatch/keywatch/chains"
	"github.com/keywatch/keywatch/chains/bitcoin/btcaddr"
	"github.com/keywatch/keywatch/hops"
	"github.com/keywatch/keywatch/internal/regtest"
	"github.com/keywatch/keywatch/internal/testenv"
	redisstore "github.com/keywatch/keywatch/store/redis"
)

const btcForwardConfig = `
instance: it-btc-forward
store:
  redis: {{redis}}
  prefix: "itfwd:"
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
  - {name: funds-to-sanctioned, detector: forwarding, lists: [sanctioned], hops: 3, window: 72h, severity: critical, actions: [page, hold]}
alerts:
  sinks:
    - {name: log, kind: log}
`

// TestBitcoinForwardingOnBtcdRegtest follows stolen coins on a real btcd:
// the hot wallet pays two fresh addresses in one transaction; from the
// first, the coins go to a second fresh address and then to a sanctioned
// script (3 hops: the critical forwarding alert, pending from the mempool
// and then confirmed, with the whole path); from the other, one hop more
// before the sanctioned script (4 hops, over the limit: no alert). The
// second hops spend unconfirmed outputs, so the mempool must know the
// outputs of an outflow whose address became followed after it was
// decoded; keywatch restarts before the last hops, so the followed outputs
// must come back from the store.
func TestBitcoinForwardingOnBtcdRegtest(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ofacPath := testenv.Data(t, "ofac/brave-intl_lists_2025-11-19/sanctioned_addresses_XBT.txt")
	targets := ofacBitcoin(t, ofacPath, "bc1q", "3")
	node := testenv.Btcd(t)
	redisURL := testenv.Redis(t)
	ns := testenv.NATS(t)

	key := func(seed string, kt regtest.KeyType) *regtest.Key {
		t.Helper()
		k, err := regtest.NewKey(seed, kt)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	hot := key("forwarding hot wallet", regtest.P2WPKH)
	f1, f2 := key("thief fresh 1", regtest.P2TR), key("thief fresh 2", regtest.P2PKH)
	g1, g2, g3 := key("thief long 1", regtest.P2WPKH), key("thief long 2", regtest.P2SHP2WPKH), key("thief long 3", regtest.P2WPKH)
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
		"{{hot}}", hot.Address, "{{birthday}}", fmt.Sprint(birthday), "{{ofac}}", ofacPath).Replace(btcForwardConfig)
	path := filepath.Join(dir, "keywatch.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	first := start(t, path)
	c := testenv.ReadAlerts(t, ns.URL())
	testenv.WaitFor(t, 0, func() bool { return started(t, redisURL, "itfwd:", "btc") }, "the bitcoin watcher to start")

	st, err := redisstore.Open(ctx, redisURL, redisstore.WithPrefix("itfwd:"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	reg := hops.New(st)
	followedAt := func(k *regtest.Key, depth int) func() bool {
		return func() bool {
			h, ok, err := reg.Get(ctx, "btc", "funds-to-sanctioned", k.Address)
			return err == nil && ok && h.Depth == depth
		}
	}
	sendTx := func(coins []regtest.Coin, outs []regtest.Output, change []byte) *wire.MsgTx {
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

	// Hop 1: the hot wallet pays both fresh addresses (3 BTC each, 180,000
	// USD), change back.
	tx1 := sendTx([]regtest.Coin{coin}, []regtest.Output{{Script: f1.Script, Value: regtest.Amount(3)}, {Script: g1.Script, Value: regtest.Amount(3)}}, hot.Script)
	testenv.WaitFor(t, 0, followedAt(f1, 1), "the first fresh address to be followed")
	testenv.WaitFor(t, 0, followedAt(g1, 1), "the other fresh address to be followed")
	// Hop 2, before any block: f1 keeps change, g1 moves everything.
	tx2 := sendTx([]regtest.Coin{out(tx1, 0, f1)}, []regtest.Output{{Script: f2.Script, Value: regtest.Amount(2.5)}}, f1.Script)
	tx3 := sendTx([]regtest.Coin{out(tx1, 1, g1)}, []regtest.Output{{Script: g2.Script, Value: regtest.Amount(3) - 2000}}, nil)
	testenv.WaitFor(t, 0, followedAt(f2, 2), "the second fresh address to be followed from the mempool")
	testenv.WaitFor(t, 0, followedAt(g2, 2), "the other second address to be followed from the mempool")
	if _, err := node.Generate(ctx, 1); err != nil {
		t.Fatal(err)
	}
	// Hop 3 of the long path, then keywatch restarts.
	tx4 := sendTx([]regtest.Coin{out(tx3, 0, g2)}, []regtest.Output{{Script: g3.Script, Value: regtest.Amount(3) - 4000}}, nil)
	if _, err := node.Generate(ctx, 1); err != nil {
		t.Fatal(err)
	}
	tip, _ := node.Height(ctx)
	testenv.WaitFor(t, 0, func() bool { return processed(t, redisURL, "itfwd:", "btc") >= uint64(tip) }, "keywatch to process the block with the third hop")
	first.stop(t)
	second := start(t, path)
	defer second.stop(t)

	// The sanctioned scripts: hop 3 from f2 (the limit), hop 4 from g3.
	script0, _ := regtest.ScriptOf(targets[0])
	script1, _ := regtest.ScriptOf(targets[1])
	tx5 := sendTx([]regtest.Coin{out(tx2, 0, f2)}, []regtest.Output{{Script: script0, Value: regtest.Amount(2.4)}}, f2.Script)
	tx6 := sendTx([]regtest.Coin{out(tx4, 0, g3)}, []regtest.Output{{Script: script1, Value: regtest.Amount(2.9)}}, g3.Script)
	hop3 := tx5.TxHash().String()
	testenv.WaitFor(t, 0, func() bool { _, ok := findAlert(c, hop3, "funds-to-sanctioned", "pending", "firing"); return ok }, "the pending forwarding alert")
	if _, err := node.Generate(ctx, 2); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 0, func() bool { _, ok := findAlert(c, hop3, "funds-to-sanctioned", "confirmed", "firing"); return ok }, "the confirmed forwarding alert")

	m, _ := findAlert(c, hop3, "funds-to-sanctioned", "confirmed", "firing")
	a := m.Alert
	listed := btcaddr.AddressOf(script0, &chaincfg.RegressionNetParams)
	if a.Wallet != "btc-hot" || a.Severity != alertmodel.Critical || a.Event.WalletRole != chains.RoleFollowed ||
		a.Event.Wallet != f2.Address || a.Event.Counterparty != listed || a.Event.Amount.String() != "2.4" || m.Subject != "keywatch.alert.critical.btc" {
		t.Errorf("alert: wallet %s severity %s event wallet %s (%s) counterparty %s amount %s subject %s",
			a.Wallet, a.Severity, a.Event.Wallet, a.Event.WalletRole, a.Event.Counterparty, a.Event.Amount, m.Subject)
	}
	want := []string{
		"funds that left btc-hot reached " + listed + ", on list sanctioned (",
		"listed as " + targets[0],
		"in 3 hops",
		"hop 1: btc-hot " + hot.Address + " sent 3 BTC to " + f1.Address + " (tx " + tx1.TxHash().String(),
		"hop 2: " + f1.Address + " sent 2.5 BTC to " + f2.Address + " (tx " + tx2.TxHash().String(),
		"hop 3: " + f2.Address + " sent 2.4 BTC to " + listed + " (tx " + hop3,
	}
	all := strings.Join(a.Reasons, "\n")
	for _, w := range want {
		if !strings.Contains(all, w) {
			t.Errorf("reasons do not say %q:\n%s", w, all)
		}
	}
	if len(a.Reasons) != 4 {
		t.Errorf("%d reasons, want the summary and three hops:\n%s", len(a.Reasons), all)
	}
	// The fourth hop was mined in the same block: processed, and nothing
	// about it. Followed addresses' movements are forwarding's alone:
	// list-match says nothing about the payment to the listed script.
	for _, m := range c.All() {
		if tx := m.Alert.Event.Tx; tx == tx6.TxHash().String() || (tx == hop3 && m.Alert.Policy != "funds-to-sanctioned") {
			t.Errorf("unexpected alert %s on %s: %v", m.Alert.Policy, m.Alert.Event.ID, m.Alert.Reasons)
		}
	}
	if got := forPolicy(c, hop3, "funds-to-sanctioned"); len(got) != 2 {
		t.Errorf("forwarding alerts on the third hop: %v, want pending and confirmed once each", got)
	}
	for id, n := range c.MsgIDCounts() {
		if n != 1 {
			t.Errorf("message %s published %d times", id, n)
		}
	}
	if _, followed, _ := reg.Get(ctx, "btc", "funds-to-sanctioned", g3.Address); followed {
		t.Error("the address three hops away was followed: past the hop limit, it must not be")
	}
}

// processed returns the chain's checkpoint height (0 before it started).
func processed(t *testing.T, url, prefix, chain string) uint64 {
	t.Helper()
	st, err := redisstore.Open(context.Background(), url, redisstore.WithPrefix(prefix))
	if err != nil {
		return 0
	}
	defer st.Close()
	b, err := st.Get(context.Background(), "watch:"+chain+":checkpoint")
	if err != nil {
		return 0
	}
	var cp struct {
		Height uint64 `json:"height"`
	}
	if json.Unmarshal(b, &cp) != nil {
		return 0
	}
	return cp.Height
}
