package policies_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/keywatch/keywatch/alertmodel"
	"github.com/keywatch/keywatch/chains"
	"github.com/keywatch/keywatch/hops"
	"github.com/keywatch/keywatch/intents"
	"github.com/keywatch/keywatch/policies"
	"github.com/keywatch/keywatch/store/memory"
)

// step is one event in a sequence whose detectors keep state in the store;
// each step runs after the ones before it.
type step struct {
	name    string
	ev      event
	retract bool     // deliver the event as retracted
	want    []string // "policy: reasons"; nil when nothing fires (or resolves)
}

type harness struct {
	e   *policies.Engine
	st  *memory.Store
	reg *intents.Registry
}

func newHarness(t *testing.T, section string, opts ...func(*policies.Options)) *harness {
	t.Helper()
	set := mustBuild(t, section)
	st := memory.New()
	t.Cleanup(func() { st.Close() })
	clock := func() time.Time { return observedAt }
	o := policies.Options{Store: st, Now: clock, Intents: intents.New(st, clock), Hops: hops.New(st)}
	for _, f := range opts {
		f(&o)
	}
	return &harness{e: policies.New(set, o), st: st, reg: intents.New(st, clock)}
}

func (h *harness) run(t *testing.T, steps []step) {
	t.Helper()
	for _, s := range steps {
		ev := s.ev.build(t)
		if s.retract {
			ev.Status = chains.StatusRetracted
		}
		as, err := h.e.Evaluate(context.Background(), &ev)
		if err != nil {
			t.Fatalf("%s: Evaluate: %v", s.name, err)
		}
		if s.retract {
			for i := range as {
				as[i].Reasons = as[i].Reasons[:1] // the original reason; the retraction line is tested elsewhere
			}
		}
		if g := fired(as); strings.Join(g, "\n") != strings.Join(s.want, "\n") {
			t.Errorf("%s: alerts\n got: %s\nwant: %s", s.name, strings.Join(g, "\n      "), strings.Join(s.want, "\n      "))
		}
	}
}

var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

func TestVelocity(t *testing.T) {
	h := newHarness(t, `policies:
  - {name: hourly-velocity, detector: velocity, window: 1h, usd_over: 250000, severity: high}
`)
	h.run(t, []step{
		{name: "first outflow", ev: event{id: "eth:0x01:0", counterparty: stranger, amount: "33.3", usd: 100000, at: t0}},
		{name: "second", ev: event{id: "eth:0x02:0", counterparty: stranger, amount: "33.3", usd: 100000, at: t0.Add(10 * time.Minute)}},
		{name: "the second again, confirmed: counted once", ev: event{id: "eth:0x02:0", counterparty: stranger, amount: "33.3", usd: 100000, at: t0.Add(10 * time.Minute), status: chains.StatusConfirmed}},
		{name: "sum equal to the limit: over is strict", ev: event{id: "eth:0x03:0", counterparty: stranger, amount: "16.6", usd: 50000, at: t0.Add(time.Hour - time.Millisecond)}},
		{name: "an inflow is not summed", ev: event{id: "eth:0x04:0", dir: chains.In, counterparty: stranger, amount: "100", usd: 300000, at: t0.Add(time.Hour - time.Millisecond)}},
		{name: "exactly one window after the first: the first has left it", ev: event{id: "eth:0x05:0", counterparty: stranger, amount: "0.01", usd: 0.01, at: t0.Add(time.Hour)}},
		{
			name: "just over",
			ev:   event{id: "eth:0x06:0", counterparty: stranger, amount: "33.3", usd: 100000, at: t0.Add(time.Hour + time.Minute)},
			want: []string{"hourly-velocity: outflows of wallet treasury-hot in the last 1h sum to 250,000.01 USD over 4 movements (this one 100,000.00 USD), over the limit of 250,000.00 USD"},
		},
		{
			name: "other wallets have their own windows",
			ev:   event{id: "eth:0x07:0", wallet: "dev-deployer", counterparty: stranger, amount: "1", usd: 3000, at: t0.Add(time.Hour + time.Minute)},
		},
		{
			name:    "a reorg retracts the big one",
			ev:      event{id: "eth:0x06:0", counterparty: stranger, amount: "33.3", usd: 100000, at: t0.Add(time.Hour + time.Minute)},
			retract: true,
			want:    []string{"hourly-velocity: outflows of wallet treasury-hot in the last 1h sum to 250,000.01 USD over 4 movements (this one 100,000.00 USD), over the limit of 250,000.00 USD"},
		},
		{name: "and no longer counts", ev: event{id: "eth:0x08:0", counterparty: stranger, amount: "0.01", usd: 0.01, at: t0.Add(time.Hour + 2*time.Minute)}},
	})
}

