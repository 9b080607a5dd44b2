package alerts

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/keywatch/keywatch/alertmodel"
)

// NewHTTPClient makes the HTTP client of a sink: every request bounded by
// timeout, and redirects not followed (a redirect would carry the alert, and
// its signature, somewhere that was not configured).
func NewHTTPClient(timeout time.Duration) *http.Client {
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.ResponseHeaderTimeout = timeout
	return &http.Client{
		Timeout:   timeout,
		Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// PostJSON posts body to endpoint and classifies the outcome the way sinks
// retry: 2xx is success; 408, 429 and 5xx, timeouts and network errors are
// worth retrying (honouring Retry-After); any other answer is a refusal.
// The endpoint never appears in the error: sink URLs may carry credentials.
func PostJSON(ctx context.Context, c *http.Client, endpoint string, body []byte, header http.Header) (retry bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return false, errors.New("cannot build the request (malformed URL?)")
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	req.Header.Set("Content-Type", "application/json")
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", "keywatch")
	}
	resp, err := c.Do(req)
	if err != nil {
		return true, redactURL(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20)) // let the connection be reused
	if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
		return false, nil
	}
	err = fmt.Errorf("endpoint answered %d %s: %s", resp.StatusCode, http.StatusText(resp.StatusCode), snippet(data))
	switch {
	case resp.StatusCode == http.StatusTooManyRequests, resp.StatusCode == http.StatusRequestTimeout, resp.StatusCode >= 500:
		if d := parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()); d > 0 {
			err = &RetryAfterError{Err: err, After: d}
		}
		return true, err
	}
	return false, err
}

// redactURL drops the URL from a client error ("Post \"https://…\": …").
func redactURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		inner := ue.Err
		if ue.Timeout() {
			return fmt.Errorf("%s: timed out: %w", ue.Op, inner)
		}
		return fmt.Errorf("%s: %w", ue.Op, inner)
	}
	return err
}

// parseRetryAfter reads delay-seconds or an HTTP date, capped at 10 minutes.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	var d time.Duration
	if n, err := strconv.Atoi(v); err == nil {
		d = time.Duration(n) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return max(0, min(d, 10*time.Minute))
}

// snippet shortens an answer body for a log line or error: printable
// characters only, at most 200 of them.
func snippet(b []byte) string {
	s := strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		return ' '
	}, strings.TrimSpace(string(b)))
	if s == "" {
		return "(empty body)"
	}
	return alertmodel.Truncate(s, 201)
}

// CheckEndpoint accepts an https:// URL with a host, or http:// to a
// loopback address (a local relay, a test). Alerts carry what an attacker
// would like to read, so they do not travel in clear over a network.
func CheckEndpoint(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return errors.New("want an https:// URL with a host")
	}
	if u.Scheme == "http" && !isLoopback(u.Hostname()) {
		return errors.New("http:// is accepted only for a loopback address; use https://")
	}
	return nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
