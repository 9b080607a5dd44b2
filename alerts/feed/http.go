package feed

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/keywatch/keywatch/alertmodel"
	"github.com/keywatch/keywatch/api"
)

// Register serves the feed on s:
//
//	GET  /v1/alerts               viewer    ?status=firing|resolved&since=RFC3339&limit=N
//	POST /v1/alerts/{id}/resolve  operator  {"comment": "..."} (body optional)
func (f *Feed) Register(s *api.Server) {
	s.HandleFunc("GET /v1/alerts", api.Viewer, f.serveList)
	s.HandleFunc("POST /v1/alerts/{id}/resolve", api.Operator, f.serveResolve)
}

func (f *Feed) serveList(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	fl := Filter{Status: alertmodel.Status(q.Get("status"))}
	switch fl.Status {
	case "", alertmodel.Firing, alertmodel.Resolved:
	default:
		api.WriteError(w, http.StatusBadRequest, "status", "want firing or resolved")
		return
	}
	if s := q.Get("since"); s != "" {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			api.WriteError(w, http.StatusBadRequest, "since", "want an RFC 3339 time such as 2026-11-29T12:00:00Z")
			return
		}
		fl.Since = t
	}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1000 {
			api.WriteError(w, http.StatusBadRequest, "limit", "want a whole number from 1 to 1000")
			return
		}
		fl.Limit = n
	}
	es, err := f.List(r.Context(), fl)
	if err != nil {
		f.o.Logger.Error("alert feed unreadable", "err", err)
		api.WriteError(w, http.StatusServiceUnavailable, "", "keywatch cannot read its state right now; try again")
		return
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"alerts": es})
}

func (f *Feed) serveResolve(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Comment string `json:"comment"`
	}
	if r.ContentLength != 0 {
		if err := api.DecodeJSON(w, r, &body, 16<<10); err != nil {
			api.WriteRequestError(w, err)
			return
		}
	}
	body.Comment = strings.TrimSpace(body.Comment)
	if utf8.RuneCountInString(body.Comment) > 2000 {
		api.WriteError(w, http.StatusBadRequest, "comment", "longer than 2000 characters")
		return
	}
	p, _ := api.PrincipalFrom(r.Context())
	id := r.PathValue("id")
	e, err := f.Resolve(r.Context(), id, p.Name, body.Comment)
	switch {
	case errors.Is(err, ErrNotFound):
		api.WriteError(w, http.StatusNotFound, "id", "no alert "+strconv.Quote(id))
	case errors.Is(err, ErrResolved):
		api.WriteError(w, http.StatusConflict, "", "alert "+id+" is resolved already")
	case err != nil:
		f.o.Logger.Error("resolve failed", "alert", id, "err", err)
		api.WriteError(w, http.StatusServiceUnavailable, "", "keywatch cannot write its state right now; try again")
	default:
		api.WriteJSON(w, http.StatusOK, e)
	}
}
