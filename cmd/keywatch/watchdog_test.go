package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/keywatch/keywatch/alertmodel"
	"github.com/keywatch/keywatch/alerts"
	"github.com/keywatch/keywatch/internal/testenv"
	"github.com/keywatch/keywatch/watchdog"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// The insider stops the only keywatch instance: the watchdog, a separate
// process, pages through the configured webhook itself.
func TestWatchdogPagesWhenTheInstanceStops(t *testing.T) {
	srv := testenv.NATS(t)
	const secret = "watchdog-test-secret-0123456789"
	t.Setenv("KW_TEST_SECRET", secret)
	var mu sync.Mutex
	var pages []string
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mac := hmac.New(sha256.New, []byte(secret))
		fmt.Fprintf(mac, "%s.%s", r.Header.Get("X-Keywatch-Timestamp"), body)
		if r.Header.Get("X-Keywatch-Signature") != "sha256="+hex.EncodeToString(mac.Sum(nil)) {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var p struct {
			Status string             `json:"status"`
			Alerts []alertmodel.Alert `json:"alerts"`
		}
		_ = json.Unmarshal(body, &p)
		mu.Lock()
		for _, a := range p.Alerts {
			pages = append(pages, p.Status+" "+a.ID)
		}
		mu.Unlock()
	}))
	defer hook.Close()
	cfg := writeConfig(t, fmt.Sprintf(`instance: watchdog-test
store: {memory: true}
nats: {url: %q}
alerts:
  heartbeat: {interval: 100ms, timeout: 1s}
  sinks:
    - {name: soc, kind: webhook, url: %q, secret_env: KW_TEST_SECRET}
`, srv.URL(), hook.URL+"/keywatch"))

	nc, err := alerts.Connect(srv.URL(), "", "test", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ictx, stopInstance := context.WithCancel(t.Context())
	go watchdog.Beat(ictx, watchdog.BeatOptions{JS: js, Prefix: "keywatch", Instance: "keywatch-1", Role: watchdog.RoleInstance, Interval: 100 * time.Millisecond})
	lastBeat := func(name string) bool {
		s, err := js.Stream(t.Context(), watchdog.StreamName)
		if err != nil {
			return false
		}
		_, err = s.GetLastMsgForSubject(t.Context(), watchdog.Subject("keywatch", name))
		return err == nil
	}
	testenv.WaitFor(t, 0, func() bool { return lastBeat("keywatch-1") }, "the instance's heartbeat")

	ctx, cancel := context.WithCancel(t.Context())
	var stderr lockedBuffer
	code := make(chan int, 1)
	go func() { code <- runWatchdog(ctx, []string{"-config", cfg, "-name", "watchdog-t"}, &stderr) }()
	testenv.WaitFor(t, 0, func() bool { return lastBeat("watchdog-t") }, "the watchdog's own heartbeat")

	stopInstance()
	testenv.WaitFor(t, 0, func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, p := range pages {
			if strings.HasPrefix(p, "firing system:heartbeat-lost:keywatch-1@") {
				return true
			}
		}
		return false
	}, "the watchdog's page")
	// The webhook has the page; the watchdog logs it once the answer is
	// back (stopping it before then would cut the request off).
	testenv.WaitFor(t, 0, func() bool { return strings.Contains(stderr.String(), "paged directly") }, "the log to say the watchdog paged directly")
	cancel()
	if c := <-code; c != 0 {
		t.Fatalf("watchdog exit %d\n%s", c, stderr.String())
	}
}

func TestWatchdogNeedsASink(t *testing.T) {
	cfg := writeConfig(t, "store: {memory: true}\nnats: {url: \"nats://127.0.0.1:4222\"}\n")
	code, _, errs := runCmd(t, "watchdog", "-config", cfg)
	if code != 1 || !strings.Contains(errs, "names no sink") {
		t.Fatalf("exit %d: %s", code, errs)
	}
}
