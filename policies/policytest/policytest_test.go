package policytest_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/keywatch/keywatch/config"
	"github.com/keywatch/keywatch/policies"
	"github.com/keywatch/keywatch/policies/lists"
	"github.com/keywatch/keywatch/policies/policytest"
)

// write puts files in a temporary folder and returns its path.
func write(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestBitcoinAddressesKeepTheirCase runs a case on a Bitcoin chain: base58
// addresses are case-sensitive, so the event must carry them as written for
// the list to match the sanctioned address.
func TestBitcoinAddressesKeepTheirCase(t *testing.T) {
	dir := write(t, map[string]string{
		"keywatch.yaml": `store: {memory: true}
nats: {embedded: true, data_dir: nats}
chains:
  - {name: btc, kind: bitcoin, network: mainnet, rpc: ["http://127.0.0.1:8334"], rpc_user: kw, rpc_password_env: BTC_PASSWORD, native_usd: 60000}
wallets:
  - {name: btc-hot, chain: btc, address: 1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2, role: hot}
lists:
  sanctioned: [sanctioned.txt]
policies:
  - {name: sanctioned-counterparty, detector: list-match, lists: [sanctioned], severity: critical}
`,
		"sanctioned.txt": "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa a sanctioned address\n",
		"cases.yaml": `cases:
  - name: a payment to a sanctioned base58 address
    events:
      - {wallet: btc-hot, counterparty: 1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa, amount: "0.5"}
    expect:
      - {policy: sanctioned-counterparty, reasons: ["counterparty 1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa is on list sanctioned"]}
`,
	})
	env := func(name string) (string, bool) { return "secret", name == "BTC_PASSWORD" }
	data, err := os.ReadFile(filepath.Join(dir, "keywatch.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(filepath.Join(dir, "keywatch.yaml"), data, env)
	if err != nil {
		t.Fatal(err)
	}
	ls, err := lists.Load(cfg)
	if err != nil {
		t.Fatal(err)
	}
	set, err := policies.Build(cfg, ls)
	if err != nil {
		t.Fatal(err)
	}
	f, err := policytest.Load(filepath.Join(dir, "cases.yaml"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	rep := policytest.Run(context.Background(), set, f)
	var out bytes.Buffer
	rep.Write(&out)
	if rep.Failed() != 0 {
		t.Errorf("the case failed:\n%s", out.String())
	}
	if got := rep.Results[0].Got; len(got) == 1 && got[0].Alert.Event.From != "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2" {
		t.Errorf("event from = %q, want the wallet's address as written", got[0].Alert.Event.From)
	}
}
