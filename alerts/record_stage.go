package alerts

import (
	"context"
	"log/slog"
	"time"
)

// recordStage writes what came of a delivery and answers every message
// held for it, the last stage of the pipeline:
//
//   - settled (nothing sent): the incident is saved, or closed when every
//     alert resolved, and the messages acknowledged as unchanged; when the
//     state cannot be written they are redelivered after the first backoff.
//   - sent: the members sent are marked with the status they went out in,
//     the incident saved (closed when it went out resolved), and the
//     messages acknowledged as delivered.
//   - failed: each message is redelivered or dead-lettered as the notify
//     stage planned, and members dead-lettered before they were ever sent
//     leave the incident; a failed repeat sets when it is tried again.
//
// After a notification (sent or failed) it writes even when ctx ended,
// bounded by the sink's timeout, so that the state says what the service
// was told.
type recordStage struct {
	state   *incidentState
	dead    deadLetterer
	sink    string
	timeout time.Duration
	retry   time.Duration // redelivery delay when the state cannot be written
	now     func() time.Time
	metrics *SinkMetrics
	log     *slog.Logger
}

// Exec records d.
func (s recordStage) Exec(ctx context.Context, d *delivery) {
	switch d.outcome {
	case sent:
		s.sent(ctx, d)
	case failed:
		s.failed(ctx, d)
	default:
		s.settle(ctx, d)
	}
}

func (s recordStage) settle(ctx context.Context, d *delivery) {
	if err := s.state.keep(ctx, d.inc); err != nil {
		s.log.Warn("cannot write sink state; will retry", "incident", d.inc.ID, "err", err)
		for _, h := range d.held {
			_ = h.msg.NakWithDelay(s.retry)
		}
		return
	}
	s.ack(d, "unchanged")
}

func (s recordStage) sent(ctx context.Context, d *delivery) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.timeout)
	defer cancel()
	inc := d.inc
	for _, k := range inc.Order {
		if m := inc.Members[k]; !m.muted() {
			m.Sent = m.Alert.Status
		}
	}
	inc.Notified, inc.LastSent, inc.RepeatFailures, inc.RetryAt = true, s.now(), 0, time.Time{}
	s.log.Debug("notified", "incident", inc.ID, "status", d.status, "alerts", len(d.send), "repeat", d.repeat, "took", d.took)
	if err := s.state.keep(ctx, inc); err != nil {
		// The notification went out; a redelivery may send it again.
		s.log.Warn("cannot write sink state after notifying", "incident", inc.ID, "err", err)
	}
	s.ack(d, "delivered")
}

// ack acknowledges d's held messages, counted under result.
func (s recordStage) ack(d *delivery, result string) {
	s.metrics.alert(s.sink, result, len(d.held))
	for _, h := range d.held {
		_ = h.msg.Ack()
	}
}

func (s recordStage) failed(ctx context.Context, d *delivery) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.timeout)
	defer cancel()
	inc := d.inc
	if d.repeatOnly() {
		r := d.retryRepeat
		inc.RepeatFailures, inc.RetryAt = r.failures, s.now().Add(r.after)
		if r.giveUp {
			s.log.Error("repeat of a firing incident failed; next at the repeat interval", "incident", inc.ID, "err", d.err)
			inc.LastSent, inc.RepeatFailures, inc.RetryAt = s.now(), 0, time.Time{}
		} else {
			s.log.Warn("repeat of a firing incident failed; will retry", "incident", inc.ID, "retry_in", r.backoff, "err", d.err)
		}
		if err := s.state.save(ctx, inc); err != nil {
			s.log.Warn("cannot write sink state", "err", err)
		}
		return
	}
	var given []string // members given up on, dropped once every message is judged
	for i, h := range d.held {
		r := d.redeliver[i]
		if r.giveUp {
			s.log.Error("sink gave up on an alert; dead-lettering it", "alert", h.key, "attempts", r.attempt, "refused", !d.retry, "err", d.err)
			// Another message of the same alert may be held (pending, then
			// confirmed): it dead-letters the same alert, a duplicate the
			// streams drop.
			s.dead.letter(ctx, h.msg, inc.memberAlert(h.key), d.err)
			given = append(given, h.key)
			continue
		}
		s.log.Warn("sink failed; will redeliver", "alert", h.key, "attempt", r.attempt, "retry_in", r.after, "err", d.err)
		_ = h.msg.NakWithDelay(r.after)
	}
	for _, k := range given {
		s.state.drop(inc, k)
	}
	var err error
	if len(inc.Members) == 0 {
		err = s.state.remove(ctx, inc)
	} else {
		err = s.state.save(ctx, inc)
	}
	if err != nil {
		s.log.Warn("cannot write sink state", "err", err)
	}
}
