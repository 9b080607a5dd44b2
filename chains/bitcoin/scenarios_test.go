package bitcoin_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/wire"

	"github.com/keywatch/keywatch/chains"
	"github.com/keywatch/keywatch/chains/bitcoin"
	"github.com/keywatch/keywatch/internal/regtest"
	"github.com/keywatch/keywatch/internal/testenv"
	"github.com/keywatch/keywatch/store/memory"
)

// TestReplacementRetractsPending: an outflow waiting in the mempool is
// replaced by fee (BIP125) with one paying elsewhere. The first is
// retracted, saying which transaction replaced it; the replacement is
// published as pending and confirms; the first never does.
func TestReplacementRetractsPending(t *testing.T) {
	t.Parallel()
	node := testenv.Btcd(t)
	hot := newKey(t, "rbf-hot", regtest.P2TR)
	rec := newRecorder()
	startWatcher(t, node, memory.New(), rec, []bitcoin.Wallet{{Name: "hot", Address: hot.Address, Role: "hot"}}, watchOpts{})
	coin := funded(t, node, rec, hot, regtest.Amount(1))

	mule := newKey(t, "mule", regtest.P2WPKH)
	first := send(t, node, pay(t, []regtest.Coin{coin}, []regtest.Output{{Script: mule.Script, Value: regtest.Amount(0.4)}}, hot.Script, 1000))
	rec.wait(t, id(first, 0), chains.StatusPending, 0)

	other := newKey(t, "other mule", regtest.P2PKH)
	second := send(t, node, pay(t, []regtest.Coin{coin}, []regtest.Output{{Script: other.Script, Value: regtest.Amount(0.4)}}, hot.Script, 20000))
	gone := rec.wait(t, id(first, 0), chains.StatusRetracted, -1)
	if why := gone.Detail[chains.DetailRetracted]; !strings.Contains(why, "replaced") || !strings.Contains(why, second) {
		t.Errorf("retraction reason %q, want one naming the replacement %s", why, second)
	}
	repl := rec.wait(t, id(second, 0), chains.StatusPending, 0)
	if repl.Counterparty != other.Address || repl.Detail["fee"] != "0.0002" {
		t.Errorf("replacement: counterparty %s fee %s", repl.Counterparty, repl.Detail["fee"])
	}
	mine(t, node, 2)
	rec.wait(t, id(second, 0), chains.StatusConfirmed, -1)
	if n := rec.count(id(first, 0), chains.StatusConfirmed, -1); n != 0 {
		t.Errorf("the replaced transaction was confirmed %d times", n)
	}
}

// TestReorgRetractsThenReplacementDropsIt: a block holding an outflow is
// invalidated. Its events are retracted, the transaction goes back to the
// mempool and is pending again; a double spend then replaces it, which
// retracts it for good, and only the double spend confirms.
func TestReorgRetractsThenReplacementDropsIt(t *testing.T) {
	t.Parallel()
	node := testenv.Btcd(t)
	hot := newKey(t, "reorg-hot", regtest.P2SHP2WPKH)
	rec := newRecorder()
	startWatcher(t, node, memory.New(), rec, []bitcoin.Wallet{{Name: "hot", Address: hot.Address, Role: "hot"}}, watchOpts{})
	coin := funded(t, node, rec, hot, regtest.Amount(1))

	mule := newKey(t, "mule", regtest.P2WPKH)
	tx := send(t, node, pay(t, []regtest.Coin{coin}, []regtest.Output{{Script: mule.Script, Value: regtest.Amount(0.7)}}, hot.Script, 1000))
	rec.wait(t, id(tx, 0), chains.StatusPending, 0)
	block := mine(t, node, 1)[0]
	height, _ := node.Height(context.Background())
	rec.wait(t, id(tx, 0), chains.StatusPending, height)

	if err := node.Invalidate(context.Background(), block); err != nil {
		t.Fatal(err)
	}
	gone := rec.wait(t, id(tx, 0), chains.StatusRetracted, height)
	if gone.BlockHash != block.String() {
		t.Errorf("retraction for block %s, want %s", gone.BlockHash, block)
	}
	// Back in the mempool: pending again, from the mempool.
	rec.waitUntil(t, "second pending delivery of the reorged transaction", func() bool {
		return rec.count(id(tx, 0), chains.StatusPending, 0) >= 2
	})

	back := newKey(t, "back to cold", regtest.P2WPKH)
	ds := send(t, node, pay(t, []regtest.Coin{coin}, []regtest.Output{{Script: back.Script, Value: regtest.Amount(0.9)}}, nil, 50000))
	rec.wait(t, id(ds, 0), chains.StatusPending, 0)
	rec.waitUntil(t, "retraction from the mempool of the double-spent transaction", func() bool {
		return rec.count(id(tx, 0), chains.StatusRetracted, 0) >= 1
	})
	mine(t, node, 2)
	rec.wait(t, id(ds, 0), chains.StatusConfirmed, -1)
	if n := rec.count(id(tx, 0), chains.StatusConfirmed, -1); n != 0 {
		t.Errorf("the dropped transaction was confirmed %d times", n)
	}
}

