// Package api is keywatch's HTTP surface: bearer-token authentication with
// roles, JSON request and error conventions, and a small client for the CLI.
// Feature packages (holds, screening, silences, alerts) register their
// handlers on a Server with the role each needs.
package api

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/keywatch/keywatch/config"
)

// Role is what a token may do.
type Role string

const (
	Viewer   Role = "viewer"   // read holds, alerts, wallet status
	Operator Role = "operator" // resolve alerts, manage silences
	Approver Role = "approver" // approve or reject holds
	Admin    Role = "admin"    // read the audit log; everything an operator may
	Service  Role = "service"  // the withdrawal system: screening and wallet status
)

// grants says which token roles satisfy a required role.
var grants = map[Role][]Role{
	Viewer:   {Viewer, Operator, Approver, Admin},
	Operator: {Operator, Admin},
	Approver: {Approver},
	Admin:    {Admin},
	Service:  {Service},
}

// Principal is the authenticated caller.
type Principal struct {
	Name  string
	Roles []Role
}

// Can reports whether the principal holds a role that satisfies need.
func (p Principal) Can(need Role) bool {
	for _, have := range p.Roles {
		for _, ok := range grants[need] {
			if have == ok {
				return true
			}
		}
	}
	return false
}

type principalKey struct{}

// PrincipalFrom returns the caller of an authenticated request.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}

// WithPrincipal attaches a caller to ctx (for tests of handlers).
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

type token struct {
	hash      [32]byte
	principal Principal
}

// Authenticator checks bearer tokens against the configured sha256 hashes,
// in constant time, and slows down clients that keep failing.
type Authenticator struct {
	tokens  []token
	limiter *failureLimiter
}

// NewAuthenticator builds an authenticator from the configured tokens. There
// are no default tokens: with none configured every request is refused.
func NewAuthenticator(cfg []config.Token, now func() time.Time) (*Authenticator, error) {
	a := &Authenticator{limiter: newFailureLimiter(10, time.Minute, now)}
	for _, t := range cfg {
		raw, err := hex.DecodeString(t.SHA256)
		if err != nil || len(raw) != 32 {
			return nil, fmt.Errorf("api token %s: sha256 must be 64 hex digits", t.Name)
		}
		var tk token
		copy(tk.hash[:], raw)
		tk.principal.Name = t.Name
		for _, r := range t.Roles {
			tk.principal.Roles = append(tk.principal.Roles, Role(r))
		}
		a.tokens = append(a.tokens, tk)
	}
	return a, nil
}

// HashToken returns the sha256 hex of a token, as the configuration stores it.
func HashToken(tok string) string {
	h := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(h[:])
}

// authenticate finds the principal of a presented token. Every configured
// hash is compared, so the time taken does not say which one matched.
func (a *Authenticator) authenticate(presented string) (Principal, bool) {
	h := sha256.Sum256([]byte(presented))
	var found Principal
	ok := 0
	for _, t := range a.tokens {
		eq := subtle.ConstantTimeCompare(h[:], t.hash[:])
		if eq == 1 {
			found = t.principal
		}
		ok |= eq
	}
	return found, ok == 1
}

// Require wraps h so that only callers with a role satisfying need reach
// it: no or unknown token 401, wrong role 403, too many failures 429.
func (a *Authenticator) Require(need Role, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		client := clientIP(r)
		if a.limiter.blocked(client) {
			w.Header().Set("Retry-After", "60")
			WriteError(w, http.StatusTooManyRequests, "", "too many failed authentication attempts; try again later")
			return
		}
		raw, found := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		raw = strings.TrimSpace(raw)
		if !found || raw == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="keywatch"`)
			WriteError(w, http.StatusUnauthorized, "", "missing bearer token (Authorization: Bearer <token>)")
			return
		}
		p, ok := a.authenticate(raw)
		if !ok {
			a.limiter.fail(client)
			w.Header().Set("WWW-Authenticate", `Bearer realm="keywatch", error="invalid_token"`)
			WriteError(w, http.StatusUnauthorized, "", "unknown token")
			return
		}
		if !p.Can(need) {
			WriteError(w, http.StatusForbidden, "", fmt.Sprintf("token %s lacks the %s role", p.Name, need))
			return
		}
		h.ServeHTTP(w, r.WithContext(WithPrincipal(r.Context(), p)))
	})
}

func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// failureLimiter blocks a client after max failures inside window.
type failureLimiter struct {
	max    int
	window time.Duration
	now    func() time.Time
	mu     sync.Mutex
	fails  map[string][]time.Time
	swept  time.Time // when clients that stopped failing were last forgotten
}

func newFailureLimiter(max int, window time.Duration, now func() time.Time) *failureLimiter {
	if now == nil {
		now = time.Now
	}
	return &failureLimiter{max: max, window: window, now: now, fails: map[string][]time.Time{}}
}

func (l *failureLimiter) recent(client string) []time.Time {
	cut := l.now().Add(-l.window)
	ts := l.fails[client]
	i := 0
	for i < len(ts) && ts[i].Before(cut) {
		i++
	}
	ts = ts[i:]
	if len(ts) == 0 {
		delete(l.fails, client)
	} else {
		l.fails[client] = ts
	}
	return ts
}

func (l *failureLimiter) blocked(client string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.recent(client)) >= l.max
}

func (l *failureLimiter) fail(client string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if now.Sub(l.swept) > l.window {
		// Forget clients that failed and left, once a window: a scan from
		// many addresses must not grow the map for ever.
		for c := range l.fails {
			l.recent(c)
		}
		l.swept = now
	}
	l.fails[client] = append(l.recent(client), now)
}
