package alertmodel

import (
	"time"

	"github.com/keywatch/keywatch/chains"
)

// The kinds of alert keywatch raises about itself (their policy field).
const (
	KindHeartbeatLost   = "heartbeat-lost"      // an instance stopped sending heartbeats
	KindChainStale      = "chain-stale"         // a chain's head (or its processing) stopped advancing
	KindNodeUnreachable = "node-unreachable"    // a chain's node has not answered for too long
	KindDeadLettered    = "alert-dead-lettered" // a sink gave up on an alert
	KindSilenceCreated  = "silence-created"     // an operator muted some alerts
	KindListStale       = "list-stale"          // a list file is older than its maximum age (daemon's list refresh)
	KindReloadFailed    = "reload-failed"       // lists and policies could not be reloaded
	KindHoldExpiring    = "hold-expiring"       // a hold nobody released expires soon (holds)
	KindHoldExpired     = "hold-expired"        // a hold expired unreleased (holds)
	// KindSafeQueueFailing: a Safe's queue in the Safe Transaction Service
	// could not be read for a while (queued transactions go unjudged).
	KindSafeQueueFailing = "safe-queue-failing"
	KindTraceFallback    = "trace-fallback" // a node's tracer failed on a block: its watched contracts were checked by balance only
)

// SystemKinds lists the kinds above.
func SystemKinds() []string {
	return []string{KindHeartbeatLost, KindChainStale, KindNodeUnreachable, KindDeadLettered, KindSilenceCreated, KindListStale, KindReloadFailed, KindHoldExpiring, KindHoldExpired, KindSafeQueueFailing, KindTraceFallback}
}

// System builds an alert about keywatch itself rather than about a chain
// event: a stale list, a silent instance, a stalled chain, an alert no sink
// could deliver. kind names what happened ("list-stale", "heartbeat-lost",
// ...) and becomes the alert's policy; subject names the thing and one
// incident of it (include when the incident began, so that a later incident
// of the same thing is a new alert rather than a duplicate message id). The
// alert's event has kind "system", status confirmed and the alert's id. chain
// is the chain concerned, or "" for keywatch as a whole (published under
// "keywatch").
func System(kind, subject string, sev Severity, chain string, reasons []string, now time.Time) Alert {
	id := "system:" + kind + ":" + subject
	subjectChain := chain
	if subjectChain == "" {
		subjectChain = "keywatch"
	}
	return Alert{
		ID:       id,
		Policy:   kind,
		Severity: sev,
		Status:   Firing,
		Chain:    subjectChain,
		Event: chains.Event{
			ID:     id,
			Chain:  chain,
			Time:   now.UTC(),
			Status: chains.StatusConfirmed,
			Kind:   chains.KindSystem,
		},
		Reasons:    reasons,
		Actions:    []Action{ActionAlert, ActionPage},
		ObservedAt: now.UTC(),
	}
}

// Resolved returns the resolution of a firing alert, with a reason saying why.
func (a Alert) Resolved(reason string, now time.Time) Alert {
	a.Status = Resolved
	a.Reasons = append(append([]string(nil), a.Reasons...), reason)
	a.ObservedAt = now.UTC()
	return a
}
