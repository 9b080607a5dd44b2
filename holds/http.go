package holds

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/keywatch/keywatch/api"
)

// maxComment bounds an approval or rejection comment.
const maxComment = 2000

// Register serves the holds API on s:
//
//	GET  /v1/holds                 viewer    ?status=held|approved|rejected|expired&wallet=NAME&limit=N
//	GET  /v1/holds/{id}            viewer
//	POST /v1/holds/{id}/approve    approver  {"comment": "..."} (body optional)
//	POST /v1/holds/{id}/reject     approver  {"comment": "..."} (body optional)
//	GET  /v1/wallets/{name}/status service   {wallet, frozen, holds}
func (m *Manager) Register(s *api.Server) {
	s.HandleFunc("GET /v1/holds", api.Viewer, m.serveList)
	s.HandleFunc("GET /v1/holds/{id}", api.Viewer, m.serveGet)
	s.HandleFunc("POST /v1/holds/{id}/approve", api.Approver, m.serveApprove)
	s.HandleFunc("POST /v1/holds/{id}/reject", api.Approver, m.serveReject)
	s.HandleFunc("GET /v1/wallets/{name}/status", api.Service, m.serveWalletStatus)
}

func (m *Manager) serveList(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := Filter{Status: Status(q.Get("status")), Wallet: q.Get("wallet")}
	switch f.Status {
	case "", Held, Approved, Rejected, Expired:
	default:
		api.WriteError(w, http.StatusBadRequest, "status", "want held, approved, rejected or expired")
		return
	}
	limit, err := api.QueryInt(q, "limit", 100, 1, 1000)
	if err != nil {
		api.WriteRequestError(w, err)
		return
	}
	f.Limit = int(limit)
	hs, err := m.List(r.Context(), f)
	if err != nil {
		m.unavailable(w, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"holds": hs})
}

func (m *Manager) serveGet(w http.ResponseWriter, r *http.Request) {
	h, err := m.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		m.writeErr(w, r, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, h)
}

// decision is the body of approve and reject.
type decision struct {
	Comment string `json:"comment"`
}

func readDecision(w http.ResponseWriter, r *http.Request) (decision, error) {
	var d decision
	if r.ContentLength == 0 {
		return d, nil
	}
	if err := api.DecodeJSON(w, r, &d, 16<<10); err != nil {
		return d, err
	}
	d.Comment = strings.TrimSpace(d.Comment)
	if utf8.RuneCountInString(d.Comment) > maxComment {
		return d, api.BadField("comment", "longer than %d characters", maxComment)
	}
	return d, nil
}

// Answer is what approve returns: the hold and what the approval did.
type Answer struct {
	Hold
	Counted  bool `json:"counted"`
	Released bool `json:"released"`
}

func (m *Manager) serveApprove(w http.ResponseWriter, r *http.Request) {
	d, err := readDecision(w, r)
	if err != nil {
		api.WriteRequestError(w, err)
		return
	}
	p, _ := api.PrincipalFrom(r.Context())
	h, out, err := m.Approve(r.Context(), r.PathValue("id"), p.Name, d.Comment)
	if err != nil {
		m.writeErr(w, r, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, Answer{Hold: h, Counted: out.Counted, Released: out.Released})
}

func (m *Manager) serveReject(w http.ResponseWriter, r *http.Request) {
	d, err := readDecision(w, r)
	if err != nil {
		api.WriteRequestError(w, err)
		return
	}
	p, _ := api.PrincipalFrom(r.Context())
	h, err := m.Reject(r.Context(), r.PathValue("id"), p.Name, d.Comment)
	if err != nil {
		m.writeErr(w, r, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, h)
}

func (m *Manager) serveWalletStatus(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if _, known := m.o.Config.Wallet(name); !known {
		api.WriteError(w, http.StatusNotFound, "name", "no wallet named "+strconv.Quote(name))
		return
	}
	ws, err := m.Status(r.Context(), name)
	if err != nil {
		// Fail closed: a wallet whose state cannot be read is reported frozen.
		m.log.Error("wallet status unreadable; reporting it frozen", "wallet", name, "err", err)
		api.WriteJSON(w, http.StatusServiceUnavailable, map[string]any{
			"wallet": name, "frozen": true, "holds": []Summary{},
			"error": "keywatch cannot read its state right now: treat the wallet as frozen",
		})
		return
	}
	api.WriteJSON(w, http.StatusOK, ws)
}

func (m *Manager) writeErr(w http.ResponseWriter, r *http.Request, err error) {
	var fe *ForbiddenError
	var ce *ClosedError
	switch {
	case errors.Is(err, ErrNotFound):
		api.WriteError(w, http.StatusNotFound, "id", "no hold "+strconv.Quote(r.PathValue("id")))
	case errors.As(err, &fe):
		api.WriteError(w, http.StatusForbidden, "", fe.Reason)
	case errors.As(err, &ce):
		api.WriteError(w, http.StatusConflict, "", ce.Error())
	default:
		m.unavailable(w, err)
	}
}

func (m *Manager) unavailable(w http.ResponseWriter, err error) {
	m.log.Error("holds request failed", "err", err)
	api.WriteError(w, http.StatusServiceUnavailable, "", "keywatch cannot read or write its state right now; nothing was changed unless the hold says so; try again")
}
