package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/keywatch/keywatch/alerts/silences"
	"github.com/keywatch/keywatch/api"
)

const silencesUsage = `Usage:
  keywatch silences add -for 2h -comment TEXT [-chain C] [-wallet W] [-role R] [-policy P]
  keywatch silences list [-all] [-json]
  keywatch silences expire ID

A silence mutes the notifications of the alerts it matches until it ends;
policies still fire and holds still freeze. Creating and expiring need a
token with the operator role, listing the viewer role.

Every subcommand takes -api URL (default $KEYWATCH_API, else
http://127.0.0.1:8080) and reads the token from $KEYWATCH_TOKEN.
`

func cmdSilences(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, silencesUsage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	sub, rest := args[0], args[1:]
	fs := flag.NewFlagSet("keywatch silences "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	client := apiFlags(fs)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	fail := func(err error) int {
		fmt.Fprintf(stderr, "keywatch silences %s: %v\n", sub, err)
		return 1
	}
	switch sub {
	case "add":
		var m silences.Matchers
		fs.StringVar(&m.Chain, "chain", "", "mute alerts of this chain")
		fs.StringVar(&m.Wallet, "wallet", "", "mute alerts of this wallet")
		fs.StringVar(&m.Role, "role", "", "mute alerts of wallets with this role")
		fs.StringVar(&m.Policy, "policy", "", "mute alerts of this policy")
		dur := fs.Duration("for", 0, "how long the silence lasts (required, e.g. 30m, 2h)")
		comment := fs.String("comment", "", "why these alerts may be muted (required)")
		if err := fs.Parse(rest); err != nil {
			return 2
		}
		if fs.NArg() > 0 {
			fmt.Fprintf(stderr, "keywatch silences add: unexpected argument %q\n", fs.Arg(0))
			return 2
		}
		c, err := client()
		if err != nil {
			return fail(err)
		}
		req := silences.Request{Matchers: m, Comment: *comment}
		if *dur != 0 {
			req.Duration = dur.String()
		}
		var sil silences.Silence
		if err := c.Do(ctx, "POST", "/v1/silences", req, &sil); err != nil {
			return fail(flagNames(err))
		}
		fmt.Fprintf(stdout, "silence %s created by %s: mutes %s until %s\n", sil.ID, sil.CreatedBy, sil.Matchers, sil.EndsAt.UTC().Format(time.RFC3339))
		return 0
	case "list":
		all := fs.Bool("all", false, "include silences that ended")
		asJSON := fs.Bool("json", false, "print JSON")
		if err := fs.Parse(rest); err != nil {
			return 2
		}
		c, err := client()
		if err != nil {
			return fail(err)
		}
		var list silences.List
		path := "/v1/silences"
		if *all {
			path += "?all=true"
		}
		if err := c.Do(ctx, "GET", path, nil, &list); err != nil {
			return fail(err)
		}
		if *asJSON {
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			_ = enc.Encode(list)
			return 0
		}
		if len(list.Silences) == 0 {
			fmt.Fprintln(stdout, "no silences")
			return 0
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tSTATE\tMATCHERS\tENDS\tBY\tCOMMENT")
		for _, s := range list.Silences {
			by := s.CreatedBy
			if s.ExpiredBy != "" {
				by += " (expired by " + s.ExpiredBy + ")"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", s.ID, s.State, s.Matchers, s.EndsAt.UTC().Format(time.RFC3339), by, s.Comment)
		}
		_ = tw.Flush()
		return 0
	case "expire":
		if err := fs.Parse(rest); err != nil {
			return 2
		}
		if fs.NArg() != 1 {
			fmt.Fprintln(stderr, "keywatch silences expire: give the silence's ID")
			return 2
		}
		c, err := client()
		if err != nil {
			return fail(err)
		}
		var sil silences.Silence
		if err := c.Do(ctx, "POST", "/v1/silences/"+url.PathEscape(fs.Arg(0))+"/expire", nil, &sil); err != nil {
			return fail(err)
		}
		fmt.Fprintf(stdout, "silence %s expired by %s; alerts matching %s are sent again\n", sil.ID, sil.ExpiredBy, sil.Matchers)
		return 0
	}
	fmt.Fprintf(stderr, "keywatch silences: unknown subcommand %q\n\n%s", sub, silencesUsage)
	return 2
}

// flagNames says which flag a request field came from.
func flagNames(err error) error {
	se, ok := err.(*api.StatusError)
	if !ok || se.Body.Field == "" {
		return err
	}
	flagOf := map[string]string{"duration": "-for", "comment": "-comment", "matchers": "-chain, -wallet, -role or -policy",
		"matchers.chain": "-chain", "matchers.wallet": "-wallet", "matchers.role": "-role", "matchers.policy": "-policy"}
	if f, ok := flagOf[se.Body.Field]; ok {
		return fmt.Errorf("%s: %s", f, strings.TrimSpace(se.Body.Error))
	}
	return err
}
