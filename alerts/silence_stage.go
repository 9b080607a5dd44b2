package alerts

import (
	"context"
	"log/slog"

	"github.com/keywatch/keywatch/alertmodel"
)

// Silencer says whether an operator muted an alert: the id of the active
// silence that matches it, or "".
type Silencer interface {
	Silencing(ctx context.Context, a *alertmodel.Alert) (string, error)
}

// silenceStage marks the firing members of the incident that an active
// silence mutes, so that the group stage leaves them out. The silences in
// force when a notification goes out judge it: a member is asked about once
// it fires and until it was sent firing (receive clears the mark when its
// alert changes). When the silences cannot be read the alert goes out:
// better a page too many than a theft unheard of.
type silenceStage struct {
	silencer Silencer // nil: nothing is muted
	sink     string
	metrics  *SinkMetrics
	log      *slog.Logger
}

// Exec marks the muted members of d's incident.
func (s silenceStage) Exec(ctx context.Context, d *delivery) {
	if s.silencer == nil {
		return
	}
	silenced := 0
	for _, k := range d.inc.Order {
		m := d.inc.Members[k]
		if m.Alert.Status != alertmodel.Firing || m.Sent == alertmodel.Firing || m.Silenced != "" {
			continue
		}
		id, err := s.silencer.Silencing(ctx, &m.Alert)
		if err != nil {
			s.log.Warn("cannot read silences; sending the alert", "alert", k, "err", err)
			continue
		}
		if id != "" {
			m.Silenced = id
			silenced++
			s.log.Info("alert silenced", "alert", k, "silence", id)
		}
	}
	s.metrics.alert(s.sink, "silenced", silenced)
}
