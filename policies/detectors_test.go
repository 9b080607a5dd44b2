package policies_test

import (
	"context"
	"testing"

	"github.com/keywatch/keywatch/chains"
)

// evaluate runs one event through a policy set built from section and
// returns what fired.
func evaluate(t *testing.T, section string, e event) []string {
	t.Helper()
	set := mustBuild(t, section)
	ev := e.build(t)
	as, err := newEngine(set, nil, nil).Evaluate(context.Background(), &ev)
	if err != nil {
		t.Fatalf("Evaluate: %v", err)
	}
	return fired(as)
}

type detectorCase struct {
	name string
	ev   event
	want []string // "policy: reasons"; nil when nothing fires
}

func runCases(t *testing.T, section string, tests []detectorCase) {
	t.Helper()
	set := mustBuild(t, section)
	e := newEngine(set, nil, nil)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ev := tc.ev.build(t)
			as, err := e.Evaluate(context.Background(), &ev)
			if err != nil {
				t.Fatalf("Evaluate: %v", err)
			}
			checkFired(t, as, tc.want)
		})
	}
}

func TestListMatch(t *testing.T) {
	const section = `policies:
  - {name: sanctioned-counterparty, detector: list-match, lists: [sanctioned], severity: critical, actions: [page, hold]}
  - {name: watched, detector: list-match, lists: [mixers, address_book], severity: low}
`
	const (
		// As the lists write them (checksummed) and as events carry them.
		lazarusChecksummed = "0x08723392Ed15743cc38513C4925f5e6be5c17243"
		roninLowercase     = "0x098b716b8aaf21512996dc57eb0615e2383e2f96" // lowercase on the list
		roninChecksummed   = "0x098B716B8Aaf21512996dC57EB0615e2383E2f96"
		lazarusReason      = "is on list sanctioned (Lazarus Group (SDN 27307; DPRK3); source OFAC SDN; sanctioned.csv:3)"
	)
	runCases(t, section, []detectorCase{
		{
			name: "outflow to a sanctioned address",
			ev:   event{counterparty: lazarus},
			want: []string{"sanctioned-counterparty: counterparty " + lazarus + " " + lazarusReason},
		},
		{
			name: "event in checksummed form",
			ev:   event{counterparty: lazarusChecksummed},
			want: []string{"sanctioned-counterparty: counterparty " + lazarusChecksummed + " " + lazarusReason},
		},
		{
			name: "list in lowercase, event checksummed",
			ev:   event{counterparty: roninChecksummed},
			want: []string{"sanctioned-counterparty: counterparty " + roninChecksummed + " is on list sanctioned (Lazarus Group (Ronin bridge); source OFAC SDN; sanctioned.csv:4)"},
		},
		{
			name: "inflow from a sanctioned address",
			ev:   event{dir: chains.In, counterparty: roninLowercase},
			want: []string{"sanctioned-counterparty: counterparty " + roninLowercase + " is on list sanctioned (Lazarus Group (Ronin bridge); source OFAC SDN; sanctioned.csv:4)"},
		},
		{
			name: "approval to a sanctioned spender",
			ev:   event{kind: chains.KindApproval, counterparty: lazarus, asset: "USDC", amount: "1000000"},
			want: []string{"sanctioned-counterparty: counterparty " + lazarus + " " + lazarusReason},
		},
		{
			name: "admin event naming a sanctioned address",
			ev:   event{kind: chains.KindAdmin, counterparty: lazarus, amount: "0"},
		},
		{
			name: "address on no list",
			ev:   event{counterparty: stranger},
		},
		{
			name: "several lists on one policy: the one that holds it is named",
			ev:   event{counterparty: vendor},
			want: []string{"watched: counterparty " + vendor + " is on list address_book (Acme Hosting (vendor); source treasury address book; address-book.csv:2)"},
		},
		{
			name: "a mixer",
			ev:   event{counterparty: tornado1ETH, wallet: "dev-deployer"},
			want: []string{"watched: counterparty " + tornado1ETH + " is on list mixers (Tornado Cash 1 ETH pool; source tornadocash/tornado-cli; mixers.csv:4)"},
		},
	})
}

func TestListMatchDirection(t *testing.T) {
	const section = `policies:
  - {name: outflows-to-mixers, detector: list-match, lists: [mixers], direction: out, severity: critical}
`
	runCases(t, section, []detectorCase{
		{"outflow", event{counterparty: tornado1ETH}, []string{"outflows-to-mixers: counterparty " + tornado1ETH + " is on list mixers (Tornado Cash 1 ETH pool; source tornadocash/tornado-cli; mixers.csv:4)"}},
		{"inflow is left out", event{dir: chains.In, counterparty: tornado1ETH}, nil},
	})
}

