// The hold model: a hold's status, source, approvals and evidence, as the
// store keeps it and the API returns it.

package holds

import (
	"time"

	"github.com/keywatch/keywatch/alertmodel"
	"github.com/keywatch/keywatch/chains"
)

// Status of a hold.
type Status string

const (
	Held     Status = "held"     // waiting for approvals
	Approved Status = "approved" // released by a quorum
	Rejected Status = "rejected" // ended by one rejection
	Expired  Status = "expired"  // nobody decided in time; nothing was released
)

// Source says what made a hold.
type Source string

const (
	FromAlert  Source = "alert"  // an outflow seen on chain, by a policy with the hold action
	FromScreen Source = "screen" // a withdrawal screened before signing
)

// Approval is one approver's decision.
type Approval struct {
	By      string    `json:"by"`
	At      time.Time `json:"at"`
	Comment string    `json:"comment,omitempty"`
}

// Request is the withdrawal a screening hold is about.
type Request struct {
	Chain  string        `json:"chain"`
	Wallet string        `json:"wallet"`
	To     string        `json:"to"`
	Asset  string        `json:"asset"`
	Amount chains.Amount `json:"amount"`
	USD    float64       `json:"usd"`
}

// Hold is one hold with its evidence, as GET /v1/holds/{id} returns it.
type Hold struct {
	ID     string `json:"id"`
	Status Status `json:"status"`
	Source Source `json:"source"`
	Chain  string `json:"chain"`
	Wallet string `json:"wallet"`
	// Wallets are the keys the hold freezes: the wallet involved and its
	// owner's other keys (alert holds); a screening hold freezes none.
	Wallets     []string `json:"wallets"`
	Owners      []string `json:"owners,omitempty"` // owners of the keys involved: they may not approve
	EventID     string   `json:"event_id,omitempty"`
	RequestID   string   `json:"request_id,omitempty"`
	RequestedBy string   `json:"requested_by,omitempty"`
	Request     *Request `json:"request,omitempty"`
	Reasons     []string `json:"reasons"`
	// Alerts are the alerts behind the hold (latest state of each), with
	// their events.
	Alerts []alertmodel.Alert `json:"alerts"`
	// Labels says which lists an address of the evidence is on.
	Labels map[string][]string `json:"labels,omitempty"`
	// Links maps a transaction hash to its block explorer page.
	Links             map[string]string `json:"links,omitempty"`
	Approvals         []Approval        `json:"approvals"`
	ApprovalsRequired int               `json:"approvals_required"`
	Rejection         *Approval         `json:"rejection,omitempty"`
	CreatedAt         time.Time         `json:"created_at"`
	ExpiresAt         time.Time         `json:"expires_at"`
	DecidedAt         *time.Time        `json:"decided_at,omitempty"`
	EscalatedAt       *time.Time        `json:"escalated_at,omitempty"`
}

// Freezes reports whether the hold keeps its wallets frozen: an alert hold
// does until a quorum approves it. A rejected hold confirms the movement was
// not authorised and an expired one was never released, so both keep the
// freeze (fail closed).
func (h *Hold) Freezes() bool { return h.Source == FromAlert && h.Status != Approved }

// ApprovedBy lists the approvers so far.
func (h *Hold) ApprovedBy() []string {
	out := make([]string, len(h.Approvals))
	for i, a := range h.Approvals {
		out[i] = a.By
	}
	return out
}

func (h *Hold) involvedKeys() []string {
	if len(h.Wallets) > 0 {
		return h.Wallets
	}
	return []string{h.Wallet}
}