// TestRestartMidStream: the watcher stops with an outflow pending; while it
// is down, that outflow is mined and another is sent. The new watcher, on
// the same store, skips nothing and delivers nothing twice.
func TestRestartMidStream(t *testing.T) {
	t.Parallel()
	node := testenv.Btcd(t)
	hot := newKey(t, "restart-hot", regtest.P2WPKH)
	wallets := []bitcoin.Wallet{{Name: "hot", Address: hot.Address, Role: "hot"}}
	st := memory.New()
	rec := newRecorder()
	w := startWatcher(t, node, st, rec, wallets, watchOpts{})
	coin := funded(t, node, rec, hot, regtest.Amount(3))
	fundTx := coin.OutPoint.Hash.String()

	mule := newKey(t, "mule", regtest.P2WPKH)
	t1 := pay(t, []regtest.Coin{coin}, []regtest.Output{{Script: mule.Script, Value: regtest.Amount(1)}}, hot.Script, 1000)
	send(t, node, t1)
	rec.wait(t, id(t1.TxHash().String(), 0), chains.StatusPending, 0)
	w.stop()

	mine(t, node, 1)
	change := regtest.Coin{OutPoint: outpoint(t1, 1), Value: t1.TxOut[1].Value, Key: hot}
	t2 := send(t, node, pay(t, []regtest.Coin{change}, []regtest.Output{{Script: mule.Script, Value: regtest.Amount(1)}}, hot.Script, 1000))

	startWatcher(t, node, st, rec, wallets, watchOpts{})
	rec.wait(t, id(t2, 0), chains.StatusPending, 0)
	mine(t, node, 2)
	rec.wait(t, id(t1.TxHash().String(), 0), chains.StatusConfirmed, -1)
	rec.wait(t, id(t2, 0), chains.StatusConfirmed, -1)

	for _, c := range []struct {
		id     string
		status chains.Status
		block  int64
	}{
		{id(t1.TxHash().String(), 0), chains.StatusPending, 0},
		{id(t1.TxHash().String(), 0), chains.StatusConfirmed, -1},
		{id(t2, 0), chains.StatusPending, 0},
		{id(t2, 0), chains.StatusConfirmed, -1},
		{id(fundTx, 0), chains.StatusConfirmed, -1},
	} {
		if n := rec.count(c.id, c.status, c.block); n != 1 {
			t.Errorf("%s %s delivered %d times, want once", c.status, c.id, n)
		}
	}
	for _, s := range rec.all() {
		if strings.HasPrefix(s, "retracted") {
			t.Errorf("unexpected retraction: %s", s)
		}
	}
}

