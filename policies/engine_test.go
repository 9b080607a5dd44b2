package policies_test

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/keywatch/keywatch/alertmodel"
	"github.com/keywatch/keywatch/chains"
	"github.com/keywatch/keywatch/config"
	"github.com/keywatch/keywatch/hops"
	"github.com/keywatch/keywatch/intents"
	"github.com/keywatch/keywatch/internal/testenv"
	"github.com/keywatch/keywatch/policies"
	"github.com/keywatch/keywatch/policies/lists"
	"github.com/keywatch/keywatch/store/memory"
)

// Addresses used in events.
const (
	treasuryHot = "0xe78fb7ab2018c13deefbb58e4c822b1062755b96"
	decoy       = "0xc41219a07980ac2675923eb9c076082b4b35791d"
	lazarus     = "0x08723392ed15743cc38513c4925f5e6be5c17243" // on sanctioned.csv, line 3
	tornado1ETH = "0x47ce0c6ed5b0ce3d3a51fdb1c52dc66a7c3c2936" // on mixers.csv, line 4
	vendor      = "0xb374907d35f61de043bedb18ee35f7228c83c3e4" // address book only
	stranger    = "0x00000000000000000000000000000000deadbeef"
	devDeployer = "0x66d4e1366afe153f811e5ad4f0d37a2335273d14"
	vaultProxy  = "0x3333333333333333333333333333333333333333"
	coldStore   = "0x5555555555555555555555555555555555555555"
)

var observedAt = time.Date(2026, 3, 2, 10, 30, 0, 0, time.UTC)

func noEnv(string) (string, bool) { return "", false }

// errorLines returns each reported problem as the user reads it.
func errorLines(t *testing.T, err error) []string {
	t.Helper()
	if err == nil {
		return nil
	}
	var es config.Errors
	if !errors.As(err, &es) {
		t.Fatalf("error is %T, not config.Errors: %v", err, err)
	}
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.Error()
	}
	return out
}

// loadSet builds the policy set of a configuration file and its lists.
func loadSet(t testing.TB, path string) (*config.Config, *policies.Set) {
	t.Helper()
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	ls, err := lists.Load(cfg)
	if err != nil {
		t.Fatalf("lists: %v", err)
	}
	set, err := policies.Build(cfg, ls)
	if err != nil {
		t.Fatalf("policies: %v", err)
	}
	return cfg, set
}

// head is testdata/keywatch.yaml without its policies; tests append theirs.
func head(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile("testdata/keywatch.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i := strings.Index(s, "policies:\n")
	if i < 0 {
		t.Fatal("testdata/keywatch.yaml has no policies")
	}
	return s[:i]
}

// buildPolicies builds the given policies section over testdata's wallets
// and lists. The file is named testdata/policies.yaml in messages.
func buildPolicies(t testing.TB, section string) (*policies.Set, error) {
	t.Helper()
	cfg, err := config.Parse("testdata/policies.yaml", []byte(head(t)+section), noEnv)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	ls, err := lists.Load(cfg)
	if err != nil {
		t.Fatalf("lists: %v", err)
	}
	return policies.Build(cfg, ls)
}

func mustBuild(t testing.TB, section string) *policies.Set {
	t.Helper()
	set, err := buildPolicies(t, section)
	if err != nil {
		t.Fatalf("policies: %v", err)
	}
	return set
}

// amount reads a decimal such as "1000.500001" as a quantity of an asset
// with the given decimals.
func amount(t testing.TB, s string, decimals int) chains.Amount {
	t.Helper()
	a, err := chains.ParseAmount(s)
	if err != nil {
		t.Fatal(err)
	}
	if a.Decimals > decimals {
		t.Fatalf("%s has more than %d decimals", s, decimals)
	}
	u := new(big.Int).Mul(a.Units, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(decimals-a.Decimals)), nil))
	return chains.NewAmount(u, decimals)
}

// event describes one movement in a test's own words.
type event struct {
	id           string // default eth:0xt1:0
	kind         chains.Kind
	dir          chains.Direction
	wallet       string // treasury-hot, dev-deployer or decoy
	counterparty string
	asset        string // ETH (default) or USDC
	amount       string // in asset units; default 1
	usd          float64
	status       chains.Status
	initiator    string // default: the wallet's address
	at           time.Time
	detail       map[string]string
}

