package alertmodel

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/keywatch/keywatch/chains"
)

// Headline says in one line what an alert is about, for page titles and
// chat: "critical mixer-counterparty on treasury-hot: <first reason>".
func Headline(a *Alert) string {
	s := fmt.Sprintf("%s %s on %s", a.Severity, a.Policy, Subject(a))
	if len(a.Reasons) > 0 {
		s += ": " + a.Reasons[0]
	}
	return s
}

// Subject names what an alert concerns: the wallet, else the chain, else
// keywatch itself.
func Subject(a *Alert) string {
	switch {
	case a.Wallet != "":
		return a.Wallet
	case a.Chain != "":
		return a.Chain
	}
	return "keywatch"
}

// Movement describes the event's value movement ("out 1.5 ETH (4,500.00
// USD)"), or "" for alerts about keywatch itself.
func Movement(e *chains.Event) string {
	if e.Kind == chains.KindSystem || e.Asset == "" {
		return ""
	}
	s := string(e.Direction) + " " + e.Amount.String() + " " + e.Asset
	if e.USD > 0 {
		s += " (" + USD(e.USD) + " USD)"
	}
	return strings.TrimSpace(s)
}

// USD formats a dollar value with thousands separators and cents.
func USD(v float64) string {
	s := fmt.Sprintf("%.2f", v)
	whole, cents, _ := strings.Cut(s, ".")
	neg := strings.HasPrefix(whole, "-")
	whole = strings.TrimPrefix(whole, "-")
	var b strings.Builder
	for i, r := range whole {
		if i > 0 && (len(whole)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	out := b.String() + "." + cents
	if neg {
		out = "-" + out
	}
	return out
}

// TxLink is the block explorer link of the alert's transaction, when its
// chain has an explorer template ({tx} is replaced).
func TxLink(explorers map[string]string, a *Alert) string {
	tmpl, ok := explorers[a.Event.Chain]
	if !ok || a.Event.Tx == "" {
		return ""
	}
	return strings.ReplaceAll(tmpl, "{tx}", a.Event.Tx)
}

// Truncate cuts s to at most n runes, marking the cut with an ellipsis.
func Truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}
