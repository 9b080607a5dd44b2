package policies

import (
	"context"

	"github.com/keywatch/keywatch/chains"
	"github.com/keywatch/keywatch/hops"
	"github.com/keywatch/keywatch/intents"
)

// Intents is what unapproved-outflow needs of the approved withdrawals
// (*intents.Registry): the intent that explains an outflow, consumed so it
// explains no other; how many a wallet has open; and the release of the
// intent a retracted outflow had used.
type Intents interface {
	Reconcile(ctx context.Context, ev *chains.Event, m intents.Match) (intents.Intent, bool, error)
	CountOpen(ctx context.Context, chain, wallet string) (int, error)
	Release(ctx context.Context, ev *chains.Event) error
}

// Hops is what forwarding needs of the followed addresses (*hops.Registry):
// follow an address, read how funds reached one, and forget the addresses a
// retracted outflow had made followed.
type Hops interface {
	Follow(ctx context.Context, h hops.Hop) error
	Get(ctx context.Context, chain, policy, addr string) (hops.Hop, bool, error)
	Forget(ctx context.Context, chain, eventID string) error
}
