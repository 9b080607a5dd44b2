// Package demo plays keywatch's insider-theft story on embedded defaults: an
// in-process Ethereum chain (go-ethereum's simulated backend) holding a
// Tornado Cash pool stand-in at the real mainnet address, a real btcd in
// regtest mode for the Bitcoin leg, the real NATS server in-process, and the
// memory store. Alerts are printed by a separate NATS subscriber as they
// arrive, exactly as a sink would see them.
package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/keywatch/keywatch/alertmodel"
	"github.com/keywatch/keywatch/alerts"
	"github.com/keywatch/keywatch/chains/ethereum"
	"github.com/keywatch/keywatch/config"
	"github.com/keywatch/keywatch/configs"
	"github.com/keywatch/keywatch/contracts"
	"github.com/keywatch/keywatch/daemon"
	"github.com/keywatch/keywatch/internal/safetest"
	"github.com/keywatch/keywatch/internal/simchain"
)

// Options configure a demo run.
type Options struct {
	Out    io.Writer    // the story and the alerts
	Logger *slog.Logger // keywatch's own logs
	Keep   bool         // keep running after the story
	// Wait bounds each wait for an expected alert (default 30s).
	Wait time.Duration
	// Pace is a pause before each scene, so a person can follow the story.
	Pace time.Duration
}

// Run plays the story and returns nil when every expected alert arrived and
// nothing alerted that should not have.
func Run(ctx context.Context, o Options) error {
	if o.Out == nil {
		o.Out = os.Stdout
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Wait == 0 {
		o.Wait = 30 * time.Second
	}
	out := &syncWriter{w: o.Out}
	dir, err := os.MkdirTemp("", "keywatch-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if err := os.CopyFS(dir, configs.Files); err != nil {
		return fmt.Errorf("unpack demo configuration: %w", err)
	}
	cfg, set, err := daemon.Load(filepath.Join(dir, "demo.yaml"))
	if err != nil {
		return fmt.Errorf("demo configuration: %w", err)
	}
	cfg.NATS.DataDir = filepath.Join(dir, "nats")

	// The Bitcoin leg: a real btcd in regtest mode, its hot wallet funded
	// before keywatch starts (the wallet's birthday finds the coins).
	btc, skip, err := startBitcoin(ctx, cfg, filepath.Join(dir, "btcd"))
	if err != nil {
		return err
	}
	if btc != nil {
		defer btc.node.Stop()
	} else {
		out.printf("note: %s\n      The Bitcoin leg is skipped; `make demo` builds btcd before running the demo.\n\n", skip)
		dropChain(cfg, "btc")
	}

	alloc, err := contracts.MixerAlloc()
	if err != nil {
		return err
	}
	maps.Copy(alloc, safetest.DeployerAlloc()) // Safe's deployment proxies, for its canonical addresses
	// The chain serves debug_traceBlockByHash as geth does, so internal
	// value movements are read from traces (chains[].traces: auto).
	chain, err := simchain.NewTraced(map[string]int64{"treasury-hot": 1000, "dev-deployer": 10, "decoy": 2, "issuer": 10,
		"safe-deployer": safeHolding + 10, "lazarus": 10}, alloc)
	if err != nil {
		return err
	}
	defer chain.Close()
	client := chain.Client
	safeLeg, err := deploySafe(ctx, cfg, chain) // safe.go
	if err != nil {
		return err
	}

	d, err := daemon.New(ctx, cfg, set, daemon.Options{
		Logger:  o.Logger,
		EthDial: func(context.Context, config.Chain) (ethereum.Client, error) { return client, nil },
	})
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Listen(); err != nil {
		return err
	}
	runCtx, cancel := context.WithCancel(ctx)
	runErr := make(chan error, 1)
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		runErr <- d.Run(runCtx)
	}()
	// keywatch stops before what it runs on (the store, NATS, the chains)
	// is closed by the deferred calls above.
	defer func() {
		cancel()
		<-stopped
	}()

	// The printer is a NATS client of its own, like any sink.
	stream := alerts.StreamConfig(cfg.NATS.SubjectPrefix, cfg.NATS.DuplicateWindow.D(), cfg.NATS.MaxAge.D())
	p, err := newPrinter(runCtx, d.NATSURL(), stream, out)
	if err != nil {
		return err
	}
	defer p.close()

	s := &story{api: "http://" + d.HTTPAddr(), ctx: ctx, out: out, chain: chain, btc: btc, safe: safeLeg, d: d, p: p, wait: o.Wait, pace: o.Pace, runErr: runErr}
	if err := s.play(cfg); err != nil {
		return err
	}
	if o.Keep {
		out.printf("\nkeywatch keeps running: operator console at http://%s/ (sign in as ana or ben with the tokens above),\n", d.HTTPAddr())
		out.printf("metrics at http://%s/metrics, alerts on %s (subjects %s.alert.>). Ctrl-C to stop.\n",
			d.HTTPAddr(), d.NATSURL(), cfg.NATS.SubjectPrefix)
		select {
		case <-ctx.Done():
		case err := <-runErr:
			return err
		}
	}
	return nil
}

