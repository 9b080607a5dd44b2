package daemon_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/keywatch/keywatch/alertmodel"
	"github.com/keywatch/keywatch/chains/ethereum"
	"github.com/keywatch/keywatch/config"
	"github.com/keywatch/keywatch/contracts"
	"github.com/keywatch/keywatch/daemon"
	"github.com/keywatch/keywatch/internal/simchain"
	"github.com/keywatch/keywatch/internal/testenv"
)

const referenceConfig = `
instance: reference
store: {memory: true}
nats: {embedded: true, url: "nats://127.0.0.1:0", data_dir: "{{data}}"}
api: {listen: "127.0.0.1:0"}
chains:
  - name: eth
    kind: ethereum
    rpc: [ws://127.0.0.1:8546]   # replaced by the in-process chain
    confirmations: 0
    poll_interval: 100ms
    start_block: {{start}}
    native_usd: 3000
    tokens:
      - {symbol: USDC, address: "{{token}}", decimals: 6, usd: 1}
wallets:
  - {name: treasury-hot, chain: eth, address: "{{hot}}", role: hot}
  - {name: dev-deployer, chain: eth, address: "{{employee}}", role: employee-key, owner: kim@firm.example}
  - {name: vault-proxy, chain: eth, address: "{{proxy}}", role: contract}
lists:
  mixers: ["{{root}}/configs/lists/mixers.csv"]
  sanctioned: ["{{root}}/configs/lists/sanctioned.csv"]
  address_book: ["{{book}}"]
intents: ["{{intents}}"]
policies:
  - {name: mixer-counterparty, detector: list-match, lists: [mixers], severity: critical, actions: [page, hold]}
  - {name: unapproved-outflow, detector: unapproved-outflow, severity: critical, actions: [page, hold]}
  - {name: admin-change, detector: admin-change, severity: critical, actions: [page, hold]}
  - {name: vault-drained, detector: drain, percent_over: 50, severity: critical, actions: [page]}
  - {name: new-counterparty, detector: new-counterparty, roles: [hot], severity: low}
  - {name: funds-to-mixer, detector: forwarding, lists: [mixers, sanctioned], hops: 3, window: 72h, severity: critical, actions: [page, hold]}
alerts:
  sinks:
    - {name: log, kind: log}
`

