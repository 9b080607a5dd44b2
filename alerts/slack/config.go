// Package slack posts incidents to a Slack channel through an incoming
// webhook, as a Block Kit message: severity, wallet, amount, counterparty,
// reasons and a link to the transaction.
package slack

import (
	"time"

	"github.com/keywatch/keywatch/alerts"
	"github.com/keywatch/keywatch/alerts/internal/sinkcfg"
	"github.com/keywatch/keywatch/config"
)

// Config is a Slack sink.
type Config struct {
	// WebhookURL is the incoming webhook; it is a credential (anyone who
	// has it can post to the channel).
	WebhookURL config.Secret
	// Timeout bounds one request (default 10s).
	Timeout time.Duration
	// Explorers maps a chain to its transaction link template ({tx}).
	Explorers map[string]string
}

// FromConfig builds the Slack configuration of sink i.
func FromConfig(cfg *config.Config, i int) (Config, config.Errors) {
	s := cfg.Alerts.Sinks[i]
	errs := sinkcfg.Unused(cfg, i, "routing_key_env", "secret_env", "url_env")
	if s.URL != "" {
		errs = append(errs, cfg.Errorf(sinkcfg.Path(i, "url"), "sink %q: a Slack webhook URL is a credential: put it in an environment variable and name it with webhook_url_env", s.Name))
	}
	c := Config{WebhookURL: s.WebhookURL(), Timeout: s.Timeout.D(), Explorers: cfg.Explorers()}
	switch {
	case s.WebhookURLEnv == "":
		errs = append(errs, cfg.Errorf(sinkcfg.Path(i, "webhook_url_env"), "sink %q: required: the environment variable holding the incoming webhook URL", s.Name))
	case !s.WebhookURL().IsZero():
		if err := alerts.CheckEndpoint(s.WebhookURL().Reveal()); err != nil {
			errs = append(errs, cfg.Errorf(sinkcfg.Path(i, "webhook_url_env"), "sink %q: environment variable %s: %v", s.Name, s.WebhookURLEnv, err))
		}
	}
	return c, errs
}