func TestVelocityScopesAndAmounts(t *testing.T) {
	h := newHarness(t, `policies:
  - {name: chain-velocity, detector: velocity, scope: chain, window: 10m, usd_over: 10000, severity: high}
  - {name: owner-usdc, detector: velocity, scope: owner, amount_over: "500", asset: USDC, severity: medium}
`)
	h.run(t, []step{
		{name: "hot wallet", ev: event{id: "eth:0x01:0", counterparty: stranger, amount: "2", usd: 6000, at: t0}},
		{
			name: "employee key: the chain's sum is over",
			ev:   event{id: "eth:0x02:0", wallet: "dev-deployer", counterparty: stranger, amount: "1.5", usd: 4500.01, at: t0.Add(9 * time.Minute)},
			want: []string{"chain-velocity: outflows of wallets on eth in the last 10m sum to 10,500.01 USD over 2 movements (this one 4,500.01 USD), over the limit of 10,000.00 USD"},
		},
		{name: "USDC of the owner's keys, under", ev: event{id: "eth:0x03:1", wallet: "dev-deployer", asset: "USDC", counterparty: stranger, amount: "500", at: t0.Add(20 * time.Minute)}},
		{
			name: "one base unit more",
			ev:   event{id: "eth:0x04:1", wallet: "dev-deployer", asset: "USDC", counterparty: stranger, amount: "0.000001", at: t0.Add(30 * time.Minute)},
			want: []string{"owner-usdc: outflows of wallets of kim@firm.example in the last 1h sum to 500.000001 USDC over 2 movements (this one 0.000001 USDC), over the limit of 500 USDC"},
		},
		{name: "a wallet without an owner counts alone", ev: event{id: "eth:0x05:1", asset: "USDC", counterparty: stranger, amount: "499", at: t0.Add(31 * time.Minute)}},
	})
}

// TestVelocityCountsLateEvents: events of a window are not always judged in
// time order (another chain's watcher runs behind, or catches up after an
// outage; Bitcoin block times are not monotonic). A movement judged late must
// still see every movement of its own window.
func TestVelocityCountsLateEvents(t *testing.T) {
	h := newHarness(t, `policies:
  - {name: all-velocity, detector: velocity, scope: all, window: 1h, usd_over: 250000, severity: high}
`)
	h.run(t, []step{
		{name: "at 08:50", ev: event{id: "eth:0x01:0", counterparty: stranger, amount: "66.6", usd: 200000, at: t0.Add(-10 * time.Minute)}},
		{name: "another wallet at 10:00, judged next", ev: event{id: "eth:0x02:0", wallet: "dev-deployer", counterparty: stranger, amount: "3.3", usd: 10000, at: t0.Add(time.Hour)}},
		{name: "a movement of 09:45 judged late: its window holds the one of 08:50", ev: event{id: "eth:0x03:0", counterparty: stranger, amount: "33.3", usd: 100000, at: t0.Add(45 * time.Minute)},
			want: []string{"all-velocity: outflows of all watched wallets in the last 1h sum to 300,000.00 USD over 2 movements (this one 100,000.00 USD), over the limit of 250,000.00 USD"}},
	})
}

func TestStructuring(t *testing.T) {
	h := newHarness(t, `policies:
  - {name: split-withdrawals, detector: structuring, usd_over: 10000, margin: 0.1, count: 3, window: 24h, severity: high}
`)
	h.run(t, []step{
		{name: "at the floor (90%) counts", ev: event{id: "eth:0x01:0", counterparty: stranger, usd: 9000, at: t0}},
		{name: "just under the floor does not", ev: event{id: "eth:0x02:0", counterparty: stranger, usd: 8999.99, at: t0.Add(time.Hour)}},
		{name: "over the threshold does not (threshold's business)", ev: event{id: "eth:0x03:0", counterparty: stranger, usd: 10000.01, at: t0.Add(2 * time.Hour)}},
		{name: "at the threshold counts: the second", ev: event{id: "eth:0x04:0", counterparty: stranger, usd: 10000, at: t0.Add(3 * time.Hour)}},
		{
			name: "the third inside the window",
			ev:   event{id: "eth:0x05:0", counterparty: stranger, usd: 9999.99, at: t0.Add(24*time.Hour - time.Millisecond)},
			want: []string{"split-withdrawals: 3 outflows of wallet treasury-hot in the last 24h each stayed just under the threshold of 10,000.00 USD (between 9,000.00 USD and it) | movements: 9,000.00 USD (eth:0x01:0), 10,000.00 USD (eth:0x04:0), 9,999.99 USD (eth:0x05:0)"},
		},
		{name: "a day after the first, it has left the window", ev: event{id: "eth:0x06:0", counterparty: stranger, usd: 9500, at: t0.Add(27*time.Hour + time.Minute)}},
	})
}

