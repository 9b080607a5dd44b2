package webhook_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keywatch/keywatch/alerts"
	"github.com/keywatch/keywatch/internal/alerttest"
	"github.com/keywatch/keywatch/alerts/webhook"
	"github.com/keywatch/keywatch/chains"
	"github.com/keywatch/keywatch/config"
)

const secret = "whsec-0123456789abcdef0123456789abcdef"

type request struct {
	header http.Header
	body   []byte
}

type receiver struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []request
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.reqs = append(r.reqs, request{req.Header.Clone(), body})
		r.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) requests() []request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]request(nil), r.reqs...)
}

func notifier(url string, now func() time.Time, timeout time.Duration) *webhook.Notifier {
	return webhook.New(webhook.Config{Sink: "soc", URL: config.NewSecret(url), Secret: config.NewSecret(secret), Timeout: timeout, Now: now})
}

// verify is a receiver's check written from the documentation alone:
// HMAC-SHA256 with the shared secret over "<timestamp>.<body>", hex, after
// "sha256=".
func verify(t *testing.T, r request) {
	t.Helper()
	ts := r.header.Get("X-Keywatch-Timestamp")
	mac := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(mac, "%s.%s", ts, r.body)
	want := "sha256=" + hex.EncodeToString(mac.Sum(nil))
	if got := r.header.Get("X-Keywatch-Signature"); !hmac.Equal([]byte(got), []byte(want)) {
		t.Fatalf("signature %q, want %q", got, want)
	}
	// The README's shell recipe gives the same digest.
	if _, err := exec.LookPath("openssl"); err == nil {
		cmd := exec.Command("openssl", "dgst", "-sha256", "-hmac", secret, "-hex")
		cmd.Stdin = strings.NewReader(ts + "." + string(r.body))
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("openssl: %v", err)
		}
		fields := strings.Fields(string(out))
		if "sha256="+fields[len(fields)-1] != want {
			t.Fatalf("openssl computes %s, want %s", out, want)
		}
	}
}

func TestRequestIsSignedJSON(t *testing.T) {
	h := alerttest.New(t)
	rcv := newReceiver(t)
	h.RunSink(notifier(rcv.URL+"/hook", h.Clock.Now, 2*time.Second), h.SinkOptions("soc"))
	a := alerttest.Alert("0xabc", chains.StatusPending)
	h.Publish(a)
	alerttest.WaitFor(t, func() bool { return len(rcv.requests()) == 1 }, "the request")
	r := rcv.requests()[0]
	verify(t, r)
	if got, want := r.header.Get("X-Keywatch-Timestamp"), strconv.FormatInt(h.Clock.Now().Unix(), 10); got != want {
		t.Errorf("timestamp %q, want %q", got, want)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	var got, want map[string]any
	if err := json.Unmarshal(r.body, &got); err != nil {
		t.Fatal(err)
	}
	ab, _ := json.Marshal(a)
	if err := json.Unmarshal([]byte(`{"version": 1, "sink": "soc", "incident": "eth:0xabc:3:mixer-counterparty",
		"group_key": "mixer-counterparty/eth/treasury-hot", "status": "firing", "repeat": false, "alerts": [`+string(ab)+`]}`), &want); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("body:\n%s\nwant:\n%v", r.body, want)
	}
}

