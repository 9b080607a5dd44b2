// Package webhook posts incidents as JSON to any HTTPS endpoint, signed with
// HMAC-SHA256 so the receiver can tell they come from keywatch and were not
// altered or replayed.
//
// Each request carries two headers:
//
//	X-Keywatch-Timestamp: 1795953600              (Unix seconds when it was sent)
//	X-Keywatch-Signature: sha256=<64 hex digits>  (HMAC-SHA256 of "<timestamp>.<body>")
//
// A receiver recomputes the HMAC with the shared secret over the timestamp
// header, a full stop, and the raw body bytes, compares it in constant time,
// and refuses timestamps more than five minutes away from its clock (see
// Verify, and the README for other languages).
package webhook

import (
	"time"

	"github.com/keywatch/keywatch/alerts"
	"github.com/keywatch/keywatch/alerts/internal/sinkcfg"
	"github.com/keywatch/keywatch/config"
)

// Config is a webhook sink.
type Config struct {
	Sink string
	// URL is the endpoint (it may carry a credential, so it is a Secret).
	URL config.Secret
	// Secret keys the HMAC signature.
	Secret config.Secret
	// Timeout bounds one request (default 10s).
	Timeout time.Duration
	// Now stamps requests (default time.Now).
	Now func() time.Time
}

// MinSecretLen is the shortest HMAC secret accepted.
const MinSecretLen = 16

// FromConfig builds the webhook configuration of sink i.
func FromConfig(cfg *config.Config, i int) (Config, config.Errors) {
	s := cfg.Alerts.Sinks[i]
	errs := sinkcfg.Unused(cfg, i, "routing_key_env", "webhook_url_env")
	c := Config{Sink: s.Name, URL: s.Endpoint(), Secret: s.Secret(), Timeout: s.Timeout.D()}
	switch {
	case s.URL == "" && s.URLEnv == "":
		errs = append(errs, cfg.Errorf(sinkcfg.Path(i, "url"), "sink %q: required: the endpoint (url, or url_env naming an environment variable that holds it)", s.Name))
	case !s.Endpoint().IsZero():
		if err := alerts.CheckEndpoint(s.Endpoint().Reveal()); err != nil {
			field, where := "url", ""
			if s.URLEnv != "" {
				field, where = "url_env", "environment variable "+s.URLEnv+": "
			}
			errs = append(errs, cfg.Errorf(sinkcfg.Path(i, field), "sink %q: %s%v", s.Name, where, err))
		}
	}
	switch {
	case s.SecretEnv == "":
		errs = append(errs, cfg.Errorf(sinkcfg.Path(i, "secret_env"), "sink %q: required: the environment variable holding the HMAC secret", s.Name))
	case !s.Secret().IsZero() && len(s.Secret().Reveal()) < MinSecretLen:
		errs = append(errs, cfg.Errorf(sinkcfg.Path(i, "secret_env"), "sink %q: the secret in %s is shorter than %d characters", s.Name, s.SecretEnv, MinSecretLen))
	}
	return c, errs
}
