// Package holds stops money until people release it. A hold comes from an
// alert whose policy has the hold action (funds already moved: the wallet
// involved and its owner's other keys are frozen) or from the screening API
// (a withdrawal asked for and not yet signed: the request waits). A hold is
// released by a quorum of distinct approvers, none of them the requester or
// the owner of a key involved; one rejection ends it; nobody deciding in time
// expires it, which never releases anything.
//
// Every change to a hold is one atomic read-modify-write of its record in
// the store (store.Records.Update), so concurrent approvals on several
// instances count exactly once each.
package holds

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/keywatch/keywatch/alertmodel"
	"github.com/keywatch/keywatch/config"
	"github.com/keywatch/keywatch/intents"
	"github.com/keywatch/keywatch/store"
)

// Recorder appends to the audit log.
type Recorder interface {
	Record(ctx context.Context, action, actor string, details any) error
}

// NotifyFunc publishes alerts (the outbox).
type NotifyFunc func(ctx context.Context, as ...alertmodel.Alert) error

// Labeler says which lists an address is on, as "list: label" strings.
type Labeler func(chain, address string) []string

// Options are the manager's dependencies.
type Options struct {
	Store   store.Store
	Config  *config.Config // wallets (owners), chains (explorer links), holds (quorum, expiry)
	Intents *intents.Registry
	Audit   Recorder
	// Notify publishes the escalation and expiry alerts.
	Notify  NotifyFunc
	Labeler Labeler // may be nil
	Now     func() time.Time
	Logger  *slog.Logger
	// Registerer takes the holds metrics; may be nil.
	Registerer prometheus.Registerer
	// SweepEvery is how often Run looks for holds to escalate or expire
	// (default 5s).
	SweepEvery time.Duration
}

// Manager creates, decides and expires holds.
type Manager struct {
	o   Options
	log *slog.Logger

	created *prometheus.CounterVec
	decided *prometheus.CounterVec
}

// New makes a manager.
func New(o Options) *Manager {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.SweepEvery <= 0 {
		o.SweepEvery = 5 * time.Second
	}
	if o.Notify == nil {
		o.Notify = func(context.Context, ...alertmodel.Alert) error { return nil }
	}
	m := &Manager{o: o, log: o.Logger,
		created: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "keywatch_holds_created_total", Help: "Holds created, by source (alert, screen)."}, []string{"source"}),
		decided: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "keywatch_holds_decided_total", Help: "Holds that left the held state, by outcome."}, []string{"status"}),
	}
	if o.Registerer != nil {
		o.Registerer.MustRegister(m.created, m.decided)
	}
	return m
}
