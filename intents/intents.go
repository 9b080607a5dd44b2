// Package intents keeps the firm's approved withdrawals: what treasury meant
// to send, from which wallet, to whom, how much. The screening API registers
// an intent when it allows a withdrawal (or when a hold on it is approved);
// the unapproved-outflow detector reconciles every outflow against them, and
// an outflow that matches none is the alarm.
package intents

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"sort"
	"strconv"
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

// Registry stores intents in the store: one record per intent, an index of
// each wallet's open intents, and an index by destination, so registering is
// a constant number of writes and reconciling reads only the intents for the
// outflow's destination. Consuming an intent is an atomic update of its
// record, so two instances cannot both use one intent.
type Registry struct {
	st   store.Store
	now  func() time.Time
	keep time.Duration
}

// New makes a registry over a store; now may be nil (time.Now).
func New(st store.Store, now func() time.Time) *Registry {
	if now == nil {
		now = time.Now
	}
	return &Registry{st: st, now: now, keep: 30 * 24 * time.Hour}
}

func recordKey(chain, wallet, id string) string { return "intent:" + chain + ":" + wallet + ":" + id }
func openKey(chain, wallet string) string       { return "intents:open:" + chain + ":" + wallet }
func destKey(chain, wallet, to string) string {
	return "intents:to:" + chain + ":" + wallet + ":" + chains.NormaliseAddress(to)
}
func matchedKey(chain, eventID string) string { return "intents:matched:" + chain + ":" + eventID }

// record is the codec of intent id's record, named for its errors ("read
// intent w1: ...", "intent w1 is corrupt: ...").
func (r *Registry) record(id string) store.Records[Intent] {
	return store.NewRecords[Intent](r.st, "intent "+id)
}

// ErrInvalid is wrapped by Register for an intent missing a required field.
var ErrInvalid = errors.New("invalid intent")

// validID reports whether an id can be part of the registry's store keys.
func validID(id string) bool { return !strings.ContainsAny(id, ":\n") }

// errTaken says another outflow consumed the intent first.
var errTaken = errors.New("intent already used")

// Register stores an approved intent. Registering the same id again keeps the
// first (it is idempotent); a different intent under a used id is an error.
func (r *Registry) Register(ctx context.Context, in Intent) error {
	switch {
	case in.ID == "":
		return fmt.Errorf("%w: id is required", ErrInvalid)
	case !validID(in.ID):
		return fmt.Errorf("%w: id %q may not contain ':' or a line break", ErrInvalid, in.ID)
	case in.Chain == "" || in.Wallet == "" || in.To == "" || in.Asset == "":
		return fmt.Errorf("%w: chain, wallet, to and asset are required", ErrInvalid)
	case in.Amount.Units == nil || in.Amount.Units.Sign() <= 0:
		return fmt.Errorf("%w: amount must be positive", ErrInvalid)
	}
	if in.CreatedAt.IsZero() {
		in.CreatedAt = r.now().UTC()
	}
	in.To = chains.NormaliseAddress(in.To)
	in.MatchedEvent = ""
	created, err := r.record(in.ID).PutNew(ctx, recordKey(in.Chain, in.Wallet, in.ID), in, 0)
	if err != nil {
		return fmt.Errorf("register intent %s: %w", in.ID, err)
	}
	if !created {
		prev, found, err := r.get(ctx, in.Chain, in.Wallet, in.ID)
		if err != nil {
			return err
		}
		if !found { // it expired between the two reads
			return fmt.Errorf("read intent %s: %w", in.ID, store.ErrNotFound)
		}
		if prev.To != in.To || !strings.EqualFold(prev.Asset, in.Asset) || prev.Amount.Cmp(in.Amount) != 0 {
			return fmt.Errorf("%w: id %s is already registered for another withdrawal", ErrInvalid, in.ID)
		}
		if prev.MatchedEvent != "" {
			return nil // used: it stays out of the indexes
		}
	}
	// The indexes are written after the record (and again on a repeat, which
	// mends them after a crash between the writes).
	if err := r.index(ctx, in); err != nil {
		return fmt.Errorf("register intent %s: %w", in.ID, err)
	}
	return nil
}