type story struct {
	api    string // http://host:port of keywatch's API and console
	ctx    context.Context
	out    *syncWriter
	chain  *simchain.Chain
	btc    *bitcoinLeg // nil when btcd is not installed
	safe   *safeLeg    // the treasury Safe and the attacker's contract
	d      *daemon.Daemon
	p      *printer
	wait   time.Duration
	pace   time.Duration
	runErr chan error
}

func (s *story) play(cfg *config.Config) error {
	s.out.printf("keywatch demo: an in-process Ethereum chain with a Tornado Cash 1 ETH pool at its mainnet address %s,\n", contracts.TornadoPool1ETH.Hex())
	s.out.printf("the real NATS server in-process, the memory store, and %d policies. Alerts below come off NATS as they arrive.\n", len(cfg.Policies))
	s.out.printf("Watched: treasury-hot (hot wallet), dev-deployer (a key an employee can use), decoy (a honeytoken),\n")
	s.out.printf("and treasury-safe (a real Safe 1.4.1 multisig, %s, holding %d ETH).\n", strings.ToLower(s.safe.safe.Address.Hex()), safeHolding)
	s.out.printf("Outflows from treasury-hot and dev-deployer must match an approved withdrawal; funds leaving for unknown addresses are followed.\n")
	if s.btc != nil {
		s.out.printf("Bitcoin: a btcd node in regtest mode; watched: btc-treasury-hot (hot wallet, %s BTC on it before keywatch started).\n", s.btc.funded)
	}

	s.out.printf("\n== Set-up: a USDC token is deployed and 1,000,000 USDC minted to treasury-hot.\n")
	usdc, err := s.deployToken()
	if err != nil {
		return err
	}
	if want, ok := tokenAddress(cfg, "USDC"); !ok || want != usdc {
		return fmt.Errorf("demo token deployed at %s, but demo.yaml follows %s", usdc.Hex(), want.Hex())
	}

	s.scene(1, "An ordinary payment: treasury-hot pays 25,000 USDC to Acme Hosting, a vendor in the address book,\n   under approved withdrawal demo-w-1 (intents/demo.csv).")
	tokenABI, _ := contracts.Load(contracts.NameTestToken)
	data, _ := tokenABI.Pack("transfer", simchain.Addr("vendor"), big.NewInt(25_000_000_000))
	ordinary, err := s.send("treasury-hot", &usdc, nil, data)
	if err != nil {
		return err
	}
	s.confirm()
	s.out.printf("   expected: no alert (the outflow matches its approved withdrawal).\n")

	s.scene(2, "An employee-accessible key sends 1 ETH straight into the Tornado Cash 1 ETH pool.")
	poolABI, _ := contracts.Load(contracts.NameTornadoPool)
	data, _ = poolABI.Pack("deposit", crypto.Keccak256Hash([]byte("demo commitment")))
	pool := contracts.TornadoPool1ETH
	mix, err := s.send("dev-deployer", &pool, simchain.Ether(1), data)
	if err != nil {
		return err
	}
	if err := s.expectAll(mix, []string{"mixer-counterparty", "unapproved-outflow"}); err != nil {
		return err
	}

	s.scene(3, "The theft: treasury-hot sends 60 ETH (180,000 USD) to a fresh address no one approved.")
	fresh := simchain.Addr("fresh")
	theft, err := s.send("treasury-hot", &fresh, simchain.Ether(60), nil)
	if err != nil {
		return err
	}
	if err := s.expectAll(theft, []string{"unapproved-outflow", "big-outflow"}); err != nil {
		return err
	}
	s.out.printf("   keywatch now follows %s (hop 1) for 3 hops and 72h.\n", strings.ToLower(fresh.Hex()))

	s.scene(4, "Two hops on: the fresh address deposits 1 ETH into Tornado Cash through the router (deposit(address,bytes32,bytes)).")
	routerABI, _ := contracts.Load(contracts.NameTornadoRouter)
	data, _ = routerABI.Pack("deposit", pool, crypto.Keccak256Hash([]byte("demo commitment 2")), []byte("note"))
	router := contracts.TornadoRouter
	laundry, err := s.send("fresh", &router, simchain.Ether(1), data)
	if err != nil {
		return err
	}
	if err := s.expectAll(laundry, []string{"funds-to-mixer"}); err != nil {
		return err
	}

	s.scene(5, "Someone uses the decoy wallet's key, which no one should ever touch.")
	mule := simchain.Addr("mule")
	decoy, err := s.send("decoy", &mule, simchain.Ether(1), nil)
	if err != nil {
		return err
	}
	if err := s.expectAll(decoy, []string{"decoy-touched"}); err != nil {
		return err
	}

	if err := s.safeScene(6); err != nil { // safe.go
		return err
	}
	scene := 7
	if s.btc != nil {
		if err := s.bitcoinScene(scene); err != nil {
			return err
		}
		scene++
	}
	if err := s.holdScene(scene, laundry); err != nil {
		return err
	}

	// The outbox publishes in order, so every alert the ordinary payment could
	// have raised has arrived by now.
	if n := s.p.countTx(ordinary); n != 0 {
		return fmt.Errorf("the ordinary payment raised %d alert messages; it should raise none", n)
	}
	s.out.printf("\nStory over: %d alert messages arrived on NATS; the ordinary payment raised none.\n", s.p.total())
	s.out.printf("Each alert was published once per state (pending, then confirmed) with Nats-Msg-Id = <alert id>:<event status>:<status>.\n")
	return nil
}

