package bitcoin

import (
	"context"
	"fmt"

	"github.com/keywatch/keywatch/chains"
)

// Balances answers the drain detector for a bitcoin chain: what the spending
// wallet held just before an outflow, which the watcher works out from the
// watched outputs when it decodes the spend (it is in the event's detail).
type Balances struct{}

// BalanceBefore returns the balance recorded on the outflow.
func (Balances) BalanceBefore(_ context.Context, ev *chains.Event) (chains.Amount, error) {
	v, ok := ev.Detail[DetailBalanceBefore]
	if !ok {
		return chains.Amount{}, fmt.Errorf("event %s carries no %s: only outflows of watched bitcoin wallets do", ev.ID, DetailBalanceBefore)
	}
	a, err := chains.ParseAmount(v)
	if err != nil {
		return chains.Amount{}, fmt.Errorf("event %s: %s %q: %w", ev.ID, DetailBalanceBefore, v, err)
	}
	return a, nil
}