func (r *Registry) index(ctx context.Context, in Intent) error {
	if err := r.st.HSet(ctx, openKey(in.Chain, in.Wallet), in.ID, []byte(in.To)); err != nil {
		return err
	}
	return r.st.HSet(ctx, destKey(in.Chain, in.Wallet, in.To), in.ID, []byte("1"))
}

func (r *Registry) unindex(ctx context.Context, in Intent) error {
	if err := r.st.HDel(ctx, openKey(in.Chain, in.Wallet), in.ID); err != nil {
		return err
	}
	return r.st.HDel(ctx, destKey(in.Chain, in.Wallet, in.To), in.ID)
}

// rewrite stores an intent's record again with a new lifetime (0: none).
func (r *Registry) rewrite(ctx context.Context, in Intent, ttl time.Duration) error {
	return r.record(in.ID).Put(ctx, recordKey(in.Chain, in.Wallet, in.ID), in, ttl)
}

// get reads an intent's record; found is false when there is none (a used
// intent's record expires while an index may still name it).
func (r *Registry) get(ctx context.Context, chain, wallet, id string) (in Intent, found bool, err error) {
	return r.record(id).Get(ctx, recordKey(chain, wallet, id))
}

// expired reports whether an open intent can no longer explain an outflow.
func expired(in Intent, m Match, now time.Time) bool {
	expires := in.ExpiresAt
	if expires.IsZero() && m.Window > 0 {
		expires = in.CreatedAt.Add(m.Window)
	}
	return !expires.IsZero() && now.After(expires)
}

// Reconcile finds the intent that explains outflow ev and marks it used by
// ev. The same event reconciled again (pending, then confirmed) gets the same
// intent. ok is false when no intent explains the outflow.
func (r *Registry) Reconcile(ctx context.Context, ev *chains.Event, m Match) (Intent, bool, error) {
	fail := func(err error) (Intent, bool, error) {
		return Intent{}, false, fmt.Errorf("reconcile %s: %w", ev.ID, err)
	}
	if id, err := r.st.Get(ctx, matchedKey(ev.Chain, ev.ID)); err == nil {
		in, found, err := r.get(ctx, ev.Chain, ev.Wallet, string(id))
		if err == nil && found && in.MatchedEvent == ev.ID {
			return in, true, nil
		}
	} else if !errors.Is(err, store.ErrNotFound) {
		return fail(err)
	}
	ids, err := r.st.HGetAll(ctx, destKey(ev.Chain, ev.Wallet, ev.To))
	if err != nil {
		return fail(err)
	}
	now := r.now()
	var cands []Intent
	for id := range ids {
		in, found, err := r.get(ctx, ev.Chain, ev.Wallet, id)
		if err != nil {
			return fail(err)
		}
		if !found {
			continue // an index entry whose record expired
		}
		switch {
		case in.MatchedEvent == ev.ID:
			cands = append([]Intent{in}, cands...) // a crash came between the writes: finish them
		case in.MatchedEvent != "":
			_ = r.unindex(ctx, in)
		case expired(in, m, now):
			if err := r.unindex(ctx, in); err != nil {
				return fail(err)
			}
		case matches(in, ev, m, now):
			cands = append(cands, in)
		}
	}
	// The oldest matching intent explains the outflow; of intents registered
	// at the same instant, the smallest id, so that the choice does not
	// depend on the order the index is read in.
	sort.Slice(cands, func(i, j int) bool {
		if cands[i].MatchedEvent != cands[j].MatchedEvent {
			return cands[i].MatchedEvent == ev.ID
		}
		if !cands[i].CreatedAt.Equal(cands[j].CreatedAt) {
			return cands[i].CreatedAt.Before(cands[j].CreatedAt)
		}
		return cands[i].ID < cands[j].ID
	})
	for _, c := range cands {
		var used Intent
		err := r.record(c.ID).Update(ctx, recordKey(c.Chain, c.Wallet, c.ID), func(cur Intent, found bool) (Intent, error) {
			if !found || (cur.MatchedEvent != "" && cur.MatchedEvent != ev.ID) {
				return cur, errTaken
			}
			cur.MatchedEvent = ev.ID
			used = cur
			return cur, nil
		})
		if errors.Is(err, errTaken) {
			continue
		}
		if err != nil {
			return fail(err)
		}
		if err := r.st.Set(ctx, matchedKey(ev.Chain, ev.ID), []byte(used.ID), r.keep); err != nil {
			return fail(err)
		}
		// A used intent is kept for the record, then forgotten.
		if err := r.rewrite(ctx, used, r.keep); err != nil {
			return fail(err)
		}
		if err := r.unindex(ctx, used); err != nil {
			return fail(err)
		}
		return used, true, nil
	}
	return Intent{}, false, nil
}

