// Package console serves the operator console at GET /: a single page, with
// its script and style embedded in the binary (no front-end build step),
// that signs in with an API token, lists holds with their evidence, approves
// or rejects them with a comment, and shows the live alert feed.
//
// The page itself holds no data and is served without a token; everything
// it shows comes from the API, called with the token the operator typed,
// which stays in the browser tab's session storage and is sent as a bearer
// token. The API's roles apply: a viewer sees, an approver decides.
package console

import (
	"embed"
	"io/fs"
	"net/http"

	"github.com/keywatch/keywatch/api"
)

//go:embed assets
var assets embed.FS

// csp allows the page only its own script, style and API.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// Register serves the console on s: GET / (the page), GET /console/...
// (its script and style) and GET /v1/me (who a token belongs to, for the
// sign-in).
func Register(s *api.Server) {
	sub, err := fs.Sub(assets, "assets")
	if err != nil {
		panic(err) // the embedded folder is part of the binary
	}
	files := http.StripPrefix("/console/", http.FileServerFS(sub))
	s.HandlePublic("GET /{$}", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		secure(w)
		http.ServeFileFS(w, r, sub, "index.html")
	}))
	s.HandlePublic("GET /console/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		secure(w)
		files.ServeHTTP(w, r)
	}))
	s.HandleFunc("GET /v1/me", api.Viewer, func(w http.ResponseWriter, r *http.Request) {
		p, _ := api.PrincipalFrom(r.Context())
		api.WriteJSON(w, http.StatusOK, map[string]any{"name": p.Name, "roles": p.Roles})
	})
}

func secure(w http.ResponseWriter) {
	w.Header().Set("Content-Security-Policy", csp)
	w.Header().Set("Cache-Control", "no-cache")
}
