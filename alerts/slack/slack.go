package slack

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/keywatch/keywatch/alertmodel"
	"github.com/keywatch/keywatch/alerts"
)

// Notifier posts incidents to Slack.
type Notifier struct {
	cfg    Config
	client *http.Client
}

// New makes a Slack notifier.
func New(cfg Config) *Notifier {
	return &Notifier{cfg: cfg, client: alerts.NewHTTPClient(cfg.Timeout)}
}

// Message is an incoming webhook message: text is the notification
// fallback, blocks the Block Kit layout.
type Message struct {
	Text   string  `json:"text"`
	Blocks []Block `json:"blocks"`
}

// Block is a Block Kit layout block (header, section, actions, context,
// divider).
type Block struct {
	Type     string    `json:"type"`
	Text     *Text     `json:"text,omitempty"`
	Fields   []Text    `json:"fields,omitempty"`
	Elements []Element `json:"elements,omitempty"`
}

// Text is a text object.
type Text struct {
	Type  string `json:"type"` // plain_text | mrkdwn
	Text  string `json:"text"`
	Emoji bool   `json:"emoji,omitempty"`
}

// Element is a context text or an actions button.
type Element struct {
	Type string `json:"type"`           // mrkdwn | button
	Text any    `json:"text,omitempty"` // string for mrkdwn, *Text for a button
	URL  string `json:"url,omitempty"`
}

// Block Kit limits.
const (
	maxHeader       = 150
	maxFieldText    = 2000
	maxSectionText  = 3000
	maxButtonText   = 75
	maxAlertsShown  = 10
	maxFallbackText = 3000
)

// BuildMessage lays out one notification.
func (n *Notifier) BuildMessage(note alerts.Notification, as []*alertmodel.Alert) Message {
	first := as[0]
	for _, a := range as {
		if a.Status == alertmodel.Firing {
			first = a
			break
		}
	}
	sev := alertmodel.Highest(as)
	title := fmt.Sprintf("%s %s on %s", strings.ToUpper(string(sev)), first.Policy, alertmodel.Subject(first))
	if len(as) > 1 {
		title = fmt.Sprintf("%s: %d alerts · %s on %s", strings.ToUpper(string(sev)), len(as), first.Policy, alertmodel.Subject(first))
	}
	icon := severityIcon(sev)
	switch {
	case note.Status == alertmodel.Resolved:
		icon, title = ":white_check_mark:", "Resolved: "+title
	case note.Repeat:
		title = "Still firing: " + title
	}
	m := Message{Text: alertmodel.Truncate(fallback(note, as), maxFallbackText)}
	m.Blocks = append(m.Blocks, Block{Type: "header", Text: &Text{Type: "plain_text", Text: alertmodel.Truncate(icon+" "+title, maxHeader), Emoji: true}})
	for i, a := range as {
		if i == maxAlertsShown {
			m.Blocks = append(m.Blocks, Block{Type: "context", Elements: []Element{{Type: "mrkdwn",
				Text: fmt.Sprintf("and %d more alerts of this incident (incident `%s`)", len(as)-maxAlertsShown, escape(note.Incident))}}})
			break
		}
		if i > 0 {
			m.Blocks = append(m.Blocks, Block{Type: "divider"})
		}
		m.Blocks = append(m.Blocks, n.alertBlocks(a)...)
	}
	return m
}

func fallback(note alerts.Notification, as []*alertmodel.Alert) string {
	s := alertmodel.Headline(as[0])
	if len(as) > 1 {
		s = fmt.Sprintf("%d alerts, first: %s", len(as), s)
	}
	if note.Status == alertmodel.Resolved {
		s = "resolved: " + s
	}
	return s
}

func (n *Notifier) alertBlocks(a *alertmodel.Alert) []Block {
	e := &a.Event
	field := func(name, value string) Text {
		return Text{Type: "mrkdwn", Text: alertmodel.Truncate("*"+name+"*\n"+value, maxFieldText)}
	}
	status := string(a.Status)
	if e.Status != "" {
		status += " (event " + string(e.Status) + ")"
	}
	fields := []Text{field("Severity", string(a.Severity)), field("Status", status)}
	if a.Wallet != "" {
		w := escape(a.Wallet)
		if e.WalletRole != "" {
			w += " (" + escape(e.WalletRole) + ")"
		}
		fields = append(fields, field("Wallet", w+" on "+escape(a.Chain)))
	} else {
		fields = append(fields, field("Chain", escape(a.Chain)))
	}
	if mv := alertmodel.Movement(e); mv != "" {
		fields = append(fields, field("Amount", escape(mv)))
	}
	if e.Counterparty != "" {
		fields = append(fields, field("Counterparty", "`"+escape(e.Counterparty)+"`"))
	}
	if a.HoldID != "" {
		fields = append(fields, field("Hold", "`"+escape(a.HoldID)+"`"))
	}
	blocks := []Block{{Type: "section", Fields: fields}}
	if len(a.Reasons) > 0 {
		var b strings.Builder
		b.WriteString("*Reasons*")
		for _, r := range a.Reasons {
			b.WriteString("\n• " + escape(r))
		}
		blocks = append(blocks, Block{Type: "section", Text: &Text{Type: "mrkdwn", Text: alertmodel.Truncate(b.String(), maxSectionText)}})
	}
	if link := alertmodel.TxLink(n.cfg.Explorers, a); link != "" && len(link) <= 3000 {
		blocks = append(blocks, Block{Type: "actions", Elements: []Element{{Type: "button",
			Text: &Text{Type: "plain_text", Text: alertmodel.Truncate("View transaction on "+a.Event.Chain, maxButtonText)}, URL: link}}})
	}
	ctx := fmt.Sprintf("alert `%s` · observed %s", escape(a.ID), a.ObservedAt.UTC().Format("2006-01-02 15:04:05 UTC"))
	blocks = append(blocks, Block{Type: "context", Elements: []Element{{Type: "mrkdwn", Text: ctx}}})
	return blocks
}

func severityIcon(s alertmodel.Severity) string {
	switch s {
	case alertmodel.Critical:
		return ":rotating_light:"
	case alertmodel.High:
		return ":red_circle:"
	case alertmodel.Medium:
		return ":large_orange_circle:"
	}
	return ":large_blue_circle:"
}

// escape makes text safe in mrkdwn: &, < and > are control characters.
func escape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// Notify posts one message. Slack answers 200 "ok"; 429 (rate limited) and
// 5xx are retried, other refusals (invalid_blocks, channel_not_found,
// no_service…) are not.
func (n *Notifier) Notify(ctx context.Context, as ...*alertmodel.Alert) (bool, error) {
	if len(as) == 0 {
		return false, nil
	}
	body, err := json.Marshal(n.BuildMessage(alerts.NotificationFrom(ctx, as), as))
	if err != nil {
		return false, fmt.Errorf("slack: %w", err)
	}
	if retry, err := alerts.PostJSON(ctx, n.client, n.cfg.WebhookURL.Reveal(), body, nil); err != nil {
		return retry, fmt.Errorf("slack: %w", err)
	}
	return false, nil
}