// Release undoes a reconciliation (the outflow was retracted by a reorg), so
// the intent can explain the transaction when it lands again.
func (r *Registry) Release(ctx context.Context, ev *chains.Event) error {
	id, err := r.st.Get(ctx, matchedKey(ev.Chain, ev.ID))
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("release %s: %w", ev.ID, err)
	}
	var freed Intent
	err = r.record(string(id)).Update(ctx, recordKey(ev.Chain, ev.Wallet, string(id)), func(cur Intent, found bool) (Intent, error) {
		if !found {
			return cur, store.ErrUnchanged
		}
		if cur.MatchedEvent == ev.ID {
			cur.MatchedEvent = ""
		}
		freed = cur
		return cur, nil
	})
	if err != nil {
		return fmt.Errorf("release %s: %w", ev.ID, err)
	}
	if freed.ID != "" && freed.MatchedEvent == "" {
		if err := r.rewrite(ctx, freed, 0); err != nil { // open again: no expiry
			return fmt.Errorf("release %s: %w", ev.ID, err)
		}
		if err := r.index(ctx, freed); err != nil {
			return fmt.Errorf("release %s: %w", ev.ID, err)
		}
	}
	return r.st.Delete(ctx, matchedKey(ev.Chain, ev.ID))
}

// List returns the open intents of a wallet (registered, not yet used),
// oldest first.
func (r *Registry) List(ctx context.Context, chain, wallet string) ([]Intent, error) {
	ids, err := r.st.HGetAll(ctx, openKey(chain, wallet))
	if err != nil {
		return nil, err
	}
	out := make([]Intent, 0, len(ids))
	for id := range ids {
		in, found, err := r.get(ctx, chain, wallet, id)
		if err != nil {
			return nil, err
		}
		if found && in.MatchedEvent == "" {
			out = append(out, in)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].CreatedAt.Before(out[j].CreatedAt)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// CountOpen counts a wallet's open intents from its index alone (one read,
// whatever their number): what an alert about an unexplained outflow says.
func (r *Registry) CountOpen(ctx context.Context, chain, wallet string) (int, error) {
	ids, err := r.st.HGetAll(ctx, openKey(chain, wallet))
	if err != nil {
		return 0, fmt.Errorf("count open intents of %s: %w", wallet, err)
	}
	return len(ids), nil
}

func matches(in Intent, ev *chains.Event, m Match, now time.Time) bool {
	if in.Chain != ev.Chain || in.Wallet != ev.Wallet || !strings.EqualFold(in.Asset, ev.Asset) || in.To != chains.NormaliseAddress(ev.To) {
		return false
	}
	if expired(in, m, now) {
		return false
	}
	return withinTolerance(in.Amount, ev.Amount, m.Tolerance)
}

// withinTolerance reports |want-got| <= tol*want, with tol read as the
// decimal it was written as (0.03 is 3/100, not the float64 just under it).
func withinTolerance(want, got chains.Amount, tol float64) bool {
	diff := new(big.Rat).Sub(want.Rat(), got.Rat())
	diff.Abs(diff)
	share, ok := new(big.Rat).SetString(strconv.FormatFloat(tol, 'f', -1, 64))
	if !ok || share.Sign() < 0 {
		share = new(big.Rat)
	}
	return diff.Cmp(share.Mul(share, want.Rat())) <= 0
}
