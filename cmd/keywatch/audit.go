package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/keywatch/keywatch/api"
	"github.com/keywatch/keywatch/audit"
	"github.com/keywatch/keywatch/audit/anchor"
	"github.com/keywatch/keywatch/config"
	"github.com/keywatch/keywatch/daemon"
)

const auditUsage = `Usage:
  keywatch audit verify -config FILE   check the chain in the store the configuration names,
                                       and against the heads anchored in its NATS server
  keywatch audit verify [-api URL]     the same through the API (an admin token in KEYWATCH_TOKEN)

Exit status 0: the chain is intact; 1: it is broken (the first entry altered
or removed is named) or could not be read.
`

func cmdAudit(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "verify" {
		fmt.Fprint(stderr, auditUsage)
		return 2
	}
	fs := flag.NewFlagSet("keywatch audit verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, auditUsage) }
	path := fs.String("config", "", "configuration file: read the store it names directly")
	client := apiFlags(fs)
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprint(stderr, auditUsage)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var rep audit.Report
	var err error
	if *path != "" {
		rep, err = verifyStore(ctx, *path)
	} else {
		rep, err = verifyAPI(ctx, client)
	}
	if err != nil {
		fmt.Fprintln(stderr, "keywatch audit verify:", err)
		return 1
	}
	fmt.Fprintln(stdout, rep.String())
	if !rep.OK {
		return 1
	}
	return 0
}

func verifyStore(ctx context.Context, path string) (audit.Report, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return audit.Report{}, err
	}
	if cfg.Store.Memory {
		return audit.Report{}, errors.New("the memory store lives inside the keywatch process: verify through its API (-api) instead")
	}
	st, err := daemon.OpenStore(ctx, cfg)
	if err != nil {
		return audit.Report{}, err
	}
	defer st.Close()
	return audit.New(st, audit.Options{Anchors: func(ctx context.Context) ([]audit.Anchor, error) {
		return readAnchors(ctx, cfg)
	}}).VerifyWithAnchors(ctx)
}

// readAnchors reads the anchored heads from the NATS server the
// configuration names (the daemon's, when it embeds one).
func readAnchors(ctx context.Context, cfg *config.Config) ([]audit.Anchor, error) {
	opts := []nats.Option{nats.Name("keywatch audit verify"), nats.Timeout(5 * time.Second)}
	if cfg.NATS.CredsFile != "" {
		opts = append(opts, nats.UserCredentials(cfg.NATS.CredsFile))
	}
	nc, err := nats.Connect(cfg.NATS.URL, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to NATS to read them: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	return anchor.Read(ctx, js)
}

// verifyAPI reads every entry through GET /v1/audit and checks the chain
// here, so the check does not rest on the server's word.
func verifyAPI(ctx context.Context, client func() (*api.Client, error)) (audit.Report, error) {
	c, err := client()
	if err != nil {
		return audit.Report{}, err
	}
	var entries []audit.Entry
	var head audit.Head
	after := int64(0)
	for first := true; ; first = false {
		var p audit.Page
		if err := c.Do(ctx, "GET", "/v1/audit?limit=1000&after="+strconv.FormatInt(after, 10), nil, &p); err != nil {
			return audit.Report{}, err
		}
		if first {
			head = p.Head
		}
		entries = append(entries, p.Entries...)
		if p.Next == 0 {
			break
		}
		after = p.Next
	}
	var anchors struct{ Anchors []audit.Anchor }
	aerr := c.Do(ctx, "GET", "/v1/audit/anchors", nil, &anchors)
	return audit.CheckAgainst(entries, head, anchors.Anchors, aerr), nil
}
