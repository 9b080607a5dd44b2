package alerts

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/keywatch/keywatch/alertmodel"
	"github.com/nats-io/nats.go/jetstream"
)

// DeadLetter is an alert a sink gave up on.
type DeadLetter struct {
	Sink       string           `json:"sink"`
	Alert      alertmodel.Alert `json:"alert"`
	Error      string           `json:"error"`
	Deliveries int              `json:"deliveries"`
	At         time.Time        `json:"at"`
}

// DeadLetterFunc takes an alert a sink gave up on (after MaxDeliver
// attempts, or at once when the endpoint refused it).
type DeadLetterFunc func(ctx context.Context, dl DeadLetter) error

// DeadLetterStreamName keeps the alerts sinks gave up on.
const DeadLetterStreamName = "KEYWATCH_DEADLETTER"

// DeadLetterStreamConfig is the dead-letter stream: subjects
// <prefix>.deadletter.<sink>, kept on disk for maxAge.
func DeadLetterStreamConfig(prefix string, maxAge time.Duration) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        DeadLetterStreamName,
		Description: "keywatch alerts a sink could not deliver",
		Subjects:    []string{prefix + ".deadletter.>"},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		MaxAge:      maxAge,
		Duplicates:  time.Hour,
	}
}

// DeadLetterSubject is where sink's dead letters go.
func DeadLetterSubject(prefix, sink string) string {
	return prefix + ".deadletter." + alertmodel.SubjectToken(sink)
}

// NewDeadLetterer returns the DeadLetterFunc of a running keywatch: it
// keeps the alert on the dead-letter subject, then raises an alert saying so
// through raise (the outbox), which every sink receives. An undeliverable
// alert about an undeliverable alert raises nothing more. Every sink's
// goroutine may call it at once.
func NewDeadLetterer(js jetstream.JetStream, prefix string, maxAge time.Duration, raise func(context.Context, ...alertmodel.Alert) error) DeadLetterFunc {
	var streamReady atomic.Bool
	return func(ctx context.Context, dl DeadLetter) error {
		if !streamReady.Load() {
			if _, err := js.CreateOrUpdateStream(ctx, DeadLetterStreamConfig(prefix, maxAge)); err != nil {
				return fmt.Errorf("dead-letter stream: %w", err)
			}
			streamReady.Store(true)
		}
		body, err := json.Marshal(dl)
		if err != nil {
			return err
		}
		msgID := dl.Sink + ":" + dl.Alert.MsgID()
		if _, err := js.Publish(ctx, DeadLetterSubject(prefix, dl.Sink), body, jetstream.WithMsgID(msgID)); err != nil {
			return fmt.Errorf("publish dead letter: %w", err)
		}
		if dl.Alert.Policy == alertmodel.KindDeadLettered || raise == nil {
			return nil
		}
		return raise(ctx, deadLetterAlert(dl))
	}
}

// deadLetterAlert is the alert raised when a sink gives up: as severe as the
// lost alert, and at least high, because someone did not hear about it.
func deadLetterAlert(dl DeadLetter) alertmodel.Alert {
	sev := dl.Alert.Severity
	if !sev.AtLeast(alertmodel.High) {
		sev = alertmodel.High
	}
	return alertmodel.System(alertmodel.KindDeadLettered, dl.Sink+":"+dl.Alert.MsgID(), sev, dl.Alert.Chain, []string{
		fmt.Sprintf("sink %s could not deliver alert %s (%s, %s on %s) after %d attempt(s): %s",
			dl.Sink, dl.Alert.ID, dl.Alert.Policy, dl.Alert.Severity, alertmodel.Subject(&dl.Alert), dl.Deliveries, dl.Error),
		fmt.Sprintf("the alert is kept in stream %s (subject <prefix>.deadletter.%s)", DeadLetterStreamName, alertmodel.SubjectToken(dl.Sink)),
	}, dl.At)
}

// deadLetterer is how a sink gives up on a message: it hands the alert to
// the sink's DeadLetterFunc and terminates the message. When the dead letter
// cannot be kept the message is left for redelivery after retry instead:
// better delivered late than lost.
type deadLetterer struct {
	sink    string
	fn      DeadLetterFunc // nil: counted and terminated only
	retry   time.Duration
	now     func() time.Time
	metrics *SinkMetrics
	log     *slog.Logger
}

// letter gives up on m, whose alert is a, for cause.
func (l deadLetterer) letter(ctx context.Context, m jetstream.Msg, a alertmodel.Alert, cause error) {
	l.metrics.alert(l.sink, "dead_lettered", 1)
	if l.fn != nil {
		dl := DeadLetter{Sink: l.sink, Alert: a, Error: cause.Error(), Deliveries: attempts(m), At: l.now().UTC()}
		if err := l.fn(ctx, dl); err != nil {
			// Not recorded: let JetStream deliver it again rather than lose it.
			l.log.Error("cannot dead-letter the alert; leaving it for redelivery", "alert", a.ID, "err", err)
			_ = m.NakWithDelay(l.retry)
			return
		}
	}
	_ = m.Term()
}
