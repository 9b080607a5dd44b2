// Holds made from alerts whose policy has the hold action: one per event,
// freezing the wallet involved and its owner's other keys.

package holds

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/keywatch/keywatch/alertmodel"
	"github.com/keywatch/keywatch/chains"
)

// Apply creates or updates the holds that alerts with the hold action ask
// for, one per event, and sets their HoldID. It is called before the alerts
// are published, so that they carry it. The same event seen again (pending,
// then confirmed) updates the hold's evidence and creates nothing. A
// resolved alert (a retracted event) updates the evidence of an existing
// hold and never creates one.
func (m *Manager) Apply(ctx context.Context, as []alertmodel.Alert) error {
	byEvent := map[string][]int{}
	var order []string
	for i := range as {
		a := &as[i]
		if !a.Has(alertmodel.ActionHold) || a.Event.Kind == chains.KindSystem || a.Event.ID == "" {
			continue
		}
		if _, ok := byEvent[a.Event.ID]; !ok {
			order = append(order, a.Event.ID)
		}
		byEvent[a.Event.ID] = append(byEvent[a.Event.ID], i)
	}
	for _, evID := range order {
		idx := byEvent[evID]
		group := make([]alertmodel.Alert, len(idx))
		for j, i := range idx {
			group[j] = as[i]
		}
		id, err := m.holdForAlerts(ctx, evID, group)
		if err != nil {
			return err
		}
		for _, i := range idx {
			as[i].HoldID = id
		}
	}
	return nil
}

func (m *Manager) holdForAlerts(ctx context.Context, eventID string, group []alertmodel.Alert) (string, error) {
	id := idFor(FromAlert, eventID)
	firing := false
	for _, a := range group {
		if a.Status == alertmodel.Firing && a.Event.Status != chains.StatusRetracted {
			firing = true
		}
	}
	now := m.o.Now().UTC()
	var h Hold
	created := false
	err := m.record(id).Update(ctx, recordKey(id), func(cur Hold, found bool) (Hold, error) {
		created = false
		if found {
			h = cur
		} else {
			if !firing {
				return Hold{}, errAbsent
			}
			h = m.newAlertHold(id, group[0], now)
			created = true
		}
		for _, a := range group {
			m.addEvidence(&h, a)
		}
		return h, nil
	})
	if errors.Is(err, errAbsent) {
		return "", nil // a resolution for an event that never held anything
	}
	if err != nil {
		return "", fmt.Errorf("hold for event %s: %w", eventID, err)
	}
	if err := m.index(ctx, &h); err != nil {
		return "", err
	}
	if created {
		m.created.WithLabelValues(string(FromAlert)).Inc()
		m.log.Warn("hold created: wallets frozen", "hold", id, "wallets", strings.Join(h.Wallets, ","), "event", eventID)
	}
	if err := m.auditCreation(ctx, &h, created); err != nil {
		return "", err
	}
	return id, nil
}

func (m *Manager) newAlertHold(id string, a alertmodel.Alert, now time.Time) Hold {
	wallets, owners := m.involved(a.Wallet)
	return Hold{
		ID: id, Status: Held, Source: FromAlert,
		Chain: a.Chain, Wallet: a.Wallet, Wallets: wallets, Owners: owners,
		EventID:           a.Event.ID,
		Approvals:         []Approval{},
		ApprovalsRequired: m.o.Config.Holds.ApprovalsRequired,
		CreatedAt:         now,
		ExpiresAt:         now.Add(m.o.Config.Holds.ExpireAfter.D()),
	}
}
