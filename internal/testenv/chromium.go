package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// ChromiumEnv names the variable that points at a Chromium (or Chrome)
// binary for the browser tests.
const ChromiumEnv = "KEYWATCH_CHROMIUM"

// Chromium returns the path of a Chromium binary (KEYWATCH_CHROMIUM, then
// chromium, chromium-browser or google-chrome on PATH). When there is none
// the test is skipped, or failed under CI; scripts/deps.sh installs Debian's
// chromium package.
func Chromium(t testing.TB) string {
	t.Helper()
	if p := os.Getenv(ChromiumEnv); p != "" {
		if isExecutable(p) {
			return p
		}
		t.Fatalf("%s=%s: not an executable file", ChromiumEnv, p)
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if p := filepath.Join(BinDir(), "chromium"); isExecutable(p) {
		return p
	}
	skipOrFail(t, "chromium not found: set %s or put chromium on PATH; `make test` installs it (scripts/deps.sh)", ChromiumEnv)
	return ""
}