func (e event) build(t testing.TB) chains.Event {
	t.Helper()
	if e.id == "" {
		e.id = "eth:0xt1:0"
	}
	if e.kind == "" {
		e.kind = chains.KindTransfer
	}
	if e.dir == "" {
		e.dir = chains.Out
	}
	if e.wallet == "" {
		e.wallet = "treasury-hot"
	}
	if e.asset == "" {
		e.asset = "ETH"
	}
	if e.amount == "" {
		e.amount = "1"
	}
	if e.status == "" {
		e.status = chains.StatusConfirmed
	}
	roles := map[string]string{"treasury-hot": "hot", "dev-deployer": "employee-key", "decoy": "honeytoken", "vault-proxy": "contract", "cold-store": "cold"}
	addrs := map[string]string{"treasury-hot": treasuryHot, "dev-deployer": devDeployer, "decoy": decoy, "vault-proxy": vaultProxy, "cold-store": coldStore}
	role, ok := roles[e.wallet]
	if strings.HasPrefix(e.wallet, "0x") {
		// An address keywatch follows after funds reached it.
		role, ok = chains.RoleFollowed, true
		addrs[e.wallet] = e.wallet
	}
	if !ok {
		t.Fatalf("no wallet %s", e.wallet)
	}
	if e.at.IsZero() {
		e.at = observedAt.Add(-time.Minute)
	}
	initiator := addrs[e.wallet]
	if e.initiator != "" {
		initiator = e.initiator
	}
	decimals, token := 18, ""
	if e.asset == "USDC" {
		decimals, token = 6, "0xca7fabb8e22bc919bb3fbcb488edd1e96c298f1d"
	}
	parts := strings.Split(e.id, ":")
	ev := chains.Event{
		ID: e.id, Chain: parts[0], Tx: parts[1], Block: 100, BlockHash: "0xb100",
		Time: e.at, Status: e.status, Kind: e.kind, Direction: e.dir,
		Wallet: e.wallet, WalletRole: role, Counterparty: e.counterparty, Initiator: initiator,
		Asset: e.asset, Token: token, Amount: amount(t, e.amount, decimals), USD: e.usd, Detail: e.detail,
	}
	if e.wallet == "dev-deployer" {
		ev.Owner = "kim@firm.example"
	}
	ev.From, ev.To = addrs[e.wallet], e.counterparty
	if e.dir == chains.In {
		ev.From, ev.To = e.counterparty, addrs[e.wallet]
	}
	return ev
}

// newEngine makes an engine with a fixed clock and the given store.
func newEngine(set *policies.Set, st *memory.Store, notify policies.NotifyFunc) *policies.Engine {
	opts := policies.Options{
		Now:    func() time.Time { return observedAt.In(time.FixedZone("EST", -5*3600)) },
		Notify: notify,
	}
	if st != nil {
		opts.Store, opts.Intents, opts.Hops = st, intents.New(st, opts.Now), hops.New(st)
	}
	return policies.New(set, opts)
}

// fired summarises alerts as "policy: reason | reason".
func fired(as []alertmodel.Alert) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.Policy + ": " + strings.Join(a.Reasons, " | ")
	}
	return out
}

func checkFired(t *testing.T, got []alertmodel.Alert, want []string) {
	t.Helper()
	if g := fired(got); strings.Join(g, "\n") != strings.Join(want, "\n") {
		t.Errorf("alerts:\n got: %s\nwant: %s", strings.Join(g, "\n      "), strings.Join(want, "\n      "))
	}
}

