package api

import (
	"log/slog"
	"net/http"
	"time"
)

// Server routes API requests: feature packages register handlers with the
// role each needs; health and metrics are public.
type Server struct {
	mux  *http.ServeMux
	auth *Authenticator
	log  *slog.Logger
}

// NewServer makes a server that authenticates with auth.
func NewServer(auth *Authenticator, log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{mux: http.NewServeMux(), auth: auth, log: log}
}

// Handle registers h for pattern (net/http patterns, e.g. "POST /v1/screen")
// for callers holding a role that satisfies need.
func (s *Server) Handle(pattern string, need Role, h http.Handler) {
	s.mux.Handle(pattern, s.auth.Require(need, h))
}

// HandleFunc is Handle for a function.
func (s *Server) HandleFunc(pattern string, need Role, h func(http.ResponseWriter, *http.Request)) {
	s.Handle(pattern, need, http.HandlerFunc(h))
}

// HandlePublic registers h without authentication (health, metrics, the
// console's static assets, which hold no data).
func (s *Server) HandlePublic(pattern string, h http.Handler) {
	s.mux.Handle(pattern, h)
}

// ServeHTTP serves a request: security headers, a recovered panic becomes a
// 500 (logged, never shown), and each request is logged without its
// Authorization header.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
	defer func() {
		if v := recover(); v != nil {
			s.log.Error("handler panicked", "method", r.Method, "path", r.URL.Path, "panic", v)
			if !rec.wrote {
				WriteError(rec, http.StatusInternalServerError, "", "internal error")
			}
		}
		s.log.Debug("api request", "method", r.Method, "path", r.URL.Path, "status", rec.status,
			"duration", time.Since(start), "remote", clientIP(r))
	}()
	s.mux.ServeHTTP(rec, r)
}

type statusRecorder struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (r *statusRecorder) WriteHeader(code int) {
	if !r.wrote {
		r.status, r.wrote = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	r.wrote = true
	return r.ResponseWriter.Write(b)
}

// Flush lets streaming handlers (server-sent events) flush.
func (r *statusRecorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
