// Deciding a hold: approvals by a quorum of distinct approvers (never the
// requester nor an owner of a key involved) and a rejection.

package holds

import (
	"context"
	"fmt"
	"strings"

	"github.com/keywatch/keywatch/store"
)

// Outcome says what an approval did.
type Outcome struct {
	Counted  bool `json:"counted"`  // false: this approver had approved already
	Released bool `json:"released"` // this approval completed the quorum
}

// Approve records by's approval of hold id. The requester and the owners
// of the keys involved may not approve (ForbiddenError); approving twice
// counts once; the approval that completes the quorum releases the hold,
// and an approved screening hold registers its withdrawal as an approved
// intent.
func (m *Manager) Approve(ctx context.Context, id, by, comment string) (Hold, Outcome, error) {
	now := m.o.Now().UTC()
	var h Hold
	var out Outcome
	err := m.record(id).Update(ctx, recordKey(id), func(cur Hold, found bool) (Hold, error) {
		out = Outcome{}
		if !found {
			return Hold{}, ErrNotFound
		}
		h = cur
		if err := mayApprove(&h, by); err != nil {
			return Hold{}, err
		}
		for _, a := range h.Approvals {
			if samePrincipal(a.By, by) {
				return Hold{}, store.ErrUnchanged // counts once
			}
		}
		if h.Status != Held {
			return Hold{}, &ClosedError{ID: id, Status: h.Status}
		}
		if !now.Before(h.ExpiresAt) {
			return Hold{}, &ClosedError{ID: id, Status: Expired}
		}
		h.Approvals = append(h.Approvals, Approval{By: by, At: now, Comment: comment})
		out.Counted = true
		if len(h.Approvals) >= h.ApprovalsRequired {
			h.Status, h.DecidedAt = Approved, &now
			out.Released = true
		}
		return h, nil
	})
	if err != nil {
		return Hold{}, Outcome{}, m.decisionError(id, err)
	}
	// Recorded once per approver; a repeated approval records one that a
	// store failure kept out of the log the first time.
	if err := m.auditApproval(ctx, &h, by); err != nil {
		m.resweep(ctx, &h)
		return h, out, err
	}
	if out.Released {
		m.decided.WithLabelValues(string(Approved)).Inc()
		m.log.Info("hold approved", "hold", id, "approved_by", strings.Join(h.ApprovedBy(), ","))
	}
	if h.Status == Approved {
		// Again on a repeated approval, so that a failure here is repaired
		// by retrying.
		if err := m.release(ctx, &h); err != nil {
			m.resweep(ctx, &h)
			return h, out, err
		}
	}
	return h, out, nil
}

// Reject ends hold id: one rejection is enough. Nothing is released: the
// wallets of an alert hold stay frozen.
func (m *Manager) Reject(ctx context.Context, id, by, comment string) (Hold, error) {
	now := m.o.Now().UTC()
	var h Hold
	err := m.record(id).Update(ctx, recordKey(id), func(cur Hold, found bool) (Hold, error) {
		if !found {
			return Hold{}, ErrNotFound
		}
		h = cur
		if h.Status != Held {
			return Hold{}, &ClosedError{ID: id, Status: h.Status}
		}
		h.Status, h.DecidedAt = Rejected, &now
		h.Rejection = &Approval{By: by, At: now, Comment: comment}
		return h, nil
	})
	if err != nil {
		return Hold{}, m.decisionError(id, err)
	}
	m.decided.WithLabelValues(string(Rejected)).Inc()
	m.log.Info("hold rejected", "hold", id, "rejected_by", by)
	if err := m.auditRejection(ctx, &h); err != nil {
		m.resweep(ctx, &h)
		return h, err
	}
	if err := m.close(ctx, &h); err != nil {
		m.resweep(ctx, &h)
		return h, err
	}
	return h, nil
}

// mayApprove applies the separation of duties: not the requester, not an
// owner of a key involved.
func mayApprove(h *Hold, by string) error {
	if h.RequestedBy != "" && samePrincipal(h.RequestedBy, by) {
		return &ForbiddenError{Reason: fmt.Sprintf("%s requested this withdrawal: the requester may not approve it", by)}
	}
	for _, o := range h.Owners {
		if samePrincipal(o, by) {
			return &ForbiddenError{Reason: fmt.Sprintf("%s owns a key this hold involves (%s): an owner may not approve it", by, strings.Join(h.involvedKeys(), ", "))}
		}
	}
	return nil
}

// samePrincipal compares people named in different places: a token name
// ("kim"), an owner ("kim@firm.example"), a requester. Case is ignored, and
// a name without a domain matches the local part of an address.
func samePrincipal(a, b string) bool {
	a, b = strings.ToLower(strings.TrimSpace(a)), strings.ToLower(strings.TrimSpace(b))
	if a == "" || b == "" {
		return false
	}
	if a == b {
		return true
	}
	la, _, _ := strings.Cut(a, "@")
	lb, _, _ := strings.Cut(b, "@")
	return la == lb
}
