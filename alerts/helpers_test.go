package alerts_test

import (
	"github.com/keywatch/keywatch/internal/testenv"
	"log/slog"
	"testing"
	"time"
)

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(p))
	return len(p), nil
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	testenv.WaitFor(t, 20*time.Second, cond, what)
}
