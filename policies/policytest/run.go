package policytest

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/keywatch/keywatch/alertmodel"
	"github.com/keywatch/keywatch/chains"
	"github.com/keywatch/keywatch/hops"
	"github.com/keywatch/keywatch/intents"
	"github.com/keywatch/keywatch/policies"
	"github.com/keywatch/keywatch/store/memory"
)

// Got is an alert a case raised, with the (1-based) event that raised it.
type Got struct {
	Alert alertmodel.Alert
	Event int
}

// Result is one case's outcome.
type Result struct {
	Case  *Case
	Got   []Got
	Diffs []string // empty when the case passed
	Err   error    // the case could not run (a store error, say)
}

// Passed reports whether the alerts were the ones expected.
func (r Result) Passed() bool { return r.Err == nil && len(r.Diffs) == 0 }

// Report is the outcome of a cases file.
type Report struct {
	File    *File
	Results []Result
}

// Failed counts the cases that did not pass.
func (r *Report) Failed() int {
	n := 0
	for _, res := range r.Results {
		if !res.Passed() {
			n++
		}
	}
	return n
}

// Run runs every case against the policy set, each with a fresh engine and
// memory store, its clock at each event's time.
func Run(ctx context.Context, set *policies.Set, f *File) *Report {
	rep := &Report{File: f}
	for i := range f.Cases {
		rep.Results = append(rep.Results, runCase(ctx, set, f.intents, &f.Cases[i]))
	}
	return rep
}

func runCase(ctx context.Context, set *policies.Set, fromFiles []intents.Intent, c *Case) Result {
	res := Result{Case: c}
	st := memory.New()
	defer st.Close()
	now := c.start
	clock := func() time.Time { return now }
	reg := intents.New(st, clock)
	// The configuration's intents files, as the daemon registers them at
	// start; then the case's own.
	for _, in := range fromFiles {
		in.CreatedAt = c.start
		if err := reg.Register(ctx, in); err != nil {
			res.Err = fmt.Errorf("intent %s of the intents files: %w", in.ID, err)
			return res
		}
	}
	for _, in := range c.Intents {
		amount, _ := chains.ParseAmount(in.Amount)
		it := intents.Intent{ID: in.ID, Chain: walletChain(set, in.Wallet), Wallet: in.Wallet, To: in.To, Asset: in.Asset, Amount: amount, Source: "file", CreatedAt: c.start}
		if it.Asset == "" {
			it.Asset = nativeSymbol(set, it.Chain)
		}
		if in.ExpiresAt != "" {
			it.ExpiresAt, _ = time.Parse(time.RFC3339, in.ExpiresAt)
		}
		if err := reg.Register(ctx, it); err != nil {
			res.Err = fmt.Errorf("intent %s: %w", in.ID, err)
			return res
		}
	}
	current := 0
	balances := caseBalances(c.balances)
	byChain := map[string]policies.BalanceReader{}
	for name := range set.Input().Chains {
		byChain[name] = balances
	}
	engine := policies.New(set, policies.Options{
		Store:    st,
		Intents:  reg,
		Hops:     hops.New(st),
		Balances: byChain,
		Now:      clock,
		Notify: func(_ context.Context, as ...alertmodel.Alert) error {
			for _, a := range as {
				res.Got = append(res.Got, Got{Alert: a, Event: current})
			}
			return nil
		},
	})
	for i := range c.events {
		ev := c.events[i]
		current, now = i+1, ev.Time
		if err := engine.Process(ctx, []chains.Event{ev}); err != nil {
			res.Err = fmt.Errorf("event %d (%s): %w", i+1, ev.ID, err)
			return res
		}
	}
	res.Diffs = compare(c, res.Got)
	return res
}

// caseBalances answers the drain detector from the events' balance_before.
type caseBalances map[string]chains.Amount

func (b caseBalances) BalanceBefore(_ context.Context, ev *chains.Event) (chains.Amount, error) {
	a, ok := b[ev.ID]
	if !ok {
		return chains.Amount{}, fmt.Errorf("the case gives no balance_before for event %s", ev.ID)
	}
	return a, nil
}

