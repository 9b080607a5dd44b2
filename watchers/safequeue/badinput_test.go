package safequeue_test

import (
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keywatch/keywatch/chains/ethereum/safe"
	"github.com/keywatch/keywatch/internal/safeservice"
	"github.com/keywatch/keywatch/internal/simchain"
	"github.com/keywatch/keywatch/internal/testenv"
	"github.com/keywatch/keywatch/watchers/safequeue"
)

// listingWith answers the multisig-transactions listing with body instead
// of the service.
func listingWith(status int, body string) func(w http.ResponseWriter, r *http.Request) bool {
	return func(w http.ResponseWriter, r *http.Request) bool {
		if !strings.HasSuffix(r.URL.Path, "/multisig-transactions/") {
			return false
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		w.Write([]byte(body))
		return true
	}
}

// TestMalformedResponses: a response that is not what the API documents is
// an error naming the field and the URL without its query or the base
// URL's path (which may hold a key); nothing is judged from it, and the
// next poll of a sound response delivers.
func TestMalformedResponses(t *testing.T) {
	const secretPath = "/tx-service/key-3f9a"
	h := newHarness(t, harnessOpts{nonce: 5, prefix: secretPath, apiKey: "api-key-77c1"})
	rec, hash := safeservice.Record(t, h.safe, simchain.ChainID, h.ver, safeservice.Proposal{To: attacker, Op: safe.DelegateCall, Nonce: 5, Signers: []*ecdsa.PrivateKey{owner1}})
	h.svc.Add(h.safe, rec)
	good, _ := json.Marshal(rec)
	other := strings.Replace(string(good), h.safe.Hex(), attacker.Hex(), 1)
	page := func(results ...string) string {
		return `{"count": ` + fmt.Sprint(len(results)) + `, "next": null, "previous": null, "results": [` + strings.Join(results, ",") + `]}`
	}
	replace := func(field, value string) string {
		var m map[string]json.RawMessage
		json.Unmarshal(good, &m)
		m[field] = json.RawMessage(value)
		b, _ := json.Marshal(m)
		return string(b)
	}
	drop := func(field string) string {
		var m map[string]json.RawMessage
		json.Unmarshal(good, &m)
		delete(m, field)
		b, _ := json.Marshal(m)
		return string(b)
	}
	tests := []struct {
		name     string
		override func(w http.ResponseWriter, r *http.Request) bool
		want     string
	}{
		{name: "bad JSON", override: listingWith(200, `{"count": 1, "results": [`), want: "page 1: not JSON"},
		{name: "an HTML error page", override: listingWith(200, `<html>502 Bad Gateway</html>`), want: "page 1: not JSON"},
		{name: "results missing", override: listingWith(200, `{"count": 0, "next": null, "previous": null}`), want: "page 1: results: missing"},
		{name: "results not an array", override: listingWith(200, `{"count": 1, "next": null, "results": {"0": 1}}`), want: "page 1: results: want an array, got an object"},
		{name: "count a string of letters", override: listingWith(200, `{"count": "many", "next": null, "results": []}`), want: `count: want a non-negative integer, got "many"`},
		{name: "nonce a boolean", override: listingWith(200, page(replace("nonce", "true"))), want: "results[0].nonce: want a non-negative integer, got true"},
		{name: "nonce negative", override: listingWith(200, page(replace("nonce", "-1"))), want: "results[0].nonce: want a non-negative integer, got -1"},
		{name: "nonce a fraction", override: listingWith(200, page(replace("nonce", "5.5"))), want: "results[0].nonce: want a non-negative integer, got 5.5"},
		{name: "value over 256 bits", override: listingWith(200, page(replace("value", `"`+strings.Repeat("9", 80)+`"`))), want: "results[0].value: "},
		{name: "safeTxHash missing", override: listingWith(200, page(drop("safeTxHash"))), want: "results[0].safeTxHash: missing"},
		{name: "safeTxHash short", override: listingWith(200, page(replace("safeTxHash", `"0x1234"`))), want: `results[0].safeTxHash: "0x1234" is not a 32-byte 0x hex hash`},
		{name: "to not an address", override: listingWith(200, page(replace("to", `"0xnothex"`))), want: `results[0].to: "0xnothex" is not an address`},
		{name: "operation 2", override: listingWith(200, page(replace("operation", "2"))), want: "results[0].operation: 2 is neither 0 (call) nor 1 (delegatecall)"},
		{name: "data not hex", override: listingWith(200, page(replace("data", `"0xzz"`))), want: `results[0].data: "0xzz" is not 0x hex bytes`},
		{name: "isExecuted a string", override: listingWith(200, page(replace("isExecuted", `"no"`))), want: `results[0].isExecuted: want true or false, got "no"`},
		{name: "confirmations an object", override: listingWith(200, page(replace("confirmations", `{}`))), want: "results[0].confirmations: want an array, got an object"},
		{name: "a confirmation without owner", override: listingWith(200, page(replace("confirmations", `[{"signature": "0x00"}]`))), want: "results[0].confirmations[0].owner: missing"},
		{name: "dataDecoded a number", override: listingWith(200, page(replace("dataDecoded", `7`))), want: "results[0].dataDecoded: want an object, got a number"},
		{name: "a result for another Safe", override: listingWith(200, page(other)), want: "results[0] is a transaction of Safe " + attacker.Hex()},
		{name: "a next link to another host", override: listingWith(200, `{"count": 2, "next": "https://safe.attacker.example/api/v1/safes/`+h.safe.Hex()+`/multisig-transactions/?offset=1", "previous": null, "results": [`+string(good)+`]}`),
			want: "page 1: next: leads to https://safe.attacker.example, away from the service"},
		{name: "a next link to another endpoint", override: func(w http.ResponseWriter, r *http.Request) bool {
			return listingWith(200, `{"count": 2, "next": "http://`+r.Host+`/api/v1/about/?offset=1", "results": [`+string(good)+`]}`)(w, r)
		}, want: "page 1: next: leads to another endpoint"},
		{name: "a next link back to the same page", override: func(w http.ResponseWriter, r *http.Request) bool {
			return listingWith(200, `{"count": 2, "next": "http://`+r.Host+r.URL.RequestURI()+`", "results": [`+string(good)+`]}`)(w, r)
		}, want: "page 1: next links back to a page already read"},
		{name: "server error", override: listingWith(502, `<html>bad gateway</html>`), want: "answered 502 Bad Gateway"},
		{name: "info of another Safe", override: func(w http.ResponseWriter, r *http.Request) bool {
			if strings.HasSuffix(r.URL.Path, "/multisig-transactions/") {
				return false
			}
			safeservice.WriteJSON(w, 200, map[string]any{"address": attacker.Hex(), "nonce": "5", "threshold": 3, "owners": []string{}, "version": "1.3.0"})
			return true
		}, want: "describes Safe " + attacker.Hex()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h.svc.SetOverride(tc.override)
			p := h.poller()
			err := p.Step(h.ctx)
			if err == nil {
				t.Fatal("no error")
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.want) {
				t.Errorf("error %q\nwant it to say %q", msg, tc.want)
			}
			var se *safequeue.StatusError
			if !errors.Is(err, safequeue.ErrMalformed) && !errors.As(err, &se) {
				t.Errorf("error %v is neither ErrMalformed nor a StatusError", err)
			}
			for _, secret := range []string{"key-3f9a", "api-key-77c1", "nonce__gte", "?"} {
				if strings.Contains(msg, secret) {
					t.Errorf("error %q shows %q", msg, secret)
				}
			}
			if !strings.Contains(msg, "/…/api/v1/safes/"+h.safe.Hex()) {
				t.Errorf("error %q does not name the endpoint", msg)
			}
			if got := h.take(); len(got) != 0 {
				t.Fatalf("judged from a malformed response: %v", summary(got))
			}
			// The service answers soundly again: the next poll delivers.
			h.svc.SetOverride(nil)
			mustPoll(t, p, h.ctx)
			if got := summary(h.take()); len(got) != 1 || got[0] != "dev:safe-tx:"+hash.Hex()+" proposed" {
				t.Fatalf("after the service recovered: delivered %v", got)
			}
			h.st.Delete(h.ctx, "safequeue:dev:"+strings.ToLower(h.safe.Hex())) // deliver again in the next case
			h.takeAlerts()
		})
	}
}

