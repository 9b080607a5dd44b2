package config

import (
	"fmt"
	"time"
)

// Holds configures the quorum for releasing holds and the screening API's
// decisions.
type Holds struct {
	ApprovalsRequired int      `yaml:"approvals_required"`
	ExpireAfter       Duration `yaml:"expire_after"`
	// EscalateBefore is how long before a hold expires an alert says that
	// it is about to (default 1h, or a quarter of expire_after when shorter).
	EscalateBefore Duration `yaml:"escalate_before"`
	// DenyLists names the lists whose addresses screening refuses outright
	// (deny, not hold) when a critical policy fires on them (default
	// [sanctioned] when such a list is configured).
	DenyLists []string `yaml:"deny_lists"`
}

// validate fills in the defaults (two approvals, expiry after 24h, the
// escalation before it, [sanctioned] as deny list when lists has one) and
// checks them; lists are the configured lists the deny lists must name.
func (h *Holds) validate(v *checker, lists map[string][]string) {
	if !v.isSet("holds.approvals_required") {
		h.ApprovalsRequired = 2
	}
	if h.ExpireAfter == 0 {
		h.ExpireAfter = Duration(24 * time.Hour)
	}
	if h.EscalateBefore == 0 && h.ExpireAfter > 0 {
		h.EscalateBefore = min(Duration(time.Hour), h.ExpireAfter/4)
	}
	if !v.isSet("holds.deny_lists") {
		if _, ok := lists["sanctioned"]; ok {
			h.DenyLists = []string{"sanctioned"}
		}
	}

	if h.ApprovalsRequired < 1 {
		v.add("holds.approvals_required", "must be at least 1")
	}
	if h.ExpireAfter < 0 {
		v.add("holds.expire_after", "must be positive")
	}
	if h.EscalateBefore < 0 || (h.ExpireAfter > 0 && h.EscalateBefore >= h.ExpireAfter) {
		v.add("holds.escalate_before", "must be positive and shorter than expire_after (%s)", h.ExpireAfter)
	}
	for i, name := range h.DenyLists {
		if _, ok := lists[name]; !ok {
			v.add(fmt.Sprintf("holds.deny_lists[%d]", i), "no list named %q under lists:", name)
		}
	}
}