func TestUnapprovedOutflow(t *testing.T) {
	h := newHarness(t, `policies:
  - {name: big-outflow, detector: threshold, usd_over: 10000, severity: high}
  - {name: unapproved-outflow, detector: unapproved-outflow, tolerance: 0.01, window: 2h, severity: critical, actions: [page, hold]}
`)
	ctx := context.Background()
	register := func(id, wallet, to, asset, amt string) {
		t.Helper()
		a, _ := chains.ParseAmount(amt)
		if err := h.reg.Register(ctx, intents.Intent{ID: id, Chain: "eth", Wallet: wallet, To: to, Asset: asset, Amount: a, Source: "test"}); err != nil {
			t.Fatal(err)
		}
	}
	register("w-1", "treasury-hot", vendor, "USDC", "25000")
	register("w-2", "treasury-hot", vendor, "USDC", "1000")
	register("w-3", "dev-deployer", stranger, "ETH", "1")
	h.run(t, []step{
		{
			name: "amount just beyond the tolerance",
			ev:   event{id: "eth:0x01:1", asset: "USDC", counterparty: vendor, amount: "24749.99"},
			want: []string{"unapproved-outflow: outflow of 24749.99 USDC from treasury-hot to " + vendor + " matches no approved withdrawal intent: none of the 2 open approved withdrawals of this wallet has this destination, asset and amount (within 1%) inside 2h"},
		},
		{name: "at the tolerance's edge: matched", ev: event{id: "eth:0x02:1", asset: "USDC", counterparty: vendor, amount: "24750"}},
		{name: "the same event confirmed keeps its intent", ev: event{id: "eth:0x02:1", asset: "USDC", counterparty: vendor, amount: "24750", status: chains.StatusConfirmed}},
		{
			name: "an intent explains one outflow only",
			ev:   event{id: "eth:0x03:1", asset: "USDC", counterparty: vendor, amount: "25000", usd: 25000},
			want: []string{
				"big-outflow: outflow of 25000 USDC (25,000.00 USD) is over the threshold of 10,000.00 USD",
				"unapproved-outflow: outflow of 25000 USDC (25,000.00 USD) from treasury-hot to " + vendor + " matches no approved withdrawal intent: none of the 1 open approved withdrawal of this wallet has this destination, asset and amount (within 1%) inside 2h",
			},
		},
		{
			name: "no intent at all for the wallet",
			ev:   event{id: "eth:0x04:0", wallet: "decoy", counterparty: stranger},
		},
		{name: "employee key, matched", ev: event{id: "eth:0x05:0", wallet: "dev-deployer", counterparty: stranger, amount: "1"}},
		{
			name: "employee key, nothing left",
			ev:   event{id: "eth:0x06:0", wallet: "dev-deployer", counterparty: stranger, amount: "1"},
			want: []string{"unapproved-outflow: outflow of 1 ETH from dev-deployer to " + stranger + " matches no approved withdrawal intent: no approved withdrawal is open for this wallet"},
		},
		{name: "a cold wallet spending its own funds is not judged", ev: event{id: "eth:0x07:0", wallet: "cold-store", counterparty: stranger}},
		{
			name: "an employee key moving a vault's tokens",
			ev:   event{id: "eth:0x08:3", wallet: "vault-proxy", asset: "USDC", counterparty: stranger, amount: "500000", initiator: devDeployer},
			want: []string{
				"unapproved-outflow: outflow of 500000 USDC from vault-proxy to " + stranger + " matches no approved withdrawal intent: no approved withdrawal is open for this wallet | " +
					"the transaction was signed by dev-deployer (employee key of kim@firm.example) (" + devDeployer + "), not by vault-proxy",
			},
		},
		{name: "a vault moving its tokens on its owner's behalf (not an employee key)", ev: event{id: "eth:0x09:3", wallet: "vault-proxy", asset: "USDC", counterparty: stranger, amount: "5", initiator: stranger}},
	})

	// A matched intent's id is on the event of every alert the outflow raised.
	register("w-4", "treasury-hot", vendor, "USDC", "50000")
	ev := event{id: "eth:0x10:1", asset: "USDC", counterparty: vendor, amount: "50000", usd: 50000}.build(t)
	as, err := h.e.Evaluate(ctx, &ev)
	if err != nil {
		t.Fatal(err)
	}
	if len(as) != 1 || as[0].Policy != "big-outflow" || as[0].Event.Intent != "w-4" || ev.Intent != "w-4" {
		t.Errorf("alerts %v with event intent %q, want big-outflow carrying intent w-4", fired(as), ev.Intent)
	}

	// A reorg retracts the outflow: the intent is free for its new block.
	ev.Status = chains.StatusRetracted
	if _, err := h.e.Evaluate(ctx, &ev); err != nil {
		t.Fatal(err)
	}
	again := event{id: "eth:0x10:1", asset: "USDC", counterparty: vendor, amount: "50000", usd: 50000}.build(t)
	again.BlockHash = "0xother"
	if as, err := h.e.Evaluate(ctx, &again); err != nil || again.Intent != "w-4" || len(as) != 1 {
		t.Errorf("re-included outflow: %v, %v, intent %q; want it matched to w-4 again", fired(as), err, again.Intent)
	}
}