// TestServiceSendsTheBearerKey: the API key goes in the Authorization
// header, never in the URL.
func TestServiceSendsTheBearerKey(t *testing.T) {
	h := newHarness(t, harnessOpts{nonce: 5, apiKey: "api-key-77c1"})
	var auth atomic.Value
	h.svc.SetOverride(func(w http.ResponseWriter, r *http.Request) bool {
		auth.Store(r.Header.Get("Authorization") + " " + r.URL.String())
		return false
	})
	mustPoll(t, h.poller(), h.ctx)
	if got, _ := auth.Load().(string); !strings.HasPrefix(got, "Bearer api-key-77c1 ") || strings.Count(got, "api-key-77c1") != 1 {
		t.Fatalf("request %q", got)
	}
}

// TestRunRetriesAndLogs: Run logs a malformed response with the URL
// redacted, retries with backoff, and delivers once the service answers
// soundly.
func TestRunRetriesAndLogs(t *testing.T) {
	h := newHarness(t, harnessOpts{nonce: 5, prefix: "/tx-service/key-3f9a"})
	hash := h.propose(safeservice.Proposal{To: attacker, Op: safe.DelegateCall, Nonce: 5, Signers: []*ecdsa.PrivateKey{owner1}})
	var bad atomic.Int32
	h.svc.SetOverride(func(w http.ResponseWriter, r *http.Request) bool {
		if !strings.HasSuffix(r.URL.Path, "/multisig-transactions/") || bad.Add(1) > 3 {
			return false
		}
		return listingWith(200, `{"count": "x"`)(w, r)
	})
	var logs testenv.LogBuffer
	h.opts.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	ctx, cancel := context.WithCancel(h.ctx)
	done := make(chan error, 1)
	p := h.poller()
	go func() { done <- p.Run(ctx) }()
	waitFor(t, "the proposed event", func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		return len(h.delivered) > 0
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := summary(h.take()); len(got) != 1 || got[0] != "dev:safe-tx:"+hash.Hex()+" proposed" {
		t.Fatalf("delivered %v", got)
	}
	out := logs.String()
	if n := strings.Count(out, "Safe queue poll failed"); n < 3 {
		t.Errorf("%d failures logged, want 3:\n%s", n, out)
	}
	if !strings.Contains(out, "/…/api/v1/safes/"+h.safe.Hex()+"/multisig-transactions/") || strings.Contains(out, "key-3f9a") || strings.Contains(out, "nonce__gte") {
		t.Errorf("log does not redact the URL:\n%s", out)
	}
}

// TestUnreachableServiceRaisesFailure: a service that does not answer for
// FailingAfter calls Failing once, and again when it answers.
func TestUnreachableServiceRaisesFailure(t *testing.T) {
	h := newHarness(t, harnessOpts{nonce: 5})
	now := observed
	h.opts.Now = func() time.Time { return now }
	h.opts.FailingAfter = 5 * time.Minute
	var got []safequeue.Failure
	h.opts.Failing = func(_ context.Context, f safequeue.Failure) error {
		got = append(got, f)
		return nil
	}
	var down atomic.Bool
	down.Store(true)
	h.svc.SetOverride(func(w http.ResponseWriter, r *http.Request) bool {
		if !down.Load() {
			return false
		}
		// Hang up without an answer, as an unreachable service does.
		hj, ok := w.(http.Hijacker)
		if !ok {
			t.Fatal("cannot hijack")
		}
		c, _, _ := hj.Hijack()
		c.Close()
		return true
	})
	p := h.poller()
	for i := range 4 {
		if err := p.Step(h.ctx); err == nil {
			t.Fatalf("poll %d of a service that hangs up succeeded", i)
		}
		now = now.Add(2 * time.Minute)
	}
	if len(got) != 1 || got[0].Over || got[0].Safe != "treasury-safe" || !got[0].Since.Equal(observed) || !strings.Contains(got[0].Err, "EOF") {
		t.Fatalf("failures %+v, want one since the first failure", got)
	}
	down.Store(false)
	mustPoll(t, p, h.ctx)
	if len(got) != 2 || !got[1].Over {
		t.Fatalf("failures %+v, want the end of it", got)
	}
}