// TestHandoverBetweenInstances: two watchers share the store and take turns
// following the chain. One that stood by while the other moved the watched
// outputs on reads them again when it takes over: the coins the other
// instance saw created are still watched, and their spending is an outflow.
func TestHandoverBetweenInstances(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	node := testenv.Btcd(t)
	hot := newKey(t, "handover-hot", regtest.P2WPKH)
	wallets := []bitcoin.Wallet{{Name: "hot", Address: hot.Address, Role: "hot"}}
	st := memory.New()
	rec := newRecorder()
	a := startWatcher(t, node, st, rec, wallets, watchOpts{lease: "a"})
	testenv.WaitFor(t, waitFor, a.following, "a follows the chain")
	b := startWatcher(t, node, st, rec, wallets, watchOpts{lease: "b"})
	coin := funded(t, node, rec, hot, regtest.Amount(3))
	mule := newKey(t, "handover-mule", regtest.P2WPKH)
	spend := func(c regtest.Coin) (*wire.MsgTx, regtest.Coin) {
		t.Helper()
		tx := pay(t, []regtest.Coin{c}, []regtest.Output{{Script: mule.Script, Value: regtest.Amount(0.5)}}, hot.Script, 1000)
		send(t, node, tx)
		rec.wait(t, id(tx.TxHash().String(), 0), chains.StatusPending, 0)
		mine(t, node, 2)
		rec.wait(t, id(tx.TxHash().String(), 0), chains.StatusConfirmed, -1)
		return tx, regtest.Coin{OutPoint: outpoint(tx, 1), Value: tx.TxOut[1].Value, Key: hot}
	}
	t1, change := spend(coin)
	if b.following() {
		t.Fatal("b follows the chain while a holds it")
	}
	a.caughtUp(t, node)

	// a's lease runs out and b takes the chain over (written here as the
	// record b's claim would leave).
	until := time.Now().Add(time.Hour).UTC().Format(time.RFC3339Nano)
	if err := st.Set(ctx, "watch:btc:lease", []byte(`{"holder":"b","until":"`+until+`"}`), 0); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, waitFor, func() bool { return b.following() && !a.following() }, "b takes over from a")
	t2, change := spend(change)
	b.caughtUp(t, node)

	// b stops; a takes over again and must know t2's change.
	b.stop()
	testenv.WaitFor(t, waitFor, a.following, "a takes over from b")
	t3, _ := spend(change)

	for _, tx := range []*wire.MsgTx{t1, t2, t3} {
		out := id(tx.TxHash().String(), 0)
		if m, c := rec.count(out, chains.StatusPending, 0), rec.count(out, chains.StatusConfirmed, -1); m != 1 || c != 1 {
			t.Errorf("outflow %s delivered from the mempool %d times and confirmed %d times, want once each:\n%s", out, m, c, strings.Join(rec.all(), "\n"))
		}
	}
	for _, s := range rec.all() {
		if strings.HasPrefix(s, "retracted") {
			t.Errorf("unexpected retraction: %s", s)
		}
	}
}

// TestMinedDuringLongOutage: keywatch stops with an outflow pending and
// stays down for longer than it remembers blocks (reorg_depth 3, 6 blocks
// mined). Back up, the outflow is confirmed, never retracted as if it had
// been dropped from the mempool.
func TestMinedDuringLongOutage(t *testing.T) {
	t.Parallel()
	node := testenv.Btcd(t)
	hot := newKey(t, "outage-hot", regtest.P2WPKH)
	wallets := []bitcoin.Wallet{{Name: "hot", Address: hot.Address, Role: "hot"}}
	st := memory.New()
	rec := newRecorder()
	o := watchOpts{reorgDepth: 3}
	w := startWatcher(t, node, st, rec, wallets, o)
	coin := funded(t, node, rec, hot, regtest.Amount(1))
	mule := newKey(t, "mule", regtest.P2WPKH)
	t1 := pay(t, []regtest.Coin{coin}, []regtest.Output{{Script: mule.Script, Value: regtest.Amount(0.3)}}, hot.Script, 1000)
	send(t, node, t1)
	rec.wait(t, id(t1.TxHash().String(), 0), chains.StatusPending, 0)
	w.stop()

	mine(t, node, 6)
	startWatcher(t, node, st, rec, wallets, o)
	rec.wait(t, id(t1.TxHash().String(), 0), chains.StatusConfirmed, -1)
	// A later mempool transaction shows the mempool pass ran after the
	// catch-up.
	change := regtest.Coin{OutPoint: outpoint(t1, 1), Value: t1.TxOut[1].Value, Key: hot}
	t2 := send(t, node, pay(t, []regtest.Coin{change}, []regtest.Output{{Script: mule.Script, Value: regtest.Amount(0.3)}}, hot.Script, 1000))
	rec.wait(t, id(t2, 0), chains.StatusPending, 0)
	if n := rec.count(id(t1.TxHash().String(), 0), chains.StatusRetracted, -1); n != 0 {
		t.Errorf("the outflow mined during the outage was retracted %d times", n)
	}
}