func (s *story) scene(n int, text string) {
	if s.pace > 0 {
		select {
		case <-s.ctx.Done():
		case <-time.After(s.pace):
		}
	}
	s.out.printf("\n== %d. %s\n", n, text)
}

func tokenAddress(cfg *config.Config, symbol string) (common.Address, bool) {
	for _, ch := range cfg.Chains {
		for _, t := range ch.Tokens {
			if t.Symbol == symbol {
				return common.HexToAddress(t.Address), true
			}
		}
	}
	return common.Address{}, false
}

func (s *story) deployToken() (common.Address, error) {
	addr, err := s.chain.Deploy(s.ctx, "issuer", contracts.NameTestToken, "USD Coin (demo)", "USDC", uint8(6))
	if err != nil {
		return common.Address{}, err
	}
	if _, err := s.chain.Call(s.ctx, "issuer", addr, contracts.NameTestToken, "mint", simchain.Addr("treasury-hot"), big.NewInt(1_000_000_000_000)); err != nil {
		return common.Address{}, err
	}
	return addr, nil
}

// send signs and sends a transaction from the named demo key, seals a block
// and checks that it succeeded.
func (s *story) send(from string, to *common.Address, value *big.Int, data []byte) (common.Hash, error) {
	r, err := s.chain.Send(s.ctx, from, to, value, data)
	if err != nil {
		return common.Hash{}, err
	}
	s.out.printf("   tx %s in block %d\n", r.TxHash.Hex(), r.BlockNumber)
	return r.TxHash, nil
}

// confirm seals one more block: with confirmations: 2 the previous block is
// now confirmed.
func (s *story) confirm() { s.chain.Backend.Commit() }

// expectAll waits for the alerts of the policies on tx, pending, then (after
// one more block) confirmed.
func (s *story) expectAll(tx common.Hash, policies []string) error {
	for _, p := range policies {
		if err := s.expect(tx, p, "pending"); err != nil {
			return err
		}
	}
	s.confirm()
	for _, p := range policies {
		if err := s.expect(tx, p, "confirmed"); err != nil {
			return err
		}
	}
	return nil
}

// expect waits for the alert policy raises on tx with the given event status.
func (s *story) expect(tx common.Hash, policy, status string) error {
	return s.expectTx(tx.Hex(), policy, status)
}

func (s *story) expectTx(tx string, policy, status string) error {
	deadline := time.NewTimer(s.wait)
	defer deadline.Stop()
	for {
		if s.p.hasTx(tx, policy, status) {
			return nil
		}
		select {
		case <-s.ctx.Done():
			return s.ctx.Err()
		case err := <-s.runErr:
			return fmt.Errorf("keywatch stopped: %v", err)
		case <-deadline.C:
			return fmt.Errorf("no %s alert (event %s) for tx %s within %s", policy, status, tx, s.wait)
		case <-s.p.changed():
		}
	}
}

// printer subscribes to the alert stream and prints each alert.
type printer struct {
	nc   *nats.Conn
	cc   jetstream.ConsumeContext
	out  *syncWriter
	mu   sync.Mutex
	seen []alertmodel.Alert
	at   []time.Time // when each of seen arrived
	wake chan struct{}
}

