package alertmodel

import (
	"slices"

	"github.com/keywatch/keywatch/chains"
)

// Route decides which alerts a sink receives.
type Route struct {
	MinSeverity Severity // "" takes every severity
	// Paging sinks take only alerts that ask to page.
	Paging bool
	// Chains, Wallets, Roles and Policies narrow the sink; an empty list
	// takes any value, and an alert must match every list that is given.
	// Alerts about keywatch itself are judged on severity and policy only:
	// they concern every team.
	Chains, Wallets, Roles, Policies []string
}

// Match reports whether the route takes alert a.
func (r Route) Match(a *Alert) bool {
	if r.MinSeverity != "" && !a.Severity.AtLeast(r.MinSeverity) {
		return false
	}
	if r.Paging && !a.Has(ActionPage) {
		return false
	}
	if !in(r.Policies, a.Policy) {
		return false
	}
	if a.Event.Kind == chains.KindSystem {
		return true
	}
	return in(r.Chains, a.Chain) && in(r.Wallets, a.Wallet) && in(r.Roles, a.Event.WalletRole)
}

// in reports whether v is in list; an empty list takes any value.
func in(list []string, v string) bool {
	return len(list) == 0 || slices.Contains(list, v)
}