// TestReferenceCase replays the insider theft on a real (simulated) chain:
// an employee key upgrades the watched vault proxy to a version with a
// backdoor, sweeps the vault's tokens to a fresh address, and the funds
// reach Tornado Cash through the router two hops later, while the treasury
// goes on making approved payments.
func TestReferenceCase(t *testing.T) {
	ctx := context.Background()
	mixers, err := contracts.MixerAlloc()
	if err != nil {
		t.Fatal(err)
	}
	c := simchain.New(map[string]int64{"treasury-hot": 100, "dev-deployer": 10, "issuer": 10, "funder": 10}, mixers)
	defer c.Close()
	must := func(r *types.Receipt, err error) *types.Receipt {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	deploy := func(from, name string, args ...any) common.Address {
		t.Helper()
		a, err := c.Deploy(ctx, from, name, args...)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}

	// The firm's set-up: a token, a vault behind a proxy whose admin key an
	// employee can use, the treasury's float.
	employee, hot := simchain.Addr("dev-deployer"), simchain.Addr("treasury-hot")
	token := deploy("issuer", contracts.NameTestToken, "USD Coin", "USDC", uint8(6))
	impl := deploy("issuer", contracts.NameVault)
	proxy := deploy("issuer", contracts.NameUpgradeableProxy, impl, employee)
	must(c.Call(ctx, "issuer", proxy, contracts.NameVault, "initialize", hot))
	must(c.Call(ctx, "issuer", token, contracts.NameTestToken, "mint", proxy, big.NewInt(900_000_000_000))) // 900,000 USDC
	must(c.Call(ctx, "issuer", token, contracts.NameTestToken, "mint", hot, big.NewInt(5_000_000_000_000)))
	backdoor := deploy("dev-deployer", contracts.NameVaultV2)
	head, err := c.Client.BlockNumber(ctx)
	if err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	vendor := simchain.Addr("vendor")
	book := filepath.Join(dir, "address-book.csv")
	intents := filepath.Join(dir, "intents.csv")
	write := func(p, body string) {
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(book, "address,label\n"+vendor.Hex()+",Acme Hosting\n")
	write(intents, fmt.Sprintf("id,wallet,to,asset,amount\nw-1,treasury-hot,%s,USDC,25000\nw-2,treasury-hot,%s,USDC,5000\n", vendor.Hex(), vendor.Hex()))
	cfgPath := filepath.Join(dir, "keywatch.yaml")
	write(cfgPath, strings.NewReplacer("{{data}}", filepath.Join(dir, "nats"), "{{start}}", fmt.Sprint(head+1), "{{token}}", token.Hex(),
		"{{hot}}", hot.Hex(), "{{employee}}", employee.Hex(), "{{proxy}}", proxy.Hex(), "{{root}}", testenv.RepoRoot(t),
		"{{book}}", book, "{{intents}}", intents).Replace(referenceConfig))

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
	done := make(chan error, 1)
	go func() { done <- d.Run(runCtx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("daemon: %v", err)
		}
		d.Close()
	}()
	col := testenv.ReadAlerts(t, d.NATSURL())

	wait := func(tx common.Hash, policies ...string) {
		t.Helper()
		for _, p := range policies {
			testenv.WaitFor(t, 0, func() bool { return col.Has(tx.Hex(), p, "confirmed") }, p+" alert on "+tx.Hex())
		}
	}
	pay := func(amount int64) common.Hash {
		t.Helper()
		return must(c.Call(ctx, "treasury-hot", token, contracts.NameTestToken, "transfer", vendor, big.NewInt(amount))).TxHash
	}

	ordinary := []common.Hash{pay(25_000_000_000)}
	upgrade := must(c.Call(ctx, "dev-deployer", proxy, contracts.NameUpgradeableProxy, "upgradeTo", backdoor)).TxHash
	wait(upgrade, "admin-change")
	fresh, fresh2 := simchain.Addr("fresh"), simchain.Addr("fresh2")
	sweep := must(c.Call(ctx, "dev-deployer", proxy, contracts.NameVaultV2, "sweep", token, fresh, big.NewInt(900_000_000_000))).TxHash
	wait(sweep, "unapproved-outflow", "vault-drained")
	ordinary = append(ordinary, pay(5_000_000_000))
	must(c.Send(ctx, "funder", &fresh, simchain.Ether(2), nil)) // gas money from elsewhere
	hop2 := must(c.Send(ctx, "fresh", &fresh2, new(big.Int).Div(simchain.Ether(3), big.NewInt(2)), nil)).TxHash
	routerABI, _ := contracts.Load(contracts.NameTornadoRouter)
	data, err := routerABI.Pack("deposit", contracts.TornadoPool1ETH, crypto.Keccak256Hash([]byte("note")), []byte("encrypted"))
	if err != nil {
		t.Fatal(err)
	}
	router := contracts.TornadoRouter
	deposit := must(c.Send(ctx, "fresh2", &router, simchain.Ether(1), data)).TxHash
	wait(deposit, "funds-to-mixer")
	// One more approved payment after the theft: the outbox publishes in
	// order, so once its block is processed everything before it has arrived.
	last := pay(25_000_000_000)
	wait(last, "unapproved-outflow") // w-1 is used: a third payment has no intent

	get := func(tx common.Hash, policy string) alertmodel.Alert {
		t.Helper()
		for _, m := range col.All() {
			if strings.EqualFold(m.Alert.Event.Tx, tx.Hex()) && m.Alert.Policy == policy {
				return m.Alert
			}
		}
		t.Fatalf("no %s alert on %s", policy, tx.Hex())
		return alertmodel.Alert{}
	}
	lower := func(a common.Address) string { return strings.ToLower(a.Hex()) }

	for _, tx := range append(ordinary, hop2) {
		if got := col.ForTx(tx.Hex()); len(got) != 0 {
			t.Errorf("tx %s raised %v, want nothing", tx.Hex(), got)
		}
	}
	for tx, want := range map[common.Hash]string{
		upgrade: "admin-change:confirmed:firing",
		sweep:   "",
		deposit: "funds-to-mixer:confirmed:firing",
	} {
		got := col.ForTx(tx.Hex())
		switch tx {
		case sweep:
			if strings.Join(got, ",") != "eth:"+sweep.Hex()+":0:unapproved-outflow:confirmed:firing,eth:"+sweep.Hex()+":0:vault-drained:confirmed:firing" {
				t.Errorf("sweep raised %v, want unapproved-outflow and vault-drained", got)
			}
		default:
			if len(got) != 1 || !strings.HasSuffix(got[0], want) {
				t.Errorf("tx %s raised %v, want %s", tx.Hex(), got, want)
			}
		}
	}

	a := get(upgrade, "admin-change")
	if a.Wallet != "vault-proxy" || a.Event.Kind != "admin" || !strings.Contains(strings.Join(a.Reasons, "\n"),
		"Upgraded on watched contract vault-proxy ("+lower(proxy)+"): implementation "+lower(backdoor)) ||
		!strings.Contains(strings.Join(a.Reasons, "\n"), "signed by dev-deployer (employee key of kim@firm.example) "+lower(employee)) {
		t.Errorf("admin-change alert: wallet %s, reasons %q", a.Wallet, a.Reasons)
	}
	a = get(sweep, "unapproved-outflow")
	want := []string{
		"outflow of 900000 USDC (900,000.00 USD) from vault-proxy to " + lower(fresh) + " matches no approved withdrawal intent: no approved withdrawal is open for this wallet",
		"the transaction was signed by dev-deployer (employee key of kim@firm.example) (" + lower(employee) + "), not by vault-proxy",
	}
	if strings.Join(a.Reasons, "\n") != strings.Join(want, "\n") || a.Severity != alertmodel.Critical {
		t.Errorf("unapproved-outflow reasons\n got %q\nwant %q", a.Reasons, want)
	}
	a = get(sweep, "vault-drained")
	if r := strings.Join(a.Reasons, "\n"); !strings.Contains(r, "outflow of 900000 USDC is 100.0% of the 900000 USDC vault-proxy held before block") {
		t.Errorf("drain reasons %q", a.Reasons)
	}
	a = get(deposit, "funds-to-mixer")
	if a.Wallet != "vault-proxy" || a.Severity != alertmodel.Critical || a.Event.WalletRole != "followed" || len(a.Reasons) != 4 {
		t.Fatalf("forwarding alert: wallet %s severity %s role %s reasons %q", a.Wallet, a.Severity, a.Event.WalletRole, a.Reasons)
	}
	for i, want := range []string{
		"funds that left vault-proxy reached " + lower(contracts.TornadoPool1ETH) + ", on list mixers (Tornado Cash 1 ETH pool; source tornadocash/tornado-cli; mixers.csv:6), in 3 hops",
		"hop 1: vault-proxy " + lower(proxy) + " sent 900000 USDC to " + lower(fresh) + " (tx " + sweep.Hex(),
		"hop 2: " + lower(fresh) + " sent 1.5 ETH to " + lower(fresh2) + " (tx " + hop2.Hex(),
		"hop 3: " + lower(fresh2) + " sent 1 ETH to " + lower(contracts.TornadoPool1ETH) + " through " + lower(router) + " (tx " + deposit.Hex(),
	} {
		if !strings.HasPrefix(a.Reasons[i], want) {
			t.Errorf("reason %d = %q, want it to start with %q", i, a.Reasons[i], want)
		}
	}
}
