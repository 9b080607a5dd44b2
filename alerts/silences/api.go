package silences

import (
	"errors"
	"net/http"

	"github.com/keywatch/keywatch/api"
)

// Register serves the silences API on srv: operators create and expire,
// viewers list.
//
//	POST /v1/silences              {matchers, duration | ends_at, comment} → 201 silence
//	GET  /v1/silences[?all=true]   → {silences: [...]} (in force; all: ended ones too)
//	GET  /v1/silences/{id}         → silence
//	POST /v1/silences/{id}/expire  → silence (409 when no longer in force)
func (s *Silences) Register(srv *api.Server) {
	srv.HandleFunc("POST /v1/silences", api.Operator, s.handleAdd)
	srv.HandleFunc("GET /v1/silences", api.Viewer, s.handleList)
	srv.HandleFunc("GET /v1/silences/{id}", api.Viewer, s.handleGet)
	srv.HandleFunc("POST /v1/silences/{id}/expire", api.Operator, s.handleExpire)
}

// List is the answer of GET /v1/silences.
type List struct {
	Silences []Silence `json:"silences"`
}

func (s *Silences) handleAdd(w http.ResponseWriter, r *http.Request) {
	p, _ := api.PrincipalFrom(r.Context())
	var req Request
	if err := api.DecodeJSON(w, r, &req, 0); err != nil {
		api.WriteRequestError(w, err)
		return
	}
	sil, err := s.Add(r.Context(), p.Name, req)
	if err != nil {
		s.writeError(w, err)
		return
	}
	api.WriteJSON(w, http.StatusCreated, sil)
}

func (s *Silences) handleList(w http.ResponseWriter, r *http.Request) {
	all := false
	switch v := r.URL.Query().Get("all"); v {
	case "", "false", "0":
	case "true", "1":
		all = true
	default:
		api.WriteError(w, http.StatusBadRequest, "all", "want true or false")
		return
	}
	sils, err := s.List(r.Context(), all)
	if err != nil {
		s.writeError(w, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, List{Silences: sils})
}

func (s *Silences) handleGet(w http.ResponseWriter, r *http.Request) {
	sil, err := s.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		s.writeError(w, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, sil)
}

func (s *Silences) handleExpire(w http.ResponseWriter, r *http.Request) {
	p, _ := api.PrincipalFrom(r.Context())
	sil, err := s.Expire(r.Context(), p.Name, r.PathValue("id"))
	if err != nil {
		s.writeError(w, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, sil)
}

func (s *Silences) writeError(w http.ResponseWriter, err error) {
	var fe *FieldError
	switch {
	case errors.As(err, &fe):
		api.WriteError(w, http.StatusBadRequest, fe.Field, fe.Msg)
	case errors.Is(err, ErrNotFound):
		api.WriteError(w, http.StatusNotFound, "", err.Error())
	case errors.Is(err, ErrEnded):
		api.WriteError(w, http.StatusConflict, "", err.Error())
	case errors.Is(err, ErrAudit):
		s.o.Logger.Error("silence refused", "err", err)
		api.WriteError(w, http.StatusServiceUnavailable, "", "the audit log cannot record the silence, so it was not created")
	default:
		s.o.Logger.Error("silences", "err", err)
		api.WriteError(w, http.StatusServiceUnavailable, "", "silences cannot be read or written right now")
	}
}
