// The audit entries of a hold's life (creation, approvals, rejection,
// escalation, expiry), each recorded once and recorded later when a failure
// kept it out.

package holds

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/keywatch/keywatch/audit"
	"github.com/keywatch/keywatch/store"
)

// auditCreation records an alert hold's creation in the audit log. A marker
// written after the entry says it is there: when indexing or recording
// failed after the hold's record was written, the event comes again (the
// watcher retries it) and finds the hold made but not recorded, and records
// it then.
func (m *Manager) auditCreation(ctx context.Context, h *Hold, created bool) error {
	if m.o.Audit == nil {
		return nil
	}
	if !created {
		_, err := m.o.Store.Get(ctx, auditedKey(h.ID))
		if err == nil {
			return nil
		}
		if !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("hold %s: %w", h.ID, err)
		}
	}
	if err := m.audit(ctx, audit.ActionHoldCreate, "keywatch", map[string]any{
		"hold": h.ID, "source": h.Source, "event": h.EventID, "wallets": h.Wallets, "reasons": h.Reasons, "expires_at": h.ExpiresAt,
	}); err != nil {
		return err
	}
	if err := m.o.Store.Set(ctx, auditedKey(h.ID), []byte(h.CreatedAt.Format(time.RFC3339Nano)), 0); err != nil {
		return fmt.Errorf("hold %s: mark its creation recorded: %w", h.ID, err)
	}
	return nil
}

// auditApproval records by's approval of h in the audit log unless it is
// there already.
func (m *Manager) auditApproval(ctx context.Context, h *Hold, by string) error {
	for i, a := range h.Approvals {
		if !samePrincipal(a.By, by) {
			continue
		}
		status := Held
		if i+1 >= h.ApprovalsRequired {
			status = Approved
		}
		return m.auditOnce(ctx, h.ID, audit.ActionHoldApprove, a.By, map[string]any{
			"hold": h.ID, "comment": a.Comment, "approvals": i + 1, "approvals_required": h.ApprovalsRequired, "status": status, "at": a.At,
		})
	}
	return nil
}

// auditDecisions records what was decided about h and is not in the audit
// log yet: every approval, the rejection, the escalation, the expiry. The
// sweep calls it for a decided hold that is still open, which is one whose
// decision failed half way.
func (m *Manager) auditDecisions(ctx context.Context, h *Hold) error {
	for _, a := range h.Approvals {
		if err := m.auditApproval(ctx, h, a.By); err != nil {
			return err
		}
	}
	if r := h.Rejection; r != nil {
		if err := m.auditRejection(ctx, h); err != nil {
			return err
		}
	}
	if h.EscalatedAt != nil {
		if err := m.auditEscalation(ctx, h); err != nil {
			return err
		}
	}
	if h.Status == Expired {
		return m.auditExpiry(ctx, h)
	}
	return nil
}

func (m *Manager) auditRejection(ctx context.Context, h *Hold) error {
	r := h.Rejection
	return m.auditOnce(ctx, h.ID, audit.ActionHoldReject, r.By, map[string]any{"hold": h.ID, "comment": r.Comment, "wallets": h.Wallets, "at": r.At})
}

func (m *Manager) auditEscalation(ctx context.Context, h *Hold) error {
	return m.auditOnce(ctx, h.ID, audit.ActionHoldEscalate, "keywatch", map[string]any{"hold": h.ID, "expires_at": h.ExpiresAt, "approvals": len(h.Approvals), "at": h.EscalatedAt})
}

func (m *Manager) auditExpiry(ctx context.Context, h *Hold) error {
	return m.auditOnce(ctx, h.ID, audit.ActionHoldExpire, "keywatch", map[string]any{"hold": h.ID, "approvals": len(h.Approvals), "wallets": h.Wallets, "at": h.DecidedAt})
}

// auditOnce appends an entry about hold id unless a marker says it was
// appended already, and writes the marker after it. A failure between the
// two can record the entry twice, never lose it.
func (m *Manager) auditOnce(ctx context.Context, id, action, actor string, details map[string]any) error {
	if m.o.Audit == nil {
		return nil
	}
	marker := auditedKey(id) + ":" + action + ":" + strings.ToLower(actor)
	_, err := m.o.Store.Get(ctx, marker)
	if err == nil {
		return nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("hold %s: %w", id, err)
	}
	if err := m.audit(ctx, action, actor, details); err != nil {
		return err
	}
	if err := m.o.Store.Set(ctx, marker, []byte(m.o.Now().UTC().Format(time.RFC3339Nano)), 0); err != nil {
		return fmt.Errorf("hold %s: mark its %s recorded: %w", id, action, err)
	}
	return nil
}

func (m *Manager) audit(ctx context.Context, action, actor string, details any) error {
	if m.o.Audit == nil {
		return nil
	}
	if err := m.o.Audit.Record(ctx, action, actor, details); err != nil {
		return fmt.Errorf("audit %s: %w", action, err)
	}
	return nil
}