// TestConnectionLossResubscribes: the connection to btcd drops and the
// node stays unreachable while a block is mined (btcd wipes a regtest chain
// when it restarts, so the outage is made between the watcher and the node).
// The watcher reconnects, registers its notifications and transaction
// filter again, catches up from its checkpoint, and the next payment arrives
// by notification: the poll interval is far longer than the wait.
func TestConnectionLossResubscribes(t *testing.T) {
	t.Parallel()
	node := testenv.Btcd(t)
	proxy := testenv.NewTCPProxy(t, strings.TrimPrefix(node.WSURL, "wss://"))
	hot := newKey(t, "ws-hot", regtest.P2WPKH)
	rec := newRecorder()
	startWatcher(t, node, memory.New(), rec, []bitcoin.Wallet{{Name: "hot", Address: hot.Address, Role: "hot"}},
		watchOpts{url: "wss://" + proxy.Addr(), pollInterval: 10 * time.Minute})
	coin := funded(t, node, rec, hot, regtest.Amount(1))

	proxy.Cut()
	mule := newKey(t, "mule", regtest.P2WPKH)
	during := pay(t, []regtest.Coin{coin}, []regtest.Output{{Script: mule.Script, Value: regtest.Amount(0.1)}}, hot.Script, 1000)
	send(t, node, during)
	mine(t, node, 1)
	height, _ := node.Height(context.Background())
	proxy.Restore()
	// Caught up from the checkpoint: the block mined during the outage.
	rec.wait(t, id(during.TxHash().String(), 0), chains.StatusPending, height)

	change := regtest.Coin{OutPoint: outpoint(during, 1), Value: during.TxOut[1].Value, Key: hot}
	after := send(t, node, pay(t, []regtest.Coin{change}, []regtest.Output{{Script: mule.Script, Value: regtest.Amount(0.1)}}, hot.Script, 1000))
	rec.wait(t, id(after, 0), chains.StatusPending, 0)
}

// TestPollingOverHTTP watches through HTTP POST mode (as with Bitcoin
// Core): no notifications, the mempool and head are polled.
func TestPollingOverHTTP(t *testing.T) {
	t.Parallel()
	node := testenv.Btcd(t)
	hot := newKey(t, "http-hot", regtest.P2PKH)
	rec := newRecorder()
	w := startWatcher(t, node, memory.New(), rec, []bitcoin.Wallet{{Name: "hot", Address: hot.Address, Role: "hot"}}, watchOpts{url: node.HTTPURL, pollInterval: 100 * time.Millisecond})
	if w.client.IsWebSocket() {
		t.Fatal("HTTP endpoint taken for a WebSocket one")
	}
	coin := funded(t, node, rec, hot, regtest.Amount(1))
	tx := send(t, node, pay(t, []regtest.Coin{coin}, []regtest.Output{{Script: scriptOf(t, sanctioned), Value: regtest.Amount(0.25)}}, hot.Script, 1000))
	rec.wait(t, id(tx, 0), chains.StatusPending, 0)
	mine(t, node, 2)
	rec.wait(t, id(tx, 0), chains.StatusConfirmed, -1)
}

