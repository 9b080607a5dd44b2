package config

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

var (
	sha256Re   = regexp.MustCompile(`^[0-9a-f]{64}$`)
	tokenRoles = []string{"viewer", "operator", "approver", "admin", "service"}
)

// API is the HTTP listener: screening, holds, alerts, audit, the operator
// console, metrics and health.
type API struct {
	Listen string  `yaml:"listen"`
	Tokens []Token `yaml:"tokens"`
}

// Token is an API bearer token, stored as the sha256 hex of the token.
type Token struct {
	Name   string   `yaml:"name"`
	SHA256 string   `yaml:"sha256"`
	Roles  []string `yaml:"roles"`
}

// validate defaults the listener to 127.0.0.1:8080 and checks it and the
// tokens, whose names must differ.
func (a *API) validate(v *checker) {
	if a.Listen == "" {
		a.Listen = "127.0.0.1:8080"
	}
	if _, _, err := splitHostPort(a.Listen); err != nil {
		v.add("api.listen", "want host:port, got %q", a.Listen)
	}
	seen := map[string]bool{}
	for i, t := range a.Tokens {
		p := fmt.Sprintf("api.tokens[%d]", i)
		if t.Name == "" {
			v.add(p+".name", "required")
		} else if seen[t.Name] {
			v.add(p+".name", "token %q is defined twice", t.Name)
		}
		seen[t.Name] = true
		t.check(v, p)
	}
}

// check checks the token's hash and roles; p is its path.
func (t Token) check(v *checker, p string) {
	if !sha256Re.MatchString(t.SHA256) {
		v.add(p+".sha256", "want the sha256 of the token as 64 lowercase hex digits (never the token itself)")
	}
	if len(t.Roles) == 0 {
		v.add(p+".roles", "required: one or more of %s", strings.Join(tokenRoles, ", "))
	}
	for j, r := range t.Roles {
		if !slices.Contains(tokenRoles, r) {
			v.add(fmt.Sprintf("%s.roles[%d]", p, j), "unknown role %q (want one of %s)", r, strings.Join(tokenRoles, ", "))
		}
	}
}

func splitHostPort(s string) (string, int, error) {
	i := strings.LastIndex(s, ":")
	if i < 0 {
		return "", 0, fmt.Errorf("no port")
	}
	port, err := strconv.Atoi(s[i+1:])
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("bad port")
	}
	return s[:i], port, nil
}