func TestUnapprovedOutflowExpiredIntent(t *testing.T) {
	h := newHarness(t, `policies:
  - {name: unapproved-outflow, detector: unapproved-outflow, window: 1h, severity: critical}
`)
	ctx := context.Background()
	reg := intents.New(h.st, func() time.Time { return observedAt.Add(-time.Hour - time.Second) })
	a, _ := chains.ParseAmount("1")
	if err := reg.Register(ctx, intents.Intent{ID: "old", Chain: "eth", Wallet: "treasury-hot", To: stranger, Asset: "ETH", Amount: a}); err != nil {
		t.Fatal(err)
	}
	h.run(t, []step{{
		name: "registered more than the window ago",
		ev:   event{counterparty: stranger},
		want: []string{"unapproved-outflow: outflow of 1 ETH from treasury-hot to " + stranger + " matches no approved withdrawal intent: no approved withdrawal is open for this wallet"},
	}})
	// The expired intent is no longer listed as open.
	if open, err := reg.List(ctx, "eth", "treasury-hot"); err != nil || len(open) != 0 {
		t.Fatalf("open intents after expiry: %+v, %v", open, err)
	}
}

func TestNewCounterparty(t *testing.T) {
	h := newHarness(t, `policies:
  - {name: new-counterparty, detector: new-counterparty, severity: medium}
`)
	const reason = "new-counterparty: treasury-hot never sent to " + stranger + " before, and it is not on address_book"
	h.run(t, []step{
		{name: "first outflow to a stranger", ev: event{id: "eth:0x01:0", counterparty: stranger, status: chains.StatusPending}, want: []string{reason}},
		{name: "the same event confirmed", ev: event{id: "eth:0x01:0", counterparty: stranger}, want: []string{reason}},
		{name: "a second payment to them", ev: event{id: "eth:0x02:0", counterparty: stranger}},
		{name: "another wallet has its own memory", ev: event{id: "eth:0x03:0", wallet: "dev-deployer", counterparty: stranger},
			want: []string{"new-counterparty: dev-deployer never sent to " + stranger + " before, and it is not on address_book"}},
		{name: "a vendor in the address book", ev: event{id: "eth:0x04:0", counterparty: vendor}},
		{name: "another watched wallet", ev: event{id: "eth:0x05:0", counterparty: decoy}},
		{name: "an inflow", ev: event{id: "eth:0x06:0", dir: chains.In, counterparty: lazarus}},
		{name: "first seen, retracted", ev: event{id: "eth:0x07:0", counterparty: lazarus}, want: []string{"new-counterparty: treasury-hot never sent to " + lazarus + " before, and it is not on address_book"}},
		{name: "retraction", ev: event{id: "eth:0x07:0", counterparty: lazarus}, retract: true, want: []string{"new-counterparty: treasury-hot never sent to " + lazarus + " before, and it is not on address_book"}},
		{name: "the next one to them is new again", ev: event{id: "eth:0x08:0", counterparty: lazarus}, want: []string{"new-counterparty: treasury-hot never sent to " + lazarus + " before, and it is not on address_book"}},
	})
}

func TestOffHours(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	at := func(h, m, s int) time.Time { return time.Date(2026, 3, 3, h, m, s, 0, ny) } // a Tuesday
	h := newHarness(t, `policies:
  - {name: off-hours, detector: off-hours, severity: medium}
  - {name: hot-off-hours, detector: off-hours, hours: "06:00-22:00 UTC", roles: [hot], severity: low}
`)
	const sig = "dev-deployer (employee key of kim@firm.example) signed at "
	h.run(t, []step{
		{name: "a second before the day starts", ev: event{wallet: "dev-deployer", counterparty: stranger, at: at(8, 59, 59)},
			want: []string{"off-hours: " + sig + "Tue 08:59 EST, outside its working hours 09:00-18:00 America/New_York (transfer out dev-deployer)"}},
		{name: "at the start", ev: event{wallet: "dev-deployer", counterparty: stranger, at: at(9, 0, 0)}},
		{name: "a second before the end", ev: event{wallet: "dev-deployer", counterparty: stranger, at: at(17, 59, 59)}},
		{name: "at the end", ev: event{wallet: "dev-deployer", counterparty: stranger, at: at(18, 0, 0)},
			want: []string{"off-hours: " + sig + "Tue 18:00 EST, outside its working hours 09:00-18:00 America/New_York (transfer out dev-deployer)"}},
		{name: "an inflow is not a use of the key", ev: event{wallet: "dev-deployer", dir: chains.In, counterparty: stranger, initiator: stranger, at: at(23, 0, 0)}},
		{name: "the key's transfer to another watched wallet is judged once, on its out side", ev: event{id: "eth:0x09:0:in", wallet: "treasury-hot", dir: chains.In, counterparty: devDeployer, initiator: devDeployer, at: at(23, 0, 0)}},
		{name: "an admin change the key signed on a watched contract", ev: event{kind: chains.KindAdmin, wallet: "vault-proxy", counterparty: stranger, initiator: devDeployer, amount: "0", at: at(2, 30, 0)},
			want: []string{"off-hours: " + sig + "Tue 02:30 EST, outside its working hours 09:00-18:00 America/New_York (admin out vault-proxy)"}},
		{name: "hot wallet inside the policy's hours", ev: event{counterparty: stranger, at: at(16, 59, 0)}},
		{name: "hot wallet outside the policy's hours", ev: event{counterparty: stranger, at: at(17, 0, 0)},
			want: []string{"hot-off-hours: treasury-hot (hot wallet) signed at Tue 22:00 UTC, outside its working hours policy hours 06:00-22:00 UTC (transfer out treasury-hot)"}},
	})
}