func TestVerify(t *testing.T) {
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	body := []byte(`{"version":1}`)
	ts := strconv.FormatInt(now.Unix(), 10)
	mac := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(mac, "%s.%s", ts, body)
	good := "sha256=" + hex.EncodeToString(mac.Sum(nil))
	cases := []struct {
		name           string
		secret, ts, sg string
		body           []byte
		want           error
	}{
		{"genuine", secret, ts, good, body, nil},
		{"body altered", secret, ts, good, []byte(`{"version":2}`), webhook.ErrBadSignature},
		{"other secret", "not-the-secret-at-all", ts, good, body, webhook.ErrBadSignature},
		{"no prefix", secret, ts, strings.TrimPrefix(good, "sha256="), body, webhook.ErrBadSignature},
		{"replayed 6 minutes later", secret, strconv.FormatInt(now.Add(-6*time.Minute).Unix(), 10), good, body, webhook.ErrStale},
		{"from the future", secret, strconv.FormatInt(now.Add(6*time.Minute).Unix(), 10), good, body, webhook.ErrStale},
	}
	for _, c := range cases {
		err := webhook.Verify([]byte(c.secret), c.ts, c.sg, c.body, now, 0)
		if err != c.want {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	if err := webhook.Verify([]byte(secret), "noon", good, body, now, 0); err == nil {
		t.Error("a timestamp that is not a number was accepted")
	}
}

func TestAHangingEndpointDoesNotHoldUpOtherSinks(t *testing.T) {
	h := alerttest.New(t)
	var inflight, calls atomic.Int32
	release := make(chan struct{})
	hanging := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		inflight.Add(1)
		defer inflight.Add(-1)
		select {
		case <-r.Context().Done(): // the sink gave up waiting
		case <-release:
		}
	}))
	defer hanging.Close()
	defer close(release)
	healthy := newReceiver(t)

	slow := h.SinkOptions("slow")
	slow.Timeout, slow.MaxDeliver = 5*time.Second, 2
	h.RunSink(notifier(hanging.URL, h.Clock.Now, 5*time.Second), slow)
	h.Publish(alerttest.Alert("0xabc", chains.StatusPending))
	alerttest.WaitFor(t, func() bool { return inflight.Load() == 1 }, "the slow sink's first attempt")

	h.RunSink(notifier(healthy.URL, h.Clock.Now, 5*time.Second), h.SinkOptions("soc"))
	alerttest.WaitFor(t, func() bool { return len(healthy.requests()) == 1 }, "the healthy sink")
	if calls.Load() != 1 || inflight.Load() != 1 {
		t.Fatalf("the healthy sink should deliver while the other still waits on its first attempt (calls %d, in flight %d)", calls.Load(), inflight.Load())
	}
	// The hanging one times out, is retried, and is dead-lettered.
	alerttest.WaitFor(t, func() bool { return len(h.DeadLetters()) == 1 }, "the dead letter of the hanging sink")
	dl := h.DeadLetters()[0]
	if dl.Sink != "slow" || dl.Deliveries != 2 || calls.Load() != 2 || !strings.Contains(dl.Error, "timed out") {
		t.Fatalf("dead letter %+v after %d calls", dl, calls.Load())
	}
}

func TestGarbageAnswersAreRetried(t *testing.T) {
	h := alerttest.New(t)
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			conn, buf, err := http.NewResponseController(w).Hijack()
			if err != nil {
				t.Error(err)
				return
			}
			buf.WriteString("this is not HTTP\r\n\r\n")
			buf.Flush()
			conn.Close()
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	h.RunSink(notifier(srv.URL, h.Clock.Now, 2*time.Second), h.SinkOptions("soc"))
	h.Publish(alerttest.Alert("0xabc", chains.StatusPending))
	alerttest.WaitFor(t, func() bool { return calls.Load() == 2 }, "the retry after a garbage answer")
	alerttest.WaitFor(t, func() bool {
		incs, _ := alerts.Incidents(h.Ctx, h.Store, "soc")
		return len(incs) == 1 && incs[0].Notified
	}, "the incident to be marked sent")
	if dls := h.DeadLetters(); len(dls) != 0 {
		t.Fatalf("dead letters %v", dls)
	}
}

func TestRedirectsAreNotFollowed(t *testing.T) {
	h := alerttest.New(t)
	elsewhere := newReceiver(t)
	srv := httptest.NewServer(http.RedirectHandler(elsewhere.URL, http.StatusTemporaryRedirect))
	defer srv.Close()
	h.RunSink(notifier(srv.URL, h.Clock.Now, 2*time.Second), h.SinkOptions("soc"))
	h.Publish(alerttest.Alert("0xabc", chains.StatusPending))
	alerttest.WaitFor(t, func() bool { return len(h.DeadLetters()) == 1 }, "the dead letter")
	if n := len(elsewhere.requests()); n != 0 {
		t.Fatalf("the alert followed the redirect %d times", n)
	}
}
