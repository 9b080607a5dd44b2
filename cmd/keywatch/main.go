// Command keywatch watches every key able to move a firm's crypto and raises
// the alarm when one is used to steal. See README.md for the commands.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/keywatch/keywatch/chains"
	"github.com/keywatch/keywatch/config"
	"github.com/keywatch/keywatch/daemon"
	"github.com/keywatch/keywatch/demo"
	"github.com/keywatch/keywatch/intents"
)

const usage = `keywatch watches the keys that can move a firm's crypto.

Usage:
  keywatch run   -config FILE   run the daemon (watchers, policies, alerts)
  keywatch check -config FILE   validate configuration, lists and policies
  keywatch demo  [-keep] [-pace 1s]  play the insider-theft story on embedded defaults
  keywatch backtest -config FILE -chain NAME [-from N -to M] [-files PATH ...]
                                replay blocks (from the node, recorded JSON-RPC
                                responses or raw Bitcoin blocks) through the policies; print the alerts
                                that would have fired as JSON lines; publish nothing
  keywatch policy test -config FILE CASES.yaml
                                run recorded events through the policies and compare
                                with the expected alerts; exit 1 on a difference
  keywatch lists import -format ofac-xml|ofac-csv|plain FILE...
                                normalise OFAC sanctions files into a list (CSV on stdout)
  keywatch silences add|list|expire  mute alerts for a while, over the API
  keywatch watchdog -config FILE [-name N] [-retire INSTANCE]
                                   page when keywatch's heartbeats or a chain's head go stale
  keywatch intents add  -config FILE -id ID -wallet W -to ADDR -asset A -amount N [-expires 24h]
  keywatch intents list -config FILE [-wallet W]
                                register or list approved withdrawals in the shared store
  keywatch holds list|show ID|approve ID|reject ID   treasury holds over the API (token in KEYWATCH_TOKEN)
  keywatch audit verify [-config FILE]               check the hash chain of the audit log

Run 'keywatch COMMAND -h' for a command's flags.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "run":
		return cmdRun(rest, stderr)
	case "check":
		return cmdCheck(rest, stdout, stderr)
	case "demo":
		return cmdDemo(rest, stdout, stderr)
	case "backtest":
		return cmdBacktest(rest, stdout, stderr)
	case "policy":
		return cmdPolicy(rest, stdout, stderr)
	case "lists":
		return cmdLists(rest, stdout, stderr)
	case "silences":
		return cmdSilences(rest, stdout, stderr)
	case "watchdog":
		return cmdWatchdog(rest, stderr)
	case "intents":
		return cmdIntents(rest, stdout, stderr)
	case "holds":
		return cmdHolds(rest, stdout, stderr)
	case "audit":
		return cmdAudit(rest, stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "keywatch: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
}

// logFlags adds -log-level and -log-format and returns a logger factory.
func logFlags(fs *flag.FlagSet) func(w io.Writer) (*slog.Logger, error) {
	level := fs.String("log-level", "info", "debug, info, warn or error")
	format := fs.String("log-format", "text", "text or json")
	return func(w io.Writer) (*slog.Logger, error) {
		var lv slog.Level
		if err := lv.UnmarshalText([]byte(*level)); err != nil {
			return nil, fmt.Errorf("-log-level: %q is not debug, info, warn or error", *level)
		}
		opts := &slog.HandlerOptions{Level: lv}
		switch *format {
		case "text":
			return slog.New(slog.NewTextHandler(w, opts)), nil
		case "json":
			return slog.New(slog.NewJSONHandler(w, opts)), nil
		}
		return nil, fmt.Errorf("-log-format: %q is not text or json", *format)
	}
}

func cmdRun(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("keywatch run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "configuration file (required)")
	newLogger := logFlags(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *path == "" {
		fmt.Fprintln(stderr, "keywatch run: -config FILE is required")
		return 2
	}
	log, err := newLogger(stderr)
	if err != nil {
		fmt.Fprintln(stderr, "keywatch run:", err)
		return 2
	}
	cfg, set, err := daemon.Load(*path)
	if err != nil {
		printProblems(stderr, err)
		fmt.Fprintln(stderr, "keywatch run: configuration has errors; nothing started")
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	d, err := daemon.New(ctx, cfg, set, daemon.Options{Logger: log})
	if err != nil {
		log.Error("cannot start", "err", err)
		return 1
	}
	defer d.Close()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		for range hup {
			_ = d.Reload(ctx) // the daemon logs the outcome and alerts on failure
		}
	}()
	if err := d.Run(ctx); err != nil {
		log.Error("keywatch stopped", "err", err)
		return 1
	}
	log.Info("keywatch stopped")
	return 0
}

func cmdCheck(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("keywatch check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "configuration file (required)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *path == "" {
		fmt.Fprintln(stderr, "keywatch check: -config FILE is required")
		return 2
	}
	cfg, set, err := daemon.Load(*path)
	if err != nil {
		n := printProblems(stderr, err)
		fmt.Fprintf(stderr, "keywatch check: %d problem%s\n", n, plural(n))
		return 1
	}
	addrs := 0
	for _, name := range set.Input().Lists.Names() {
		l, _ := set.Input().Lists.Get(name)
		addrs += l.Len()
	}
	fmt.Fprintf(stdout, "%s: OK (%d chains, %d wallets, %d policies, %d lists with %d addresses, %d sinks)\n",
		*path, len(cfg.Chains), len(cfg.Wallets), len(cfg.Policies), len(cfg.Lists), addrs, len(cfg.Alerts.Sinks))
	return 0
}

func cmdDemo(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("keywatch demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	keep := fs.Bool("keep", false, "keep running after the story (Ctrl-C to stop)")
	verbose := fs.Bool("v", false, "show keywatch's own logs")
	pace := fs.Duration("pace", time.Second, "pause before each scene of the story")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	level := slog.LevelError
	if *verbose {
		level = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := demo.Run(ctx, demo.Options{Out: stdout, Logger: log, Keep: *keep, Pace: *pace}); err != nil {
		fmt.Fprintln(stderr, "keywatch demo:", err)
		return 1
	}
	return 0
}

// printProblems prints every configuration problem on its own line and
// returns how many there were.
func printProblems(w io.Writer, err error) int {
	var errs config.Errors
	if errors.As(err, &errs) {
		for _, e := range errs {
			fmt.Fprintln(w, e.Error())
		}
		return len(errs)
	}
	fmt.Fprintln(w, strings.TrimSpace(err.Error()))
	return 1
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// cmdIntents registers and lists approved withdrawals in the configured
// store, where every keywatch instance reconciles outflows against them.
func cmdIntents(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || (args[0] != "add" && args[0] != "list") {
		fmt.Fprintln(stderr, "keywatch intents: want add or list")
		return 2
	}
	sub := args[0]
	fs := flag.NewFlagSet("keywatch intents "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "configuration file (required)")
	id := fs.String("id", "", "the withdrawal's request id (add)")
	wallet := fs.String("wallet", "", "the wallet that pays (add; filters list)")
	to := fs.String("to", "", "the destination address (add)")
	asset := fs.String("asset", "", "the asset symbol, e.g. USDC or ETH (add)")
	amount := fs.String("amount", "", "the amount in asset units, e.g. 25000 (add)")
	expires := fs.Duration("expires", 0, "how long the approval stays usable (add; default: the policy's window)")
	by := fs.String("requested-by", "", "who asked for the withdrawal (add)")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if *path == "" {
		fmt.Fprintf(stderr, "keywatch intents %s: -config FILE is required\n", sub)
		return 2
	}
	cfg, err := config.Load(*path)
	if err != nil {
		printProblems(stderr, err)
		return 1
	}
	if cfg.Store.Memory {
		fmt.Fprintf(stderr, "keywatch intents %s: %s uses the memory store, which lives inside the running keywatch: register approved withdrawals there with an intents: file instead\n", sub, *path)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	st, err := daemon.OpenStore(ctx, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "keywatch intents %s: %v\n", sub, err)
		return 1
	}
	defer st.Close()
	reg := intents.New(st, nil)
	if sub == "list" {
		enc := json.NewEncoder(stdout)
		for _, w := range cfg.Wallets {
			if *wallet != "" && w.Name != *wallet {
				continue
			}
			ins, err := reg.List(ctx, w.Chain, w.Name)
			if err != nil {
				fmt.Fprintf(stderr, "keywatch intents list: %v\n", err)
				return 1
			}
			for _, in := range ins {
				enc.Encode(in)
			}
		}
		return 0
	}
	var problems []string
	w, ok := cfg.Wallet(*wallet)
	if !ok {
		problems = append(problems, fmt.Sprintf("-wallet: no wallet named %q in %s", *wallet, *path))
	}
	if *id == "" {
		problems = append(problems, "-id: required")
	}
	dest := *to
	if ok {
		ch, _ := cfg.Chain(w.Chain)
		if dest, err = intents.Destination(strings.TrimSpace(*to), ch); err != nil {
			problems = append(problems, "-to: "+err.Error())
		}
	}
	if *asset == "" {
		problems = append(problems, "-asset: required")
	}
	amt, err := chains.ParseAmount(*amount)
	if err != nil {
		problems = append(problems, "-amount: "+err.Error())
	}
	if len(problems) > 0 {
		for _, p := range problems {
			fmt.Fprintln(stderr, "keywatch intents add:", p)
		}
		return 2
	}
	in := intents.Intent{ID: *id, Chain: w.Chain, Wallet: w.Name, To: dest, Asset: *asset, Amount: amt, RequestedBy: *by, Source: "cli"}
	if *expires > 0 {
		in.ExpiresAt = time.Now().Add(*expires).UTC()
	}
	if err := reg.Register(ctx, in); err != nil {
		fmt.Fprintf(stderr, "keywatch intents add: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "registered intent %s: %s pays %s %s to %s\n", in.ID, in.Wallet, in.Amount, in.Asset, chains.NormaliseAddress(in.To))
	return 0
}
