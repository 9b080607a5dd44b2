package alerts

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/keywatch/keywatch/alertmodel"
)

// Notification describes what a sink is asked to deliver besides the alerts
// themselves: the incident they belong to and whether it still fires. The
// dispatcher's notify stage attaches it to the context of Notify; a
// Notifier called without one (tests, the watchdog) gets the value
// NotificationOf builds.
type Notification struct {
	Sink string
	// GroupKey is <policy>/<chain>/<wallet>: alerts that share it inside the
	// sink's group window are one incident.
	GroupKey string
	// Incident identifies the incident: the id of its first alert. PagerDuty
	// uses it as dedup_key, so triggers and the final resolve meet.
	Incident string
	// Status is firing while any alert of the incident fires, resolved when
	// every one has resolved.
	Status alertmodel.Status
	// Repeat is true when the incident is sent again after repeat_interval.
	Repeat bool
}

type notificationKey struct{}

// WithNotification attaches n to ctx for the Notifier.
func WithNotification(ctx context.Context, n Notification) context.Context {
	return context.WithValue(ctx, notificationKey{}, n)
}

// NotificationFrom returns the notification attached to ctx, or the one
// NotificationOf builds from the alerts.
func NotificationFrom(ctx context.Context, as []*alertmodel.Alert) Notification {
	if n, ok := ctx.Value(notificationKey{}).(Notification); ok {
		return n
	}
	return NotificationOf(as)
}

// NotificationOf describes alerts sent on their own: the incident is the
// first alert's, resolved only when every alert is.
func NotificationOf(as []*alertmodel.Alert) Notification {
	n := Notification{Status: alertmodel.Resolved}
	if len(as) > 0 {
		n.GroupKey = alertmodel.GroupKey(as[0])
		n.Incident = as[0].Key()
	}
	for _, a := range as {
		if a.Status != alertmodel.Resolved {
			n.Status = alertmodel.Firing
		}
	}
	return n
}

// RetryAfterError is a failure the endpoint asked to retry after a delay
// (HTTP 429 or 503 with Retry-After). The dispatcher waits at least that long.
type RetryAfterError struct {
	Err   error
	After time.Duration
}

func (e *RetryAfterError) Error() string {
	return fmt.Sprintf("%v (retry after %s)", e.Err, e.After)
}

func (e *RetryAfterError) Unwrap() error { return e.Err }

// RetryAfter returns the delay an error asks for, or 0.
func RetryAfter(err error) time.Duration {
	var ra *RetryAfterError
	if errors.As(err, &ra) {
		return ra.After
	}
	return 0
}
