package testenv

import (
	"testing"
	"time"
)

// WaitFor polls cond until it holds, failing the test with what when it has
// not held within timeout (0: one minute). Tests wait on a condition with a
// deadline, never on a bare sleep.
func WaitFor(t testing.TB, timeout time.Duration, cond func() bool, what string) {
	t.Helper()
	if timeout <= 0 {
		timeout = time.Minute
	}
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
