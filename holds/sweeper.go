// The sweeper: escalates holds about to expire, expires the ones whose time
// is up, and finishes decisions that failed half way.

package holds

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/keywatch/keywatch/alertmodel"
)

// Run escalates and expires holds until ctx ends.
func (m *Manager) Run(ctx context.Context) error {
	t := time.NewTicker(m.o.SweepEvery)
	defer t.Stop()
	for {
		if err := m.Sweep(ctx); err != nil && ctx.Err() == nil {
			m.log.Error("holds sweep failed; retrying", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Sweep raises the escalation alert for holds about to expire (once each)
// and expires the holds whose time is up.
func (m *Manager) Sweep(ctx context.Context) error {
	now := m.o.Now().UTC()
	soon := now.Add(m.o.Config.Holds.EscalateBefore.D())
	due, err := m.o.Store.ZRangeByScore(ctx, openKey, math.Inf(-1), float64(soon.Unix()))
	if err != nil {
		return fmt.Errorf("sweep holds: %w", err)
	}
	var errs []error
	for _, z := range due {
		if err := m.sweepOne(ctx, z.Member, now); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (m *Manager) sweepOne(ctx context.Context, id string, now time.Time) error {
	h, err := m.Get(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return m.o.Store.ZRem(ctx, openKey, id)
	}
	if err != nil {
		return err
	}
	switch {
	case h.Status == Held && !now.Before(h.ExpiresAt):
		return m.expire(ctx, &h, now)
	case h.Status == Expired:
		// Expired by an earlier sweep that could not record it, say so or
		// close it.
		if err := m.auditDecisions(ctx, &h); err != nil {
			return err
		}
		return m.announceExpiry(ctx, &h, now)
	case h.Status != Held:
		return m.finish(ctx, &h)
	case h.EscalatedAt != nil:
		return nil
	}
	return m.escalate(ctx, &h, now)
}

// escalate raises the hold-expiring alert, then marks the hold escalated.
// When the hold was decided meanwhile, it is closed at once, which resolves
// the alert just raised.
func (m *Manager) escalate(ctx context.Context, h *Hold, now time.Time) error {
	left := h.ExpiresAt.Sub(now).Round(time.Second)
	reasons := append([]string{fmt.Sprintf("hold %s on %s expires in %s with %d of %d approvals: it will stay unreleased (%s)",
		h.ID, h.Wallet, left, len(h.Approvals), h.ApprovalsRequired, freezeNote(h))}, h.Reasons...)
	if err := m.o.Notify(ctx, alertmodel.System(alertmodel.KindHoldExpiring, h.ID, alertmodel.High, h.Chain, reasons, now)); err != nil {
		return fmt.Errorf("escalate hold %s: %w", h.ID, err)
	}
	marked, absent, err := m.mark(ctx, h, func(h *Hold) bool {
		if h.EscalatedAt != nil {
			return false
		}
		h.EscalatedAt = &now
		return true
	})
	if absent {
		return m.o.Store.ZRem(ctx, openKey, h.ID)
	}
	if err != nil {
		return fmt.Errorf("escalate hold %s: %w", h.ID, err)
	}
	if marked {
		m.log.Warn("hold about to expire: escalated", "hold", h.ID, "expires_at", h.ExpiresAt)
	}
	if err := m.auditEscalation(ctx, h); err != nil {
		return err
	}
	if h.Status != Held {
		return m.finish(ctx, h)
	}
	return nil
}

// finish completes a decision that failed half way: it records what the
// audit log lacks, registers an approved withdrawal and closes the hold.
func (m *Manager) finish(ctx context.Context, h *Hold) error {
	if err := m.auditDecisions(ctx, h); err != nil {
		return err
	}
	if h.Status == Approved {
		return m.release(ctx, h)
	}
	return m.close(ctx, h)
}

func freezeNote(h *Hold) string {
	if h.Freezes() {
		return "wallets " + strings.Join(h.Wallets, ", ") + " stay frozen"
	}
	return "the withdrawal will not be allowed"
}

// expire records that a held hold expired, then says so. The state changes
// first, so that the hold-expired alert goes out only for a hold that did
// expire, never for one a concurrent rejection or approval ended.
func (m *Manager) expire(ctx context.Context, h *Hold, now time.Time) error {
	changed, absent, err := m.mark(ctx, h, func(h *Hold) bool {
		if h.Status != Held {
			return false
		}
		h.Status, h.DecidedAt = Expired, &now
		return true
	})
	if absent {
		return m.o.Store.ZRem(ctx, openKey, h.ID)
	}
	if err != nil {
		return fmt.Errorf("expire hold %s: %w", h.ID, err)
	}
	if changed {
		m.decided.WithLabelValues(string(Expired)).Inc()
		m.log.Warn("hold expired unreleased", "hold", h.ID)
	}
	if h.Status != Expired {
		return m.finish(ctx, h) // decided meanwhile
	}
	if err := m.auditExpiry(ctx, h); err != nil {
		return err
	}
	return m.announceExpiry(ctx, h, now)
}

// announceExpiry raises the hold-expired alert of an expired hold and
// closes it. Until both are done the hold stays in the open index, so the
// next sweep tries again (the alert's id makes a repeat a duplicate).
func (m *Manager) announceExpiry(ctx context.Context, h *Hold, now time.Time) error {
	reasons := append([]string{fmt.Sprintf("hold %s on %s expired unreleased with %d of %d approvals (%s)",
		h.ID, h.Wallet, len(h.Approvals), h.ApprovalsRequired, freezeNote(h))}, h.Reasons...)
	if err := m.o.Notify(ctx, alertmodel.System(alertmodel.KindHoldExpired, h.ID, alertmodel.High, h.Chain, reasons, now)); err != nil {
		return fmt.Errorf("expire hold %s: %w", h.ID, err)
	}
	return m.close(ctx, h)
}