func TestBuildErrors(t *testing.T) {
	line := strings.Count(head(t), "\n") + 2 // the first policy's line
	tests := []struct {
		name   string
		policy string
		want   []string // each formatted with the policy's line
	}{
		{
			name:   "unknown detector",
			policy: `{name: p, detector: list-mtach, lists: [mixers], severity: high}`,
			want:   []string{`testdata/policies.yaml:%d:25: policies[0].detector: unknown detector "list-mtach" (want one of admin-change, approval, delegatecall, drain, forwarding, honeytoken, list-match, new-counterparty, off-hours, safe-hash, structuring, threshold, unapproved-outflow, velocity)`},
		},
		{
			name:   "no detector",
			policy: `{name: p, severity: high}`,
			want:   []string{`testdata/policies.yaml:%d:5: policies[0].detector: required (one of admin-change, approval, delegatecall, drain, forwarding, honeytoken, list-match, new-counterparty, off-hours, safe-hash, structuring, threshold, unapproved-outflow, velocity), or a when: expression`},
		},
		{
			name:   "unknown list",
			policy: `{name: p, detector: list-match, lists: [mixers, pep], severity: high}`,
			want:   []string{`testdata/policies.yaml:%d:53: policies[0].lists[1]: no list named "pep" under lists:`},
		},
		{
			name:   "list-match without lists",
			policy: `{name: p, detector: list-match, severity: high}`,
			want:   []string{`testdata/policies.yaml:%d:5: policies[0].lists: required: the lists whose addresses this policy matches`},
		},
		{
			name:   "bad severity",
			policy: `{name: p, detector: honeytoken, severity: urgent}`,
			want:   []string{`testdata/policies.yaml:%d:47: policies[0].severity: unknown severity "urgent" (want critical, high, medium, low or info)`},
		},
		{
			name:   "no severity",
			policy: `{name: p, detector: honeytoken}`,
			want:   []string{`testdata/policies.yaml:%d:5: policies[0].severity: required: critical, high, medium, low or info`},
		},
		{
			name:   "bad action",
			policy: `{name: p, detector: honeytoken, severity: high, actions: [page, email]}`,
			want:   []string{`testdata/policies.yaml:%d:69: policies[0].actions[1]: unknown action "email" (want alert, page or hold)`},
		},
		{
			name:   "threshold without parameters",
			policy: `{name: p, detector: threshold, severity: high}`,
			want:   []string{`testdata/policies.yaml:%d:5: policies[0]: threshold needs usd_over, or amount_over with asset`},
		},
		{
			name:   "amount_over without asset",
			policy: `{name: p, detector: threshold, amount_over: "5000", severity: high}`,
			want:   []string{`testdata/policies.yaml:%d:5: policies[0].asset: required with amount_over (amounts of different assets do not compare)`},
		},
		{
			name:   "amount_over not a number",
			policy: `{name: p, detector: threshold, amount_over: lots, asset: USDC, severity: high}`,
			want:   []string{`testdata/policies.yaml:%d:49: policies[0].amount_over: amount "lots" is not a decimal number`},
		},
		{
			name:   "usd_over and amount_over",
			policy: `{name: p, detector: threshold, usd_over: 10, amount_over: "5", asset: USDC, severity: high}`,
			want:   []string{`testdata/policies.yaml:%d:63: policies[0].amount_over: set usd_over or amount_over, not both`},
		},
		{
			name:   "negative usd_over",
			policy: `{name: p, detector: threshold, usd_over: -1, severity: high}`,
			want:   []string{`testdata/policies.yaml:%d:46: policies[0].usd_over: must not be negative`},
		},
		{
			name:   "bad direction",
			policy: `{name: p, detector: threshold, usd_over: 10, direction: both, severity: high}`,
			want:   []string{`testdata/policies.yaml:%d:61: policies[0].direction: unknown direction "both" (want in, out or any)`},
		},
		{
			name:   "when: an unknown field, with its position in the expression",
			policy: `{name: usdt, when: 'event.asset == "USDT" && event.wallet_rol == "hot"', severity: medium}`,
			want: []string{"testdata/policies.yaml:%d:24: policies[0].when: policy usdt: expression does not type-check at line 1, column 31: undefined field 'wallet_rol'\n" +
				`    | event.asset == "USDT" && event.wallet_rol == "hot"` + "\n" +
				"    | ..............................^"},
		},
		{
			name:   "when: a syntax error",
			policy: `{name: p, when: 'event.usd > ', severity: medium}`,
			want: []string{"testdata/policies.yaml:%d:21: policies[0].when: policy p: expression does not type-check at line 1, column 13: Syntax error: mismatched input '<EOF>' expecting {'[', '{', '(', '.', '-', '!', 'true', 'false', 'null', NUM_FLOAT, NUM_INT, NUM_UINT, STRING, BYTES, IDENTIFIER}\n" +
				"    | event.usd > \n" +
				"    | ............^"},
		},
		{
			name:   "when: types that do not compare",
			policy: `{name: p, when: 'event.usd > "100"', severity: medium}`,
			want: []string{"testdata/policies.yaml:%d:21: policies[0].when: policy p: expression does not type-check at line 1, column 11: found no matching overload for '_>_' applied to '(double, string)'\n" +
				`    | event.usd > "100"` + "\n" +
				"    | ..........^"},
		},
		{
			name:   "when: not a bool",
			policy: `{name: p, when: 'event.asset', severity: medium}`,
			want:   []string{"testdata/policies.yaml:%d:21: policies[0].when: policy p: expression gives string, want a bool (true fires the policy)"},
		},
		{
			name:   "when: an unknown list",
			policy: `{name: p, when: 'lists.mixers.contains(event.counterparty) || lists.pep.contains(event.counterparty)', severity: high}`,
			want: []string{"testdata/policies.yaml:%d:21: policies[0].when: policy p: expression names list \"pep\" at line 1, column 51, which is not defined under lists:\n" +
				"    | lists.mixers.contains(event.counterparty) || lists.pep.contains(event.counterparty)\n" +
				"    | ..................................................^"},
		},
		{
			name:   "when beside a detector is checked too",
			policy: `{name: p, detector: honeytoken, when: 'event.direction == out', severity: medium}`,
			want: []string{"testdata/policies.yaml:%d:43: policies[0].when: policy p: expression does not type-check at line 1, column 20: undeclared reference to 'out'\n" +
				"    | event.direction == out\n" +
				"    | ...................^"},
		},
		{
			name:   "a parameter the detector does not read",
			policy: `{name: p, detector: honeytoken, usd_over: 10, severity: medium}`,
			want:   []string{"testdata/policies.yaml:%d:47: policies[0].usd_over: detector honeytoken does not use usd_over (its parameters: none)"},
		},
		{
			name:   "a parameter beside a rule with no detector",
			policy: `{name: p, when: 'event.usd > 10.0', window: 1h, severity: medium}`,
			want:   []string{"testdata/policies.yaml:%d:49: policies[0].window: a policy with only a when: rule takes no detector parameters (window is one)"},
		},
		{
			name:   "several mistakes in one policy",
			policy: `{name: p, detector: threshold, severity: severe, actions: [call]}`,
			want: []string{
				`testdata/policies.yaml:%d:46: policies[0].severity: unknown severity "severe" (want critical, high, medium, low or info)`,
				`testdata/policies.yaml:%d:64: policies[0].actions[0]: unknown action "call" (want alert, page or hold)`,
				`testdata/policies.yaml:%d:5: policies[0]: threshold needs usd_over, or amount_over with asset`,
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			set, err := buildPolicies(t, "policies:\n  - "+tc.policy+"\n")
			if set != nil {
				t.Error("Build returned a set along with errors")
			}
			want := make([]string, len(tc.want))
			for i, w := range tc.want {
				want[i] = fmt.Sprintf(w, line)
			}
			if got := errorLines(t, err); strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("errors:\n got: %s\nwant: %s", strings.Join(got, "\n      "), strings.Join(want, "\n      "))
			}
		})
	}
}