func TestThreshold(t *testing.T) {
	const section = `policies:
  - {name: big-outflow, detector: threshold, usd_over: 100000, severity: high}
  - {name: big-usdc-outflow, detector: threshold, amount_over: "1000.5", asset: USDC, severity: medium}
`
	runCases(t, section, []detectorCase{
		{name: "just under", ev: event{counterparty: stranger, amount: "33.33333", usd: 99999.99}},
		{name: "equal: over is strict", ev: event{counterparty: stranger, amount: "33.333333333333333333", usd: 100000}},
		{
			name: "just over",
			ev:   event{counterparty: stranger, amount: "33.33334", usd: 100000.01},
			want: []string{"big-outflow: outflow of 33.33334 ETH (100,000.01 USD) is over the threshold of 100,000.00 USD"},
		},
		{
			name: "far over",
			ev:   event{counterparty: stranger, amount: "300", usd: 900000},
			want: []string{"big-outflow: outflow of 300 ETH (900,000.00 USD) is over the threshold of 100,000.00 USD"},
		},
		{name: "inflow ignored by default", ev: event{dir: chains.In, counterparty: stranger, amount: "300", usd: 900000}},
		{name: "approval ignored", ev: event{kind: chains.KindApproval, counterparty: stranger, asset: "USDC", amount: "5000000", usd: 5000000}},
		{name: "USDC amount under", ev: event{counterparty: stranger, asset: "USDC", amount: "1000.499999", usd: 1000.5}},
		{name: "USDC amount equal", ev: event{counterparty: stranger, asset: "USDC", amount: "1000.5", usd: 1000.5}},
		{
			name: "USDC amount over by one base unit (6 decimals against 1 in the rule)",
			ev:   event{counterparty: stranger, asset: "USDC", amount: "1000.500001", usd: 1000.5},
			want: []string{"big-usdc-outflow: outflow of 1000.500001 USDC is over the threshold of 1000.5 USDC"},
		},
		{name: "same amount of another asset", ev: event{counterparty: stranger, asset: "ETH", amount: "1000.500001", usd: 99999}},
		{
			name: "both rules",
			ev:   event{counterparty: stranger, asset: "USDC", amount: "250000", usd: 250000},
			want: []string{
				"big-outflow: outflow of 250000 USDC (250,000.00 USD) is over the threshold of 100,000.00 USD",
				"big-usdc-outflow: outflow of 250000 USDC is over the threshold of 1000.5 USDC",
			},
		},
	})
}

func TestThresholdUSDOfOneAsset(t *testing.T) {
	// asset beside usd_over limits the rule to that asset.
	const section = `policies:
  - {name: big-usdc-outflow, detector: threshold, usd_over: 1000, asset: USDC, severity: medium}
`
	runCases(t, section, []detectorCase{
		{
			name: "USDC over",
			ev:   event{counterparty: stranger, asset: "USDC", amount: "5000", usd: 5000},
			want: []string{"big-usdc-outflow: outflow of 5000 USDC (5,000.00 USD) is over the threshold of 1,000.00 USD"},
		},
		{name: "USDC under", ev: event{counterparty: stranger, asset: "USDC", amount: "999", usd: 999}},
		{name: "ETH over", ev: event{counterparty: stranger, asset: "ETH", amount: "2", usd: 6000}},
	})
}

func TestThresholdDirection(t *testing.T) {
	const section = `policies:
  - {name: big-movement, detector: threshold, usd_over: 100000, direction: any, severity: high}
  - {name: big-inflow, detector: threshold, amount_over: "10", asset: eth, direction: in, severity: low}
`
	runCases(t, section, []detectorCase{
		{
			name: "outflow",
			ev:   event{counterparty: stranger, amount: "40", usd: 120000},
			want: []string{"big-movement: outflow of 40 ETH (120,000.00 USD) is over the threshold of 100,000.00 USD"},
		},
		{
			name: "inflow",
			ev:   event{dir: chains.In, counterparty: stranger, amount: "40", usd: 120000},
			want: []string{
				"big-movement: inflow of 40 ETH (120,000.00 USD) is over the threshold of 100,000.00 USD",
				// The asset is matched without regard to case.
				"big-inflow: inflow of 40 ETH is over the threshold of 10 eth",
			},
		},
	})
}

func TestHoneytoken(t *testing.T) {
	const section = `policies:
  - {name: decoy-touched, detector: honeytoken, severity: critical, actions: [page, hold]}
`
	runCases(t, section, []detectorCase{
		{
			name: "outflow",
			ev:   event{wallet: "decoy", counterparty: stranger, amount: "0.01"},
			want: []string{"decoy-touched: wallet decoy is a honeytoken: no one should use it, so its key has leaked (transfer out 0.01 ETH to " + stranger + ")"},
		},
		{
			name: "inflow",
			ev:   event{wallet: "decoy", dir: chains.In, counterparty: stranger, amount: "0.5"},
			want: []string{"decoy-touched: wallet decoy is a honeytoken: no one should use it, so its key has leaked (transfer in 0.5 ETH from " + stranger + ")"},
		},
		{
			name: "approval",
			ev:   event{wallet: "decoy", kind: chains.KindApproval, counterparty: stranger, asset: "USDC", amount: "1000"},
			want: []string{"decoy-touched: wallet decoy is a honeytoken: no one should use it, so its key has leaked (approval out 1000 USDC to " + stranger + ")"},
		},
		{
			name: "a tiny amount still counts",
			ev:   event{wallet: "decoy", dir: chains.In, counterparty: stranger, amount: "0.000000000000000001"},
			want: []string{"decoy-touched: wallet decoy is a honeytoken: no one should use it, so its key has leaked (transfer in 0.000000000000000001 ETH from " + stranger + ")"},
		},
		{name: "hot wallet", ev: event{wallet: "treasury-hot", counterparty: stranger}},
		{name: "employee key", ev: event{wallet: "dev-deployer", dir: chains.In, counterparty: stranger}},
	})
}

func TestDetectorsTogether(t *testing.T) {
	// The reference case: funds go from the treasury to the mixer.
	got := evaluate(t, `policies:
  - {name: mixer-counterparty, detector: list-match, lists: [mixers], severity: critical}
  - {name: decoy-touched, detector: honeytoken, severity: critical}
`, event{wallet: "treasury-hot", counterparty: tornado1ETH, amount: "1"})
	if len(got) != 1 || got[0] != "mixer-counterparty: counterparty "+tornado1ETH+" is on list mixers (Tornado Cash 1 ETH pool; source tornadocash/tornado-cli; mixers.csv:4)" {
		t.Errorf("fired %q", got)
	}
}
