package alertmodel

import "fmt"

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
		if a.Severity.rank() > best.rank() {
			best = a.Severity
		}
	}
	return best
}
