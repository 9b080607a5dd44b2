// Package hops remembers the addresses keywatch follows after funds leave a
// watched wallet for an address outside the address book: the fresh address
// a thief uses, the next one, and so on, for a bounded number of hops and a
// bounded time. The forwarding detector decides what to follow and judges
// where the funds go next; the chain watchers read the followed addresses to
// decode those addresses' outflows. The set lives in the store, so it
// survives restarts and every instance sees the same one.
package hops

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/keywatch/keywatch/chains"
	"github.com/keywatch/keywatch/store"
)

// Step is one movement on the way from a watched wallet to a followed
// address.
type Step struct {
	From   string        `json:"from"`
	To     string        `json:"to"`
	Via    string        `json:"via,omitempty"` // a router the movement went through
	Tx     string        `json:"tx"`
	Event  string        `json:"event"`
	Asset  string        `json:"asset"`
	Amount chains.Amount `json:"amount"`
	Time   time.Time     `json:"time"`
}

// Hop is a followed address and how funds got there.
type Hop struct {
	Policy  string `json:"policy"` // the forwarding policy that follows it
	Chain   string `json:"chain"`
	Address string `json:"address"` // lowercase for EVM addresses
	// Depth counts the movements from the watched wallet: 1 for an address
	// that received funds straight from it.
	Depth int `json:"depth"`
	// Root is the watched wallet the funds left, and RootEvent that outflow.
	Root      string `json:"root"`
	RootEvent string `json:"root_event"`
	Path      []Step `json:"path"` // Depth steps, from the watched wallet to Address
	// Until is when following stops (the outflow's time plus the window).
	Until time.Time `json:"until"`
}

// AddedBy is the event that led to the address (the last step).
func (h Hop) AddedBy() string {
	if len(h.Path) == 0 {
		return ""
	}
	return h.Path[len(h.Path)-1].Event
}

// Registry stores followed addresses per chain.
type Registry struct{ st store.Store }

// New makes a registry over a store.
func New(st store.Store) *Registry { return &Registry{st: st} }

func key(chain string) string { return "hops:" + chain }

func field(policy, addr string) string { return policy + "|" + chains.NormaliseAddress(addr) }

// followed is the codec of the hop at addr on chain, named for its errors.
func (r *Registry) followed(chain, addr string) store.Records[Hop] {
	return store.NewRecords[Hop](r.st, "followed address "+addr+" on "+chain)
}

// Follow starts following h.Address. When the address is already followed
// for the same policy, the shorter path (or, at equal depth, the one followed
// longer) is kept, so delivering an event again (pending, then confirmed)
// changes nothing.
func (r *Registry) Follow(ctx context.Context, h Hop) error {
	h.Address = chains.NormaliseAddress(h.Address)
	prev, ok, err := r.Get(ctx, h.Chain, h.Policy, h.Address)
	if err != nil {
		return err
	}
	if ok && (prev.Depth < h.Depth || (prev.Depth == h.Depth && !prev.Until.Before(h.Until)) || prev.AddedBy() == h.AddedBy()) {
		return nil
	}
	return r.followed(h.Chain, h.Address).HPut(ctx, key(h.Chain), field(h.Policy, h.Address), h)
}

// Get returns the hop a policy follows at addr.
func (r *Registry) Get(ctx context.Context, chain, policy, addr string) (Hop, bool, error) {
	return r.followed(chain, addr).HGet(ctx, key(chain), field(policy, addr))
}

// All returns every hop followed on a chain, whatever its expiry, ordered
// by address and policy.
func (r *Registry) All(ctx context.Context, chain string) ([]Hop, error) {
	m, err := store.NewRecords[Hop](r.st, "followed addresses of "+chain).HGetAll(ctx, key(chain))
	if err != nil {
		return nil, err
	}
	out := make([]Hop, 0, len(m))
	for _, h := range m {
		out = append(out, h)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Address != out[j].Address {
			return out[i].Address < out[j].Address
		}
		return out[i].Policy < out[j].Policy
	})
	return out, nil
}

// Addresses returns the distinct addresses followed on a chain at time at,
// and forgets those whose window has passed.
func (r *Registry) Addresses(ctx context.Context, chain string, at time.Time) ([]string, error) {
	hs, err := r.All(ctx, chain)
	if err != nil {
		return nil, err
	}
	var out, expired []string
	for _, h := range hs {
		if at.After(h.Until) {
			expired = append(expired, field(h.Policy, h.Address))
			continue
		}
		if len(out) == 0 || out[len(out)-1] != h.Address {
			out = append(out, h.Address)
		}
	}
	if len(expired) > 0 {
		if err := r.st.HDel(ctx, key(chain), expired...); err != nil {
			return nil, fmt.Errorf("forget expired followed addresses of %s: %w", chain, err)
		}
	}
	return out, nil
}

// Forget stops following the addresses an event led to: the event was
// retracted by a reorg.
func (r *Registry) Forget(ctx context.Context, chain, eventID string) error {
	hs, err := r.All(ctx, chain)
	if err != nil {
		return err
	}
	var drop []string
	for _, h := range hs {
		if h.AddedBy() == eventID {
			drop = append(drop, field(h.Policy, h.Address))
		}
	}
	if len(drop) == 0 {
		return nil
	}
	if err := r.st.HDel(ctx, key(chain), drop...); err != nil {
		return fmt.Errorf("forget addresses followed after %s: %w", eventID, err)
	}
	return nil
}
