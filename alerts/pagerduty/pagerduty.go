package pagerduty

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/keywatch/keywatch/alertmodel"
	"github.com/keywatch/keywatch/alerts"
	"github.com/keywatch/keywatch/chains"
)

// Notifier sends incidents to PagerDuty.
type Notifier struct {
	cfg    Config
	client *http.Client
}

// New makes a PagerDuty notifier.
func New(cfg Config) *Notifier {
	if cfg.URL == "" {
		cfg.URL = DefaultURL
	}
	return &Notifier{cfg: cfg, client: alerts.NewHTTPClient(cfg.Timeout)}
}

// Event is an Events API v2 alert event.
type Event struct {
	RoutingKey  string   `json:"routing_key"`
	EventAction string   `json:"event_action"` // trigger | resolve
	DedupKey    string   `json:"dedup_key"`
	Payload     *Payload `json:"payload,omitempty"`
	Client      string   `json:"client,omitempty"`
	Links       []Link   `json:"links,omitempty"`
}

// Payload is a trigger's description.
type Payload struct {
	Summary       string `json:"summary"`
	Source        string `json:"source"`
	Severity      string `json:"severity"` // critical | error | warning | info
	Timestamp     string `json:"timestamp,omitempty"`
	Component     string `json:"component,omitempty"`
	Group         string `json:"group,omitempty"`
	Class         string `json:"class,omitempty"`
	CustomDetails any    `json:"custom_details,omitempty"`
}

// Link is a link shown on the incident.
type Link struct {
	Href string `json:"href"`
	Text string `json:"text,omitempty"`
}

// Severity maps keywatch's severities to PagerDuty's.
func Severity(s alertmodel.Severity) string {
	switch s {
	case alertmodel.Critical:
		return "critical"
	case alertmodel.High:
		return "error"
	case alertmodel.Medium:
		return "warning"
	}
	return "info"
}

// DedupKey is the incident's key, hashed when longer than PagerDuty's 255
// characters.
func DedupKey(incident string) string {
	if len(incident) <= 255 {
		return incident
	}
	h := sha256.Sum256([]byte(incident))
	return "sha256:" + hex.EncodeToString(h[:])
}

// maxBody keeps events under PagerDuty's 512 KB limit.
const maxBody = 500 << 10

// BuildEvent makes the event for one notification: a trigger while the
// incident fires, a resolve when it has resolved.
func (n *Notifier) BuildEvent(note alerts.Notification, as []*alertmodel.Alert) Event {
	ev := Event{RoutingKey: n.cfg.RoutingKey.Reveal(), DedupKey: DedupKey(note.Incident), EventAction: "trigger"}
	if note.Status == alertmodel.Resolved {
		ev.EventAction = "resolve"
		return ev
	}
	var firing []*alertmodel.Alert
	for _, a := range as {
		if a.Status == alertmodel.Firing {
			firing = append(firing, a)
		}
	}
	if len(firing) == 0 {
		firing = as
	}
	first := firing[0]
	summary := alertmodel.Headline(first)
	if len(firing) > 1 {
		summary = fmt.Sprintf("%d alerts: %s on %s (first: %s)", len(firing), first.Policy, alertmodel.Subject(first), alertmodel.Headline(first))
	}
	if note.Repeat {
		summary = "still firing: " + summary
	}
	source := first.Chain
	if first.Wallet != "" {
		source = first.Chain + "/" + first.Wallet
	}
	ev.Client = "keywatch"
	ev.Payload = &Payload{
		Summary:   alertmodel.Truncate(summary, 1024),
		Source:    source,
		Severity:  Severity(alertmodel.Highest(firing)),
		Timestamp: first.ObservedAt.UTC().Format(time.RFC3339Nano),
		Component: first.Wallet,
		Group:     first.Chain,
		Class:     first.Policy,
	}
	if len(as) == 1 {
		ev.Payload.CustomDetails = as[0]
	} else {
		ev.Payload.CustomDetails = map[string]any{"incident": note.Incident, "alert_count": len(as), "alerts": as}
	}
	seen := map[string]bool{}
	for _, a := range as {
		href := alertmodel.TxLink(n.cfg.Explorers, a)
		if href == "" || seen[href] || len(ev.Links) == 10 {
			continue
		}
		seen[href] = true
		ev.Links = append(ev.Links, Link{Href: href, Text: txText(&a.Event)})
	}
	return ev
}

func txText(e *chains.Event) string {
	tx := e.Tx
	if len(tx) > 14 {
		tx = tx[:10] + "…" + tx[len(tx)-4:]
	}
	return fmt.Sprintf("transaction %s on %s", tx, e.Chain)
}

// Notify sends one event. 202 is success; 400 (an event PagerDuty will
// never accept) is not retried; 429, 5xx and network errors are.
func (n *Notifier) Notify(ctx context.Context, as ...*alertmodel.Alert) (bool, error) {
	if len(as) == 0 {
		return false, nil
	}
	ev := n.BuildEvent(alerts.NotificationFrom(ctx, as), as)
	body, err := json.Marshal(ev)
	if err != nil {
		return false, fmt.Errorf("pagerduty: %w", err)
	}
	if len(body) > maxBody && len(as) > 1 && ev.Payload != nil {
		// Too many alerts for one event: keep the first ones, say how many
		// were left out.
		keep := max(1, len(as)*maxBody/len(body)/2)
		details := ev.Payload.CustomDetails.(map[string]any)
		details["alerts"], details["alerts_left_out"] = as[:keep], len(as)-keep
		if body, err = json.Marshal(ev); err != nil {
			return false, fmt.Errorf("pagerduty: %w", err)
		}
	}
	if retry, err := alerts.PostJSON(ctx, n.client, n.cfg.URL, body, nil); err != nil {
		return retry, fmt.Errorf("pagerduty %s: %w", ev.EventAction, err)
	}
	return false, nil
}
