package alerts

import (
	"context"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/keywatch/keywatch/alertmodel"
)

// A stage is one step of an incident's notification, in the manner of
// Alertmanager's notify stages: it reads the delivery, does its one job and
// writes what it decided for the stages after it. The dispatcher's pipeline
// is
//
//	silenceStage  mark the alerts an operator muted
//	groupStage    choose what the notification says, and whether it says anything new
//	notifyStage   send it; on failure plan the retry (JetStream redelivery)
//	recordStage   write the incident's state, answer every held message
//	              (ack, redeliver, dead-letter)
//
// and recordStage alone settles an incident that has nothing to send.
type stage interface {
	Exec(ctx context.Context, d *delivery)
}

// pipeline runs its stages in order.
type pipeline []stage

// Exec runs every stage on d.
func (p pipeline) Exec(ctx context.Context, d *delivery) {
	for _, s := range p {
		s.Exec(ctx, d)
	}
}

// delivery is one notification of an incident on its way through the
// stages.
type delivery struct {
	inc *Incident
	// held are the messages waiting on this notification, taken off the
	// dispatcher: the record stage answers each of them.
	held   []held
	repeat bool // a still-firing incident sent again after the repeat interval

	// outcome is where the delivery stands; the zero value, settled, is a
	// delivery with nothing to send.
	outcome outcome

	// Set by the group stage.
	send   []*alertmodel.Alert // the alerts of the notification
	status alertmodel.Status   // the incident's: resolved once every member is

	// Set by the notify stage.
	took  time.Duration // how long the notification took
	err   error         // why it failed
	retry bool          // whether the Notifier thought it worth retrying
	// redeliver is, when it failed, what becomes of each held message (by
	// index in held).
	redeliver []redelivery
	// retryRepeat is, when a repeat without held messages failed, when it
	// is tried again.
	retryRepeat repeatRetry
}

// repeatOnly reports whether the delivery is a repeat that no message waits
// on: its failure is retried at the incident's RetryAt, not by redelivery.
func (d *delivery) repeatOnly() bool { return d.repeat && len(d.held) == 0 }

// outcome is where a delivery stands.
type outcome int

const (
	settled outcome = iota // nothing worth a notification: the state is only recorded
	ready                  // the group stage chose alerts to send
	sent                   // the Notifier took them
	failed                 // the Notifier failed
)

// redelivery is what becomes of a held message after a failed notification.
type redelivery struct {
	attempt int           // the message's delivery attempt, 1 the first
	giveUp  bool          // refused, or out of attempts: dead-letter it
	after   time.Duration // otherwise: redeliver it after this delay
}

// repeatRetry is when a failed repeat is tried again.
type repeatRetry struct {
	failures int           // failed repeats so far, this one included
	giveUp   bool          // refused, or out of attempts: wait for the next repeat interval
	backoff  time.Duration // the sink's backoff for this failure
	after    time.Duration // the wait: the backoff, or longer when the endpoint asked
}

// attempts is the delivery attempt of m, 1 the first.
func attempts(m jetstream.Msg) int {
	if meta, err := m.Metadata(); err == nil {
		return int(meta.NumDelivered)
	}
	return 1
}
