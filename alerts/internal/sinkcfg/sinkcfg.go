// Package sinkcfg holds the checks every sink kind makes on its part of the
// configuration.
package sinkcfg

import (
	"fmt"

	"github.com/keywatch/keywatch/config"
)

// Unused reports the fields of sink i that its kind does not read: a key
// that does nothing is a mistake the user should hear about.
func Unused(cfg *config.Config, i int, fields ...string) config.Errors {
	s := cfg.Alerts.Sinks[i]
	set := map[string]bool{
		"url": s.URL != "", "url_env": s.URLEnv != "", "routing_key_env": s.RoutingKeyEnv != "",
		"webhook_url_env": s.WebhookURLEnv != "", "secret_env": s.SecretEnv != "",
	}
	var errs config.Errors
	for _, f := range fields {
		if set[f] {
			errs = append(errs, cfg.Errorf(Path(i, f), "sink %q: %s sinks do not use %s", s.Name, s.Kind, f))
		}
	}
	return errs
}

// Path is the field path of sink i's field.
func Path(i int, field string) string { return fmt.Sprintf("alerts.sinks[%d].%s", i, field) }
