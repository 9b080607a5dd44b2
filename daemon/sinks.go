package daemon

import (
	"fmt"
	"log/slog"

	"github.com/keywatch/keywatch/alertmodel"
	"github.com/keywatch/keywatch/alerts"
	"github.com/keywatch/keywatch/alerts/logsink"
	"github.com/keywatch/keywatch/alerts/pagerduty"
	"github.com/keywatch/keywatch/alerts/slack"
	"github.com/keywatch/keywatch/alerts/webhook"
	"github.com/keywatch/keywatch/config"
)

// Sink is one configured sink, built: where alerts go and which ones.
type Sink struct {
	Name     string
	Kind     string
	Notifier alerts.Notifier
	Route    alertmodel.Route
	Config   config.Sink
}

// sinkKinds are the kinds of sink this version builds.
const sinkKinds = "log, pagerduty, slack or webhook"

// BuildSinks builds every configured sink from cfg, in one place; the
// errors list every problem, each naming the sink and the field.
func BuildSinks(cfg *config.Config, log *slog.Logger) ([]Sink, config.Errors) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var (
		out  []Sink
		errs config.Errors
	)
	for i, s := range cfg.Alerts.Sinks {
		p := fmt.Sprintf("alerts.sinks[%d]", i)
		route := alertmodel.Route{Paging: s.IsPaging(), Chains: s.Match.Chains, Wallets: s.Match.Wallets,
			Roles: s.Match.Roles, Policies: s.Match.Policies}
		if s.MinSeverity != "" {
			sev, err := alertmodel.ParseSeverity(s.MinSeverity)
			if err != nil {
				errs = append(errs, cfg.Errorf(p+".min_severity", "sink %q: %v", s.Name, err))
			}
			route.MinSeverity = sev
		}
		var (
			n    alerts.Notifier
			more config.Errors
		)
		switch s.Kind {
		case "log":
			more = logsink.CheckConfig(cfg, i)
			n = logsink.New(log.With("part", "sink", "sink", s.Name))
		case "pagerduty":
			var c pagerduty.Config
			c, more = pagerduty.FromConfig(cfg, i)
			n = pagerduty.New(c)
		case "slack":
			var c slack.Config
			c, more = slack.FromConfig(cfg, i)
			n = slack.New(c)
		case "webhook":
			var c webhook.Config
			c, more = webhook.FromConfig(cfg, i)
			n = webhook.New(c)
		case "":
			more = config.Errors{cfg.Errorf(p+".kind", "sink %q: required (%s)", s.Name, sinkKinds)}
		default:
			more = config.Errors{cfg.Errorf(p+".kind", "sink %q: unknown kind %q (want %s)", s.Name, s.Kind, sinkKinds)}
		}
		errs = append(errs, more...)
		out = append(out, Sink{Name: s.Name, Kind: s.Kind, Notifier: n, Route: route, Config: s})
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return out, nil
}