func TestBuildReportsEveryPolicy(t *testing.T) {
	_, err := buildPolicies(t, `policies:
  - {name: a, detector: honeytoken, severity: critical}
  - {name: b, detector: nope, severity: high}
  - {name: c, detector: list-match, lists: [pep], severity: high}
  - {name: d, detector: threshold, amount_over: "1"}
`)
	line := strings.Count(head(t), "\n") + 2
	want := []string{
		fmt.Sprintf(`testdata/policies.yaml:%d:25: policies[1].detector: unknown detector "nope" (want one of admin-change, approval, delegatecall, drain, forwarding, honeytoken, list-match, new-counterparty, off-hours, safe-hash, structuring, threshold, unapproved-outflow, velocity)`, line+1),
		fmt.Sprintf(`testdata/policies.yaml:%d:45: policies[2].lists[0]: no list named "pep" under lists:`, line+2),
		fmt.Sprintf(`testdata/policies.yaml:%d:5: policies[3].severity: required: critical, high, medium, low or info`, line+3),
		fmt.Sprintf(`testdata/policies.yaml:%d:5: policies[3].asset: required with amount_over (amounts of different assets do not compare)`, line+3),
	}
	if got := errorLines(t, err); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("errors:\n got: %s\nwant: %s", strings.Join(got, "\n      "), strings.Join(want, "\n      "))
	}
}

func TestEngineEvaluatesInOrder(t *testing.T) {
	_, set := loadSet(t, "testdata/keywatch.yaml")
	e := newEngine(set, nil, nil)
	// The decoy pays 50 ETH ($150,000) into Tornado Cash: three policies fire.
	ev := event{id: "eth:0xabc:3", wallet: "decoy", counterparty: tornado1ETH, amount: "50", usd: 150000}.build(t)
	as, err := e.Evaluate(context.Background(), &ev)
	if err != nil {
		t.Fatal(err)
	}
	checkFired(t, as, []string{
		"mixer-counterparty: counterparty " + tornado1ETH + " is on list mixers (Tornado Cash 1 ETH pool; source tornadocash/tornado-cli; mixers.csv:4)",
		"big-outflow: outflow of 50 ETH (150,000.00 USD) is over the threshold of 100,000.00 USD",
		"decoy-touched: wallet decoy is a honeytoken: no one should use it, so its key has leaked (transfer out 50 ETH to " + tornado1ETH + ")",
	})
	want := []struct {
		id       string
		severity alertmodel.Severity
		actions  string
	}{
		{"eth:0xabc:3:mixer-counterparty", alertmodel.Critical, "page,hold"},
		{"eth:0xabc:3:big-outflow", alertmodel.High, "page"},
		{"eth:0xabc:3:decoy-touched", alertmodel.Critical, "page,hold"},
	}
	if len(as) != len(want) {
		t.Fatalf("%d alerts, want %d", len(as), len(want))
	}
	for i, w := range want {
		a := as[i]
		var acts []string
		for _, x := range a.Actions {
			acts = append(acts, string(x))
		}
		if a.ID != w.id || a.Severity != w.severity || strings.Join(acts, ",") != w.actions {
			t.Errorf("alert %d = %s %s %v, want %s %s %s", i, a.ID, a.Severity, acts, w.id, w.severity, w.actions)
		}
		if a.Status != alertmodel.Firing || a.Chain != "eth" || a.Wallet != "decoy" || a.Event.ID != ev.ID || a.Event.Status != chains.StatusConfirmed {
			t.Errorf("alert %d = status %s chain %s wallet %s event %s/%s", i, a.Status, a.Chain, a.Wallet, a.Event.ID, a.Event.Status)
		}
		if !a.ObservedAt.Equal(observedAt) || a.ObservedAt.Location() != time.UTC {
			t.Errorf("alert %d observed_at = %v, want %v in UTC (from the injected clock)", i, a.ObservedAt, observedAt)
		}
	}
}