func TestOffHoursOnWorkingDays(t *testing.T) {
	at := func(day, h int) time.Time { return time.Date(2026, 3, day, h, 0, 0, 0, time.UTC) } // 6 March 2026 is a Friday
	h := newHarness(t, `policies:
  - {name: hot-weekend, detector: off-hours, hours: "Mon-Fri 06:00-22:00 UTC", roles: [hot], severity: medium}
`)
	h.run(t, []step{
		{name: "Friday inside the hours", ev: event{counterparty: stranger, at: at(6, 12)}},
		{name: "Saturday at the same hour", ev: event{counterparty: stranger, at: at(7, 12)},
			want: []string{"hot-weekend: treasury-hot (hot wallet) signed at Sat 12:00 UTC, outside its working hours policy hours Mon-Fri 06:00-22:00 UTC (transfer out treasury-hot)"}},
		{name: "Sunday", ev: event{counterparty: stranger, at: at(8, 12)},
			want: []string{"hot-weekend: treasury-hot (hot wallet) signed at Sun 12:00 UTC, outside its working hours policy hours Mon-Fri 06:00-22:00 UTC (transfer out treasury-hot)"}},
		{name: "Monday inside the hours", ev: event{counterparty: stranger, at: at(9, 6)}},
	})
}

// balances is a node's answer for the drain tests (the node reader itself is
// tested against a chain in chains/ethereum).
type balances struct {
	held map[string]string // wallet -> balance
	err  error
}

func (b balances) BalanceBefore(_ context.Context, ev *chains.Event) (chains.Amount, error) {
	if b.err != nil {
		return chains.Amount{}, b.err
	}
	return chains.ParseAmount(b.held[ev.Wallet])
}

func TestDrain(t *testing.T) {
	const section = `policies:
  - {name: drain, detector: drain, percent_over: 50, severity: critical}
`
	h := newHarness(t, section, func(o *policies.Options) {
		o.Balances = map[string]policies.BalanceReader{"eth": balances{held: map[string]string{"treasury-hot": "10", "dev-deployer": "0", "vault-proxy": "1000000"}}}
	})
	h.run(t, []step{
		{name: "exactly half", ev: event{id: "eth:0xd1:0", counterparty: stranger, amount: "5"}},
		{name: "just over half", ev: event{id: "eth:0xd2:0", counterparty: stranger, amount: "5.000000000000000001"},
			want: []string{"drain: outflow of 5.000000000000000001 ETH is 50.0% of the 10 ETH treasury-hot held before block 100, over 50%"}},
		{name: "all of it", ev: event{id: "eth:0xd3:0", counterparty: stranger, amount: "10"},
			want: []string{"drain: outflow of 10 ETH is 100.0% of the 10 ETH treasury-hot held before block 100, over 50%"}},
		{name: "a wallet that held nothing", ev: event{wallet: "dev-deployer", counterparty: stranger, amount: "1"},
			want: []string{"drain: outflow of 1 ETH from dev-deployer: the wallet held no ETH before block 100, so it moved all it had"}},
		{name: "a small share of a vault", ev: event{wallet: "vault-proxy", asset: "USDC", counterparty: stranger, amount: "499999.99"}},
	})

	t.Run("the node cannot answer: fail closed", func(t *testing.T) {
		h := newHarness(t, section, func(o *policies.Options) {
			o.Balances = map[string]policies.BalanceReader{"eth": balances{err: errors.New("dial tcp 10.0.0.1:8545: connection refused")}}
		})
		h.run(t, []step{{name: "down", ev: event{counterparty: stranger},
			want: []string{"drain: policy drain could not decide (read balance of treasury-hot from the node: dial tcp 10.0.0.1:8545: connection refused): raised to be safe"}}})
	})
	t.Run("no reader for the chain: fail closed", func(t *testing.T) {
		h := newHarness(t, section)
		h.run(t, []step{{name: "none", ev: event{counterparty: stranger},
			want: []string{"drain: policy drain could not decide (no balance reader for chain eth): raised to be safe"}}})
	})
}

