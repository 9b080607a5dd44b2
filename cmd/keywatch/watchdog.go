package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"os/user"
	"regexp"
	"syscall"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/keywatch/keywatch/alerts"
	"github.com/keywatch/keywatch/daemon"
	"github.com/keywatch/keywatch/store/memory"
	"github.com/keywatch/keywatch/watchdog"
)

func cmdWatchdog(args []string, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return runWatchdog(ctx, args, stderr)
}

var instanceNameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]*$`)

// runWatchdog is `keywatch watchdog`: a process apart from the instances it
// watches, paging through the configured sinks when their heartbeats stop,
// a chain's head goes stale or NATS itself goes away.
func runWatchdog(ctx context.Context, args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("keywatch watchdog", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "configuration file (required): NATS, sinks and heartbeat settings are read from it")
	host, _ := os.Hostname()
	name := fs.String("name", "watchdog-"+host, "this watchdog's name in heartbeats")
	retire := fs.String("retire", "", "take instance NAME out of service (its silence then pages no one) and exit")
	newLogger := logFlags(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *path == "" {
		fmt.Fprintln(stderr, "keywatch watchdog: -config FILE is required")
		return 2
	}
	if !instanceNameRe.MatchString(*name) {
		fmt.Fprintf(stderr, "keywatch watchdog: -name %q: use letters, digits, - and _\n", *name)
		return 2
	}
	log, err := newLogger(stderr)
	if err != nil {
		fmt.Fprintln(stderr, "keywatch watchdog:", err)
		return 2
	}
	cfg, _, err := daemon.Load(*path)
	if err != nil {
		printProblems(stderr, err)
		fmt.Fprintln(stderr, "keywatch watchdog: configuration has errors; not started")
		return 1
	}
	built, errs := daemon.BuildSinks(cfg, log)
	if len(errs) > 0 {
		printProblems(stderr, errs)
		return 1
	}
	if len(built) == 0 {
		fmt.Fprintln(stderr, "keywatch watchdog: the configuration names no sink to page through (alerts.sinks)")
		return 1
	}
	nc, err := alerts.Connect(cfg.NATS.URL, cfg.NATS.CredsFile, "keywatch "+*name, log)
	if err != nil {
		log.Error("cannot start", "err", err)
		return 1
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		log.Error("cannot start", "err", err)
		return 1
	}
	prefix := cfg.NATS.SubjectPrefix

	if *retire != "" {
		by := *name
		if u, err := user.Current(); err == nil {
			by = u.Username + "@" + host
		}
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := watchdog.Retire(rctx, js, prefix, *retire, by, time.Now()); err != nil {
			fmt.Fprintln(stderr, "keywatch watchdog: retire:", err)
			return 1
		}
		fmt.Fprintf(stderr, "instance %s retired by %s: its silence pages no one; its next heartbeat puts it back in service\n", *retire, by)
		return 0
	}

	var sinks []watchdog.Sink
	for _, s := range built {
		sinks = append(sinks, watchdog.Sink{Name: s.Name, Notifier: s.Notifier, Route: s.Route, Timeout: s.Config.Timeout.D()})
	}
	hb := cfg.Alerts.Heartbeat
	relay := &watchdog.Relay{JS: js, Prefix: prefix, Sinks: sinks, Logger: log.With("part", "relay"),
		Stream: alerts.StreamConfig(prefix, cfg.NATS.DuplicateWindow.D(), cfg.NATS.MaxAge.D())}
	// The watchdog keeps its state in memory: it must not depend on the
	// store an insider could stop along with the instances.
	mon := watchdog.NewMonitor(watchdog.MonitorOptions{JS: js, Prefix: prefix, Self: *name, Timeout: hb.Timeout.D(),
		Expect: hb.Expect, Raise: relay.Raise, Store: memory.New(), Logger: log.With("part", "monitor")})
	relay.Alive = mon.Alive
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = watchdog.Beat(ctx, watchdog.BeatOptions{JS: js, Prefix: prefix, Instance: *name, Role: watchdog.RoleWatchdog,
			Interval: hb.Interval.D(), Logger: log.With("part", "heartbeat")})
	}()
	log.Info("watchdog running", "name", *name, "nats", nc.ConnectedUrlRedacted(), "sinks", len(sinks), "timeout", hb.Timeout.D())
	_ = mon.Run(ctx)
	<-done
	relay.Wait()
	log.Info("watchdog stopped")
	return 0
}
