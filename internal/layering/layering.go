// Package layering states which packages of keywatch may import which, and
// checks a module's import graph against those rules. The data flows one
// way: chain clients make events (chains), watchers follow chains, policies
// judge events into alerts (alertmodel), and delivery (alerts) carries them
// out; the wiring (daemon) alone sees everything. Its test runs the check on
// this module, so a change that breaks a rule fails `make test` naming the
// import chain that breaks it.
package layering

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// Module is keywatch's module path.
const Module = "github.com/keywatch/keywatch"

// NATS is the prefix of the NATS client and server modules.
const NATS = "github.com/nats-io/"

// Rule forbids the packages of Pkgs to depend, directly or through others,
// on any package of Forbidden. Paths are relative to the module: "alerts" is
// that package alone, "alerts/..." it and every package inside it. NATS in
// Forbidden stands for the NATS client and server.
type Rule struct {
	Pkgs      []string
	Forbidden []string
	// Only, when set, is the whole list of module packages the packages may
	// depend on (a leaf: Only is empty but not nil).
	Only []string
	// Why is said when the rule breaks.
	Why string
}

// Rules are keywatch's layering rules. README's Layout section says the same
// in words.
func Rules() []Rule {
	custody := []string{"holds/...", "screening/...", "audit/..."}
	return []Rule{
		{Pkgs: []string{"chains"}, Only: []string{},
			Why: "chains is the event model: a leaf"},
		{Pkgs: []string{"chains/bitcoin/btcaddr"}, Only: []string{},
			Why: "Bitcoin addresses and networks are a leaf that needs no node client"},
		{Pkgs: []string{"alertmodel"}, Only: []string{"chains"},
			Why: "the alert model imports nothing of keywatch but the event model"},
		{Pkgs: []string{"chains/..."},
			Forbidden: []string{"watchers/...", "policies/...", "alerts/...", "config/...", "daemon/...", "holds/...", "screening/...", "store/memory", "store/redis", NATS},
			Why:       "chain clients produce events and know nothing downstream of them"},
		{Pkgs: []string{"watchers/..."},
			Forbidden: []string{"policies/...", "alerts/...", "daemon/...", "holds/...", "screening/...", NATS},
			Why:       "watchers hand events on through a function; they neither judge nor deliver them"},
		{Pkgs: []string{"policies/..."},
			Forbidden: []string{"watchers/...", "alerts/...", "daemon/...", "holds/...", "screening/...", "chains/bitcoin", "chains/ethereum", NATS},
			Why:       "the engine judges events into alerts (alertmodel); delivery and chain clients are the wiring's"},
		{Pkgs: []string{"intents/...", "hops/..."},
			Forbidden: []string{"watchers/...", "alerts/...", "daemon/...", "holds/...", "screening/...", "chains/bitcoin", "chains/ethereum", NATS},
			Why:       "approved withdrawals and followed addresses are records over the store"},
		{Pkgs: []string{"alerts/..."},
			Forbidden: append([]string{"policies/...", "watchers/...", "chains/bitcoin", "chains/ethereum", "daemon/...", "store/memory", "store/redis"}, custody...),
			Why:       "delivery carries alerts; it neither makes them, nor holds funds, nor picks a store backend"},
		{Pkgs: custody,
			Forbidden: []string{"alerts/...", "daemon/...", "watchers/...", "chains/bitcoin", "chains/ethereum", "store/memory", "store/redis"},
			Why:       "custody speaks of alerts through their model, never through their delivery (no loop between delivery and custody)"},
		{Pkgs: []string{"config/...", "api/..."},
			Forbidden: []string{"alerts/...", "policies/...", "watchers/...", "chains/bitcoin", "chains/ethereum", "daemon/...", "holds/...", "screening/...", "store/memory", "store/redis", NATS},
			Why:       "configuration and the HTTP helpers are read by every component and import none"},
		{Pkgs: []string{"store"}, Only: []string{},
			Why: "the store contract is a leaf"},
		{Pkgs: []string{"store/memory", "store/redis"}, Only: []string{"store"},
			Why: "a store backend imports only the store contract"},
	}
}

// Package is one package of the graph: its import path and its direct
// imports (production code only, without test files).
type Package struct {
	Path    string
	Imports []string
}

// Check returns one message per package that breaks a rule, naming the
// chain of imports that breaks it. pkgs is the graph (every package reachable
// from the checked ones must be in it); check lists the module's production
// packages the rules apply to.
func Check(rules []Rule, pkgs []Package, check []string) []string {
	imports := map[string][]string{}
	for _, p := range pkgs {
		imports[p.Path] = p.Imports
	}
	var out []string
	for _, path := range check {
		rel, ok := relative(path)
		if !ok {
			continue
		}
		for _, r := range rules {
			if !slices.ContainsFunc(r.Pkgs, func(p string) bool { return under(rel, p) }) {
				continue
			}
			bad := func(dep string) bool {
				if strings.HasPrefix(dep, NATS) {
					return slices.Contains(r.Forbidden, NATS)
				}
				d, ok := relative(dep)
				if !ok || d == rel {
					return false
				}
				if r.Only != nil {
					return !slices.Contains(r.Only, d)
				}
				return slices.ContainsFunc(r.Forbidden, func(f string) bool { return under(d, f) })
			}
			if chain := find(imports, path, bad); chain != nil {
				out = append(out, fmt.Sprintf("%s must not depend on %s (%s): %s", rel, trim(chain[len(chain)-1]), r.Why, strings.Join(trimAll(chain), " -> ")))
			}
		}
	}
	sort.Strings(out)
	return out
}

// find returns the shortest import chain from start to a package bad
// accepts, or nil.
func find(imports map[string][]string, start string, bad func(string) bool) []string {
	prev := map[string]string{start: ""}
	queue := []string{start}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, d := range imports[p] {
			if _, seen := prev[d]; seen {
				continue
			}
			prev[d] = p
			if bad(d) {
				chain := []string{d}
				for at := p; at != ""; at = prev[at] {
					chain = append([]string{at}, chain...)
				}
				return chain
			}
			queue = append(queue, d)
		}
	}
	return nil
}

// relative returns path inside the module ("chains/bitcoin"), and whether
// it is inside.
func relative(path string) (string, bool) {
	if path == Module {
		return ".", true
	}
	rel, ok := strings.CutPrefix(path, Module+"/")
	return rel, ok
}

// under reports whether rel is pattern, or inside it for a pattern "x/...".
func under(rel, pattern string) bool {
	if tree, ok := strings.CutSuffix(pattern, "/..."); ok {
		return rel == tree || strings.HasPrefix(rel, tree+"/")
	}
	return rel == pattern
}

func trim(path string) string {
	if rel, ok := relative(path); ok {
		return rel
	}
	return path
}

func trimAll(paths []string) []string {
	out := make([]string, len(paths))
	for i, p := range paths {
		out[i] = trim(p)
	}
	return out
}
