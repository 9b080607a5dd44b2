package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net/url"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/keywatch/keywatch/api"
	"github.com/keywatch/keywatch/holds"
)

const holdsUsage = `Usage:
  keywatch holds list [-status held|approved|rejected|expired|all] [-json]
  keywatch holds show ID [-json]
  keywatch holds approve ID [-comment TEXT]
  keywatch holds reject ID [-comment TEXT]

The API token is read from KEYWATCH_TOKEN (never printed); the API address
from -api or KEYWATCH_API (default http://127.0.0.1:8080).
`

// apiFlags adds -api (default $KEYWATCH_API, else http://127.0.0.1:8080) and
// returns a function that makes the API client with the token in
// $KEYWATCH_TOKEN. Every command that talks to the API uses it.
func apiFlags(fs *flag.FlagSet) func() (*api.Client, error) {
	def := os.Getenv("KEYWATCH_API")
	if def == "" {
		def = "http://127.0.0.1:8080"
	}
	addr := fs.String("api", def, "keywatch API address (env KEYWATCH_API)")
	return func() (*api.Client, error) {
		tok := strings.TrimSpace(os.Getenv("KEYWATCH_TOKEN"))
		if tok == "" {
			return nil, errors.New("KEYWATCH_TOKEN is not set: set KEYWATCH_TOKEN to your API token")
		}
		return api.NewClient(*addr, tok)
	}
}

