package layering_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"strings"
	"testing"

	"github.com/keywatch/keywatch/internal/layering"
)

// TestModuleFollowsTheRules lists the import graph of every package of the
// module (go list -deps, production files only: test-support packages such
// as internal/alerttest count, _test.go files do not) and fails naming
// every import chain that breaks a layering rule.
func TestModuleFollowsTheRules(t *testing.T) {
	pkgs := goList(t, "-deps", layering.Module+"/...")
	var module []string
	for _, p := range pkgs {
		if strings.HasPrefix(p.Path, layering.Module+"/") {
			module = append(module, p.Path)
		}
	}
	if len(module) < 20 {
		t.Fatalf("go list found %d packages of the module: too few to be keywatch's", len(module))
	}
	for _, msg := range layering.Check(layering.Rules(), pkgs, module) {
		t.Error(msg)
	}
}

// TestEveryRuleNamesPackagesThatExist keeps the rules from going stale: a
// rule about a package that was renamed or removed checks nothing.
func TestEveryRuleNamesPackagesThatExist(t *testing.T) {
	var exist []string
	for _, p := range goList(t, layering.Module+"/...") {
		exist = append(exist, strings.TrimPrefix(p.Path, layering.Module+"/"))
	}
	for _, r := range layering.Rules() {
		for _, pattern := range r.Pkgs {
			tree, sub := strings.CutSuffix(pattern, "/...")
			found := false
			for _, e := range exist {
				if e == tree || (sub && strings.HasPrefix(e, tree+"/")) {
					found = true
				}
			}
			if !found {
				t.Errorf("rule %q names %s, which is no package of the module", r.Why, pattern)
			}
		}
	}
}

// TestCheckNamesTheChain runs the check on a made-up graph that breaks the
// rules in each way they can break: directly, through another package, a
// leaf that imports a sibling, and the NATS client.
func TestCheckNamesTheChain(t *testing.T) {
	m := func(rel string) string { return layering.Module + "/" + rel }
	pkgs := []layering.Package{
		{Path: m("chains")},
		{Path: m("chains/ethereum"), Imports: []string{m("chains"), m("watchers")}},
		{Path: m("watchers"), Imports: []string{m("chains"), m("store")}},
		{Path: m("store")},
		{Path: m("policies"), Imports: []string{m("chains"), m("config")}},
		{Path: m("config"), Imports: []string{m("alerts")}},
		{Path: m("alerts"), Imports: []string{m("alertmodel"), "github.com/nats-io/nats.go"}},
		{Path: m("alertmodel"), Imports: []string{m("chains"), m("store")}},
		{Path: m("hops"), Imports: []string{m("store"), m("intents")}},
		{Path: m("intents"), Imports: []string{"github.com/nats-io/nats.go"}},
		{Path: "github.com/nats-io/nats.go"},
	}
	var all []string
	for _, p := range pkgs {
		all = append(all, p.Path)
	}
	got := strings.Join(layering.Check(layering.Rules(), pkgs, all), "\n")
	for _, want := range []string{
		"chains/ethereum must not depend on watchers (chain clients produce events and know nothing downstream of them): chains/ethereum -> watchers",
		"policies must not depend on alerts (the engine judges events into alerts (alertmodel); delivery and chain clients are the wiring's): policies -> config -> alerts",
		"hops must not depend on github.com/nats-io/nats.go (approved withdrawals and followed addresses are records over the store): hops -> intents -> github.com/nats-io/nats.go",
		"alertmodel must not depend on store (the alert model imports nothing of keywatch but the event model): alertmodel -> store",
		"config must not depend on alerts",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("check says\n%s\nwant a line containing %q", got, want)
		}
	}
	if strings.Contains(got, "watchers must not") || strings.Contains(got, "\nchains must not") || strings.HasPrefix(got, "chains must not") {
		t.Errorf("check blames a package that keeps the rules:\n%s", got)
	}
}

// goList runs go list -json with args and returns each package with its
// direct imports.
func goList(t *testing.T, args ...string) []layering.Package {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list", "-json=ImportPath,Imports"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	var pkgs []layering.Package
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p struct {
			ImportPath string
			Imports    []string
		}
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("go list output: %v", err)
		}
		pkgs = append(pkgs, layering.Package{Path: p.ImportPath, Imports: p.Imports})
	}
	return pkgs
}
