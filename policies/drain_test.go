package policies_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/keywatch/keywatch/chains"
	"github.com/keywatch/keywatch/policies"
)

// heldByAsset is a node's answer for the per-transaction drain tests: what
// each wallet held in each asset, on any chain ("treasury-hot BTC": "1").
type heldByAsset map[string]string

func (h heldByAsset) BalanceBefore(_ context.Context, ev *chains.Event) (chains.Amount, error) {
	return chains.ParseAmount(h[ev.Wallet+" "+ev.Asset])
}

func newDrainHarness(t *testing.T) *harness {
	t.Helper()
	held := heldByAsset{"treasury-hot BTC": "1", "treasury-hot ETH": "10", "treasury-hot USDC": "1000"}
	return newHarness(t, `policies:
  - {name: drain, detector: drain, percent_over: 50, severity: critical}
`, func(o *policies.Options) {
		o.Balances = map[string]policies.BalanceReader{"btc": held, "eth": held}
	})
}

func TestDrainPerTransactionBitcoin(t *testing.T) {
	const (
		mallory = "bcrt1qmallory"
		mule    = "bcrt1qmule"
	)
	const over = "drain: outflows of transaction t1 sum to 1 BTC over 2 movements: 100.0% of the 1 BTC treasury-hot held before block 100, over 50%"
	both := []string{over + " | movements: 0.5 BTC to " + mallory + " (btc:t1:0), 0.5 BTC to " + mule + " (btc:t1:1)"}
	h := newDrainHarness(t)
	h.run(t, []step{
		{name: "the first output of a spend, half of the wallet: not over", ev: event{id: "btc:t1:0", asset: "BTC", counterparty: mallory, amount: "0.5", status: chains.StatusPending}},
		{name: "its second output, the other half: the transaction moved it all", ev: event{id: "btc:t1:1", asset: "BTC", counterparty: mule, amount: "0.5", status: chains.StatusPending},
			want: both},
		{name: "the first output confirmed: counted once, and the alert stays on the output that crossed", ev: event{id: "btc:t1:0", asset: "BTC", counterparty: mallory, amount: "0.5"}},
		{name: "the second confirmed: the same alert, the sum unchanged", ev: event{id: "btc:t1:1", asset: "BTC", counterparty: mule, amount: "0.5"},
			want: both},
		{name: "another spend of one output of 40%", ev: event{id: "btc:t2:0", asset: "BTC", counterparty: mallory, amount: "0.4"}},
		{name: "another spend of 40% is not summed with the first", ev: event{id: "btc:t3:0", asset: "BTC", counterparty: mallory, amount: "0.4"}},
		{name: "a reorg retracts the first output", ev: event{id: "btc:t1:0", asset: "BTC", counterparty: mallory, amount: "0.5"}, retract: true},
		{name: "and the second, resolving the alert", ev: event{id: "btc:t1:1", asset: "BTC", counterparty: mule, amount: "0.5"}, retract: true,
			want: []string{over}},
		{name: "the spend mined again, its second output judged first: half, the retracted sum forgotten", ev: event{id: "btc:t1:1", asset: "BTC", counterparty: mule, amount: "0.5"}},
		{name: "its first output now crosses, and carries the alert", ev: event{id: "btc:t1:0", asset: "BTC", counterparty: mallory, amount: "0.5"},
			want: []string{over + " | movements: 0.5 BTC to " + mule + " (btc:t1:1), 0.5 BTC to " + mallory + " (btc:t1:0)"}},
	})
}

func TestDrainPerTransactionEVM(t *testing.T) {
	h := newDrainHarness(t)
	h.run(t, []step{
		{name: "a batch call's first internal movement, 40%", ev: event{id: "eth:0xb1:call:0", counterparty: stranger, amount: "4"}},
		{name: "its second, 30%: the transaction moved 70%", ev: event{id: "eth:0xb1:call:0.1", counterparty: vendor, amount: "3"},
			want: []string{"drain: outflows of transaction 0xb1 sum to 7 ETH over 2 movements: 70.0% of the 10 ETH treasury-hot held before block 100, over 50%" +
				" | movements: 4 ETH to " + stranger + " (eth:0xb1:call:0), 3 ETH to " + vendor + " (eth:0xb1:call:0.1)"}},
		{name: "a third after the crossing raises no second alert", ev: event{id: "eth:0xb1:call:0.2", counterparty: vendor, amount: "1"}},
		{name: "ERC-20 Transfer logs of one token in one transaction: the first, 30%", ev: event{id: "eth:0xb2:3", asset: "USDC", counterparty: stranger, amount: "300"}},
		{name: "ETH moved by the same transaction is another asset, not summed", ev: event{id: "eth:0xb2:call:0", counterparty: stranger, amount: "3"}},
		{name: "the second log, 30%: 60% of the USDC", ev: event{id: "eth:0xb2:4", asset: "USDC", counterparty: stranger, amount: "300"},
			want: []string{"drain: outflows of transaction 0xb2 sum to 600 USDC over 2 movements: 60.0% of the 1000 USDC treasury-hot held before block 100, over 50%" +
				" | movements: 300 USDC to " + stranger + " (eth:0xb2:3), 300 USDC to " + stranger + " (eth:0xb2:4)"}},
	})
}

func TestDrainPerTransactionScreening(t *testing.T) {
	h := newDrainHarness(t)
	ctx := policies.WithScreening(context.Background())
	ev := event{id: "btc:t9:0", asset: "BTC", counterparty: "bcrt1qx", amount: "0.6"}.build(t)
	for range 2 { // twice: the first screening left no trace
		as, err := h.e.Evaluate(ctx, &ev)
		if err != nil {
			t.Fatal(err)
		}
		checkFired(t, as, []string{"drain: outflow of 0.6 BTC is 60.0% of the 1 BTC treasury-hot held before block 100, over 50%"})
	}
	// Screening recorded nothing: a real outflow of 40% of the same
	// transaction is judged alone.
	h.run(t, []step{{name: "after screening", ev: event{id: "btc:t9:1", asset: "BTC", counterparty: "bcrt1qx", amount: "0.4"}}})
}

func TestDrainListsTwentyMovements(t *testing.T) {
	h := newDrainHarness(t)
	var steps []step
	for i := range 25 {
		steps = append(steps, step{name: fmt.Sprintf("payout %d", i), ev: event{id: fmt.Sprintf("btc:t7:%d", i), asset: "BTC", counterparty: "bcrt1qpayee", amount: "0.04"}})
	}
	var each []string
	for i := range 20 {
		each = append(each, fmt.Sprintf("0.04 BTC to bcrt1qpayee (btc:t7:%d)", i))
	}
	// The 13th output takes the sum to 52%.
	steps[12].want = []string{"drain: outflows of transaction t7 sum to 0.52 BTC over 13 movements: 52.0% of the 1 BTC treasury-hot held before block 100, over 50%" +
		" | movements: " + strings.Join(each[:13], ", ")}
	h.run(t, steps)
	// Delivered again (confirmed), the output that crossed lists the first
	// 20 of the 25 and counts the rest.
	h.run(t, []step{{name: "the crossing output again", ev: steps[12].ev,
		want: []string{"drain: outflows of transaction t7 sum to 1 BTC over 25 movements: 100.0% of the 1 BTC treasury-hot held before block 100, over 50%" +
			" | movements: " + strings.Join(each, ", ") + ", and 5 more"}}})
}
