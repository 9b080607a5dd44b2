// What a hold records about why it exists and whom it involves: the keys
// and owners involved, the alerts and their reasons, the lists an address is
// on and explorer links.

package holds

import (
	"slices"
	"strings"

	"github.com/keywatch/keywatch/alertmodel"
)

// involved returns the wallet and its owner's other keys, and the owner.
func (m *Manager) involved(wallet string) (wallets, owners []string) {
	wallets = []string{wallet}
	involved, _ := m.o.Config.Wallet(wallet)
	owner := involved.Owner
	if owner == "" {
		return wallets, nil
	}
	for _, w := range m.o.Config.Wallets {
		if w.Owner == owner && w.Name != wallet {
			wallets = append(wallets, w.Name)
		}
	}
	return wallets, []string{owner}
}

// addEvidence merges an alert (its latest state replaces an earlier one),
// its reasons, the lists its addresses are on and its explorer link.
func (m *Manager) addEvidence(h *Hold, a alertmodel.Alert) {
	a.HoldID = h.ID
	replaced := false
	for i := range h.Alerts {
		if h.Alerts[i].ID == a.ID {
			h.Alerts[i], replaced = a, true
		}
	}
	if !replaced {
		h.Alerts = append(h.Alerts, a)
	}
	for _, r := range a.Reasons {
		line := a.Policy + ": " + r
		if !slices.Contains(h.Reasons, line) {
			h.Reasons = append(h.Reasons, line)
		}
	}
	m.label(h, a.Chain, a.Event.Counterparty, a.Event.From, a.Event.To)
	if a.Event.Tx != "" {
		if link := m.explorer(a.Event.Chain, a.Event.Tx); link != "" {
			if h.Links == nil {
				h.Links = map[string]string{}
			}
			h.Links[a.Event.Tx] = link
		}
	}
}

func (m *Manager) label(h *Hold, chain string, addrs ...string) {
	if m.o.Labeler == nil {
		return
	}
	for _, addr := range addrs {
		if addr == "" {
			continue
		}
		if ls := m.o.Labeler(chain, addr); len(ls) > 0 {
			if h.Labels == nil {
				h.Labels = map[string][]string{}
			}
			h.Labels[strings.ToLower(addr)] = ls
		}
	}
}

func (m *Manager) explorer(chain, tx string) string {
	ch, ok := m.o.Config.Chain(chain)
	if !ok || ch.Explorer == "" {
		return ""
	}
	return strings.ReplaceAll(ch.Explorer, "{tx}", tx)
}
