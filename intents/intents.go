// Package intents keeps the firm's approved withdrawals: what treasury meant
// to send, from which wallet, to whom, how much. The screening API registers
// an intent when it allows a withdrawal (or when a hold on it is approved);
// the unapproved-outflow detector reconciles every outflow against them, and
// an outflow that matches none is the alarm.
package intents

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"sort"
	"strings"
	"time"

	"github.com/keywatch/keywatch/chains"
	"github.com/keywatch/keywatch/store"
)

// Intent is one approved withdrawal.
type Intent struct {
	ID          string        `json:"id"` // the withdrawal's request id
	Chain       string        `json:"chain"`
	Wallet      string        `json:"wallet"`
	To          string        `json:"to"`
	Asset       string        `json:"asset"`
	Amount      chains.Amount `json:"amount"`
	RequestedBy string        `json:"requested_by,omitempty"`
	ApprovedBy  []string      `json:"approved_by,omitempty"`
	Source      string        `json:"source"` // screen, hold, cli, file
	CreatedAt   time.Time     `json:"created_at"`
	ExpiresAt   time.Time     `json:"expires_at"`
	// MatchedEvent is the id of the outflow this intent explained; an intent
	// explains one outflow only.
	MatchedEvent string `json:"matched_event,omitempty"`
}

// Match describes how an outflow is compared with intents.
type Match struct {
	// Tolerance is the accepted relative difference in amount (0.01 = 1%),
	// for fees taken from the amount.
	Tolerance float64
	// Window is how long after registration an intent stays usable when it
	// has no expiry of its own (0: until used).
	Window time.Duration
}

// Registry stores intents per wallet. All changes are atomic per wallet, so
// two instances cannot both consume one intent.
type Registry struct {
	st  store.Store
	now func() time.Time
}

// New makes a registry over a store; now may be nil (time.Now).
func New(st store.Store, now func() time.Time) *Registry {
	if now == nil {
		now = time.Now
	}
	return &Registry{st: st, now: now}
}

func key(chain, wallet string) string { return "intents:" + chain + ":" + wallet }

type book map[string]Intent // by intent id

func decode(b []byte, found bool) (book, error) {
	bk := book{}
	if !found {
		return bk, nil
	}
	if err := json.Unmarshal(b, &bk); err != nil {
		return nil, fmt.Errorf("intents: stored record is corrupt: %w", err)
	}
	return bk, nil
}

// ErrInvalid is wrapped by Register for an intent missing a required field.
var ErrInvalid = errors.New("invalid intent")

// Register stores an approved intent. Registering the same id again keeps the
// first (it is idempotent); a different intent under a used id is an error.
func (r *Registry) Register(ctx context.Context, in Intent) error {
	switch {
	case in.ID == "":
		return fmt.Errorf("%w: id is required", ErrInvalid)
	case in.Chain == "" || in.Wallet == "" || in.To == "" || in.Asset == "":
		return fmt.Errorf("%w: chain, wallet, to and asset are required", ErrInvalid)
	case in.Amount.Units == nil || in.Amount.Units.Sign() <= 0:
		return fmt.Errorf("%w: amount must be positive", ErrInvalid)
	}
	if in.CreatedAt.IsZero() {
		in.CreatedAt = r.now().UTC()
	}
	in.To = normalise(in.To)
	in.MatchedEvent = ""
	return r.st.Update(ctx, key(in.Chain, in.Wallet), func(old []byte, found bool) ([]byte, error) {
		bk, err := decode(old, found)
		if err != nil {
			return nil, err
		}
		if prev, ok := bk[in.ID]; ok {
			if prev.To != in.To || prev.Asset != in.Asset || prev.Amount.Cmp(in.Amount) != 0 {
				return nil, fmt.Errorf("%w: id %s is already registered for another withdrawal", ErrInvalid, in.ID)
			}
			return old, nil
		}
		bk[in.ID] = in
		return json.Marshal(bk)
	})
}

