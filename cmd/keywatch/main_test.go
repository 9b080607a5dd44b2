package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keywatch/keywatch/internal/regtest"
)

func runCmd(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestCheckAcceptsShippedConfigurations(t *testing.T) {
	// The example's sinks read their secrets from the environment.
	t.Setenv("PD_ROUTING_KEY", "R0UT1NGKEY0123456789abcdefABCDEF")
	t.Setenv("SLACK_WEBHOOK_URL", "https://hooks.slack.com/services/T000/B000/XXXX")
	t.Setenv("SOC_HMAC_SECRET", "an-hmac-secret-of-some-length")
	for _, f := range []string{"../../configs/keywatch.example.yaml", "../../configs/demo.yaml"} {
		code, out, errs := runCmd(t, "check", "-config", f)
		if code != 0 || !strings.Contains(out, "OK") {
			t.Errorf("check %s: exit %d\n%s%s", f, code, out, errs)
		}
	}
}

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "keywatch.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCheckReportsEveryProblemWithFileLineAndField(t *testing.T) {
	p := writeConfig(t, `store:
  memory: true
nats:
  embedded: true
  data_dir: /tmp/x
chains:
  - name: eth
    kind: ethereum
    rpc: [http://127.0.0.1:8545]
    confirmatons: 12
wallets:
  - {name: hot, chain: eth, address: "0x12", role: hot}
policies:
  - {name: big, detector: threshold, usd_over: 10, severity: severe}
`)
	code, _, errs := runCmd(t, "check", "-config", p)
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s", code, errs)
	}
	for _, want := range []string{
		p + `:10:5: chains[0].confirmatons: unknown key "confirmatons" (did you mean "confirmations"?)`,
		p + `:12:38: wallets[0].address: "0x12" is not an address`,
		p + `:14:62: policies[0].severity: unknown severity "severe"`,
		"keywatch check: 3 problems",
	} {
		if !strings.Contains(errs, want) {
			t.Errorf("output lacks %q:\n%s", want, errs)
		}
	}
}

func TestRunRefusesWithoutAnExplicitStore(t *testing.T) {
	p := writeConfig(t, `nats: {embedded: true, data_dir: /tmp/x}
chains: [{name: eth, kind: ethereum, rpc: ["http://127.0.0.1:8545"]}]
`)
	code, _, errs := runCmd(t, "run", "-config", p)
	if code != 1 || !strings.Contains(errs, "store: no store: set redis") || !strings.Contains(errs, "nothing started") {
		t.Fatalf("exit %d:\n%s", code, errs)
	}
}

func TestSecretsStayOutOfErrors(t *testing.T) {
	p := writeConfig(t, `store: {redis: "redis://keywatch:hunter2@10.0.0.1:6379/0"}
nats: {url: "nats://10.0.0.1:4222"}
`)
	_, _, errs := runCmd(t, "check", "-config", p)
	if strings.Contains(errs, "hunter2") {
		t.Fatalf("the password leaked into the output:\n%s", errs)
	}
	if !strings.Contains(errs, "store.redis: the URL carries a password") {
		t.Fatalf("no complaint about the password in the file:\n%s", errs)
	}
}

func TestUnknownCommand(t *testing.T) {
	if code, _, errs := runCmd(t, "frobnicate"); code != 2 || !strings.Contains(errs, `unknown command "frobnicate"`) {
		t.Fatalf("exit %d: %s", code, errs)
	}
}

