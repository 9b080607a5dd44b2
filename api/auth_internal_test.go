package api

import (
	"fmt"
	"testing"
	"time"
)

// Clients that fail once and never come back are forgotten: a scan from
// many addresses does not grow the limiter for ever.
func TestFailureLimiterForgetsClientsThatLeft(t *testing.T) {
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	l := newFailureLimiter(10, time.Minute, func() time.Time { return now })
	for i := range 1000 {
		l.fail(fmt.Sprintf("192.0.2.%d", i))
	}
	now = now.Add(2 * time.Minute)
	l.fail("198.51.100.1")
	if n := len(l.fails); n != 1 {
		t.Fatalf("the limiter keeps %d clients, want 1 (the others failed more than a window ago)", n)
	}
}
