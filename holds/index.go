// The listing, expiry and freeze indexes over the hold records, and the
// reads that use them: List and a wallet's Status.

package holds

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// Filter narrows List.
type Filter struct {
	Status Status // "" for all
	Wallet string // "" for all
	Limit  int    // default 100
}

// List returns holds, newest first.
func (m *Manager) List(ctx context.Context, f Filter) ([]Hold, error) {
	if f.Limit <= 0 {
		f.Limit = 100
	}
	if f.Status == Held {
		return m.listHeld(ctx, f)
	}
	ids, err := m.o.Store.ZRangeByScore(ctx, allKey, math.Inf(-1), math.Inf(1))
	if err != nil {
		return nil, fmt.Errorf("list holds: %w", err)
	}
	out := []Hold{}
	for i := len(ids) - 1; i >= 0 && len(out) < f.Limit; i-- {
		h, err := m.Get(ctx, ids[i].Member)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if f.matches(&h) {
			out = append(out, h)
		}
	}
	return out, nil
}

// listHeld lists the held holds from the open index, which holds every held
// hold (the sweep expires them from it), rather than reading every hold ever
// made: the queue operators watch, polled by the console every few seconds.
func (m *Manager) listHeld(ctx context.Context, f Filter) ([]Hold, error) {
	ids, err := m.o.Store.ZRangeByScore(ctx, openKey, math.Inf(-1), math.Inf(1))
	if err != nil {
		return nil, fmt.Errorf("list holds: %w", err)
	}
	out := []Hold{}
	for _, z := range ids {
		h, err := m.Get(ctx, z.Member)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if f.matches(&h) {
			out = append(out, h)
		}
	}
	// Newest first, in the order of the listing index (creation time to the
	// millisecond, then id).
	slices.SortFunc(out, func(a, b Hold) int {
		if c := cmp.Compare(b.CreatedAt.UnixMilli(), a.CreatedAt.UnixMilli()); c != 0 {
			return c
		}
		return strings.Compare(b.ID, a.ID)
	})
	return out[:min(len(out), f.Limit)], nil
}

func (f *Filter) matches(h *Hold) bool {
	return (f.Status == "" || h.Status == f.Status) && (f.Wallet == "" || h.Wallet == f.Wallet || slices.Contains(h.Wallets, f.Wallet))
}

// WalletStatus is what the withdrawal system checks before signing.
type WalletStatus struct {
	Wallet string    `json:"wallet"`
	Frozen bool      `json:"frozen"`
	Holds  []Summary `json:"holds"`
}

// Summary is a short view of a hold.
type Summary struct {
	ID        string    `json:"id"`
	Status    Status    `json:"status"`
	Reasons   []string  `json:"reasons"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

// Status says whether a wallet is frozen and by which holds.
func (m *Manager) Status(ctx context.Context, wallet string) (WalletStatus, error) {
	ws := WalletStatus{Wallet: wallet, Holds: []Summary{}}
	ids, err := m.o.Store.ZRangeByScore(ctx, freezeKey(wallet), math.Inf(-1), math.Inf(1))
	if err != nil {
		return ws, fmt.Errorf("wallet %s status: %w", wallet, err)
	}
	for _, z := range ids {
		h, err := m.Get(ctx, z.Member)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return ws, err
		}
		if !h.Freezes() {
			// Released: drop it from the wallet's index (best effort).
			if err := m.o.Store.ZRem(ctx, freezeKey(wallet), h.ID); err != nil {
				m.log.Warn("cannot drop a released hold from a wallet's index", "hold", h.ID, "wallet", wallet, "err", err)
			}
			continue
		}
		ws.Frozen = true
		ws.Holds = append(ws.Holds, Summary{ID: h.ID, Status: h.Status, Reasons: h.Reasons, CreatedAt: h.CreatedAt, ExpiresAt: h.ExpiresAt})
	}
	return ws, nil
}

// index records a held hold in the listing, expiry and freeze indexes. The
// indexes are hints: readers check the record itself.
func (m *Manager) index(ctx context.Context, h *Hold) error {
	if err := m.o.Store.ZAdd(ctx, allKey, float64(h.CreatedAt.UnixMilli()), h.ID); err != nil {
		return fmt.Errorf("index hold %s: %w", h.ID, err)
	}
	if h.Status != Held {
		return nil
	}
	if err := m.o.Store.ZAdd(ctx, openKey, float64(h.ExpiresAt.Unix()), h.ID); err != nil {
		return fmt.Errorf("index hold %s: %w", h.ID, err)
	}
	if h.Freezes() {
		for _, w := range h.Wallets {
			if err := m.o.Store.ZAdd(ctx, freezeKey(w), float64(h.CreatedAt.UnixMilli()), h.ID); err != nil {
				return fmt.Errorf("freeze wallet %s: %w", w, err)
			}
		}
	}
	return nil
}
