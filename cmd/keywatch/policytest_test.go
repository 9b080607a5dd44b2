package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var txHashRe = regexp.MustCompile(`eth:0x[0-9a-f]{64}:0`)

const (
	exampleConfig  = "../../configs/keywatch.example.yaml"
	policiesConfig = "testdata/policies.yaml"
)

func writeCases(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "cases.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPolicyTestShippedCasesPass(t *testing.T) {
	code, out, errs := runCmd(t, "policy", "test", "-config", exampleConfig, "../../configs/policy-cases.yaml")
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
	if !strings.HasSuffix(out, "11 cases: 11 passed, 0 failed\n") {
		t.Errorf("output:\n%s", out)
	}
	if !strings.Contains(out, "ok    a hot wallet pays a Lazarus Group address, over the USD threshold (4 alerts)\n") {
		t.Errorf("output:\n%s", out)
	}
}

func TestPolicyTestReportsEveryDifference(t *testing.T) {
	cases := writeCases(t, `cases:
  - name: all as expected
    events:
      - {wallet: treasury-hot, counterparty: "0x47CE0C6eD5B0Ce3d3A51fdb1C52DC66a7c3c2936", amount: "1", balance_before: "100"}
    expect:
      - {policy: mixer-counterparty, severity: critical}
  - name: wrong severity, a reason that is not there, and an alert not expected
    events:
      - {wallet: treasury-hot, counterparty: "0x47CE0C6eD5B0Ce3d3A51fdb1C52DC66a7c3c2936", amount: "40", balance_before: "100"}
    expect:
      - {policy: mixer-counterparty, severity: high, reasons: ["Tornado Cash 1 ETH pool", "Blender.io"]}
  - name: an alert that does not come
    events:
      - {wallet: treasury-hot, counterparty: "0xB374907D35f61DE043bedb18eE35f7228C83C3E4", asset: USDC, amount: "100"}
    expect:
      - {policy: big-outflow, severity: high, event: 1}
`)
	code, out, errs := runCmd(t, "policy", "test", "-config", policiesConfig, cases)
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s%s", code, out, errs)
	}
	want := `ok    all as expected (1 alert)
FAIL  wrong severity, a reason that is not there, and an alert not expected (cases.yaml:7)
      different:  mixer-counterparty on event 1: severity: want high, got critical; no reason contains "Blender.io" (expected at line 11)
              reasons: ["counterparty 0x47ce0c6ed5b0ce3d3a51fdb1c52dc66a7c3c2936 is on list mixers (Tornado Cash 1 ETH pool; source tornadocash/tornado-cli; mixers.csv:6)"]
      unexpected: big-outflow high firing on event 1 (eth:0x%s:0)
              reasons: ["outflow of 40 ETH (120,000.00 USD) is over the threshold of 100,000.00 USD"]
FAIL  an alert that does not come (cases.yaml:12)
      missing:    big-outflow high firing on event 1 (expected at line 16)
      unexpected: drain critical firing on event 1 (eth:0x%s:0)
              reasons: ["policy drain could not decide (read balance of treasury-hot from the node: the case gives no balance_before for event eth:0x%s:0): raised to be safe"]
3 cases: 1 passed, 2 failed
`
	// The generated transaction hashes are the one detail not worth spelling out.
	got := txHashRe.ReplaceAllString(out, "eth:0x%s:0")
	if got != want {
		t.Errorf("output:\n%s\nwant:\n%s", got, want)
	}
}

func TestPolicyTestBadCases(t *testing.T) {
	cases := writeCases(t, `cases:
  - name: typos
    events:
      - {wallet: treasury-hot, counterpart: "0x47CE0C6eD5B0Ce3d3A51fdb1C52DC66a7c3c2936", amount: "1"}
`)
	code, out, errs := runCmd(t, "policy", "test", "-config", policiesConfig, cases)
	if code != 1 || out != "" || !strings.Contains(errs, cases+`:4: unknown key "counterpart"`) {
		t.Errorf("exit %d, stdout %q, stderr:\n%s", code, out, errs)
	}

	cases = writeCases(t, `cases:
  - name: mistakes
    time: yesterday
    events:
      - {wallet: treasury-cold, counterparty: "0x47CE0C6eD5B0Ce3d3A51fdb1C52DC66a7c3c2936", amount: "1"}
      - {wallet: treasury-hot, counterparty: "0x47CE0C6eD5B0Ce3d3A51fdb1C52DC66a7c3c2936", amount: "-1", status: mined}
    expect:
      - {policy: mixer-match, severity: severe, event: 3}
  - name: mistakes
    events: []
`)
	code, out, errs = runCmd(t, "policy", "test", "-config", policiesConfig, cases)
	if code != 1 || out != "" {
		t.Errorf("exit %d, stdout %q", code, out)
	}
	for _, want := range []string{
		cases + `:3: cases[0].time: "yesterday": want an RFC 3339 time such as 2025-01-06T12:00:00Z`,
		cases + `:5: cases[0].events[0].wallet: no wallet named "treasury-cold" in ` + policiesConfig,
		cases + `:6: cases[0].events[1].status: "mined": want pending, confirmed or retracted`,
		cases + `:6: cases[0].events[1].amount: amount "-1" is negative`,
		cases + `:8: cases[0].expect[0].policy: no policy named "mixer-match" in ` + policiesConfig,
		cases + `:8: cases[0].expect[0].severity: "severe": want critical, high, medium, low or info`,
		cases + `:8: cases[0].expect[0].event: 3: the case has events 1 to 2`,
		cases + `:9: cases[1].name: case "mistakes" is defined twice`,
		cases + `:10: cases[1].events: a case needs at least one event`,
		"keywatch policy test: 9 problems in " + cases + "; no case run",
	} {
		if !strings.Contains(errs, want+"\n") {
			t.Errorf("stderr does not report:\n  %s\nstderr:\n%s", want, errs)
		}
	}

	// Usage mistakes.
	for _, args := range [][]string{{"policy"}, {"policy", "test", cases}, {"policy", "tset"}} {
		if code, _, _ := runCmd(t, args...); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
}