// TestXpubWalletGapLimit watches an account vpub with a gap limit of 3.
// Payments to receive addresses 0, 2 and 5 in one block are all found (5
// only once 2 moved the window); 9 is past the window and is not; 8 is
// inside the moved window and is seen in the mempool. Spending with change
// to the change branch reports the payment, not the change.
func TestXpubWalletGapLimit(t *testing.T) {
	t.Parallel()
	node := testenv.Btcd(t)
	acct, err := regtest.NewAccount("ops", regtest.P2WPKH)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(acct.XPub, "vpub") {
		t.Fatalf("account key %s…, want vpub", acct.XPub[:8])
	}
	rec := newRecorder()
	startWatcher(t, node, memory.New(), rec, []bitcoin.Wallet{{Name: "ops", XPub: acct.XPub, GapLimit: 3, Role: "hot"}}, watchOpts{})
	key := func(branch, i uint32) *regtest.Key {
		k, err := acct.Key(branch, i)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	cb, err := node.MinerCoin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	outs := []regtest.Output{
		{Script: key(0, 0).Script, Value: regtest.Amount(1)},
		{Script: key(0, 2).Script, Value: regtest.Amount(1)},
		{Script: key(0, 5).Script, Value: regtest.Amount(1)},
		{Script: key(0, 9).Script, Value: regtest.Amount(1)},
	}
	batch := pay(t, []regtest.Coin{cb}, outs, node.Miner.Script, 5000)
	tx := send(t, node, batch)
	mine(t, node, 2)
	for _, vout := range []int{0, 1, 2} {
		ev := rec.wait(t, id(tx, vout), chains.StatusConfirmed, -1)
		if ev.Wallet != "ops" || ev.Direction != chains.In || ev.To != key(0, []uint32{0, 2, 5}[vout]).Address {
			t.Errorf("vout %d: %+v", vout, ev)
		}
	}
	if n := rec.count(id(tx, 3), chains.StatusConfirmed, -1); n != 0 {
		t.Errorf("address 0/9, past the gap limit, was reported")
	}

	cb2, err := node.MinerCoin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	late := send(t, node, pay(t, []regtest.Coin{cb2}, []regtest.Output{{Script: key(0, 8).Script, Value: regtest.Amount(1)}}, node.Miner.Script, 5000))
	rec.wait(t, id(late, 0), chains.StatusPending, 0)

	coins := []regtest.Coin{
		{OutPoint: outpoint(batch, 0), Value: batch.TxOut[0].Value, Key: key(0, 0)},
		{OutPoint: outpoint(batch, 1), Value: batch.TxOut[1].Value, Key: key(0, 2)},
	}
	mule := newKey(t, "mule", regtest.P2WPKH)
	spend := send(t, node, pay(t, coins, []regtest.Output{{Script: mule.Script, Value: regtest.Amount(1.5)}}, key(1, 0).Script, 3000))
	out := rec.wait(t, id(spend, 0), chains.StatusPending, 0)
	if out.Wallet != "ops" || out.Amount.String() != "1.5" || out.Detail["fee"] != "0.00003" {
		t.Errorf("outflow %+v", out)
	}
	mine(t, node, 2)
	rec.wait(t, id(spend, 0), chains.StatusConfirmed, -1)
	if n := rec.count(id(spend, 1), chains.StatusConfirmed, -1); n != 0 {
		t.Error("change to the change branch was reported")
	}
}

// TestBirthdayFindsExistingCoins: wallets that already hold coins when
// keywatch first watches them. On the first start, a wallet with a birthday
// has its coins found and a later spend is an outflow. On a later start, a
// wallet added with a birthday has its coins found as well; one added
// without (the contrast) only knows coins it receives from then on, so the
// spend of an older coin goes unseen.
func TestBirthdayFindsExistingCoins(t *testing.T) {
	t.Parallel()
	node := testenv.Btcd(t)
	ctx := context.Background()
	before, _ := node.Height(ctx)
	old := newKey(t, "old coins", regtest.P2WPKH)
	later := newKey(t, "added later", regtest.P2TR)
	without := newKey(t, "added later, no birthday", regtest.P2WPKH)
	var coins []regtest.Coin
	for _, k := range []*regtest.Key{old, later, without} {
		c, _, err := node.Fund(ctx, k, btcAmount(regtest.Amount(1)))
		if err != nil {
			t.Fatal(err)
		}
		coins = append(coins, c)
	}
	mine(t, node, 3)

	st := memory.New()
	rec := newRecorder()
	wallets := []bitcoin.Wallet{{Name: "old", Address: old.Address, Role: "cold", Birthday: uint64(before)}}
	w := startWatcher(t, node, st, rec, wallets, watchOpts{})
	mule := newKey(t, "mule", regtest.P2WPKH)
	spendOld := send(t, node, pay(t, coins[:1], []regtest.Output{{Script: mule.Script, Value: regtest.Amount(0.5)}}, old.Script, 1000))
	rec.wait(t, id(spendOld, 0), chains.StatusPending, 0)
	mine(t, node, 2)
	rec.wait(t, id(spendOld, 0), chains.StatusConfirmed, -1)
	w.stop()

	wallets = append(wallets,
		bitcoin.Wallet{Name: "later", Address: later.Address, Role: "cold", Birthday: uint64(before)},
		bitcoin.Wallet{Name: "no-birthday", Address: without.Address, Role: "cold"})
	startWatcher(t, node, st, rec, wallets, watchOpts{})
	spendLater := send(t, node, pay(t, coins[1:2], []regtest.Output{{Script: mule.Script, Value: regtest.Amount(0.5)}}, later.Script, 1000))
	spendBlind := send(t, node, pay(t, coins[2:3], []regtest.Output{{Script: mule.Script, Value: regtest.Amount(0.5)}}, without.Script, 1000))
	rec.wait(t, id(spendLater, 0), chains.StatusPending, 0)
	mine(t, node, 2)
	rec.wait(t, id(spendLater, 0), chains.StatusConfirmed, -1)
	if n := rec.count(id(spendBlind, 0), chains.StatusConfirmed, -1); n != 0 {
		t.Errorf("a coin received before the wallet was added without a birthday was known")
	}
}

// TestBadWalletsAndWrongNetwork: a wallet written for another network, or
// a private key, is refused naming the wallet; a node on another network
// than configured is refused.
func TestBadWalletsAndWrongNetwork(t *testing.T) {
	t.Parallel()
	reg := &chaincfg.RegressionNetParams
	for _, c := range []struct {
		w    bitcoin.Wallet
		want string
	}{
		{bitcoin.Wallet{Name: "cold", Address: "bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu"}, `wallet cold: address: "bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu" is a mainnet address, but the chain's network is regtest`},
		{bitcoin.Wallet{Name: "ops", XPub: "xprv9s21ZrQH143K3QTDL4LXw2F7HEK3wJUD2nW2nRk4stbPy6cq3jPPqjiChkVvvNKmPGJxWUtg6LnF5kejMRNNU3TGtRBeJgk33yuGBxrMPHi"}, "wallet ops: xpub: private extended key"},
	} {
		_, err := bitcoin.NewSource(nil, bitcoin.Options{Chain: "btc", Network: reg, Store: memory.New(), Wallets: []bitcoin.Wallet{c.w}})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("error %v, want %q", err, c.want)
		}
	}

	node := testenv.Btcd(t)
	client, err := bitcoin.NewClient(bitcoin.ClientConfig{URLs: []string{node.WSURL}, User: regtest.User, Password: regtest.Password, Cert: node.Cert})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	ctx := context.Background()
	if err := bitcoin.CheckNetwork(ctx, client, "regtest"); err != nil {
		t.Errorf("regtest node refused for a regtest chain: %v", err)
	}
	err = bitcoin.CheckNetwork(ctx, client, "mainnet")
	if !errors.Is(err, bitcoin.ErrWrongNetwork) || !strings.Contains(err.Error(), "the node is on regtest, the chain is configured for mainnet") {
		t.Errorf("mainnet chain on a regtest node: %v", err)
	}

	bad, err := bitcoin.NewClient(bitcoin.ClientConfig{URLs: []string{node.WSURL}, User: regtest.User, Password: "wrong password", Cert: node.Cert, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	if _, err := bad.BlockCount(ctx); err == nil || strings.Contains(err.Error(), "wrong password") {
		t.Errorf("bad credentials: error %v (must fail, without the password)", err)
	}
}

// TestCookieAuth: a node reached with a cookie file ("user:password", as
// Bitcoin Core writes it at each start) rather than configured credentials,
// over WebSocket and over HTTP POST. A cookie that no longer matches is
// refused, and its password stays out of the error.
func TestCookieAuth(t *testing.T) {
	t.Parallel()
	node := testenv.Btcd(t)
	ctx := context.Background()
	cookie := filepath.Join(t.TempDir(), ".cookie")
	write := func(pass string) {
		t.Helper()
		if err := os.WriteFile(cookie, []byte(regtest.User+":"+pass), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(regtest.Password)
	for _, url := range []string{node.WSURL, node.HTTPURL} {
		client, err := bitcoin.NewClient(bitcoin.ClientConfig{URLs: []string{url}, CookiePath: cookie, Cert: node.Cert, Timeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		n, err := client.BlockCount(ctx)
		client.Close()
		if err != nil || n < 1 {
			t.Fatalf("%s with the cookie: block count %d, %v", url, n, err)
		}
	}
	write("a-stale-cookie-secret")
	client, err := bitcoin.NewClient(bitcoin.ClientConfig{URLs: []string{node.HTTPURL}, CookiePath: cookie, Cert: node.Cert, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	if _, err := client.BlockCount(ctx); err == nil || strings.Contains(err.Error(), "a-stale-cookie-secret") {
		t.Errorf("a stale cookie: error %v (must fail, without the password)", err)
	}
}

// TestNoTLSNode: a btcd started with --notls, reached at its plain ws://
// and http:// URLs without a certificate. Over both the client answers the
// block count, the best block's hash and the network; over ws:// it is a
// WebSocket and pushes a block notification.
func TestNoTLSNode(t *testing.T) {
	t.Parallel()
	node := testenv.BtcdNoTLS(t)
	if !strings.HasPrefix(node.WSURL, "ws://") || !strings.HasPrefix(node.HTTPURL, "http://") {
		t.Fatalf("a --notls node at %s and %s", node.WSURL, node.HTTPURL)
	}
	ctrl, err := node.RPC()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		url string
		ws  bool
	}{{node.WSURL, true}, {node.HTTPURL, false}} {
		t.Run(c.url[:strings.Index(c.url, ":")], func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), waitFor)
			defer cancel()
			client, err := bitcoin.NewClient(bitcoin.ClientConfig{URLs: []string{c.url}, User: regtest.User, Password: regtest.Password, Timeout: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			defer client.Close()
			best, height, err := ctrl.GetBestBlock()
			if err != nil {
				t.Fatal(err)
			}
			n, err := client.BlockCount(ctx)
			if err != nil || n != int64(height) {
				t.Fatalf("%s: block count %d, %v; want %d", c.url, n, err, height)
			}
			h, err := client.BlockHash(ctx, n)
			if err != nil || !h.IsEqual(best) {
				t.Fatalf("%s: hash of block %d %v, %v; want %s", c.url, n, h, err, best)
			}
			if net, err := client.Network(ctx); err != nil || net != "regtest" {
				t.Fatalf("%s: network %q, %v; want regtest", c.url, net, err)
			}
			if client.IsWebSocket() != c.ws {
				t.Fatalf("%s: IsWebSocket %v, want %v", c.url, client.IsWebSocket(), c.ws)
			}
			notes, err := client.Subscribe(ctx, nil, nil)
			if err != nil {
				t.Fatalf("%s: subscribe: %v", c.url, err)
			}
			if !c.ws {
				if notes != nil {
					t.Fatalf("%s: notifications over HTTP POST", c.url)
				}
				return
			}
			mined := mine(t, node, 1)
			deadline := time.NewTimer(waitFor)
			defer deadline.Stop()
			for connected := false; !connected; {
				select {
				case note, ok := <-notes:
					if !ok {
						t.Fatalf("%s: the notification channel closed", c.url)
					}
					connected = note.Kind == bitcoin.BlockConnected
				case <-deadline.C:
					t.Fatalf("%s: no notification of block %s within %s", c.url, mined[0], waitFor)
				}
			}
			if n, err := client.BlockCount(ctx); err != nil || n != int64(height)+1 {
				t.Fatalf("%s: block count after mining %d, %v; want %d", c.url, n, err, height+1)
			}
		})
	}
}
