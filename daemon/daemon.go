// Package daemon assembles keywatch from its configuration: the store, NATS,
// lists and policies, one watcher per chain, holds, the audit log, the alert
// publisher and sinks, and the HTTP listener (screening, holds, alerts,
// audit, the operator console, metrics and health). `keywatch run` and
// `keywatch demo` both start the system through it.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"

	"github.com/keywatch/keywatch/alertmodel"
	"github.com/keywatch/keywatch/alerts"
	"github.com/keywatch/keywatch/alerts/embedded"
	"github.com/keywatch/keywatch/alerts/feed"
	"github.com/keywatch/keywatch/alerts/silences"
	"github.com/keywatch/keywatch/api"
	"github.com/keywatch/keywatch/audit"
	"github.com/keywatch/keywatch/audit/anchor"
	"github.com/keywatch/keywatch/chains/bitcoin"
	"github.com/keywatch/keywatch/chains/ethereum"
	"github.com/keywatch/keywatch/config"
	"github.com/keywatch/keywatch/console"
	"github.com/keywatch/keywatch/holds"
	"github.com/keywatch/keywatch/hops"
	"github.com/keywatch/keywatch/intents"
	"github.com/keywatch/keywatch/internal/backoff"
	"github.com/keywatch/keywatch/policies"
	"github.com/keywatch/keywatch/policies/lists"
	"github.com/keywatch/keywatch/screening"
	"github.com/keywatch/keywatch/store"
	"github.com/keywatch/keywatch/store/memory"
	"github.com/keywatch/keywatch/store/redis"
	"github.com/keywatch/keywatch/watchdog"
	"github.com/keywatch/keywatch/watchers"
	"github.com/keywatch/keywatch/watchers/safequeue"
)

// EthDialer connects to an EVM chain's node. The default dials the chain's
// rpc URLs; the demo and tests pass an in-process chain.
type EthDialer func(ctx context.Context, ch config.Chain) (ethereum.Client, error)

// BTCDialer connects to a bitcoin chain's node. The default dials the
// chain's rpc URLs with its credentials and certificate.
type BTCDialer func(ctx context.Context, ch config.Chain) (bitcoin.Node, error)

// Options are the daemon's injected dependencies.
type Options struct {
	Logger   *slog.Logger
	Registry *prometheus.Registry // nil: a fresh registry
	EthDial  EthDialer            // nil: dial the configured rpc URLs
	BTCDial  BTCDialer            // nil: dial the configured rpc URLs
	Now      func() time.Time
	// LeaseTTL is how long a chain's lease outlives an instance that stopped
	// renewing it (default 15s; tests shorten it).
	LeaseTTL time.Duration
	// AnchorEvery is how often the audit log's head is anchored in
	// JetStream (default 1 minute; tests shorten it).
	AnchorEvery time.Duration
	// SafeQueueInterval is how often each Safe's queue is read from
	// chains[].safe_tx_service (default 15s; tests shorten it).
	SafeQueueInterval time.Duration
}

// Daemon is a running keywatch.
type Daemon struct {
	cfg  *config.Config
	opts Options
	log  *slog.Logger
	reg  *prometheus.Registry

	Store    store.Store
	NATS     *nats.Conn
	JS       jetstream.JetStream
	Engine   *policies.Engine
	Outbox   *alerts.Outbox
	Silences *silences.Silences
	// Intents are the approved withdrawals (the screening API and the
	// intents files register them); Hops the addresses forwarding follows.
	Intents *intents.Registry
	Hops    *hops.Registry
	// Audit is the hash-chained audit log; Record appends to it.
	Audit    *audit.Log
	Holds    *holds.Manager
	Feed     *feed.Feed
	Screener *screening.Screener

	balances map[string]policies.BalanceReader

	api        *api.Server
	natsServer *server.Server
	stream     jetstream.StreamConfig
	listener   net.Listener
	closers    []func()
	reloadMu   sync.Mutex
	refresh    *listRefresh
}