// Reconcile finds the intent that explains outflow ev and marks it used by
// ev. The same event reconciled again (pending, then confirmed) gets the same
// intent. ok is false when no intent explains the outflow.
func (r *Registry) Reconcile(ctx context.Context, ev *chains.Event, m Match) (Intent, bool, error) {
	var hit Intent
	var ok bool
	now := r.now()
	err := r.st.Update(ctx, key(ev.Chain, ev.Wallet), func(old []byte, found bool) ([]byte, error) {
		hit, ok = Intent{}, false
		bk, err := decode(old, found)
		if err != nil {
			return nil, err
		}
		// Already matched by this event.
		for _, in := range bk {
			if in.MatchedEvent == ev.ID {
				hit, ok = in, true
				return old, nil
			}
		}
		var cands []Intent
		for _, in := range bk {
			if in.MatchedEvent == "" && matches(in, ev, m, now) {
				cands = append(cands, in)
			}
		}
		if len(cands) == 0 {
			if !found {
				return nil, nil
			}
			return old, nil
		}
		// The oldest matching intent explains the outflow.
		sort.Slice(cands, func(i, j int) bool { return cands[i].CreatedAt.Before(cands[j].CreatedAt) })
		hit, ok = cands[0], true
		hit.MatchedEvent = ev.ID
		bk[hit.ID] = hit
		return json.Marshal(bk)
	})
	if err != nil {
		return Intent{}, false, fmt.Errorf("reconcile %s: %w", ev.ID, err)
	}
	return hit, ok, nil
}

// Release undoes a reconciliation (the outflow was retracted by a reorg), so
// the intent can explain the transaction when it lands again.
func (r *Registry) Release(ctx context.Context, ev *chains.Event) error {
	return r.st.Update(ctx, key(ev.Chain, ev.Wallet), func(old []byte, found bool) ([]byte, error) {
		bk, err := decode(old, found)
		if err != nil || !found {
			return old, err
		}
		for id, in := range bk {
			if in.MatchedEvent == ev.ID {
				in.MatchedEvent = ""
				bk[id] = in
			}
		}
		return json.Marshal(bk)
	})
}

// List returns the intents of a wallet, oldest first.
func (r *Registry) List(ctx context.Context, chain, wallet string) ([]Intent, error) {
	b, err := r.st.Get(ctx, key(chain, wallet))
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	bk, err := decode(b, true)
	if err != nil {
		return nil, err
	}
	out := make([]Intent, 0, len(bk))
	for _, in := range bk {
		out = append(out, in)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].CreatedAt.Before(out[j].CreatedAt) })
	return out, nil
}

func matches(in Intent, ev *chains.Event, m Match, now time.Time) bool {
	if in.Chain != ev.Chain || in.Wallet != ev.Wallet || !strings.EqualFold(in.Asset, ev.Asset) || in.To != normalise(ev.To) {
		return false
	}
	expires := in.ExpiresAt
	if expires.IsZero() && m.Window > 0 {
		expires = in.CreatedAt.Add(m.Window)
	}
	if !expires.IsZero() && now.After(expires) {
		return false
	}
	return withinTolerance(in.Amount, ev.Amount, m.Tolerance)
}

// withinTolerance reports |a-b| <= tol*a.
func withinTolerance(want, got chains.Amount, tol float64) bool {
	diff := new(big.Rat).Sub(want.Rat(), got.Rat())
	diff.Abs(diff)
	limit := new(big.Rat).Mul(want.Rat(), new(big.Rat).SetFloat64(max(tol, 0)))
	return diff.Cmp(limit) <= 0
}

// normalise lowercases EVM addresses; other forms are kept as written.
func normalise(addr string) string {
	if strings.HasPrefix(addr, "0x") || strings.HasPrefix(addr, "0X") {
		return strings.ToLower(addr)
	}
	return addr
}
