// Holds made by the screening API for a withdrawal not yet signed.

package holds

import (
	"context"
	"fmt"

	"github.com/keywatch/keywatch/alertmodel"
	"github.com/keywatch/keywatch/store"
)

// ScreenHold describes a withdrawal the screening API held.
type ScreenHold struct {
	RequestID   string
	RequestedBy string
	Request     Request
	Reasons     []string
	Alerts      []alertmodel.Alert
}

// OpenScreen creates the hold for a screened withdrawal, or returns the one
// the same request id made before (created false).
func (m *Manager) OpenScreen(ctx context.Context, s ScreenHold) (Hold, bool, error) {
	id := idFor(FromScreen, s.RequestID)
	now := m.o.Now().UTC()
	var h Hold
	created := false
	err := m.record(id).Update(ctx, recordKey(id), func(cur Hold, found bool) (Hold, error) {
		if found {
			h, created = cur, false
			return Hold{}, store.ErrUnchanged
		}
		created = true
		_, owners := m.involved(s.Request.Wallet)
		req := s.Request
		h = Hold{
			ID: id, Status: Held, Source: FromScreen,
			Chain: req.Chain, Wallet: req.Wallet, Wallets: []string{}, Owners: owners,
			RequestID: s.RequestID, RequestedBy: s.RequestedBy, Request: &req,
			Reasons:           append([]string(nil), s.Reasons...),
			Approvals:         []Approval{},
			ApprovalsRequired: m.o.Config.Holds.ApprovalsRequired,
			CreatedAt:         now,
			ExpiresAt:         now.Add(m.o.Config.Holds.ExpireAfter.D()),
		}
		for _, a := range s.Alerts {
			a.HoldID = id
			h.Alerts = append(h.Alerts, a)
		}
		m.label(&h, req.Chain, req.To)
		return h, nil
	})
	if err != nil {
		return Hold{}, false, fmt.Errorf("hold for request %s: %w", s.RequestID, err)
	}
	if err := m.index(ctx, &h); err != nil {
		return Hold{}, false, err
	}
	if created {
		m.created.WithLabelValues(string(FromScreen)).Inc()
	}
	return h, created, nil
}
