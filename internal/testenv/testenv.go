// Package testenv starts the real external components keywatch's tests run
// against: redis-server and geth --dev as child processes, nats-server in
// process, and the shared test data folder.
//
// Binaries are looked up in an environment variable first, then on PATH,
// then in the cache bin folder scripts/deps.sh installs into
// (${XDG_CACHE_HOME:-$HOME/.cache}/keywatch/bin). When one is missing the test
// is skipped with a message saying how to get it, except under CI=true, where
// a missing component fails the test: CI must not pass by skipping.
//
// Every helper registers its own cleanup with t.Cleanup. Methods that stop or
// restart a component report failures with t.Fatalf, so call them from the
// test's own goroutine.
package testenv

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/keywatch/keywatch/internal/regtest"
)

// CI reports whether the tests run under CI (CI=true), where missing
// components and data fail tests instead of skipping them.
func CI() bool {
	ci, _ := strconv.ParseBool(os.Getenv("CI"))
	return ci
}

// skipOrFail skips the test, or fails it under CI.
func skipOrFail(t testing.TB, format string, args ...any) {
	t.Helper()
	if CI() {
		t.Fatalf(format+" (CI=true: failing instead of skipping)", args...)
		return
	}
	t.Skipf(format, args...)
}

// BinDir is the folder scripts/deps.sh installs pinned binaries into:
// ${XDG_CACHE_HOME:-$HOME/.cache}/keywatch/bin.
func BinDir() string { return regtest.BinDir() }

// findBinary returns the path of name from envVar, PATH or BinDir. When it
// is nowhere the test is skipped (failed under CI) and "" is returned.
func findBinary(t testing.TB, name, envVar string) string {
	t.Helper()
	if p := os.Getenv(envVar); p != "" {
		if isExecutable(p) {
			return p
		}
		t.Fatalf("%s=%s: not an executable file", envVar, p)
		return ""
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if dir := BinDir(); dir != "" {
		if p := filepath.Join(dir, name); isExecutable(p) {
			return p
		}
	}
	skipOrFail(t, "%s not found: set %s, put it on PATH or in %s; `make test` installs it (scripts/deps.sh)",
		name, envVar, BinDir())
	return ""
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago: it
// listens on port 0, notes the port and closes the listener.
func FreePort(t testing.TB) int {
	t.Helper()
	port, err := freePort()
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	return port
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("listen on 127.0.0.1:0: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