func TestEngineDefaultActionIsAlert(t *testing.T) {
	set := mustBuild(t, "policies:\n  - {name: decoy-touched, detector: honeytoken, severity: info}\n")
	ev := event{wallet: "decoy", dir: chains.In, counterparty: stranger}.build(t)
	as, err := newEngine(set, nil, nil).Evaluate(context.Background(), &ev)
	if err != nil {
		t.Fatal(err)
	}
	if len(as) != 1 || len(as[0].Actions) != 1 || as[0].Actions[0] != alertmodel.ActionAlert || as[0].Severity != alertmodel.Info {
		t.Errorf("alerts = %+v, want one info alert with the action alert", as)
	}
}

func TestEngineFiltersByChainAndRole(t *testing.T) {
	set := mustBuild(t, `policies:
  - {name: hot-only, detector: threshold, usd_over: 10, roles: [hot], severity: low}
  - {name: eth-only, detector: threshold, usd_over: 10, chains: [eth], severity: low}
  - {name: employee-only, detector: threshold, usd_over: 10, roles: [employee-key], severity: low}
`)
	e := newEngine(set, nil, nil)
	ev := event{wallet: "treasury-hot", counterparty: stranger, usd: 3000}.build(t)
	as, err := e.Evaluate(context.Background(), &ev)
	if err != nil {
		t.Fatal(err)
	}
	got := fired(as)
	for i := range got {
		got[i], _, _ = strings.Cut(got[i], ":")
	}
	if strings.Join(got, ",") != "hot-only,eth-only" {
		t.Errorf("fired %v, want hot-only and eth-only", got)
	}
	ev.Chain = "base"
	if as, _ := e.Evaluate(context.Background(), &ev); len(as) != 1 || as[0].Policy != "hot-only" {
		t.Errorf("on another chain fired %v, want hot-only alone", fired(as))
	}
}

func TestEngineResolvesRetractedEvents(t *testing.T) {
	ctx := context.Background()
	_, set := loadSet(t, "testdata/keywatch.yaml")
	st := memory.New()
	t.Cleanup(func() { st.Close() })
	e := newEngine(set, st, nil)

	hit := event{id: "eth:0xaaa:1", wallet: "treasury-hot", counterparty: lazarus, amount: "40", usd: 120000, status: chains.StatusPending}.build(t)
	quiet := event{id: "eth:0xbbb:2", wallet: "treasury-hot", counterparty: vendor, amount: "1", usd: 3000}.build(t)
	other := event{id: "eth:0xccc:0", wallet: "decoy", counterparty: stranger, dir: chains.In}.build(t)

	// Pending, then confirmed: the same two alerts each time.
	for _, status := range []chains.Status{chains.StatusPending, chains.StatusConfirmed} {
		ev := hit.WithStatus(status)
		as, err := e.Evaluate(ctx, &ev)
		if err != nil {
			t.Fatal(err)
		}
		if got := fired(as); len(got) != 2 {
			t.Fatalf("%s: fired %v, want sanctioned-counterparty and big-outflow", status, got)
		}
	}
	for _, ev := range []chains.Event{quiet, other} {
		if _, err := e.Evaluate(ctx, &ev); err != nil {
			t.Fatal(err)
		}
	}

	tests := []struct {
		name string
		ev   chains.Event
		want []string // alert ids resolved
	}{
		{"an event that fired two alerts", hit, []string{"eth:0xaaa:1:big-outflow", "eth:0xaaa:1:sanctioned-counterparty"}},
		{"an event that fired nothing", quiet, nil},
		{"an event never seen", event{id: "eth:0xddd:9", counterparty: lazarus}.build(t), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ev := tc.ev.WithStatus(chains.StatusRetracted)
			ev.BlockHash = "0xorphan"
			as, err := e.Evaluate(ctx, &ev)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, a := range as {
				ids = append(ids, a.ID)
				if a.Status != alertmodel.Resolved {
					t.Errorf("%s: status %s, want resolved", a.ID, a.Status)
				}
				if a.Event.Status != chains.StatusRetracted {
					t.Errorf("%s: event status %s, want retracted", a.ID, a.Event.Status)
				}
				if last := a.Reasons[len(a.Reasons)-1]; last != "event retracted: block 100 (0xorphan) left the chain" {
					t.Errorf("%s: last reason %q", a.ID, last)
				}
				if len(a.Reasons) != 2 {
					t.Errorf("%s: reasons %q, want the original reason and the retraction", a.ID, a.Reasons)
				}
				if !a.ObservedAt.Equal(observedAt) {
					t.Errorf("%s: observed_at %v", a.ID, a.ObservedAt)
				}
			}
			if strings.Join(ids, ",") != strings.Join(tc.want, ",") {
				t.Errorf("resolved %v, want %v", ids, tc.want)
			}
		})
	}

	// The resolution keeps what the alerts said: severity, actions, reason.
	ev := hit.WithStatus(chains.StatusRetracted)
	as, err := e.Evaluate(ctx, &ev)
	if err != nil {
		t.Fatal(err)
	}
	if len(as) != 2 || as[1].Policy != "sanctioned-counterparty" || as[1].Severity != alertmodel.Critical ||
		!strings.HasPrefix(as[1].Reasons[0], "counterparty "+lazarus+" is on list sanctioned (Lazarus Group (SDN 27307; DPRK3); source OFAC SDN; sanctioned.csv:3)") {
		t.Errorf("resolved alerts = %v", fired(as))
	}
}

