package main

import (
	"strings"
	"testing"
)

func TestCheckNamesTheSinkOfEveryProblem(t *testing.T) {
	t.Setenv("KW_PD_KEY", "not-a-routing-key")
	t.Setenv("KW_SLACK_URL", "hooks.slack.com/services/T0/B0/S3CR3TPATH")
	t.Setenv("KW_SHORT_SECRET", "short")
	p := writeConfig(t, `store: {memory: true}
nats: {embedded: true, data_dir: /tmp/kw}
chains:
  - {name: eth, kind: ethereum, rpc: [http://127.0.0.1:8545]}
wallets:
  - {name: hot, chain: eth, address: "0x1111111111111111111111111111111111111111", role: hot}
alerts:
  sinks:
    - {name: pager, kind: pagerduty, routing_key_env: KW_PD_KEY, min_severity: urgent}
    - {name: pager2, kind: pagerduty}
    - {name: chat, kind: slack, webhook_url_env: KW_SLACK_URL, secret_env: KW_SHORT_SECRET}
    - {name: chat2, kind: slack, webhook_url_env: KW_NOT_SET}
    - {name: soc, kind: webhook, url: "http://soc.example/hook", secret_env: KW_SHORT_SECRET}
    - {name: soc2, kind: webhook, url: "https://soc.example/hook", secret_env: KW_NOT_SET, match: {wallets: [cold], policies: [nope]}}
    - {name: mail, kind: email}
`)
	code, _, errs := runCmd(t, "check", "-config", p)
	if code != 1 || !strings.Contains(errs, "keywatch check: 12 problems") {
		t.Fatalf("exit %d\n%s", code, errs)
	}
	want := []string{
		p + `:9:80: alerts.sinks[0].min_severity: sink "pager": unknown severity "urgent"`,
		p + `:9:55: alerts.sinks[0].routing_key_env: sink "pager": environment variable KW_PD_KEY does not hold an Events API v2 integration key (32 letters and digits)`,
		p + `:10:7: alerts.sinks[1].routing_key_env: sink "pager2": required: the environment variable holding the Events API v2 integration key`,
		p + `:11:76: alerts.sinks[2].secret_env: sink "chat": slack sinks do not use secret_env`,
		p + `:11:50: alerts.sinks[2].webhook_url_env: sink "chat": environment variable KW_SLACK_URL: want an https:// URL with a host`,
		p + `:12:51: alerts.sinks[3].webhook_url_env: sink "chat2": environment variable KW_NOT_SET is not set`,
		p + `:13:39: alerts.sinks[4].url: sink "soc": http:// is accepted only for a loopback address; use https://`,
		p + `:13:78: alerts.sinks[4].secret_env: sink "soc": the secret in KW_SHORT_SECRET is shorter than 16 characters`,
		p + `:14:80: alerts.sinks[5].secret_env: sink "soc2": environment variable KW_NOT_SET is not set`,
		p + `:14:110: alerts.sinks[5].match.wallets[0]: sink "soc2": no wallet named "cold"`,
		p + `:14:128: alerts.sinks[5].match.policies[0]: sink "soc2": no policy named "nope"`,
		p + `:15:26: alerts.sinks[6].kind: sink "mail": unknown kind "email" (want log, pagerduty, slack or webhook)`,
	}
	for _, w := range want {
		if !strings.Contains(errs, w+"\n") && !strings.Contains(errs, w+" (") { // some messages go on to list what is valid
			t.Errorf("missing:\n  %s\nin:\n%s", w, errs)
		}
	}
	for _, secret := range []string{"not-a-routing-key", "S3CR3TPATH", "short\n"} {
		if strings.Contains(errs, secret) {
			t.Errorf("the report reveals %q:\n%s", secret, errs)
		}
	}
}