func walletChain(set *policies.Set, wallet string) string {
	return set.Input().Wallets[wallet].Chain
}

func nativeSymbol(set *policies.Set, chain string) string {
	return set.Input().Chains[chain].NativeSymbol
}

// compare pairs expected alerts with the alerts raised and describes every
// difference: an expected alert that did not come, one that came different,
// one that was not expected.
func compare(c *Case, got []Got) []string {
	used := make([]bool, len(got))
	var diffs []string
	for _, x := range c.Expect {
		// A full match first, else the closest: same policy (and event).
		best, bestProblems := -1, []string(nil)
		for i, g := range got {
			if used[i] || g.Alert.Policy != x.Policy || (x.Event != 0 && g.Event != x.Event) {
				continue
			}
			problems := mismatch(x, g)
			if len(problems) == 0 {
				best, bestProblems = i, nil
				break
			}
			if best < 0 {
				best, bestProblems = i, problems
			}
		}
		switch {
		case best < 0:
			diffs = append(diffs, fmt.Sprintf("missing:    %s (expected at line %d)", describeExpect(x), x.line))
		case len(bestProblems) > 0:
			used[best] = true
			diffs = append(diffs, fmt.Sprintf("different:  %s on event %d: %s (expected at line %d)\n              reasons: %s",
				x.Policy, got[best].Event, strings.Join(bestProblems, "; "), x.line, quoteAll(got[best].Alert.Reasons)))
		default:
			used[best] = true
		}
	}
	for i, g := range got {
		if used[i] {
			continue
		}
		diffs = append(diffs, fmt.Sprintf("unexpected: %s %s %s on event %d (%s)\n              reasons: %s",
			g.Alert.Policy, g.Alert.Severity, g.Alert.Status, g.Event, g.Alert.Event.ID, quoteAll(g.Alert.Reasons)))
	}
	return diffs
}

// mismatch lists how an alert differs from an expectation of its policy.
func mismatch(x Expect, g Got) []string {
	var out []string
	if x.Severity != "" && string(g.Alert.Severity) != x.Severity {
		out = append(out, fmt.Sprintf("severity: want %s, got %s", x.Severity, g.Alert.Severity))
	}
	if string(g.Alert.Status) != x.Status {
		out = append(out, fmt.Sprintf("status: want %s, got %s", x.Status, g.Alert.Status))
	}
	for _, want := range x.Reasons {
		found := false
		for _, r := range g.Alert.Reasons {
			if strings.Contains(r, want) {
				found = true
				break
			}
		}
		if !found {
			out = append(out, fmt.Sprintf("no reason contains %q", want))
		}
	}
	return out
}

func describeExpect(x Expect) string {
	s := x.Policy
	if x.Severity != "" {
		s += " " + x.Severity
	}
	s += " " + x.Status
	if x.Event != 0 {
		s += fmt.Sprintf(" on event %d", x.Event)
	}
	for _, r := range x.Reasons {
		s += fmt.Sprintf(" with a reason containing %q", r)
	}
	return s
}

func quoteAll(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = fmt.Sprintf("%q", s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// Write prints the report: one line per case ("ok" or "FAIL" with its
// differences), then a summary line.
func (r *Report) Write(w io.Writer) {
	name := filepath.Base(r.File.path)
	for _, res := range r.Results {
		switch {
		case res.Err != nil:
			fmt.Fprintf(w, "FAIL  %s (%s:%d)\n      could not run: %v\n", res.Case.Name, name, res.Case.line, res.Err)
		case len(res.Diffs) > 0:
			fmt.Fprintf(w, "FAIL  %s (%s:%d)\n", res.Case.Name, name, res.Case.line)
			for _, d := range res.Diffs {
				fmt.Fprintf(w, "      %s\n", d)
			}
		default:
			fmt.Fprintf(w, "ok    %s (%d alert%s)\n", res.Case.Name, len(res.Got), plural(len(res.Got)))
		}
	}
	failed := r.Failed()
	fmt.Fprintf(w, "%d case%s: %d passed, %d failed\n", len(r.Results), plural(len(r.Results)), len(r.Results)-failed, failed)
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