func TestEngineWithoutStoreCannotResolve(t *testing.T) {
	_, set := loadSet(t, "testdata/keywatch.yaml")
	e := newEngine(set, nil, nil)
	ev := event{counterparty: lazarus}.build(t)
	if as, _ := e.Evaluate(context.Background(), &ev); len(as) != 1 {
		t.Fatalf("fired %v", fired(as))
	}
	ev.Status = chains.StatusRetracted
	if as, err := e.Evaluate(context.Background(), &ev); err != nil || len(as) != 0 {
		t.Errorf("retraction without a store = %v, %v; want nothing", fired(as), err)
	}
}

// failing is a detector that cannot decide.
type failing struct{ err error }

func (d failing) Detect(context.Context, *chains.Event, *policies.Input) (policies.Finding, error) {
	return policies.Finding{}, d.err
}

func TestEngineFailsClosed(t *testing.T) {
	tests := []struct {
		name string
		set  func(t *testing.T) *policies.Set
		want []string
	}{
		{
			name: "detector error",
			set: func(t *testing.T) *policies.Set {
				set := mustBuild(t, "policies:\n  - {name: decoy-touched, detector: honeytoken, severity: critical}\n")
				set.Policies = append(set.Policies, &policies.Policy{
					Name: "price-feed", Severity: alertmodel.High, Actions: []alertmodel.Action{alertmodel.ActionPage},
					Detector: failing{errors.New("price feed unreachable")},
				})
				return set
			},
			want: []string{"price-feed: policy price-feed could not decide (price feed unreachable): raised to be safe"},
		},
		{
			name: "list not loaded",
			set: func(t *testing.T) *policies.Set {
				cfg, err := config.Parse("testdata/policies.yaml", []byte(head(t)+"policies:\n  - {name: mixer-counterparty, detector: list-match, lists: [mixers], severity: critical}\n"), noEnv)
				if err != nil {
					t.Fatal(err)
				}
				set, err := policies.Build(cfg, nil)
				if err != nil {
					t.Fatal(err)
				}
				return set
			},
			want: []string{"mixer-counterparty: policy mixer-counterparty could not decide (list mixers is not loaded): raised to be safe"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			e := policies.New(tc.set(t), policies.Options{Now: func() time.Time { return observedAt }, Registerer: reg})
			ev := event{counterparty: stranger, usd: 1}.build(t)
			as, err := e.Evaluate(context.Background(), &ev)
			if err != nil {
				t.Fatal(err)
			}
			checkFired(t, as, tc.want)
			if len(as) == 1 && as[0].Severity == "" {
				t.Error("alert raised without a severity")
			}
			policy, _, _ := strings.Cut(tc.want[0], ":")
			if got := counter(t, reg, "keywatch_policy_failures_total", "policy", policy); got != 1 {
				t.Errorf("keywatch_policy_failures_total{policy=%q} = %v, want 1", policy, got)
			}
		})
	}
}

