package alerts

import (
	"context"
	"time"
)

// notifyStage sends a ready delivery through the Notifier, bounded by the
// sink's timeout, and when that fails plans the retry. The retry itself is
// JetStream's redelivery, which survives a restart: each held message is to
// be redelivered after the sink's backoff for its attempt (or later, when
// the endpoint asked with Retry-After), or given up on when the Notifier
// refused it or it used its MaxDeliver attempts. A failed repeat, which no
// message waits on, is tried again after the same backoff, counted by the
// incident's repeat failures. The record stage carries the plan out.
type notifyStage struct {
	n          Notifier
	sink       string
	timeout    time.Duration
	backoff    []time.Duration
	maxDeliver int
	metrics    *SinkMetrics
}

// Exec sends d when it is ready, and makes it sent or failed.
func (s notifyStage) Exec(ctx context.Context, d *delivery) {
	if d.outcome != ready {
		return
	}
	note := Notification{Sink: s.sink, GroupKey: d.inc.Group, Incident: d.inc.ID, Status: d.status, Repeat: d.repeat}
	// A notification under way is finished, and what it did recorded, even
	// when keywatch is stopping: cut off half way, it may have reached the
	// service while the sink state says it did not, and the next run would
	// send it again. Both are bounded by the sink's timeout.
	nctx, cancel := context.WithTimeout(WithNotification(context.WithoutCancel(ctx), note), s.timeout)
	start := time.Now()
	retry, err := s.n.Notify(nctx, d.send...)
	cancel()
	d.took = time.Since(start)
	if err == nil {
		s.metrics.notification(s.sink, "sent", d.took)
		d.outcome = sent
		return
	}
	outcome := "retry"
	if !retry {
		outcome = "refused"
	}
	s.metrics.notification(s.sink, outcome, d.took)
	d.outcome, d.err, d.retry = failed, err, retry
	s.plan(d)
}

// plan decides what becomes of d after its failure.
func (s notifyStage) plan(d *delivery) {
	if d.repeatOnly() {
		r := repeatRetry{failures: d.inc.RepeatFailures + 1}
		r.backoff = s.wait(r.failures)
		r.after = max(r.backoff, RetryAfter(d.err))
		r.giveUp = !d.retry || r.failures >= s.maxDeliver
		d.retryRepeat = r
		return
	}
	d.redeliver = make([]redelivery, len(d.held))
	for i, h := range d.held {
		r := redelivery{attempt: attempts(h.msg)}
		r.giveUp = !d.retry || r.attempt >= s.maxDeliver
		if !r.giveUp {
			r.after = max(s.wait(r.attempt), RetryAfter(d.err))
		}
		d.redeliver[i] = r
	}
}

// wait is the sink's backoff after the n-th failure (n from 1).
func (s notifyStage) wait(n int) time.Duration {
	return s.backoff[min(n-1, len(s.backoff)-1)]
}
