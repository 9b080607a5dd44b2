package policies_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keywatch/keywatch/alertmodel"
	"github.com/keywatch/keywatch/chains"
	"github.com/keywatch/keywatch/chains/ethereum/safe"
	"github.com/keywatch/keywatch/config"
	"github.com/keywatch/keywatch/policies"
	"github.com/keywatch/keywatch/policies/lists"
)

const (
	treasurySafe = "0x7777777777777777777777777777777777777777"
	attacker     = "0x96221423681a6d52e184d440a8efcebb105c7242" // the Bybit attacker's delegatecall target
	relayer      = "0x00000000000000000000000000000000000000e1"
	alice        = "0x00000000000000000000000000000000000000a1"
)

// buildSafeSet builds section over testdata's wallets plus a watched Safe
// and a list of approved libraries (an extra file in dir).
func buildSafeSet(t *testing.T, section string) (*policies.Set, error) {
	t.Helper()
	dir := t.TempDir()
	libs := filepath.Join(dir, "libs.txt")
	if err := os.WriteFile(libs, []byte("0x00000000000000000000000000000000000001b5 our batching library\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	h := head(t)
	h = strings.Replace(h, "wallets:\n", "wallets:\n  - {name: treasury-safe, chain: eth, address: \""+treasurySafe+"\", role: warm, owner: treasury@firm.example, account: safe}\n", 1)
	h = strings.Replace(h, "lists:\n", "lists:\n  libs: [\""+libs+"\"]\n", 1)
	cfg, err := config.Parse(filepath.Join(testdataDir(t), "policies.yaml"), []byte(h+section), noEnv)
	if err != nil {
		return nil, err
	}
	ls, err := lists.Load(cfg)
	if err != nil {
		t.Fatalf("lists: %v", err)
	}
	return policies.Build(cfg, ls)
}

func testdataDir(t *testing.T) string {
	t.Helper()
	d, err := filepath.Abs("testdata")
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// execution is a Safe execution event of treasury-safe.
func execution(op, target string, mod func(*chains.Event)) chains.Event {
	nonce := uint64(71)
	ev := chains.Event{
		ID: "eth:0xb1:4", Chain: "eth", Tx: "0xb1", Block: 100, BlockHash: "0xb100", Time: observedAt.Add(-time.Minute),
		Status: chains.StatusPending, Kind: chains.KindExecution, Direction: chains.Out,
		Wallet: "treasury-safe", WalletRole: "warm", Owner: "treasury@firm.example",
		From: treasurySafe, To: target, Counterparty: target, Initiator: relayer, Asset: "ETH",
		Amount: chains.NewAmount(nil, 18), Operation: op, Target: target, Value: "0", Selector: "0xa9059cbb", SafeNonce: &nonce,
		Signers: []string{alice, devDeployer},
		Detail:  map[string]string{"event": "ExecutionSuccess", "contract": treasurySafe, "success": "true"},
	}
	if mod != nil {
		mod(&ev)
	}
	return ev
}

func judge(t *testing.T, set *policies.Set, ev chains.Event) []alertmodel.Alert {
	t.Helper()
	as, err := newEngine(set, nil, nil).Evaluate(context.Background(), &ev)
	if err != nil {
		t.Fatal(err)
	}
	return as
}

func TestDelegatecall(t *testing.T) {
	set, err := buildSafeSet(t, `policies:
  - {name: safe-delegatecall, detector: delegatecall, actions: [page, hold]}
  - {name: own-libraries-only, detector: delegatecall, allow: [libs, "0x00000000000000000000000000000000000002B6"], severity: high}
`)
	if err != nil {
		t.Fatal(err)
	}
	multiSend141 := strings.ToLower(safe.Libraries[6].Address.Hex())
	const signed = "signed by " + alice + ", dev-deployer (employee key of kim@firm.example) " + devDeployer + "; executed by " + relayer
	for _, tc := range []struct {
		name string
		ev   chains.Event
		want []string
	}{
		{name: "delegatecall to the attacker's contract", ev: execution("delegatecall", attacker, nil), want: []string{
			"safe-delegatecall: Safe treasury-safe (warm wallet of treasury@firm.example) " + treasurySafe + " ran a delegatecall to " + attacker +
				", which is not in allow (safe-libraries): the target's code runs with the Safe's storage and funds (selector 0xa9059cbb, safe nonce 71, tx 0xb1) | " + signed,
			"own-libraries-only: Safe treasury-safe (warm wallet of treasury@firm.example) " + treasurySafe + " ran a delegatecall to " + attacker +
				", which is not in allow (libs, 0x00000000000000000000000000000000000002B6): the target's code runs with the Safe's storage and funds (selector 0xa9059cbb, safe nonce 71, tx 0xb1) | " + signed,
		}},
		{name: "delegatecall to Safe's MultiSend 1.4.1", ev: execution("delegatecall", multiSend141, nil), want: []string{
			"own-libraries-only: Safe treasury-safe (warm wallet of treasury@firm.example) " + treasurySafe + " ran a delegatecall to " + multiSend141 +
				", which is not in allow (libs, 0x00000000000000000000000000000000000002B6): the target's code runs with the Safe's storage and funds (selector 0xa9059cbb, safe nonce 71, tx 0xb1) | " + signed,
		}},
		{name: "delegatecall to the 1.3.0 eip155 MultiSendCallOnly, checksummed", ev: execution("delegatecall", "0xA1dabEF33b3B82c7814B6D82A79e50F4AC44102B", nil),
			want: []string{"own-libraries-only: Safe treasury-safe (warm wallet of treasury@firm.example) " + treasurySafe + " ran a delegatecall to 0xA1dabEF33b3B82c7814B6D82A79e50F4AC44102B" +
				", which is not in allow (libs, 0x00000000000000000000000000000000000002B6): the target's code runs with the Safe's storage and funds (selector 0xa9059cbb, safe nonce 71, tx 0xb1) | " + signed}},
		{name: "delegatecall to a library on the allow list", ev: execution("delegatecall", "0x00000000000000000000000000000000000001b5", nil), want: []string{
			"safe-delegatecall: Safe treasury-safe (warm wallet of treasury@firm.example) " + treasurySafe + " ran a delegatecall to 0x00000000000000000000000000000000000001b5" +
				", which is not in allow (safe-libraries): the target's code runs with the Safe's storage and funds (selector 0xa9059cbb, safe nonce 71, tx 0xb1) | " + signed,
		}},
		{name: "delegatecall to an address in allow", ev: execution("delegatecall", "0x00000000000000000000000000000000000002b6", func(ev *chains.Event) { ev.Signers = nil }), want: []string{
			"safe-delegatecall: Safe treasury-safe (warm wallet of treasury@firm.example) " + treasurySafe + " ran a delegatecall to 0x00000000000000000000000000000000000002b6" +
				", which is not in allow (safe-libraries): the target's code runs with the Safe's storage and funds (selector 0xa9059cbb, safe nonce 71, tx 0xb1) | executed by " + relayer,
		}},
		{name: "a plain call to the attacker", ev: execution("call", attacker, nil)},
		{name: "an execution keywatch could not read", ev: execution("", "", func(ev *chains.Event) {
			ev.Selector, ev.SafeNonce, ev.Signers = "", nil, nil
			ev.Detail["unresolved"] = "the Safe was called by another contract, and call traces are not read"
		}), want: []string{
			"safe-delegatecall: Safe treasury-safe (warm wallet of treasury@firm.example) " + treasurySafe + " ran an execution keywatch could not read (the Safe was called by another contract, and call traces are not read): it may be a delegatecall (tx 0xb1) | executed by " + relayer,
			"own-libraries-only: Safe treasury-safe (warm wallet of treasury@firm.example) " + treasurySafe + " ran an execution keywatch could not read (the Safe was called by another contract, and call traces are not read): it may be a delegatecall (tx 0xb1) | executed by " + relayer,
		}},
		{name: "a failed module delegatecall still fires", ev: execution("delegatecall", attacker, func(ev *chains.Event) {
			ev.Module, ev.Signers, ev.SafeNonce, ev.Selector = "0x00000000000000000000000000000000000000d0", nil, nil, ""
			ev.Detail["success"] = "false"
		}), want: []string{
			"safe-delegatecall: Safe treasury-safe (warm wallet of treasury@firm.example) " + treasurySafe + " ran a delegatecall to " + attacker + ", which is not in allow (safe-libraries): the target's code runs with the Safe's storage and funds (by module 0x00000000000000000000000000000000000000d0, the call failed, tx 0xb1) | executed by " + relayer,
			"own-libraries-only: Safe treasury-safe (warm wallet of treasury@firm.example) " + treasurySafe + " ran a delegatecall to " + attacker + ", which is not in allow (libs, 0x00000000000000000000000000000000000002B6): the target's code runs with the Safe's storage and funds (by module 0x00000000000000000000000000000000000000d0, the call failed, tx 0xb1) | executed by " + relayer,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			as := judge(t, set, tc.ev)
			checkFired(t, as, tc.want)
			for _, a := range as {
				if a.Policy == "safe-delegatecall" && a.Severity != alertmodel.Critical {
					t.Errorf("severity %s, want the detector's default critical", a.Severity)
				}
			}
		})
	}
}

func TestDelegatecallBuildErrors(t *testing.T) {
	for section, want := range map[string]string{
		"policies:\n  - {name: dc, detector: delegatecall, allow: [no-such-list]}\n":                              `policies[0].allow[0]: "no-such-list" is neither an address (0x and 40 hex digits), a list under lists:, nor safe-libraries`,
		"policies:\n  - {name: big, detector: threshold, usd_over: 1, allow: [safe-libraries], severity: high}\n": `policies[0].allow: detector threshold does not use allow (its parameters: usd_over, amount_over, asset)`,
		"policies:\n  - {name: dc, detector: delegatecall, severity: urgent}\n":                                   `policies[0].severity: unknown severity "urgent"`,
	} {
		_, err := buildSafeSet(t, section)
		if got := strings.Join(errorLines(t, err), "\n"); !strings.Contains(got, want) {
			t.Errorf("errors\n%s\ndo not say %s", got, want)
		}
	}
	if config.AllowSafeLibraries != safe.LibrariesList {
		t.Errorf("config names the Safe libraries %q, package safe %q", config.AllowSafeLibraries, safe.LibrariesList)
	}
}

// Safe admin changes and slot changes: admin-change words them; an
// employee key among the signers is judged by off-hours; rules see the
// execution fields.
func TestSafeChangesSignersAndRules(t *testing.T) {
	set, err := buildSafeSet(t, `policies:
  - {name: admin-change, detector: admin-change, severity: critical}
  - {name: off-hours, detector: off-hours, severity: medium}
  - {name: employee-delegatecall, when: 'event.kind == "execution" && event.operation == "delegatecall" && "`+devDeployer+`" in event.signers && event.safe_nonce == 71 && event.selector == "0xa9059cbb" && event.target == "`+attacker+`" && event.module == "" && event.value == "0" && event.detail["success"] == "true"', severity: high}
`)
	if err != nil {
		t.Fatal(err)
	}
	ny, _ := time.LoadLocation("America/New_York")
	night := time.Date(2026, 3, 3, 2, 30, 0, 0, ny)
	day := time.Date(2026, 3, 3, 11, 0, 0, 0, ny)
	added := func(at time.Time) chains.Event {
		return execution("", "", func(ev *chains.Event) {
			ev.Kind, ev.Operation, ev.Target, ev.Selector, ev.Value, ev.Time = chains.KindAdmin, "", "", "", "", at
			ev.Counterparty, ev.To = stranger, stranger
			ev.Detail = map[string]string{chains.DetailChange: "added-owner", "event": "AddedOwner", "contract": treasurySafe, "owner": stranger}
		})
	}
	const offHours = "off-hours: dev-deployer (employee key of kim@firm.example) signed at Tue 02:30 EST, outside its working hours 09:00-18:00 America/New_York"
	const signed = "signed by " + alice + ", dev-deployer (employee key of kim@firm.example) " + devDeployer + "; executed by " + relayer
	checkFired(t, judge(t, set, added(night)), []string{
		"admin-change: watched Safe treasury-safe (warm wallet of treasury@firm.example) " + treasurySafe + ": owner " + stranger + " added (AddedOwner) | " + signed + " in tx 0xb1",
		offHours + " (admin out treasury-safe)",
	})
	checkFired(t, judge(t, set, added(day)), []string{
		"admin-change: watched Safe treasury-safe (warm wallet of treasury@firm.example) " + treasurySafe + ": owner " + stranger + " added (AddedOwner) | " + signed + " in tx 0xb1",
	})
	slot := execution("", "", func(ev *chains.Event) {
		ev.Kind, ev.Operation, ev.Target, ev.Selector, ev.Value, ev.Signers, ev.SafeNonce, ev.Time = chains.KindAdmin, "", "", "", "", nil, nil, day
		ev.Detail = map[string]string{chains.DetailChange: "slot", "contract": treasurySafe, chains.DetailSlot: "0x00", chains.DetailOld: "0x41675c09", chains.DetailNew: "0xbdd077f6"}
	})
	checkFired(t, judge(t, set, slot), []string{
		"admin-change: watched Safe treasury-safe (warm wallet of treasury@firm.example) " + treasurySafe + ": storage slot 0x00 changed from 0x41675c09 to 0xbdd077f6, and the contract logged nothing for it | executed by " + relayer + " in tx 0xb1",
	})
	checkFired(t, judge(t, set, execution("delegatecall", attacker, func(ev *chains.Event) { ev.Time = night })), []string{
		offHours + " (execution out treasury-safe)",
		"employee-delegatecall: rule holds: " + set.Policies[2].When.Source,
	})
}