func TestDemoTellsTheWholeStory(t *testing.T) {
	if testing.Short() {
		t.Skip("the demo runs a chain and NATS")
	}
	code, out, errs := runCmd(t, "demo", "-pace", "0")
	if code != 0 {
		t.Fatalf("demo exit %d\n%s\n%s", code, out, errs)
	}
	wants := []string{
		"ALERT CRITICAL mixer-counterparty   firing (event pending) on keywatch.alert.critical.eth",
		"ALERT CRITICAL mixer-counterparty   firing (event confirmed)",
		"is on list mixers (Tornado Cash 1 ETH pool",
		"ALERT CRITICAL unapproved-outflow   firing (event pending) on keywatch.alert.critical.eth",
		"outflow of 1 ETH (3,000.00 USD) from dev-deployer to 0x47ce0c6ed5b0ce3d3a51fdb1c52dc66a7c3c2936 matches no approved withdrawal intent: no approved withdrawal is open for this wallet",
		"ALERT HIGH     big-outflow          firing (event pending) on keywatch.alert.high.eth",
		"outflow of 60 ETH (180,000.00 USD) is over the threshold of 100,000.00 USD",
		"from treasury-hot to 0x4bb044e2da61c6adeb5e4635b9ac45d3029c5edd matches no approved withdrawal intent: no approved withdrawal is open for this wallet",
		"ALERT CRITICAL funds-to-mixer       firing (event pending) on keywatch.alert.critical.eth",
		"followed address 0x4bb044e2da61c6adeb5e4635b9ac45d3029c5edd (funds of treasury-hot) out 1 ETH to 0x47ce0c6ed5b0ce3d3a51fdb1c52dc66a7c3c2936",
		"funds that left treasury-hot reached 0x47ce0c6ed5b0ce3d3a51fdb1c52dc66a7c3c2936, on list mixers (Tornado Cash 1 ETH pool; source tornadocash/tornado-cli; mixers.csv:6), in 2 hops",
		"- hop 1: treasury-hot 0xe78fb7ab2018c13deefbb58e4c822b1062755b96 sent 60 ETH to 0x4bb044e2da61c6adeb5e4635b9ac45d3029c5edd",
		"- hop 2: 0x4bb044e2da61c6adeb5e4635b9ac45d3029c5edd sent 1 ETH to 0x47ce0c6ed5b0ce3d3a51fdb1c52dc66a7c3c2936 through 0xd90e2f925da726b50c4ed8d0fb90ad053324f31b",
		"ALERT CRITICAL decoy-touched",
		"         hold: h-",
		"The stolen funds reached the mixer: keywatch held the wallet they came from before the alert went out",
		"held, 0 of 2 approvals",
		"frozen keys: treasury-hot\n",
		"funds-to-mixer: funds that left treasury-hot reached",
		"   Operator console: http://127.0.0.1:",
		"        ana  demo-ana-",
		"        ben  demo-ben-",
		// The treasury Safe taken over the Bybit way: the delegatecall pages
		// with its block, the slot 0 change names the takeover transaction,
		// the sweep is an internal outflow sent by the attacker.
		"ALERT CRITICAL safe-delegatecall    firing (event pending) on keywatch.alert.critical.eth",
		"treasury-safe ran a delegatecall to 0xd5484f5b550b47092f94b5bc5561a1a9ec600a7a",
		"which is not in allow (safe-libraries)",
		"dev-deployer (employee key of kim@firm.example) 0x66d4e1366afe153f811e5ad4f0d37a2335273d14; executed by",
		"ALERT CRITICAL admin-change         firing (event pending) on keywatch.alert.critical.eth",
		"treasury-safe admin change (slot) to 0xd5484f5b550b47092f94b5bc5561a1a9ec600a7a",
		"storage slot 0x0000000000000000000000000000000000000000000000000000000000000000 changed from 0x00000000000000000000000041675c099f32341bf84bfc5382af534df5c7461a to 0x000000000000000000000000d5484f5b550b47092f94b5bc5561a1a9ec600a7a, and the contract logged nothing for it",
		"keywatch paged on the delegatecall ",
		"treasury-safe out 400 ETH to 0x61e7b8c535870984bbc989b85d5afc6acbb6af0a",
		"moved by an internal call (frame 0.0) in a transaction 0x0528ae7b0366d9c71c3eb77852e064b3c219ec13 sent",
		"outflow of 400 ETH (1,200,000.00 USD) is over the threshold of 100,000.00 USD",
		"The page on the delegatecall came before the sweep's block was confirmed",
	}
	if _, err := regtest.FindBinary(); err == nil {
		// The Bitcoin leg: caught in the mempool, then confirmed.
		wants = append(wants,
			"ALERT CRITICAL sanctioned-counterparty firing (event pending) on keywatch.alert.critical.btc",
			"btc-treasury-hot out 2 BTC to mgZTUXJkFLMK3jNFCoxUEkKJzn89ARD6AJ",
			"mempool]",
			"listed as 123WBUDmSJv4GctdVEz6Qq6z8nXSKrJ4KX",
			"caught in the mempool",
			"ALERT CRITICAL unapproved-outflow   firing (event pending) on keywatch.alert.critical.btc",
			"ALERT CRITICAL sanctioned-counterparty firing (event confirmed) on keywatch.alert.critical.btc",
			"Story over: 24 alert messages arrived on NATS; the ordinary payment raised none.")
	} else {
		wants = append(wants, "The Bitcoin leg is skipped", "Story over: 18 alert messages arrived on NATS; the ordinary payment raised none.")
	}
	for _, want := range wants {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
	if t.Failed() {
		t.Log(out)
	}
}
