package screening

import (
	"net/http"

	"github.com/keywatch/keywatch/api"
)

// maxBody bounds a screening request (413 beyond it).
const maxBody = 8 << 10

// Register serves POST /v1/screen (service) on s.
func (s *Screener) Register(srv *api.Server) {
	srv.HandleFunc("POST /v1/screen", api.Service, s.serve)
}

func (s *Screener) serve(w http.ResponseWriter, r *http.Request) {
	var req Request
	if err := api.DecodeJSON(w, r, &req, maxBody); err != nil {
		api.WriteRequestError(w, err)
		return
	}
	p, _ := api.PrincipalFrom(r.Context())
	ans, err := s.Screen(r.Context(), p.Name, req)
	if err != nil {
		api.WriteRequestError(w, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, ans)
}