func TestAdminChange(t *testing.T) {
	h := newHarness(t, `policies:
  - {name: admin-change, detector: admin-change, severity: critical, actions: [page, hold]}
`)
	impl := "0x00000000000000000000000000000000000c0de2"
	h.run(t, []step{
		{name: "an upgrade of a watched proxy, signed by an employee key",
			ev: event{id: "eth:0x0a:0", kind: chains.KindAdmin, wallet: "vault-proxy", counterparty: impl, amount: "0", initiator: devDeployer,
				detail: map[string]string{"event": "Upgraded", "contract": vaultProxy, "implementation": impl}},
			want: []string{"admin-change: Upgraded on watched contract vault-proxy (" + vaultProxy + "): implementation " + impl +
				" | signed by dev-deployer (employee key of kim@firm.example) " + devDeployer + " in tx 0x0a"}},
		{name: "an ownership change an employee key made on a contract keywatch does not watch",
			ev: event{id: "eth:0x0b:2", kind: chains.KindAdmin, wallet: "dev-deployer", counterparty: stranger, amount: "0",
				detail: map[string]string{"event": "OwnershipTransferred", "contract": "0x00000000000000000000000000000000000000aa", "previous_owner": devDeployer, "new_owner": stranger}},
			want: []string{"admin-change: OwnershipTransferred on 0x00000000000000000000000000000000000000aa: new_owner " + stranger + ", previous_owner " + devDeployer +
				" | signed by dev-deployer (employee key of kim@firm.example) " + devDeployer + " in tx 0x0b"}},
		{name: "a transfer is not an admin change", ev: event{wallet: "vault-proxy", counterparty: stranger}},
	})
}

func TestApproval(t *testing.T) {
	h := newHarness(t, `policies:
  - {name: approval, detector: approval, severity: high}
`)
	h.run(t, []step{
		{name: "approve to a stranger", ev: event{kind: chains.KindApproval, asset: "USDC", counterparty: stranger, amount: "1000"},
			want: []string{"approval: treasury-hot granted an allowance of 1000 USDC (approve) to " + stranger + ", which is not on address_book"}},
		{name: "unlimited", ev: event{kind: chains.KindApproval, asset: "USDC", counterparty: stranger, amount: "115792089237316195423570985008687907853269984665640564039457584007913129.639935"},
			want: []string{"approval: treasury-hot granted an unlimited allowance of USDC (approve) to " + stranger + ", which is not on address_book"}},
		{name: "to a vendor in the address book", ev: event{kind: chains.KindApproval, asset: "USDC", counterparty: vendor, amount: "1000"}},
		{name: "a revocation", ev: event{kind: chains.KindApproval, asset: "USDC", counterparty: stranger, amount: "0"}},
		{name: "setApprovalForAll", ev: event{kind: chains.KindApproval, asset: "0x00000000000000000000000000000000000000f7", counterparty: stranger, amount: "0",
			detail: map[string]string{"approved_for_all": "true"}},
			want: []string{"approval: treasury-hot granted every token of 0x00000000000000000000000000000000000000f7 (setApprovalForAll) to " + stranger + ", which is not on address_book"}},
		{name: "setApprovalForAll revoked", ev: event{kind: chains.KindApproval, asset: "0x00000000000000000000000000000000000000f7", counterparty: stranger, amount: "0",
			detail: map[string]string{"approved_for_all": "false"}}},
		{name: "a transfer", ev: event{counterparty: stranger}},
	})
}

