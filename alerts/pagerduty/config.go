// Package pagerduty pages through PagerDuty's Events API v2: one trigger per
// incident with dedup_key = the id of its first alert, and a resolve with
// the same key when every alert of the incident has resolved.
package pagerduty

import (
	"regexp"
	"time"

	"github.com/keywatch/keywatch/alerts"
	"github.com/keywatch/keywatch/alerts/internal/sinkcfg"
	"github.com/keywatch/keywatch/config"
)

// DefaultURL is PagerDuty's Events API v2 endpoint.
const DefaultURL = "https://events.pagerduty.com/v2/enqueue"

// Config is a PagerDuty sink.
type Config struct {
	// URL overrides DefaultURL (an EU service region, a proxy, a test).
	URL string
	// RoutingKey is the integration key of an Events API v2 integration.
	RoutingKey config.Secret
	// Timeout bounds one request (default 10s).
	Timeout time.Duration
	// Explorers maps a chain to its transaction link template ({tx}).
	Explorers map[string]string
}

var routingKeyRe = regexp.MustCompile(`^[A-Za-z0-9]{32}$`)

// FromConfig builds the PagerDuty configuration of sink i, reporting every
// problem with the sink's name and the field's position.
func FromConfig(cfg *config.Config, i int) (Config, config.Errors) {
	s := cfg.Alerts.Sinks[i]
	errs := sinkcfg.Unused(cfg, i, "url_env", "webhook_url_env", "secret_env")
	c := Config{URL: DefaultURL, RoutingKey: s.RoutingKey(), Timeout: s.Timeout.D(), Explorers: cfg.Explorers()}
	switch {
	case s.RoutingKeyEnv == "":
		errs = append(errs, cfg.Errorf(sinkcfg.Path(i, "routing_key_env"), "sink %q: required: the environment variable holding the Events API v2 integration key", s.Name))
	case !s.RoutingKey().IsZero() && !routingKeyRe.MatchString(s.RoutingKey().Reveal()):
		errs = append(errs, cfg.Errorf(sinkcfg.Path(i, "routing_key_env"), "sink %q: environment variable %s does not hold an Events API v2 integration key (32 letters and digits)", s.Name, s.RoutingKeyEnv))
	}
	if s.URL != "" {
		if err := alerts.CheckEndpoint(s.URL); err != nil {
			errs = append(errs, cfg.Errorf(sinkcfg.Path(i, "url"), "sink %q: %v", s.Name, err))
		}
		c.URL = s.URL
	}
	return c, errs
}