// Load checks a configuration and everything it names (lists, policies,
// sinks) without starting anything. The error lists every problem found.
func Load(path string) (*config.Config, *policies.Set, error) {
	cfg, err := config.Load(path)
	var errs config.Errors
	if err != nil {
		if !errors.As(err, &errs) || cfg == nil {
			return nil, nil, err
		}
	}
	set, err := build(cfg, true)
	var more config.Errors
	if errors.As(err, &more) {
		errs = append(errs, more...)
	} else if err != nil {
		return nil, nil, err
	}
	if len(errs) > 0 {
		sort.SliceStable(errs, func(i, j int) bool {
			if errs[i].File != errs[j].File {
				return errs[i].File == cfg.File() // the configuration first, then list files
			}
			return errs[i].Line < errs[j].Line
		})
		return cfg, nil, errs
	}
	return cfg, set, nil
}

// build loads the lists and builds the policies of cfg, and checks its
// intents files, bitcoin chains and (withSinks) alert sinks.
func build(cfg *config.Config, withSinks bool) (*policies.Set, error) {
	var errs config.Errors
	ls, err := lists.Load(cfg)
	if err != nil {
		var le config.Errors
		if !errors.As(err, &le) {
			return nil, err
		}
		errs = append(errs, le...)
	}
	set, err := policies.Build(cfg, ls)
	if err != nil {
		var pe config.Errors
		if !errors.As(err, &pe) {
			return nil, err
		}
		errs = append(errs, pe...)
	}
	if _, err := intents.Load(cfg); err != nil {
		var ie config.Errors
		if !errors.As(err, &ie) {
			return nil, err
		}
		errs = append(errs, ie...)
	}
	errs = append(errs, CheckBitcoin(cfg)...)
	if withSinks {
		errs = append(errs, checkSinks(cfg)...)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return set, nil
}

// LoadForReplay is Load for the commands that publish nothing (backtest,
// policy test): problems of alerts.sinks, such as a sink's secret missing
// from this machine's environment, do not stop them. Nor do problems of
// reaching the node of the chains named offline (replayed from recorded
// files): their RPC password and certificate. Every other problem does.
func LoadForReplay(path string, offline ...string) (*config.Config, *policies.Set, error) {
	cfg, set, err := Load(path)
	var errs config.Errors
	if err == nil || cfg == nil || !errors.As(err, &errs) {
		return cfg, set, err
	}
	var nodeFields []string
	for i, ch := range cfg.Chains {
		if slices.Contains(offline, ch.Name) {
			for _, f := range []string{"rpc_password_env", "rpc_password_file", "rpc_cert"} {
				nodeFields = append(nodeFields, fmt.Sprintf("chains[%d].%s", i, f))
			}
		}
	}
	var rest config.Errors
	for _, e := range errs {
		if !strings.HasPrefix(e.Field, "alerts.sinks") && !slices.Contains(nodeFields, e.Field) {
			rest = append(rest, e)
		}
	}
	if len(rest) > 0 {
		return cfg, nil, rest
	}
	set, err = build(cfg, false)
	if err != nil {
		return cfg, nil, err
	}
	return cfg, set, nil
}

// OpenStore opens the store the configuration names.
func OpenStore(ctx context.Context, cfg *config.Config) (store.Store, error) {
	if cfg.Store.Memory {
		return memory.New(), nil
	}
	st, err := redis.Open(ctx, cfg.Store.RedisURL().Reveal(), redis.WithPrefix(cfg.Store.Prefix))
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	return st, nil
}

// registerIntents registers the approved withdrawals of the intents files.
// Registering is idempotent: an intent already registered (and perhaps
// already used) is kept as it is.
func (d *Daemon) registerIntents(ctx context.Context, cfg *config.Config) error {
	ins, err := intents.Load(cfg)
	if err != nil {
		return err
	}
	for _, in := range ins {
		if err := d.Intents.Register(ctx, in); err != nil {
			return fmt.Errorf("intent %s: %w", in.ID, err)
		}
	}
	if len(ins) > 0 {
		d.log.Info("approved withdrawals registered from intents files", "intents", len(ins))
	}
	return nil
}

// checkSinks validates the alert sinks.
func checkSinks(cfg *config.Config) config.Errors {
	_, errs := BuildSinks(cfg, nil)
	return errs
}

// New opens the store and NATS and builds the engine. Nothing follows a
// chain until Run.
func New(ctx context.Context, cfg *config.Config, set *policies.Set, opts Options) (*Daemon, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	reg := opts.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	d := &Daemon{cfg: cfg, opts: opts, log: opts.Logger, reg: reg}
	ok := false
	defer func() {
		if !ok {
			d.Close()
		}
	}()

	st, err := OpenStore(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if cfg.Store.Memory {
		d.log.Warn("store: memory (single process; checkpoints and outbox are lost on exit)")
	}
	d.Store = st
	d.closers = append(d.closers, func() { d.Store.Close() })
	d.Intents = intents.New(d.Store, opts.Now)
	d.Hops = hops.New(d.Store)
	d.balances = map[string]policies.BalanceReader{}
	if err := d.registerIntents(ctx, cfg); err != nil {
		return nil, err
	}

	natsURL := cfg.NATS.URL
	if cfg.NATS.Embedded {
		s, err := embedded.Start(natsURL, cfg.NATS.DataDir, d.log)
		if err != nil {
			return nil, err
		}
		d.natsServer = s
		d.closers = append(d.closers, s.Shutdown)
		natsURL = s.ClientURL()
	}
	nc, err := alerts.Connect(natsURL, cfg.NATS.CredsFile, "keywatch "+instanceName(cfg), d.log)
	if err != nil {
		return nil, err
	}
	d.NATS = nc
	d.closers = append(d.closers, nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("JetStream: %w", err)
	}
	d.JS = js
	d.stream = alerts.StreamConfig(cfg.NATS.SubjectPrefix, cfg.NATS.DuplicateWindow.D(), cfg.NATS.MaxAge.D())

	auth, err := api.NewAuthenticator(cfg.API.Tokens, opts.Now)
	if err != nil {
		return nil, err
	}
	d.api = api.NewServer(auth, d.log.With("part", "api"))
	d.registerHealth()

	d.Outbox = alerts.NewOutbox(d.Store, 0)
	d.Audit = audit.New(d.Store, audit.Options{Now: opts.Now, Logger: d.log.With("part", "audit"), Registerer: reg,
		Anchors: func(ctx context.Context) ([]audit.Anchor, error) { return anchor.Read(ctx, d.JS) }})
	d.Feed = feed.New(feed.Options{Store: d.Store, Notify: d.Outbox.Enqueue, Audit: d.Audit, Now: opts.Now, Logger: d.log.With("part", "feed")})
	d.Holds = holds.New(holds.Options{
		Store: d.Store, Config: cfg, Intents: d.Intents, Audit: d.Audit, Notify: d.publish,
		Labeler: d.label, Now: opts.Now, Logger: d.log.With("part", "holds"), Registerer: reg,
	})
	d.Silences = silences.New(silences.Options{
		Store:       d.Store,
		Now:         opts.Now,
		MaxDuration: cfg.Alerts.Silences.MaxDuration.D(),
		Auditor:     d.Audit,
		Announce:    d.publish,
		Known:       knownNames(cfg),
		Logger:      d.log.With("part", "silences"),
	})
	d.Silences.Register(d.api)
	d.Engine = policies.New(set, policies.Options{
		Store:      d.Store,
		Intents:    d.Intents,
		Hops:       d.Hops,
		Balances:   d.balances,
		Notify:     d.notify,
		Now:        opts.Now,
		Logger:     d.log,
		Registerer: reg,
	})
	d.refresh = newListRefresh(cfg.ListRefresh, reg)
	d.refresh.lastReload.Set(float64(opts.Now().Unix()))
	d.registerListMetrics()
	d.logLists(nil, set, "start")
	d.Screener = screening.New(screening.Options{
		Config: cfg, Engine: d.Engine, Lists: func() *lists.Set { return d.Engine.Set().Input().Lists },
		Holds: d.Holds, Intents: d.Intents, Audit: d.Audit, Store: d.Store,
		Now: opts.Now, Logger: d.log.With("part", "screening"), Registerer: reg,
	})
	d.Screener.Register(d.api)
	d.Holds.Register(d.api)
	d.Feed.Register(d.api)
	d.Audit.Register(d.api)
	console.Register(d.api)
	ok = true
	return d, nil
}

// notify takes the alerts of one evaluated event: the holds they ask for are
// made first, so that the published alerts carry hold_id; then they are
// published. An error leaves the event to be evaluated again (the watcher
// does not advance), and holds are idempotent per event.
func (d *Daemon) notify(ctx context.Context, as ...alertmodel.Alert) error {
	if err := d.Holds.Apply(ctx, as); err != nil {
		return err
	}
	return d.publish(ctx, as...)
}

// publish records alerts in the operators' feed and queues them for NATS.
// Every alert keywatch raises goes through it, its own system alerts too, so
// GET /v1/alerts and the console show what the pager sees.
func (d *Daemon) publish(ctx context.Context, as ...alertmodel.Alert) error {
	if err := d.Feed.Record(ctx, as...); err != nil {
		return err
	}
	return d.Outbox.Enqueue(ctx, as...)
}

// label says which of the lists in force an address is on, for the
// evidence of holds.
func (d *Daemon) label(chain, addr string) []string {
	ls := d.Engine.Set().Input().Lists
	if ls == nil {
		return nil
	}
	fam := lists.EVM
	if ch, _ := d.cfg.Chain(chain); ch.Kind == "bitcoin" {
		fam = lists.Bitcoin
	}
	var out []string
	for _, name := range ls.Names() {
		l, _ := ls.Get(name)
		if e, ok := l.Lookup(fam, addr); ok {
			out = append(out, name+": "+e.Evidence())
		}
	}
	return out
}

// NATSURL is the URL clients use to reach the daemon's NATS server.
func (d *Daemon) NATSURL() string { return d.NATS.ConnectedUrlRedacted() }

// HTTPAddr is the address the HTTP listener is bound to (after Run started).
func (d *Daemon) HTTPAddr() string {
	if d.listener == nil {
		return ""
	}
	return d.listener.Addr().String()
}

// Listen binds the HTTP listener (before Run, so callers learn the address).
func (d *Daemon) Listen() error {
	l, err := net.Listen("tcp", d.cfg.API.Listen)
	if err != nil {
		return fmt.Errorf("api.listen %s: %w", d.cfg.API.Listen, err)
	}
	d.listener = l
	return nil
}

// Run starts every part and blocks until ctx ends or a part fails for good.
// Everything that can fail to build (the sinks, each chain's node client
// and watcher) is built before any part starts, so that a Run that cannot
// start returns with nothing left running and the listener closed.
func (d *Daemon) Run(ctx context.Context) error {
	if d.listener == nil {
		if err := d.Listen(); err != nil {
			return err
		}
	}
	parts, err := d.build(ctx)
	if err != nil {
		d.listener.Close()
		return err
	}

	g, ctx := errgroup.WithContext(ctx)
	srv := &http.Server{Handler: d.api, ReadHeaderTimeout: 10 * time.Second}
	g.Go(func() error {
		if err := srv.Serve(d.listener); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("http: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return srv.Shutdown(sctx)
	})

	g.Go(func() error { return d.Holds.Run(ctx) })

	pub := alerts.NewPublisher(alerts.PublisherOptions{
		JetStream: d.JS, Stream: d.stream, Prefix: d.cfg.NATS.SubjectPrefix,
		Outbox: d.Outbox, Logger: d.log.With("part", "publisher"), Registerer: d.reg,
	})
	g.Go(func() error { return pub.Run(ctx) })

	sinkMetrics := alerts.NewSinkMetrics(d.reg)
	deadLetter := alerts.NewDeadLetterer(d.JS, d.cfg.NATS.SubjectPrefix, d.cfg.NATS.MaxAge.D(), d.publish)
	for _, s := range parts.sinks {
		c := s.Config
		opts := alerts.SinkOptions{
			Name: s.Name, Stream: d.stream, Prefix: d.cfg.NATS.SubjectPrefix,
			MaxDeliver: c.MaxDeliver, Timeout: c.Timeout.D(),
			Route: s.Route, GroupWait: c.GroupWait.D(), GroupWindow: c.GroupWindow.D(), RepeatInterval: c.RepeatInterval.D(),
			Silencer: d.Silences, Store: d.Store, DeadLetter: deadLetter, Now: d.opts.Now,
			Logger: d.log.With("part", "sink"), Metrics: sinkMetrics,
		}
		g.Go(func() error { return alerts.RunSink(ctx, d.JS, s.Notifier, opts) })
	}
	g.Go(func() error { return d.Silences.Run(ctx, 10*time.Second) })
	g.Go(func() error {
		return anchor.Run(ctx, d.Audit, anchor.Options{JS: d.JS, Prefix: d.cfg.NATS.SubjectPrefix, Instance: instanceName(d.cfg),
			Every: d.opts.AnchorEvery, Now: d.opts.Now, Logger: d.log.With("part", "audit")})
	})

	g.Go(func() error { return d.refreshLists(ctx, d.cfg.ListRefresh.Interval.D()) })

	// keywatch watches itself: heartbeats out, everyone's heartbeats in.
	instance := instanceName(d.cfg)
	hb := d.cfg.Alerts.Heartbeat
	g.Go(func() error {
		return watchdog.Beat(ctx, watchdog.BeatOptions{JS: d.JS, Prefix: d.cfg.NATS.SubjectPrefix, Instance: instance,
			Role: watchdog.RoleInstance, Interval: hb.Interval.D(), Now: d.opts.Now, Logger: d.log.With("part", "heartbeat"),
			Chains: func() []watchdog.Chain { return chainStates(d.cfg, parts.metrics) }})
	})
	monitor := watchdog.NewMonitor(watchdog.MonitorOptions{JS: d.JS, Prefix: d.cfg.NATS.SubjectPrefix, Self: instance,
		Timeout: hb.Timeout.D(), Expect: hb.Expect, Now: d.opts.Now, Raise: d.publish, Store: d.Store,
		Logger: d.log.With("part", "watchdog")})
	g.Go(func() error { return monitor.Run(ctx) })

	for _, w := range parts.watchers {
		g.Go(func() error {
			if err := w.check(ctx); err != nil {
				return err
			}
			return w.follower.Run(ctx)
		})
		if w.queue != nil {
			g.Go(func() error {
				if err := w.check(ctx); err != nil {
					return err
				}
				return w.queue.Run(ctx)
			})
		}
	}
	d.log.Info("keywatch running", "instance", instance, "chains", len(d.cfg.Chains),
		"wallets", len(d.cfg.Wallets), "policies", len(d.cfg.Policies), "http", d.HTTPAddr())
	return g.Wait()
}

// startup is what Run builds before it starts anything.
type startup struct {
	sinks    []Sink
	metrics  *watchers.Metrics
	watchers []chainWatcher
}

// chainWatcher follows one chain once check (is the node on the configured
// network?) has passed.
type chainWatcher struct {
	follower *watchers.Follower
	check    func(context.Context) error
	queue    *safequeue.Poller // the Safe queue (safe_tx_service), or nil
}

// build makes the sinks and each chain's node client and watcher. The
// balance readers of the drain detector are filled in here, before any
// watcher or request can read them.
func (d *Daemon) build(ctx context.Context) (startup, error) {
	var p startup
	sinks, errs := BuildSinks(d.cfg, d.log)
	if len(errs) > 0 {
		return p, errs
	}
	p.sinks = sinks
	p.metrics = watchers.NewMetrics(d.reg)
	for _, ch := range d.cfg.Chains {
		var w chainWatcher
		switch ch.Kind {
		case "bitcoin":
			node, err := d.dialBTC(ctx, ch)
			if err != nil {
				return p, err
			}
			if w.follower, err = d.btcFollower(ch, node, p.metrics); err != nil {
				return p, err
			}
			w.check = func(ctx context.Context) error { return d.checkBTCNetwork(ctx, ch, node) }
		default:
			client, err := d.dial(ctx, ch)
			if err != nil {
				return p, err
			}
			if w.follower, err = d.follower(ch, client, p.metrics); err != nil {
				return p, err
			}
			if w.queue, err = d.safeQueue(ch, client, p.metrics); err != nil {
				return p, err
			}
			w.check = func(ctx context.Context) error {
				if err := d.checkChainID(ctx, ch, client); err != nil {
					return err
				}
				return d.checkSafes(ctx, ch, client) // safes.go
			}
		}
		p.watchers = append(p.watchers, w)
	}
	return p, nil
}

// follower builds the watcher of one chain.
func (d *Daemon) follower(ch config.Chain, client ethereum.Client, m *watchers.Metrics) (*watchers.Follower, error) {
	if ch.Kind != "ethereum" {
		return nil, fmt.Errorf("chain %s: kind %q is not supported", ch.Name, ch.Kind)
	}
	src := EthereumSource(d.cfg, ch, client, d.Hops, d.traceOptions(ch))
	if bc, ok := client.(ethereum.BalanceClient); ok {
		d.balances[ch.Name] = ethereum.NewBalances(bc, EthereumTokens(ch))
	}
	watched := ethereumWatched(ch, src, client, d.opts, d.log.With("chain", ch.Name))
	return watchers.New(watched, d.watchOptions(ch, m))
}

// watchOptions are a chain's follower settings, the same for every kind.
func (d *Daemon) watchOptions(ch config.Chain, m *watchers.Metrics) watchers.Options {
	return watchers.Options{
		Chain:         ch.Name,
		Confirmations: ch.Confirmations,
		ReorgDepth:    ch.ReorgDepth,
		PollInterval:  ch.PollInterval.D(),
		StartBlock:    ch.StartBlock,
		Store:         d.Store,
		Deliver:       d.Engine.Process,
		Logger:        d.log.With("part", "watcher"),
		Metrics:       m,
		Lease:         &watchers.LeaseOptions{Instance: instanceName(d.cfg), TTL: d.opts.LeaseTTL},
	}
}

// btcFollower builds the watcher of a bitcoin chain.
func (d *Daemon) btcFollower(ch config.Chain, node bitcoin.Node, m *watchers.Metrics) (*watchers.Follower, error) {
	_, opts, err := BitcoinNode(d.cfg, ch)
	if err != nil {
		return nil, err
	}
	opts.Store, opts.Logger, opts.Now, opts.Followed = d.Store, d.log.With("part", "watcher"), d.opts.Now, d.Hops
	src, err := bitcoin.NewSource(node, opts)
	if err != nil {
		return nil, err
	}
	d.balances[ch.Name] = bitcoin.Balances{}
	return watchers.New(src, d.watchOptions(ch, m))
}

// dialBTC makes a bitcoin chain's node client.
func (d *Daemon) dialBTC(ctx context.Context, ch config.Chain) (bitcoin.Node, error) {
	if d.opts.BTCDial != nil {
		return d.opts.BTCDial(ctx, ch)
	}
	cc, _, err := BitcoinNode(d.cfg, ch)
	if err != nil {
		return nil, err
	}
	cc.Logger = d.log.With("chain", ch.Name)
	c, err := bitcoin.NewClient(cc)
	if err != nil {
		return nil, fmt.Errorf("chain %s: %w", ch.Name, err)
	}
	d.closers = append(d.closers, c.Close)
	return c, nil
}

// checkBTCNetwork refuses a bitcoin node on another network than
// configured. It waits (with backoff) for the node to answer.
func (d *Daemon) checkBTCNetwork(ctx context.Context, ch config.Chain, node bitcoin.Node) error {
	nr, ok := node.(interface {
		Network(ctx context.Context) (string, error)
	})
	if !ok {
		return nil
	}
	// A wrong network is the node's answer, not a failure to reach it: it
	// ends the retries and is returned.
	_, err := backoff.Retry(ctx, backoff.New(time.Second, 30*time.Second), func(ctx context.Context) (struct{}, error) {
		err := bitcoin.CheckNetwork(ctx, nr, ch.Network)
		if errors.Is(err, bitcoin.ErrWrongNetwork) {
			return struct{}{}, backoff.Permanent(err)
		}
		return struct{}{}, err
	}, func(err error, wait time.Duration) {
		d.log.Warn("cannot ask the bitcoin node for its network; retrying", "chain", ch.Name, "err", err, "retry_in", wait)
	})
	switch {
	case ctx.Err() != nil:
		return nil // shutting down
	case err != nil:
		return fmt.Errorf("chain %s: %w", ch.Name, err)
	}
	return nil
}

func (d *Daemon) dial(ctx context.Context, ch config.Chain) (ethereum.Client, error) {
	if d.opts.EthDial != nil {
		return d.opts.EthDial(ctx, ch)
	}
	p := ethereum.NewPool(ch.Endpoints(), 0, d.log.With("chain", ch.Name))
	d.closers = append(d.closers, p.Close)
	return p, nil
}

// checkChainID refuses a node on another network than configured. It waits
// (with backoff) for the node to answer.
func (d *Daemon) checkChainID(ctx context.Context, ch config.Chain, client ethereum.Client) error {
	if ch.ChainID == 0 {
		return nil
	}
	id, err := backoff.Retry(ctx, backoff.New(time.Second, 30*time.Second), client.ChainID, func(err error, wait time.Duration) {
		d.log.Warn("cannot read chain id; retrying", "chain", ch.Name, "err", err, "retry_in", wait)
	})
	if err != nil {
		return nil // ctx ended: shutting down
	}
	if id.Uint64() != ch.ChainID {
		return fmt.Errorf("chain %s: node reports chain id %s, configured chain_id is %d: refusing to watch the wrong network", ch.Name, id, ch.ChainID)
	}
	return nil
}

// registerHealth serves /metrics, /healthz and /readyz without a token.
func (d *Daemon) registerHealth() {
	d.api.HandlePublic("GET /metrics", promhttp.HandlerFor(d.reg, promhttp.HandlerOpts{}))
	d.api.HandlePublic("GET /healthz", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte("ok\n"))
	}))
	d.api.HandlePublic("GET /readyz", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var problems []string
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := d.Store.Ping(ctx); err != nil {
			problems = append(problems, "store: "+err.Error())
		}
		if !d.NATS.IsConnected() {
			problems = append(problems, "nats: not connected")
		}
		if len(problems) > 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte(strings.Join(problems, "\n") + "\n"))
			return
		}
		w.Write([]byte("ready\n"))
	}))
}

