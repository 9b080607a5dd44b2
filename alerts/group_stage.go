package alerts

import (
	"context"

	"github.com/keywatch/keywatch/alertmodel"
)

// groupStage chooses what the incident's notification says: every member
// that is not muted, in arrival order, under the incident's status (firing
// while any member fires). It sends nothing (the delivery stays settled)
// when nothing changed since the last notification and it is no repeat, or
// when the incident fires but every firing member is muted.
type groupStage struct{}

// Exec fills d.send and d.status, and makes d ready when there is
// something to send.
func (groupStage) Exec(_ context.Context, d *delivery) {
	d.send = nil
	worth := d.repeat
	for _, k := range d.inc.Order {
		m := d.inc.Members[k]
		if m.muted() {
			continue
		}
		if m.Alert.Status != m.Sent {
			worth = true
		}
		a := m.Alert
		d.send = append(d.send, &a)
	}
	d.status = alertmodel.Firing
	if d.inc.allResolved() {
		d.status = alertmodel.Resolved
	}
	if !worth || (d.status == alertmodel.Firing && !anyFiring(d.send)) {
		d.outcome = settled
		return
	}
	d.outcome = ready
}

func anyFiring(as []*alertmodel.Alert) bool {
	for _, a := range as {
		if a.Status == alertmodel.Firing {
			return true
		}
	}
	return false
}