// parseInterleaved parses flags that may come before or after the
// positional arguments ("approve ID -comment x").
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func cmdHolds(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "help" || args[0] == "--help" {
		fmt.Fprint(stderr, holdsUsage)
		return 2
	}
	sub, rest := args[0], args[1:]
	fs := flag.NewFlagSet("keywatch holds "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, holdsUsage) }
	client := apiFlags(fs)
	status := fs.String("status", "held", "list holds with this status, or all")
	asJSON := fs.Bool("json", false, "print the API's JSON")
	comment := fs.String("comment", "", "comment kept with the decision in the audit log")
	pos, err := parseInterleaved(fs, rest)
	if err != nil {
		return 2
	}
	fail := func(err error) int {
		fmt.Fprintf(stderr, "keywatch holds %s: %v\n", sub, err)
		return 1
	}
	want := 1
	if sub == "list" {
		want = 0
	}
	switch sub {
	case "list", "show", "approve", "reject":
	default:
		fmt.Fprintf(stderr, "keywatch holds: unknown subcommand %q\n\n%s", sub, holdsUsage)
		return 2
	}
	if len(pos) != want {
		if want == 0 {
			fmt.Fprintf(stderr, "keywatch holds %s takes no arguments\n", sub)
		} else {
			fmt.Fprintf(stderr, "keywatch holds %s: give one hold ID\n", sub)
		}
		return 2
	}
	c, err := client()
	if err != nil {
		return fail(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	switch sub {
	case "list":
		q := url.Values{}
		if *status != "all" {
			q.Set("status", *status)
		}
		var out struct {
			Holds []holds.Hold `json:"holds"`
		}
		if err := c.Do(ctx, "GET", "/v1/holds?"+q.Encode(), nil, &out); err != nil {
			return fail(err)
		}
		if *asJSON {
			return printJSON(stdout, out)
		}
		if len(out.Holds) == 0 {
			if *status == "all" {
				fmt.Fprintln(stdout, "no holds")
			} else {
				fmt.Fprintf(stdout, "no %s holds\n", *status)
			}
			return 0
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tSTATUS\tWALLET\tAPPROVALS\tCREATED\tEXPIRES\tREASON")
		for _, h := range out.Holds {
			reason := ""
			if len(h.Reasons) > 0 {
				reason = h.Reasons[0]
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d/%d\t%s\t%s\t%s\n", h.ID, h.Status, h.Wallet, len(h.Approvals), h.ApprovalsRequired,
				h.CreatedAt.Format(time.RFC3339), h.ExpiresAt.Format(time.RFC3339), clip(reason, 100))
		}
		tw.Flush()
		return 0
	case "show":
		var h holds.Hold
		if err := c.Do(ctx, "GET", "/v1/holds/"+url.PathEscape(pos[0]), nil, &h); err != nil {
			return fail(err)
		}
		if *asJSON {
			return printJSON(stdout, h)
		}
		printHold(stdout, &h)
		return 0
	case "approve":
		var a holds.Answer
		if err := c.Do(ctx, "POST", "/v1/holds/"+url.PathEscape(pos[0])+"/approve", map[string]string{"comment": *comment}, &a); err != nil {
			return fail(err)
		}
		switch {
		case a.Released:
			fmt.Fprintf(stdout, "hold %s approved: %d of %d approvals, the quorum is complete and the hold is released\n", a.ID, len(a.Approvals), a.ApprovalsRequired)
		case a.Counted:
			fmt.Fprintf(stdout, "hold %s: your approval is counted, %d of %d approvals; still %s\n", a.ID, len(a.Approvals), a.ApprovalsRequired, a.Status)
		default:
			fmt.Fprintf(stdout, "hold %s: you had approved it already (it counts once), %d of %d approvals; %s\n", a.ID, len(a.Approvals), a.ApprovalsRequired, a.Status)
		}
		return 0
	default: // reject
		var h holds.Hold
		if err := c.Do(ctx, "POST", "/v1/holds/"+url.PathEscape(pos[0])+"/reject", map[string]string{"comment": *comment}, &h); err != nil {
			return fail(err)
		}
		fmt.Fprintf(stdout, "hold %s rejected: it is ended", h.ID)
		if len(h.Wallets) > 0 {
			fmt.Fprintf(stdout, "; %s stay frozen", strings.Join(h.Wallets, ", "))
		}
		fmt.Fprintln(stdout)
		return 0
	}
}

func printHold(w io.Writer, h *holds.Hold) {
	fmt.Fprintf(w, "hold %s: %s (%d of %d approvals)\n", h.ID, h.Status, len(h.Approvals), h.ApprovalsRequired)
	fmt.Fprintf(w, "  source:       %s\n", h.Source)
	fmt.Fprintf(w, "  wallet:       %s on %s\n", h.Wallet, h.Chain)
	if len(h.Wallets) > 0 {
		fmt.Fprintf(w, "  frozen keys:  %s\n", strings.Join(h.Wallets, ", "))
	}
	if len(h.Owners) > 0 {
		fmt.Fprintf(w, "  owners:       %s (may not approve)\n", strings.Join(h.Owners, ", "))
	}
	if h.RequestID != "" {
		fmt.Fprintf(w, "  request:      %s by %s\n", h.RequestID, h.RequestedBy)
	}
	if r := h.Request; r != nil {
		fmt.Fprintf(w, "  withdrawal:   %s %s to %s (%.2f USD)\n", r.Amount, r.Asset, r.To, r.USD)
	}
	fmt.Fprintf(w, "  created:      %s\n  expires:      %s\n", h.CreatedAt.Format(time.RFC3339), h.ExpiresAt.Format(time.RFC3339))
	fmt.Fprintln(w, "  reasons:")
	for _, r := range h.Reasons {
		fmt.Fprintf(w, "    - %s\n", r)
	}
	if len(h.Alerts) > 0 {
		fmt.Fprintln(w, "  evidence:")
	}
	for _, a := range h.Alerts {
		ev := a.Event
		fmt.Fprintf(w, "    %s %s (%s, event %s): %s %s %s %s from %s to %s\n", a.Severity, a.Policy, a.Status, ev.Status,
			ev.Kind, ev.Direction, ev.Amount, ev.Asset, ev.From, ev.To)
		if ev.Tx != "" {
			link := h.Links[ev.Tx]
			if link == "" {
				link = ev.Tx
			}
			fmt.Fprintf(w, "      tx %s (block %d)\n", link, ev.Block)
		}
		for _, k := range slices.Sorted(maps.Keys(ev.Detail)) {
			fmt.Fprintf(w, "      %s: %s\n", k, ev.Detail[k])
		}
	}
	for _, addr := range slices.Sorted(maps.Keys(h.Labels)) {
		fmt.Fprintf(w, "  listed: %s: %s\n", addr, strings.Join(h.Labels[addr], "; "))
	}
	for _, a := range h.Approvals {
		fmt.Fprintf(w, "  approved by %s at %s", a.By, a.At.Format(time.RFC3339))
		if a.Comment != "" {
			fmt.Fprintf(w, ": %s", a.Comment)
		}
		fmt.Fprintln(w)
	}
	if r := h.Rejection; r != nil {
		fmt.Fprintf(w, "  rejected by %s at %s", r.By, r.At.Format(time.RFC3339))
		if r.Comment != "" {
			fmt.Fprintf(w, ": %s", r.Comment)
		}
		fmt.Fprintln(w)
	}
}

func printJSON(w io.Writer, v any) int {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return 1
	}
	return 0
}

func clip(s string, n int) string {
	if len([]rune(s)) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}