// counter reads one labelled counter from a registry.
func counter(t *testing.T, reg *prometheus.Registry, name, label, value string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == label && lp.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

func TestProcessNotifies(t *testing.T) {
	_, set := loadSet(t, "testdata/keywatch.yaml")
	errDown := errors.New("outbox unavailable")
	events := []chains.Event{
		event{id: "eth:0x01:0", counterparty: vendor, usd: 3000}.build(t),
		event{id: "eth:0x02:0", counterparty: tornado1ETH, usd: 3000}.build(t),
		event{id: "eth:0x03:0", wallet: "decoy", dir: chains.In, counterparty: stranger}.build(t),
	}

	var calls [][]string
	down := true
	notify := func(_ context.Context, as ...alertmodel.Alert) error {
		var ids []string
		for _, a := range as {
			ids = append(ids, a.ID)
		}
		calls = append(calls, ids)
		if down {
			return errDown
		}
		return nil
	}
	st := memory.New()
	t.Cleanup(func() { st.Close() })
	e := newEngine(set, st, notify)

	// Notify fails: Process stops at the first alert and says so.
	err := e.Process(context.Background(), events)
	if !errors.Is(err, errDown) || !strings.Contains(err.Error(), "eth:0x02:0") {
		t.Errorf("Process = %v, want the notify error naming event eth:0x02:0", err)
	}
	if fmt.Sprint(calls) != "[[eth:0x02:0:mixer-counterparty]]" {
		t.Errorf("notify calls %v", calls)
	}

	// The caller retries the same events: nothing is lost.
	down, calls = false, nil
	if err := e.Process(context.Background(), events); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(calls) != "[[eth:0x02:0:mixer-counterparty] [eth:0x03:0:decoy-touched]]" {
		t.Errorf("notify calls after retry %v", calls)
	}

	// Events that fire nothing do not call Notify.
	calls = nil
	if err := e.Process(context.Background(), events[:1]); err != nil || len(calls) != 0 {
		t.Errorf("Process of a quiet event = %v with calls %v", err, calls)
	}
}

func TestReload(t *testing.T) {
	_, set := loadSet(t, "testdata/keywatch.yaml")
	e := newEngine(set, nil, nil)
	ev := event{counterparty: tornado1ETH}.build(t)
	if as, _ := e.Evaluate(context.Background(), &ev); len(as) != 1 {
		t.Fatalf("before reload fired %v", fired(as))
	}
	next := mustBuild(t, "policies:\n  - {name: big-outflow, detector: threshold, usd_over: 1, severity: high}\n")
	e.Reload(next)
	if e.Set() != next {
		t.Error("Set() is not the reloaded set")
	}
	ev.USD = 3000
	if as, _ := e.Evaluate(context.Background(), &ev); len(as) != 1 || as[0].Policy != "big-outflow" {
		t.Errorf("after reload fired %v, want big-outflow alone", fired(as))
	}
}

// Benchmarks: events through the demo's policies with lists of benchSize
// addresses each, beside one bare map lookup in a map of the same size.

const benchSize = 10000

func benchAddress(list string, i int) string {
	return fmt.Sprintf("0x%08x%032x", len(list), i)
}

func writeBenchLists(b *testing.B) string {
	b.Helper()
	dir := b.TempDir()
	for _, name := range []string{"sanctioned", "mixers"} {
		var s strings.Builder
		s.WriteString("chain,address,label,source\n")
		for i := 0; i < benchSize; i++ {
			// Upper-case hex, as checksummed lists mix cases: lookups fold.
			fmt.Fprintf(&s, "ethereum,0x%s,%s %d,bench\n", strings.ToUpper(benchAddress(name, i)[2:]), name, i)
		}
		if err := os.WriteFile(filepath.Join(dir, name+".csv"), []byte(s.String()), 0o600); err != nil {
			b.Fatal(err)
		}
	}
	return dir
}

func BenchmarkEvaluate(b *testing.B) {
	dir := writeBenchLists(b)
	doc := strings.Replace(head(b), "lists:\n  sanctioned: [lists/sanctioned.csv]\n  mixers: [lists/mixers.csv]\n  address_book: [lists/address-book.csv]\n",
		fmt.Sprintf("lists:\n  sanctioned: [%q]\n  mixers: [%q]\n", filepath.Join(dir, "sanctioned.csv"), filepath.Join(dir, "mixers.csv")), 1)
	doc += `policies:
  - {name: sanctioned-counterparty, detector: list-match, lists: [sanctioned], severity: critical, actions: [page, hold]}
  - {name: mixer-counterparty, detector: list-match, lists: [mixers], severity: critical, actions: [page, hold]}
  - {name: big-outflow, detector: threshold, usd_over: 100000, severity: high, actions: [page]}
  - {name: decoy-touched, detector: honeytoken, severity: critical, actions: [page, hold]}
`
	cfg, err := config.Parse("bench.yaml", []byte(doc), noEnv)
	if err != nil {
		b.Fatal(err)
	}
	ls, err := lists.Load(cfg)
	if err != nil {
		b.Fatal(err)
	}
	for _, name := range []string{"sanctioned", "mixers"} {
		if l, _ := ls.Get(name); l.Len() != benchSize {
			b.Fatalf("list %s has %d entries, want %d", name, l.Len(), benchSize)
		}
	}
	set, err := policies.Build(cfg, ls)
	if err != nil {
		b.Fatal(err)
	}
	e := policies.New(set, policies.Options{Now: func() time.Time { return observedAt }})
	// The everyday case: an outflow under the threshold to an address on no
	// list, so every policy runs and none fires.
	ev := event{counterparty: stranger, amount: "1", usd: 3000}.build(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		as, err := e.Evaluate(ctx, &ev)
		if err != nil || len(as) != 0 {
			b.Fatalf("Evaluate = %v, %v", fired(as), err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkEvaluateRuleListMiss runs one when: rule that looks an EVM
// address up on a list that does not have it (the everyday answer).
func BenchmarkEvaluateRuleListMiss(b *testing.B) {
	set := mustBuild(b, `policies:
  - {name: big-to-unknown, when: '!lists.address_book.contains(event.counterparty) && event.usd > 1000000.0', severity: high}
`)
	e := policies.New(set, policies.Options{Now: func() time.Time { return observedAt }})
	ev := event{counterparty: stranger, usd: 3000}.build(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		as, err := e.Evaluate(ctx, &ev)
		if err != nil || len(as) != 0 {
			b.Fatalf("Evaluate = %v, %v", fired(as), err)
		}
	}
}

var mapSink bool

func BenchmarkMapLookup(b *testing.B) {
	m := make(map[string]struct{}, benchSize)
	for i := 0; i < benchSize; i++ {
		m[benchAddress("mixers", i)] = struct{}{}
	}
	if len(m) != benchSize {
		b.Fatalf("map has %d entries", len(m))
	}
	addr := stranger
	b.ReportAllocs()
	for b.Loop() {
		_, ok := m[addr]
		mapSink = ok
	}
	if mapSink {
		b.Fatal("stranger found in the map")
	}
}

// BenchmarkEvaluateDefaultPolicies runs the example configuration's whole
// policy set (every detector and two rules) with every EVM address of the
// OFAC SDN list loaded beside the configuration's sanctions list, on the
// everyday event: an approved payment to a vendor in the address book, under
// every threshold, so every policy runs and none fires. State lives in the
// memory store; the drain detector's balance comes from a fixed reader (the
// node's round trip is not the engine's cost).
func BenchmarkEvaluateDefaultPolicies(b *testing.B) {
	ofac := testenv.Data(b, "ofac/evm_union_lowercase_2025-11-19.txt")
	// The example's sinks name their secrets in the environment; they are
	// not used here.
	b.Setenv("PD_ROUTING_KEY", "R0123456789abcdef0123456789abcdef")
	b.Setenv("SLACK_WEBHOOK_URL", "https://hooks.slack.com/services/T000/B000/XXXX")
	b.Setenv("SOC_HMAC_SECRET", "an-hmac-secret-of-some-length")
	cfg, err := config.Load("../configs/keywatch.example.yaml")
	if err != nil {
		b.Fatal(err)
	}
	cfg.Lists["sanctioned"] = append(cfg.Lists["sanctioned"], ofac)
	ls, err := lists.Load(cfg)
	if err != nil {
		b.Fatal(err)
	}
	set, err := policies.Build(cfg, ls)
	if err != nil {
		b.Fatal(err)
	}
	sanctioned, _ := ls.Get("sanctioned")
	st := memory.New()
	b.Cleanup(func() { st.Close() })
	clock := func() time.Time { return observedAt }
	e := policies.New(set, policies.Options{Store: st, Now: clock, Intents: intents.New(st, clock), Hops: hops.New(st),
		Balances: map[string]policies.BalanceReader{"eth": balances{held: map[string]string{"treasury-hot": "10000000"}}}})
	ctx := context.Background()
	a, _ := chains.ParseAmount("1000")
	if err := intents.New(st, clock).Register(ctx, intents.Intent{ID: "w-1", Chain: "eth", Wallet: "treasury-hot", To: vendor, Asset: "USDC", Amount: a}); err != nil {
		b.Fatal(err)
	}
	ny, _ := time.LoadLocation("America/New_York")
	ev := chains.Event{ID: "eth:0xbench:0", Chain: "eth", Tx: "0xbench", Block: 100, BlockHash: "0xb100",
		Time: time.Date(2026, 3, 3, 11, 0, 0, 0, ny), Status: chains.StatusConfirmed, Kind: chains.KindTransfer, Direction: chains.Out,
		Wallet: "treasury-hot", WalletRole: "hot", From: "0x1111111111111111111111111111111111111111", To: vendor, Counterparty: vendor,
		Initiator: "0x1111111111111111111111111111111111111111", Asset: "USDC", Token: "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48",
		Amount: chains.NewAmount(big.NewInt(1_000_000_000), 6), USD: 1000}
	b.ReportAllocs()
	for b.Loop() {
		as, err := e.Evaluate(ctx, &ev)
		if err != nil || len(as) != 0 {
			b.Fatalf("Evaluate = %v, %v", fired(as), err)
		}
	}
	if ev.Intent != "w-1" {
		b.Fatalf("the payment matched intent %q, want w-1", ev.Intent)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(len(set.Policies)), "policies")
	b.ReportMetric(float64(sanctioned.Len()), "sanctioned_addresses")
}
