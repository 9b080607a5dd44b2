// Closing a decided hold: registering an approved withdrawal, dropping the
// hold from the open and freeze indexes, resolving its escalation, and
// queueing a half-finished decision for the next sweep.

package holds

import (
	"context"
	"fmt"
	"strings"

	"github.com/keywatch/keywatch/alertmodel"
	"github.com/keywatch/keywatch/intents"
)

// resweep puts a decided hold whose decision failed half way (its audit
// entry, its release, its closing) at the front of the open index, so the
// next sweep finishes it rather than the one near its expiry. Best effort:
// the store may be failing still, and then the sweep finds it later.
func (m *Manager) resweep(ctx context.Context, h *Hold) {
	if h.Status == Held {
		return
	}
	if err := m.o.Store.ZAdd(ctx, openKey, 0, h.ID); err != nil {
		m.log.Warn("cannot queue a half-decided hold for the next sweep; it is finished near its expiry", "hold", h.ID, "err", err)
	}
}

// release registers an approved screening hold's withdrawal as an approved
// intent and drops the hold from the open and freeze indexes.
func (m *Manager) release(ctx context.Context, h *Hold) error {
	if h.Source == FromScreen && h.Request != nil && m.o.Intents != nil {
		r := h.Request
		err := m.o.Intents.Register(ctx, intents.Intent{
			ID: h.RequestID, Chain: r.Chain, Wallet: r.Wallet, To: r.To, Asset: r.Asset, Amount: r.Amount,
			RequestedBy: h.RequestedBy, ApprovedBy: h.ApprovedBy(), Source: "hold",
		})
		if err != nil {
			return fmt.Errorf("register the approved withdrawal of hold %s: %w", h.ID, err)
		}
	}
	return m.close(ctx, h)
}

// close drops a decided hold from the open index and, once it no longer
// freezes them, from its wallets' freeze indexes. A hold that was escalated
// has its hold-expiring alert resolved first: the hold no longer waits for
// anyone. Until close succeeds the hold stays in the open index, where the
// sweep finds it and closes it again.
func (m *Manager) close(ctx context.Context, h *Hold) error {
	if h.EscalatedAt != nil {
		if err := m.o.Notify(ctx, m.escalationResolved(h)); err != nil {
			return fmt.Errorf("close hold %s: resolve its escalation: %w", h.ID, err)
		}
	}
	if err := m.o.Store.ZRem(ctx, openKey, h.ID); err != nil {
		return fmt.Errorf("close hold %s: %w", h.ID, err)
	}
	if !h.Freezes() {
		for _, w := range h.Wallets {
			if err := m.o.Store.ZRem(ctx, freezeKey(w), h.ID); err != nil {
				return fmt.Errorf("unfreeze wallet %s: %w", w, err)
			}
		}
	}
	return nil
}

// escalationResolved is the resolution of a decided hold's hold-expiring
// alert, saying how it was decided.
func (m *Manager) escalationResolved(h *Hold) alertmodel.Alert {
	why := fmt.Sprintf("hold %s is %s", h.ID, h.Status)
	switch {
	case h.Status == Approved:
		why = fmt.Sprintf("hold %s was approved by %s", h.ID, strings.Join(h.ApprovedBy(), ", "))
	case h.Status == Rejected && h.Rejection != nil:
		why = fmt.Sprintf("hold %s was rejected by %s", h.ID, h.Rejection.By)
	case h.Status == Expired:
		why = fmt.Sprintf("hold %s expired unreleased (see its hold-expired alert)", h.ID)
	}
	return alertmodel.System(alertmodel.KindHoldExpiring, h.ID, alertmodel.High, h.Chain, nil, *h.EscalatedAt).Resolved(why, m.o.Now())
}