func newPrinter(ctx context.Context, url string, stream jetstream.StreamConfig, out *syncWriter) (*printer, error) {
	nc, err := nats.Connect(url, nats.Name("keywatch demo printer"))
	if err != nil {
		return nil, fmt.Errorf("printer: %w", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, err
	}
	p := &printer{nc: nc, out: out, wake: make(chan struct{}, 1)}
	// The daemon creates the stream too; creating it here as well (the same
	// configuration) lets the printer attach first.
	if _, err := js.CreateOrUpdateStream(ctx, stream); err != nil {
		nc.Close()
		return nil, fmt.Errorf("printer: %w", err)
	}
	cons, err := js.OrderedConsumer(ctx, alerts.StreamName, jetstream.OrderedConsumerConfig{FilterSubjects: stream.Subjects})
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("printer: %w", err)
	}
	p.cc, err = cons.Consume(func(m jetstream.Msg) {
		var a alertmodel.Alert
		if err := json.Unmarshal(m.Data(), &a); err != nil {
			out.printf("   (unreadable alert on %s: %v)\n", m.Subject(), err)
			return
		}
		p.print(m.Subject(), &a)
	})
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("printer: %w", err)
	}
	return p, nil
}

func (p *printer) print(subject string, a *alertmodel.Alert) {
	ev := a.Event
	dir := "to"
	if ev.Direction == "in" {
		dir = "from"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "   ALERT %-8s %-20s %s (event %s) on %s\n", strings.ToUpper(string(a.Severity)), a.Policy, a.Status, ev.Status, subject)
	who := a.Wallet
	if ev.WalletRole == "followed" {
		who = "followed address " + ev.Wallet + " (funds of " + a.Wallet + ")"
	}
	where := fmt.Sprintf("block %d", ev.Block)
	if ev.Block == 0 {
		where = "mempool"
	}
	switch {
	case ev.Kind == "execution" && ev.Operation != "":
		fmt.Fprintf(&b, "         %s ran a %s to %s  [tx %s, %s]\n", who, ev.Operation, ev.Target, short(ev.Tx), where)
	case ev.Kind == "admin":
		fmt.Fprintf(&b, "         %s admin change (%s) to %s  [tx %s, %s]\n", who, ev.Detail["change"], ev.Counterparty, short(ev.Tx), where)
	default:
		fmt.Fprintf(&b, "         %s %s %s %s %s  [tx %s, %s]\n", who, ev.Direction, ev.Amount, ev.Asset, dir+" "+ev.Counterparty, short(ev.Tx), where)
	}
	if kind := ev.Detail["internal"]; kind != "" {
		fmt.Fprintf(&b, "         moved by an internal %s (frame %s) in a transaction %s sent\n", kind, ev.ID[strings.LastIndex(ev.ID, ":")+1:], ev.Initiator)
	}
	for _, r := range a.Reasons {
		fmt.Fprintf(&b, "         - %s\n", r)
	}
	fmt.Fprintf(&b, "         actions: %s\n", joinActions(a.Actions))
	if a.HoldID != "" {
		fmt.Fprintf(&b, "         hold: %s\n", a.HoldID)
	}
	p.out.printf("%s", b.String())
	p.mu.Lock()
	p.seen = append(p.seen, *a)
	p.at = append(p.at, time.Now())
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

func (p *printer) changed() <-chan struct{} { return p.wake }

func (p *printer) hasTx(tx, policy, status string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, a := range p.seen {
		if strings.EqualFold(a.Event.Tx, tx) && a.Policy == policy && string(a.Event.Status) == status {
			return true
		}
	}
	return false
}

// arrival is when the first alert of policy on tx with the event status
// arrived (zero when none did).
func (p *printer) arrival(tx, policy, status string) time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, a := range p.seen {
		if strings.EqualFold(a.Event.Tx, tx) && a.Policy == policy && string(a.Event.Status) == status {
			return p.at[i]
		}
	}
	return time.Time{}
}

func (p *printer) countTx(tx common.Hash) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, a := range p.seen {
		if strings.EqualFold(a.Event.Tx, tx.Hex()) {
			n++
		}
	}
	return n
}

func (p *printer) total() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.seen)
}

func (p *printer) close() {
	p.cc.Stop()
	p.nc.Close()
}

func short(h string) string {
	if len(h) <= 14 {
		return h
	}
	return h[:10] + "…" + h[len(h)-4:]
}

func joinActions(as []alertmodel.Action) string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = string(a)
	}
	return strings.Join(s, ", ")
}

type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (w *syncWriter) printf(format string, args ...any) {
	w.mu.Lock()
	defer w.mu.Unlock()
	fmt.Fprintf(w.w, format, args...)
}