func TestForwarding(t *testing.T) {
	h := newHarness(t, `policies:
  - {name: mixer-counterparty, detector: list-match, lists: [mixers], severity: critical}
  - {name: forwarding, detector: forwarding, lists: [mixers, sanctioned], severity: critical, actions: [page]}
  - {name: big-outflow, detector: threshold, usd_over: 1, severity: high}
`)
	const (
		fresh  = "0x00000000000000000000000000000000000f0001"
		fresh2 = "0x00000000000000000000000000000000000f0002"
		fresh3 = "0x00000000000000000000000000000000000f0003"
		router = "0xd90e2f925da726b50c4ed8d0fb90ad053324f31b"
	)
	hop1 := event{id: "eth:0x01:0", counterparty: fresh, amount: "60", usd: 180000, at: t0}
	h.run(t, []step{
		{name: "hop 1: the treasury pays a fresh address", ev: hop1, want: []string{"big-outflow: outflow of 60 ETH (180,000.00 USD) is over the threshold of 1.00 USD"}},
		{name: "hop 2: the fresh address pays another; only forwarding judges it", ev: event{id: "eth:0x02:native", wallet: fresh, counterparty: fresh2, amount: "59", usd: 177000, at: t0.Add(time.Hour)}},
		{
			name: "hop 3: the next one deposits into the mixer through the router",
			ev:   event{id: "eth:0x03:native", wallet: fresh2, counterparty: tornado1ETH, amount: "1", usd: 3000, at: t0.Add(2*time.Hour + 30*time.Second), detail: map[string]string{"via": router}},
			want: []string{"forwarding: funds that left treasury-hot reached " + tornado1ETH + ", on list mixers (Tornado Cash 1 ETH pool; source tornadocash/tornado-cli; mixers.csv:4), in 3 hops and 2h0m30s" +
				" | hop 1: treasury-hot " + treasuryHot + " sent 60 ETH to " + fresh + " (tx 0x01, 2026-03-02T09:00:00Z)" +
				" | hop 2: " + fresh + " sent 59 ETH to " + fresh2 + " (tx 0x02, 2026-03-02T10:00:00Z)" +
				" | hop 3: " + fresh2 + " sent 1 ETH to " + tornado1ETH + " through " + router + " (tx 0x03, 2026-03-02T11:00:30Z)"},
		},
		{name: "hop 3 is the last: its destination is not followed", ev: event{id: "eth:0x04:native", wallet: fresh2, counterparty: fresh3, amount: "1", at: t0.Add(3 * time.Hour)}},
		{name: "hop 4 would have been a mixer", ev: event{id: "eth:0x05:native", wallet: fresh3, counterparty: tornado1ETH, amount: "1", at: t0.Add(4 * time.Hour)}},
		{name: "72h after the first outflow the path is no longer followed", ev: event{id: "eth:0x06:native", wallet: fresh, counterparty: tornado1ETH, amount: "1", at: t0.Add(72*time.Hour + time.Second)}},
	})

	var followed []string
	hs, err := hops.New(h.st).All(context.Background(), "eth")
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range hs {
		followed = append(followed, x.Address)
	}
	if strings.Join(followed, ",") != fresh+","+fresh2 {
		t.Errorf("followed %v, want %s and %s", followed, fresh, fresh2)
	}

	t.Run("hop 2 reaches a sanctioned address", func(t *testing.T) {
		h := newHarness(t, `policies:
  - {name: forwarding, detector: forwarding, severity: critical}
`)
		h.run(t, []step{
			{name: "out", ev: event{id: "eth:0x11:3", wallet: "dev-deployer", asset: "USDC", counterparty: fresh, amount: "900000", at: t0}},
			{name: "a payment to the vendor from the address book is not followed", ev: event{id: "eth:0x12:0", counterparty: vendor, at: t0}},
			{name: "the vendor pays on", ev: event{id: "eth:0x13:0", wallet: vendor, counterparty: lazarus, at: t0.Add(time.Minute)}},
			{name: "the fresh address pays the sanctioned one", ev: event{id: "eth:0x14:1", wallet: fresh, asset: "USDC", counterparty: lazarus, amount: "899000", at: t0.Add(10 * time.Minute)},
				want: []string{"forwarding: funds that left dev-deployer reached " + lazarus + ", on list sanctioned (Lazarus Group (SDN 27307; DPRK3); source OFAC SDN; sanctioned.csv:3), in 2 hops and 10m" +
					" | hop 1: dev-deployer " + devDeployer + " sent 900000 USDC to " + fresh + " (tx 0x11, 2026-03-02T09:00:00Z)" +
					" | hop 2: " + fresh + " sent 899000 USDC to " + lazarus + " (tx 0x14, 2026-03-02T09:10:00Z)"}},
		})
	})

	t.Run("hops: 2 stops one hop earlier", func(t *testing.T) {
		h := newHarness(t, `policies:
  - {name: forwarding, detector: forwarding, hops: 2, window: 1h, severity: critical}
`)
		h.run(t, []step{
			{name: "out", ev: event{id: "eth:0x21:0", counterparty: fresh, at: t0}},
			{name: "hop 2 to a fresh address", ev: event{id: "eth:0x22:0", wallet: fresh, counterparty: fresh2, at: t0.Add(time.Minute)}},
			{name: "hop 3 to a mixer is beyond the limit", ev: event{id: "eth:0x23:0", wallet: fresh2, counterparty: tornado1ETH, at: t0.Add(2 * time.Minute)}},
			{name: "hop 2 to a mixer at the window's edge", ev: event{id: "eth:0x24:0", wallet: fresh, counterparty: tornado1ETH, at: t0.Add(time.Hour)},
				want: []string{"forwarding: funds that left treasury-hot reached " + tornado1ETH + ", on list mixers (Tornado Cash 1 ETH pool; source tornadocash/tornado-cli; mixers.csv:4), in 2 hops and 1h" +
					" | hop 1: treasury-hot " + treasuryHot + " sent 1 ETH to " + fresh + " (tx 0x21, 2026-03-02T09:00:00Z)" +
					" | hop 2: " + fresh + " sent 1 ETH to " + tornado1ETH + " (tx 0x24, 2026-03-02T10:00:00Z)"}},
		})
	})

	t.Run("a retracted outflow is no longer followed", func(t *testing.T) {
		h := newHarness(t, `policies:
  - {name: forwarding, detector: forwarding, severity: critical}
`)
		h.run(t, []step{
			{name: "out", ev: event{id: "eth:0x31:0", counterparty: fresh, at: t0}},
			{name: "reorged out", ev: event{id: "eth:0x31:0", counterparty: fresh, at: t0}, retract: true},
			{name: "the fresh address reaches the mixer: nothing links it to the firm now", ev: event{id: "eth:0x32:0", wallet: fresh, counterparty: tornado1ETH, at: t0.Add(time.Minute)}},
		})
	})
}

