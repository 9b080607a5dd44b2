package audit

import (
	"net/http"

	"github.com/keywatch/keywatch/api"
)

// Register serves GET /v1/audit (admin): ?after=SEQ&limit=N pages through
// the log oldest first; ?verify=1 checks the whole chain instead.
func (l *Log) Register(s *api.Server) {
	s.HandleFunc("GET /v1/audit", api.Admin, l.serveRead)
}

func (l *Log) serveRead(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("verify") != "" {
		rep, err := l.Verify(r.Context())
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
