package webhook

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/keywatch/keywatch/alertmodel"
	"github.com/keywatch/keywatch/alerts"
)

// Header names.
const (
	TimestampHeader = "X-Keywatch-Timestamp"
	SignatureHeader = "X-Keywatch-Signature"
)

// Payload is the JSON body of every request.
type Payload struct {
	Version  int    `json:"version"` // 1
	Sink     string `json:"sink"`
	Incident string `json:"incident"`  // the id of the incident's first alert
	GroupKey string `json:"group_key"` // <policy>/<chain>/<wallet>
	Status   string `json:"status"`    // firing | resolved (the incident's)
	Repeat   bool   `json:"repeat"`    // sent again after repeat_interval
	// Alerts are in the shape of the alert stream (the specification's).
	Alerts []*alertmodel.Alert `json:"alerts"`
}

// Notifier posts signed incidents.
type Notifier struct {
	cfg    Config
	client *http.Client
}

// New makes a webhook notifier.
func New(cfg Config) *Notifier {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Notifier{cfg: cfg, client: alerts.NewHTTPClient(cfg.Timeout)}
}

// Sign returns the signature header value of body sent at timestamp ts.
func Sign(secret []byte, ts string, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(ts))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// Notify posts one incident. 2xx is success; 408, 429, 5xx, timeouts and
// network errors are retried; other answers (and redirects, which are not
// followed) are refusals.
func (n *Notifier) Notify(ctx context.Context, as ...*alertmodel.Alert) (bool, error) {
	if len(as) == 0 {
		return false, nil
	}
	note := alerts.NotificationFrom(ctx, as)
	body, err := json.Marshal(Payload{Version: 1, Sink: n.cfg.Sink, Incident: note.Incident, GroupKey: note.GroupKey,
		Status: string(note.Status), Repeat: note.Repeat, Alerts: as})
	if err != nil {
		return false, fmt.Errorf("webhook: %w", err)
	}
	ts := strconv.FormatInt(n.cfg.Now().Unix(), 10)
	h := http.Header{}
	h.Set(TimestampHeader, ts)
	h.Set(SignatureHeader, Sign([]byte(n.cfg.Secret.Reveal()), ts, body))
	if retry, err := alerts.PostJSON(ctx, n.client, n.cfg.URL.Reveal(), body, h); err != nil {
		return retry, fmt.Errorf("webhook: %w", err)
	}
	return false, nil
}

// Errors Verify returns.
var (
	ErrBadSignature = errors.New("signature does not match")
	ErrStale        = errors.New("timestamp is too far from now (a replay?)")
)

// Verify checks a request as a receiver written in Go would: the signature
// over the timestamp and the raw body, and a timestamp within tolerance of
// now (five minutes when tolerance is 0).
func Verify(secret []byte, timestamp, signature string, body []byte, now time.Time, tolerance time.Duration) error {
	if tolerance <= 0 {
		tolerance = 5 * time.Minute
	}
	sec, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return fmt.Errorf("%s %q is not Unix seconds", TimestampHeader, timestamp)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return ErrStale
	}
	got, ok := strings.CutPrefix(signature, "sha256=")
	if !ok {
		return ErrBadSignature
	}
	want := strings.TrimPrefix(Sign(secret, timestamp, body), "sha256=")
	if !hmac.Equal([]byte(got), []byte(want)) {
		return ErrBadSignature
	}
	return nil
}