func TestForwardingAlertNamesTheWatchedWallet(t *testing.T) {
	h := newHarness(t, "policies:\n  - {name: forwarding, detector: forwarding, severity: critical, actions: [page, hold]}\n")
	ctx := context.Background()
	for _, e := range []event{
		{id: "eth:0x01:0", counterparty: stranger, at: t0},
		{id: "eth:0x02:0", wallet: stranger, counterparty: tornado1ETH, at: t0.Add(time.Minute)},
	} {
		ev := e.build(t)
		as, err := h.e.Evaluate(ctx, &ev)
		if err != nil {
			t.Fatal(err)
		}
		if e.wallet == "" {
			continue
		}
		if len(as) != 1 || as[0].Wallet != "treasury-hot" || as[0].Event.Wallet != stranger || as[0].Event.WalletRole != chains.RoleFollowed || as[0].Severity != alertmodel.Critical {
			t.Errorf("alert %+v: want the watched wallet treasury-hot on a followed event", as)
		}
	}
}

func TestRules(t *testing.T) {
	h := newHarness(t, `policies:
  - {name: usdt-from-employee-keys, when: 'event.asset == "USDC" && event.wallet_role == "employee-key"', severity: medium}
  - {name: night-mixer, when: 'lists.mixers.contains(event.counterparty) && event.time.getHours("America/New_York") < 6', severity: high}
  - {name: big-to-stranger, detector: threshold, usd_over: 1000, when: '!lists.address_book.contains(event.counterparty)', severity: high}
  - {name: router, when: 'has(event.detail.via) && event.detail.via.startsWith("0xd90e")', severity: low}
  - {name: followed-never, when: 'true', severity: info}
  - {name: missing-detail, when: 'event.detail["nope"] == "x"', direction: in, severity: info}
`)
	night := time.Date(2026, 3, 3, 8, 0, 0, 0, time.UTC) // 03:00 in New York
	h.run(t, []step{
		{name: "a rule alone", ev: event{wallet: "dev-deployer", asset: "USDC", counterparty: vendor, amount: "5"},
			want: []string{"usdt-from-employee-keys: rule holds: event.asset == \"USDC\" && event.wallet_role == \"employee-key\"", "followed-never: rule holds: true"}},
		{name: "list membership and time", ev: event{counterparty: tornado1ETH, at: night},
			want: []string{"night-mixer: rule holds: lists.mixers.contains(event.counterparty) && event.time.getHours(\"America/New_York\") < 6", "followed-never: rule holds: true"}},
		{name: "a rule beside a detector: the detector fires only where the rule holds", ev: event{counterparty: vendor, usd: 5000}, want: []string{"followed-never: rule holds: true"}},
		{name: "and where it holds", ev: event{counterparty: stranger, usd: 5000},
			want: []string{"big-to-stranger: outflow of 1 ETH (5,000.00 USD) is over the threshold of 1,000.00 USD", "followed-never: rule holds: true"}},
		{name: "details", ev: event{counterparty: tornado1ETH, at: t0.Add(6 * time.Hour), detail: map[string]string{"via": "0xd90e2f925da726b50c4ed8d0fb90ad053324f31b"}},
			want: []string{"router: rule holds: has(event.detail.via) && event.detail.via.startsWith(\"0xd90e\")", "followed-never: rule holds: true"}},
		{name: "followed addresses are forwarding's alone", ev: event{wallet: stranger, counterparty: tornado1ETH}},
		{name: "an expression that cannot decide fires", ev: event{dir: chains.In, counterparty: stranger},
			want: []string{"followed-never: rule holds: true", "missing-detail: policy missing-detail could not decide (when: no such key: nope): raised to be safe"}},
	})
}
