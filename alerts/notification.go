package alerts

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Notification describes what a sink is asked to deliver besides the alerts
// themselves: the incident they belong to and whether it still fires. The
// dispatcher attaches it to the context of Notify; a Notifier called without
// one (tests, the watchdog) gets the value NotificationOf builds.
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
	Status Status
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
func NotificationFrom(ctx context.Context, as []*Alert) Notification {
	if n, ok := ctx.Value(notificationKey{}).(Notification); ok {
		return n
	}
	return NotificationOf(as)
}

// NotificationOf describes alerts sent on their own: the incident is the
// first alert's, resolved only when every alert is.
func NotificationOf(as []*Alert) Notification {
	n := Notification{Status: Resolved}
	if len(as) > 0 {
		n.GroupKey = GroupKey(as[0])
		n.Incident = as[0].Key()
	}
	for _, a := range as {
		if a.Status != Resolved {
			n.Status = Firing
		}
	}
	return n
}

// GroupKey is how alerts are grouped into incidents: the same policy on the
// same wallet (or, for alerts about keywatch itself, the same chain).
func GroupKey(a *Alert) string {
	return a.Policy + "/" + a.Chain + "/" + a.Wallet
}

// Key identifies one firing of an alert: its id, with the revision when it
// fired again after a retraction resolved it.
func (a *Alert) Key() string {
	if a.Revision > 1 {
		return fmt.Sprintf("%s:r%d", a.ID, a.Revision)
	}
	return a.ID
}

// Highest returns the highest severity among alerts (Info for none).
func Highest(as []*Alert) Severity {
	best := Info
	for _, a := range as {
		if severityRank[a.Severity] > severityRank[best] {
			best = a.Severity
		}
	}
	return best
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
