package audit

import (
	"errors"
	"net/http"

	"github.com/keywatch/keywatch/api"
)

// Register serves GET /v1/audit (admin): ?after=SEQ&limit=N pages through
// the log oldest first; ?verify=1 checks the whole chain instead, against
// the anchored heads when Options.Anchors is set. GET /v1/audit/anchors
// (admin) lists the anchored heads, for a client to check the chain itself.
func (l *Log) Register(s *api.Server) {
	s.HandleFunc("GET /v1/audit", api.Admin, l.serveRead)
	s.HandleFunc("GET /v1/audit/anchors", api.Admin, l.serveAnchors)
}

func (l *Log) serveAnchors(w http.ResponseWriter, r *http.Request) {
	if l.anchors == nil {
		api.WriteError(w, http.StatusNotFound, "", "this keywatch keeps no audit anchors")
		return
	}
	as, err := l.anchors(r.Context())
	if errors.Is(err, ErrNoAnchors) {
		api.WriteError(w, http.StatusNotFound, "", err.Error())
		return
	}
	if err != nil {
		l.log.Error("reading audit anchors failed", "err", err)
		api.WriteError(w, http.StatusServiceUnavailable, "", "the audit anchors cannot be read right now: "+err.Error())
		return
	}
	if as == nil {
		as = []Anchor{}
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"anchors": as})
}

func (l *Log) serveRead(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("verify") != "" {
		rep, err := l.VerifyWithAnchors(r.Context())
		if err != nil {
			l.log.Error("audit verify failed", "err", err)
			api.WriteError(w, http.StatusServiceUnavailable, "", "the audit log cannot be read right now")
			return
		}
		api.WriteJSON(w, http.StatusOK, rep)
		return
	}
	after, err := api.QueryInt(q, "after", 0, 0, 1<<62)
	if err != nil {
		api.WriteRequestError(w, err)
		return
	}
	limit, err := api.QueryInt(q, "limit", 100, 1, 1000)
	if err != nil {
		api.WriteRequestError(w, err)
		return
	}
	p, err := l.Read(r.Context(), after, int(limit))
	if err != nil {
		l.log.Error("audit read failed", "err", err)
		api.WriteError(w, http.StatusServiceUnavailable, "", "the audit log cannot be read right now")
		return
	}
	api.WriteJSON(w, http.StatusOK, p)
}
