package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/keywatch/keywatch/backtest"
	"github.com/keywatch/keywatch/chains/bitcoin"
	"github.com/keywatch/keywatch/chains/ethereum"
	"github.com/keywatch/keywatch/config"
	"github.com/keywatch/keywatch/daemon"
	"github.com/keywatch/keywatch/intents"
	"github.com/keywatch/keywatch/policies"
	"github.com/keywatch/keywatch/watchers"
)

// pathsFlag collects the paths of a repeated flag.
type pathsFlag []string

func (p *pathsFlag) String() string { return strings.Join(*p, ", ") }

func (p *pathsFlag) Set(s string) error {
	if strings.TrimSpace(s) == "" {
		return fmt.Errorf("empty path")
	}
	*p = append(*p, s)
	return nil
}

// blockFlag is an optional block number.
type blockFlag struct {
	n   uint64
	set bool
}

func (b *blockFlag) String() string {
	if !b.set {
		return ""
	}
	return strconv.FormatUint(b.n, 10)
}

func (b *blockFlag) Set(s string) error {
	n, err := strconv.ParseUint(strings.TrimSpace(s), 0, 64)
	if err != nil {
		return fmt.Errorf("%q is not a block number", s)
	}
	b.n, b.set = n, true
	return nil
}

func cmdBacktest(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("keywatch backtest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "configuration file (required): wallets, tokens, lists and policies")
	chain := fs.String("chain", "", "the configured chain to replay (required)")
	var from, to blockFlag
	fs.Var(&from, "from", "first block (required with a node; default with -files: the first recorded)")
	fs.Var(&to, "to", "last block (default: the node's head, or the last recorded)")
	var files pathsFlag
	fs.Var(&files, "files", "replay recorded blocks instead of the node: a folder of JSON-RPC responses (Ethereum); folders or files of raw blocks, the flag repeated for several (Bitcoin)")
	newLogger := logFlags(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *path == "" || *chain == "" {
		fmt.Fprintln(stderr, "keywatch backtest: -config FILE and -chain NAME are required")
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "keywatch backtest: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	log, err := newLogger(stderr)
	if err != nil {
		fmt.Fprintln(stderr, "keywatch backtest:", err)
		return 2
	}
	var offline []string
	if len(files) > 0 {
		offline = []string{*chain} // its node is not contacted
	}
	cfg, set, err := daemon.LoadForReplay(*path, offline...)
	if err != nil {
		printProblems(stderr, err)
		fmt.Fprintln(stderr, "keywatch backtest: configuration has errors; nothing replayed")
		return 1
	}
	ch, ok := cfg.Chain(*chain)
	if !ok {
		fmt.Fprintf(stderr, "keywatch backtest: %s names no chain %q (chains: %s)\n", *path, *chain, chainNames(cfg))
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	ins, err := intents.Load(cfg)
	if err != nil {
		printProblems(stderr, err)
		return 1
	}
	var rng backtest.Range
	var src watchers.Source
	balances := map[string]policies.BalanceReader{} // filled below, once the node client exists; read when judging
	replay := backtest.New(backtest.Options{Set: set, Intents: ins, Balances: balances, Out: stdout, Logger: log})
	defer replay.Close()
	switch ch.Kind {
	case "ethereum":
		var client ethereum.Client
		if len(files) > 1 {
			fmt.Fprintln(stderr, "keywatch backtest: -files: Ethereum recordings are read from one folder; give -files once")
			return 2
		}
		if len(files) == 1 {
			rec, err := ethereum.OpenRecorded(files[0])
			if err != nil {
				fmt.Fprintln(stderr, "keywatch backtest:", err)
				return 1
			}
			defer rec.Close()
			client = rec.Client()
			rng.Heights = rec.Heights()
			rng.From, rng.To = rng.Heights[0], rng.Heights[len(rng.Heights)-1]
			var skipped []string
			for n, f := range rec.HeaderOnly() {
				skipped = append(skipped, fmt.Sprintf("%d (%s)", n, f))
			}
			sort.Strings(skipped)
			for _, s := range skipped {
				fmt.Fprintf(stderr, "skipped block %s: recorded without its transactions\n", s)
			}
			fmt.Fprintf(stderr, "recorded: %d responses, blocks %s (%d other JSON files passed over)\n", rec.Files(), joinHeights(rng.Heights), len(rec.Skipped()))
		} else {
			if len(ch.Endpoints()) == 0 {
				fmt.Fprintf(stderr, "keywatch backtest: chain %s has no rpc URL; give -files DIR to replay recorded blocks\n", ch.Name)
				return 2
			}
			if !from.set {
				fmt.Fprintln(stderr, "keywatch backtest: -from N is required when replaying from the node")
				return 2
			}
			pool := ethereum.NewPool(ch.Endpoints(), 0, log.With("chain", ch.Name))
			defer pool.Close()
			client = pool
			if ch.ChainID != 0 {
				id, err := pool.ChainID(ctx)
				if err != nil {
					fmt.Fprintf(stderr, "keywatch backtest: chain %s: %v\n", ch.Name, err)
					return 1
				}
				if id.Uint64() != ch.ChainID {
					fmt.Fprintf(stderr, "keywatch backtest: chain %s: the node reports chain id %s, the configuration says %d\n", ch.Name, id, ch.ChainID)
					return 1
				}
			}
			rng.To = ^uint64(0)
			if !to.set {
				head, err := pool.BlockNumber(ctx)
				if err != nil {
					fmt.Fprintf(stderr, "keywatch backtest: chain %s: head: %v\n", ch.Name, err)
					return 1
				}
				rng.To = head
			}
		}
		if from.set {
			rng.From = from.n
		}
		if to.set {
			rng.To = to.n
		}
		recorded := len(files) == 1
		es := daemon.EthereumSource(cfg, ch, client, replay.Hops(), func(o *ethereum.Options) {
			o.Logger = log
			if recorded && o.Traces == ethereum.TracesAuto {
				// Recorded responses hold neither traces nor balances: auto
				// would find no way to read internal movements and stop.
				o.Traces = ethereum.TracesOff
				fmt.Fprintf(stderr, "not checked: internal value movements (recorded responses hold no traces; traces: auto is read as off for this replay)\n")
			}
		})
		if recorded {
			if n := es.WithoutSlotReads(); n > 0 {
				fmt.Fprintf(stderr, "not checked: the storage slots of %d Safe and contract wallets (recorded responses hold no state)\n", n)
			}
		}
		src = es
		if bc, ok := client.(ethereum.BalanceClient); ok {
			balances[ch.Name] = ethereum.NewBalances(bc, daemon.EthereumTokens(ch))
		}
	case "bitcoin":
		var code int
		var done func()
		src, rng, done, code = bitcoinReplay(ctx, cfg, ch, replay, files, from, to, log, stderr)
		if done != nil {
			defer done()
		}
		if code != 0 {
			return code
		}
		balances[ch.Name] = bitcoin.Balances{}
	default:
		fmt.Fprintf(stderr, "keywatch backtest: chain %s: kind %q cannot be replayed\n", ch.Name, ch.Kind)
		return 2
	}

	sum, err := replay.Run(ctx, src, rng)
	if err != nil {
		fmt.Fprintf(stderr, "keywatch backtest: %v\nreplayed before the error: %s\n", err, sum)
		return 1
	}
	fmt.Fprintf(stderr, "backtest of %s blocks %d..%d: %s; nothing was published\n", ch.Name, rng.From, rng.To, sum)
	return 0
}

func chainNames(cfg *config.Config) string {
	names := make([]string, len(cfg.Chains))
	for i, c := range cfg.Chains {
		names[i] = c.Name
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

func joinHeights(hs []uint64) string {
	s := make([]string, len(hs))
	for i, h := range hs {
		s[i] = strconv.FormatUint(h, 10)
	}
	return strings.Join(s, ", ")
}
