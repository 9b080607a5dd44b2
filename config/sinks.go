package config

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/keywatch/keywatch/alertmodel"
)

// Sink is one consumer of the alert stream.
type Sink struct {
	Name        string `yaml:"name"`
	Kind        string `yaml:"kind"` // log | pagerduty | slack | webhook
	MinSeverity string `yaml:"min_severity"`
	// URL is the endpoint: the webhook's address, or PagerDuty's Events v2
	// endpoint when it must be overridden. A URL that carries a credential
	// belongs in url_env (webhook) or webhook_url_env (Slack).
	URL           string `yaml:"url"`
	URLEnv        string `yaml:"url_env"`
	RoutingKeyEnv string `yaml:"routing_key_env"`
	WebhookURLEnv string `yaml:"webhook_url_env"`
	SecretEnv     string `yaml:"secret_env"`
	// Match narrows the sink to some chains, wallets, roles or policies
	// (each a list; an alert must match every list given).
	Match SinkMatch `yaml:"match"`
	// Paging sinks receive only alerts whose policy asks to page (actions:
	// [page]); default true for pagerduty, false for the others.
	Paging *bool `yaml:"paging"`
	// GroupWait is how long the first notification of an incident waits for
	// more alerts of the same policy and wallet (default 0s: at once).
	GroupWait Duration `yaml:"group_wait"`
	// GroupWindow is how long after its first alert an incident takes in
	// more alerts of the same policy and wallet; they go out together in one
	// update at the window's end (default 1m).
	GroupWindow Duration `yaml:"group_window"`
	// RepeatInterval sends an incident again while it still fires (default
	// 0: never).
	RepeatInterval Duration `yaml:"repeat_interval"`
	// Timeout bounds one delivery attempt (default 10s).
	Timeout Duration `yaml:"timeout"`
	// MaxDeliver bounds delivery attempts before an alert is dead-lettered
	// (default 10).
	MaxDeliver int `yaml:"max_deliver"`

	routingKey Secret
	webhookURL Secret
	url        Secret
	secret     Secret
}

// SinkMatch narrows a sink to some alerts. Alerts about keywatch itself
// (heartbeats, stale chains, dead letters) are not filtered by chains,
// wallets or roles: a team's sink never misses that keywatch went blind.
type SinkMatch struct {
	Chains   []string `yaml:"chains"`
	Wallets  []string `yaml:"wallets"`
	Roles    []string `yaml:"roles"`
	Policies []string `yaml:"policies"`
}

// RoutingKey is the PagerDuty integration key read from routing_key_env.
func (s Sink) RoutingKey() Secret { return s.routingKey }

// WebhookURL is the Slack incoming webhook URL read from webhook_url_env.
func (s Sink) WebhookURL() Secret { return s.webhookURL }

// Endpoint is the sink's URL: url, or the value of url_env. It is a Secret
// because a URL may carry a credential.
func (s Sink) Endpoint() Secret { return s.url }

// Secret is the HMAC secret read from secret_env.
func (s Sink) Secret() Secret { return s.secret }

// IsPaging reports whether the sink takes only alerts that ask to page.
func (s Sink) IsPaging() bool {
	if s.Paging != nil {
		return *s.Paging
	}
	return s.Kind == "pagerduty"
}

// validateSinks fills in each sink's defaults and checks it; known holds the
// chains, wallets and policies a sink may match. A sink's name must be
// unique. What each kind requires is checked by the package of that kind
// when the daemon builds it.
func validateSinks(v *checker, sinks []Sink, known names) {
	seen := map[string]bool{}
	for i := range sinks {
		s := &sinks[i]
		p := fmt.Sprintf("alerts.sinks[%d]", i)
		s.setDefaults(v, p)
		v.name(p+".name", "sink", s.Name, "it names a durable consumer", seen[s.Name])
		seen[s.Name] = true
		s.check(v, p, known)
	}
}

// setDefaults gives the sink a group window of 1m, a timeout of 10s and 10
// delivery attempts; p is its path.
func (s *Sink) setDefaults(v *checker, p string) {
	if !v.isSet(p + ".group_window") {
		s.GroupWindow = Duration(time.Minute)
	}
	if s.Timeout == 0 {
		s.Timeout = Duration(10 * time.Second)
	}
	if s.MaxDeliver == 0 {
		s.MaxDeliver = 10
	}
}

// check reads the sink's secrets and URL, checks its timings and what it
// matches; p is its path. Each problem starts with the sink's name, which
// the kinds' own checks print too.
func (s *Sink) check(v *checker, p string, known names) {
	who := s.who()
	s.routingKey = v.env(p+".routing_key_env", who, s.RoutingKeyEnv)
	s.webhookURL = v.env(p+".webhook_url_env", who, s.WebhookURLEnv)
	s.secret = v.env(p+".secret_env", who, s.SecretEnv)
	switch {
	case s.URL != "" && s.URLEnv != "":
		v.add(p+".url_env", "%sset url or url_env, not both", who)
	case s.URLEnv != "":
		s.url = v.env(p+".url_env", who, s.URLEnv)
	case s.URL != "":
		s.url = NewSecret(s.URL)
	}
	for _, d := range []struct {
		field string
		v     Duration
	}{{"group_wait", s.GroupWait}, {"group_window", s.GroupWindow}, {"repeat_interval", s.RepeatInterval}, {"timeout", s.Timeout}} {
		if d.v < 0 {
			v.add(p+"."+d.field, "%smust not be negative", who)
		}
	}
	if s.Timeout > Duration(5*time.Minute) {
		v.add(p+".timeout", "%sat most 5m: a sink that hangs longer holds up its own alerts", who)
	}
	if s.MaxDeliver < 1 {
		v.add(p+".max_deliver", "%smust be at least 1", who)
	}
	if s.RepeatInterval > 0 && s.RepeatInterval < Duration(time.Minute) {
		v.add(p+".repeat_interval", "%sat least 1m (or 0 for never)", who)
	}
	s.Match.check(v, p+".match", who, known)
}

// who starts the sink's problems: `sink "name": `, or "" when it has no name.
func (s Sink) who() string {
	if s.Name == "" {
		return ""
	}
	return fmt.Sprintf("sink %q: ", s.Name)
}

// check checks that every chain, wallet and policy matched is defined (in
// known, or among keywatch's own kinds of alert for policies) and every role
// is a wallet role; p is the match's path, who starts each problem.
func (m SinkMatch) check(v *checker, p, who string, known names) {
	for j, ch := range m.Chains {
		if _, ok := known.chains[ch]; !ok {
			v.add(fmt.Sprintf("%s.chains[%d]", p, j), "%sno chain named %q", who, ch)
		}
	}
	for j, w := range m.Wallets {
		if !known.wallets[w] {
			v.add(fmt.Sprintf("%s.wallets[%d]", p, j), "%sno wallet named %q", who, w)
		}
	}
	for j, r := range m.Roles {
		if !slices.Contains(walletRoles, r) {
			v.add(fmt.Sprintf("%s.roles[%d]", p, j), "%sunknown role %q (want one of %s)", who, r, strings.Join(walletRoles, ", "))
		}
	}
	for j, pol := range m.Policies {
		if !known.policies[pol] && !slices.Contains(alertmodel.SystemKinds(), pol) {
			v.add(fmt.Sprintf("%s.policies[%d]", p, j), "%sno policy named %q (policies, or keywatch's own: %s)", who, pol, strings.Join(alertmodel.SystemKinds(), ", "))
		}
	}
}
