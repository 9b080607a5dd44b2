package lists_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/chaincfg"

	"github.com/keywatch/keywatch/chains/bitcoin/btcaddr"
	"github.com/keywatch/keywatch/internal/testenv"
	"github.com/keywatch/keywatch/policies/lists"
)

// TestRealOFACXBTListMatchesRegtestPayments loads the real OFAC XBT list
// (mainnet addresses) and looks every Bitcoin entry up in the form a regtest
// watcher reports it: the address that script has on regtest. Each one must
// be found, by address and by script.
func TestRealOFACXBTListMatchesRegtestPayments(t *testing.T) {
	path := testenv.Data(t, "ofac/brave-intl_lists_2025-11-19/sanctioned_addresses_XBT.txt")
	set, err := loadLists(t, map[string][]string{"sanctioned": {path}})
	if err != nil {
		t.Fatal(err)
	}
	l, _ := set.Get("sanctioned")
	entries, err := lists.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		if e.Family != lists.Bitcoin {
			continue
		}
		n++
		script, err := btcaddr.ScriptOf(e.Address)
		if err != nil {
			t.Fatalf("%s:%d: %v", path, e.Line, err)
		}
		regtest := btcaddr.AddressOf(script, &chaincfg.RegressionNetParams)
		if regtest == e.Address && strings.HasPrefix(e.Address, "bc1") {
			t.Fatalf("%s rendered for regtest is unchanged", e.Address)
		}
		got, ok := l.Lookup(lists.Bitcoin, regtest)
		if !ok {
			t.Errorf("%s (on regtest %s) not found", e.Address, regtest)
			continue
		}
		if got.Address != e.Address {
			t.Errorf("%s found as %s", regtest, got.Address)
		}
		if _, ok := l.LookupScript(script); !ok {
			t.Errorf("script %x of %s not found", script, e.Address)
		}
	}
	if n < 500 {
		t.Errorf("only %d Bitcoin entries on the XBT list; the 2025-11-19 list has 516", n)
	}
}

// TestBitcoinListEntries: entries of every address type match by script, a
// mistyped address is an error naming file and line, and a script no one
// listed matches nothing.
func TestBitcoinListEntries(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "btc.txt")
	body := strings.Join([]string{
		"# real OFAC SDN and mixer entries of each address type",
		"15PggTG7YhJKiE6B16vkKzA1YDTZipXEX4 Blender.io (P2PKH)",
		"31t4nEpcwyQJT1VuXdAoQZTT5givRDPsNP Blender.io (P2SH)",
		"bc1qq7p0es3dv5hcynjjf40f2xjjr6qp5py47d2f6n847vduuq9gvnyq7y9ecd Sinbad (P2WSH)",
		"bc1qs604c7jv6amk4cxqlnvuxv26hv3e48cds4m0ew Wasabi 1.x coordinator (P2WPKH)",
		"bc1p5cyxnuxmeuwuvkwfem96lqzszd02n6xdcjrs20cac6yqjjwudpxqkedrcr BIP86 vector (P2TR)",
	}, "\n")
	if err := os.WriteFile(file, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	set, err := loadLists(t, map[string][]string{"watch": {file}})
	if err != nil {
		t.Fatal(err)
	}
	l, _ := set.Get("watch")
	for _, line := range strings.Split(body, "\n")[1:] {
		addr := strings.Fields(line)[0]
		script, _ := btcaddr.ScriptOf(addr)
		for _, net := range []*chaincfg.Params{&chaincfg.MainNetParams, &chaincfg.TestNet3Params, &chaincfg.RegressionNetParams} {
			form := btcaddr.AddressOf(script, net)
			if _, ok := l.Lookup(lists.Bitcoin, form); !ok {
				t.Errorf("%s written for %s (%s) is not found", addr, net.Name, form)
			}
		}
	}
	p2sh, _ := btcaddr.ScriptOf("31t4nEpcwyQJT1VuXdAoQZTT5givRDPsNP")
	e, _ := l.Lookup(lists.Bitcoin, btcaddr.AddressOf(p2sh, &chaincfg.RegressionNetParams))
	if got, want := e.Evidence(), "Blender.io (P2SH); listed as 31t4nEpcwyQJT1VuXdAoQZTT5givRDPsNP; btc.txt:3"; got != want {
		t.Errorf("evidence %q, want %q", got, want)
	}
	for _, other := range []string{"bcrt1qcr8te4kr609gcawutmrza0j4xv80jy8zeqchgx", "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa", "script:6a04deadbeef", ""} {
		if e, ok := l.Lookup(lists.Bitcoin, other); ok {
			t.Errorf("%q matched %s", other, e.Address)
		}
	}

	bad := filepath.Join(dir, "bad.txt")
	if err := os.WriteFile(bad, []byte("15PggTG7YhJKiE6B16vkKzA1YDTZipXEX5\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = lists.ReadFile(bad)
	checkErrors(t, err, []string{bad + `:1: "15PggTG7YhJKiE6B16vkKzA1YDTZipXEX5" is not a valid Bitcoin address (checksum mismatch): a typo?`})
}
