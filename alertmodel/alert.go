// Package alertmodel is the alert of the product specification: what a
// policy concludes about an event (Alert), its severities, the actions it
// asks for, its ids and message ids, the alerts keywatch raises about
// itself, and the routing labels a sink is chosen by. It is a leaf: it
// imports nothing of keywatch but the event model (package chains), so the
// policy engine, holds and screening can speak of alerts without pulling in
// their delivery (package alerts: outbox, JetStream, sinks).
package alertmodel

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/keywatch/keywatch/chains"
)

// Severity ranks alerts; sinks filter on it.
type Severity string

const (
	Critical Severity = "critical"
	High     Severity = "high"
	Medium   Severity = "medium"
	Low      Severity = "low"
	Info     Severity = "info"
)

// rank orders the severities from info (1) to critical (5); 0 is no
// severity.
func (s Severity) rank() int {
	switch s {
	case Info:
		return 1
	case Low:
		return 2
	case Medium:
		return 3
	case High:
		return 4
	case Critical:
		return 5
	}
	return 0
}

// ParseSeverity accepts critical, high, medium, low or info.
func ParseSeverity(s string) (Severity, error) {
	if Severity(s).rank() == 0 {
		return "", fmt.Errorf("unknown severity %q (want critical, high, medium, low or info)", s)
	}
	return Severity(s), nil
}

// AtLeast reports whether s is as severe as min or more.
func (s Severity) AtLeast(min Severity) bool { return s.rank() >= min.rank() }

// Status of an alert.
type Status string

const (
	Firing   Status = "firing"
	Resolved Status = "resolved"
)

// Action names what a policy asks for when it fires.
type Action string

const (
	ActionAlert Action = "alert" // publish
	ActionPage  Action = "page"  // route to paging sinks
	ActionHold  Action = "hold"  // freeze the wallet and the owner's other keys
)

// ParseAction accepts alert, page or hold.
func ParseAction(s string) (Action, error) {
	switch a := Action(s); a {
	case ActionAlert, ActionPage, ActionHold:
		return a, nil
	}
	return "", fmt.Errorf("unknown action %q (want alert, page or hold)", s)
}

// Alert is one policy's conclusion about one event.
type Alert struct {
	ID         string       `json:"id"` // <event id>:<policy>
	Policy     string       `json:"policy"`
	Severity   Severity     `json:"severity"`
	Status     Status       `json:"status"`
	Chain      string       `json:"chain"`
	Wallet     string       `json:"wallet"`
	Event      chains.Event `json:"event"`
	Reasons    []string     `json:"reasons"`
	Actions    []Action     `json:"actions"`
	HoldID     string       `json:"hold_id"`
	ObservedAt time.Time    `json:"observed_at"`
	// Revision counts how often the alert fired again after it was resolved
	// by a retraction (a reorg that dropped its transaction, which a later
	// block then included again). 0 and 1 mean the first firing.
	Revision int `json:"revision,omitempty"`
}

// AlertID builds the id of the alert policy raises on an event.
func AlertID(eventID, policy string) string { return eventID + ":" + policy }

// MsgID is the JetStream de-duplication id, <alert id>:<event status>:<status>:
// one message per alert status and event status, so republishing after a
// crash publishes nothing twice. An alert that fires again after a
// retraction resolved it takes the suffix :r<revision>, or JetStream would
// drop its new messages as duplicates of the first firing.
func (a Alert) MsgID() string {
	id := fmt.Sprintf("%s:%s:%s", a.ID, a.Event.Status, a.Status)
	if a.Revision > 1 {
		id += fmt.Sprintf(":r%d", a.Revision)
	}
	return id
}

// Subject is where the alert is published: <prefix>.alert.<severity>.<chain>.
func (a Alert) Subject(prefix string) string {
	return fmt.Sprintf("%s.alert.%s.%s", prefix, a.Severity, SubjectToken(a.Chain))
}

// Has reports whether the alert asks for action x.
func (a Alert) Has(x Action) bool { return slices.Contains(a.Actions, x) }

// SubjectToken keeps a value usable as one NATS subject token: the
// characters NATS gives a meaning to (. * > and blanks) become _, and an
// empty value is _.
func SubjectToken(s string) string {
	if s == "" {
		return "_"
	}
	return strings.Map(func(r rune) rune {
		switch r {
		case '.', '*', '>', ' ', '\t':
			return '_'
		}
		return r
	}, s)
}