// Close stops what New started, newest first.
func (d *Daemon) Close() {
	for i := len(d.closers) - 1; i >= 0; i-- {
		d.closers[i]()
	}
	d.closers = nil
}

// chainStates is what the heartbeat says of each configured chain.
func chainStates(cfg *config.Config, m *watchers.Metrics) []watchdog.Chain {
	known := map[string]watchers.ChainStatus{}
	for _, s := range m.Status() {
		known[s.Chain] = s
	}
	out := make([]watchdog.Chain, 0, len(cfg.Chains))
	for _, ch := range cfg.Chains {
		s := known[ch.Name]
		out = append(out, watchdog.Chain{Chain: ch.Name, Head: s.Head, Processed: s.Processed, Lag: s.Lag(),
			HeadAdvancedAt: s.HeadAdvancedAt, ProcessedAt: s.ProcessedAt, LastOKAt: s.LastOKAt,
			StaleAfterSeconds: ch.StaleAfter.D().Seconds(), UnreachableAfterSeconds: ch.UnreachableAfter.D().Seconds(),
			Standby: s.Standby, FollowedBy: s.FollowedBy, FollowingSince: s.FollowingSince})
	}
	return out
}

// knownNames are the names silences may match.
func knownNames(cfg *config.Config) silences.Known {
	k := silences.Known{Chains: []string{"keywatch"}, Roles: config.WalletRoles(), Policies: alertmodel.SystemKinds()}
	for _, ch := range cfg.Chains {
		k.Chains = append(k.Chains, ch.Name)
	}
	for _, w := range cfg.Wallets {
		k.Wallets = append(k.Wallets, w.Name)
	}
	for _, p := range cfg.Policies {
		k.Policies = append(k.Policies, p.Name)
	}
	return k
}

func instanceName(cfg *config.Config) string {
	if cfg.Instance != "" {
		return cfg.Instance
	}
	h, err := os.Hostname()
	if err != nil {
		return "keywatch"
	}
	return h
}
