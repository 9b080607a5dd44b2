package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keywatch/keywatch/internal/testenv"
)

// checkWithList runs keywatch check on a configuration whose sanctioned
// list is the given file, and returns what check printed.
func checkWithList(t *testing.T, list string) string {
	t.Helper()
	cfg := writeConfig(t, fmt.Sprintf(`store: {memory: true}
nats: {url: "nats://127.0.0.1:4222"}
chains:
  - {name: eth, kind: ethereum, rpc: [http://127.0.0.1:8545]}
wallets:
  - {name: hot, chain: eth, address: "0x1111111111111111111111111111111111111111", role: hot}
lists:
  sanctioned: [%q]
policies:
  - {name: sanctioned-counterparty, detector: list-match, lists: [sanctioned], severity: critical}
`, list))
	code, out, errs := runCmd(t, "check", "-config", cfg)
	if code != 0 {
		t.Fatalf("keywatch check of the imported list: exit %d\n%s%s", code, out, errs)
	}
	return out
}

func TestListsImport(t *testing.T) {
	ofac := testenv.Data(t, "ofac")
	plain, err := filepath.Glob(filepath.Join(ofac, "brave-intl_lists_2025-11-19", "sanctioned_addresses_*.txt"))
	if err != nil || len(plain) == 0 {
		t.Fatalf("plain lists: %v", err)
	}
	tests := []struct {
		name    string
		args    []string
		rows    int
		summary string
		first   string // first line of the output
		has     []string
		warns   int
	}{
		{
			name: "the whole SDN advanced XML, bzip2-compressed", args: []string{"-format", "ofac-xml", filepath.Join(ofac, "brave-intl_lists_2025-11-19/sdn_advanced.xml.bz2")},
			rows: 745, summary: "imported 745 addresses (XBT 517, USDT 93, ETH 77, TRX 29, LTC 10, XMR 8, BCH 7, DASH 3, ZEC 3, USDC 2, ARB 1, BNB 1, BSC 1, BSV 1, BTG 1, ETC 1, SOL 1, XRP 1, XVG 1)",
			first: "chain,address,label,source",
			has: []string{
				"ethereum,0x098B716B8Aaf21512996dC57EB0615e2383E2f96,Lazarus Group (SDN 27307; DPRK3),OFAC SDN 2025-11-19 (ETH)\n",
				// Published under three EVM assets: one row, on chain ethereum.
				`ethereum,0x4f47bc496083c727c5fbe3ce9cdf2b0f6496270c,Sim Hyon Sop (SDN 42498; NPWMD),"OFAC SDN 2025-11-19 (ARB, BSC, ETH)"` + "\n",
			},
		},
		{
			name: "an excerpt, stamped with its date of issue", args: []string{"-format", "ofac-xml", "-stamp", filepath.Join(ofac, "sdn_advanced_2025-11-19_excerpt.xml")},
			rows: 63, summary: "imported 63 addresses (XBT 47, ETH 16)",
			first: "# published: 2025-11-19T00:00:00Z",
		},
		{
			name: "the legacy CSV with its comments", args: []string{"-format", "ofac-csv", filepath.Join(ofac, "legacy_csv/sdn_csv_2024-05-03_digital_currency_rows.csv"), filepath.Join(ofac, "legacy_csv/watchman_bench_sdn_comments.csv")},
			rows: 296, summary: "imported 296 addresses (XBT 200, ETH 54, USDT 17",
			first: "chain,address,label,source",
			has:   []string{`bitcoin,1GqChmWqGtsaLrGbHfgdrV5Nkvahtjjuxr,"SECONDEYE SOLUTION (SDN 30518; CYBER2, ELECTION-EO13848)",OFAC SDN legacy CSV (XBT)` + "\n"},
			warns: 12,
		},
		{
			name: "per-asset plain lists", args: append([]string{"-format", "plain"}, plain...),
			rows: 745, summary: "imported 745 addresses (XBT 517, USDT 93, ETH 77",
			first: "chain,address,label,source",
			has:   []string{"tron,TUCsTq7TofTCJRRoHk6RvhMoS2mJLm5Yzq,OFAC SDN digital currency address,OFAC SDN per-asset lists (XBT)\n"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errs := runCmd(t, append([]string{"lists", "import"}, tt.args...)...)
			if code != 0 {
				t.Fatalf("exit %d\n%s", code, errs)
			}
			if first, _, _ := strings.Cut(out, "\n"); first != tt.first {
				t.Errorf("first line %q, want %q", first, tt.first)
			}
			if n := strings.Count(out, "\n") - 1; n != tt.rows && !(strings.HasPrefix(tt.first, "#") && n-1 == tt.rows) {
				t.Errorf("%d rows, want %d", n, tt.rows)
			}
			if !strings.Contains(errs, tt.summary) {
				t.Errorf("stderr does not say %q:\n%s", tt.summary, errs)
			}
			if n := strings.Count(errs, "warning: "); n != tt.warns {
				t.Errorf("%d warnings, want %d:\n%s", n, tt.warns, errs)
			}
			for _, h := range tt.has {
				if !strings.Contains(out, h) {
					t.Errorf("output lacks %q", h)
				}
			}
			// What was written loads as a list.
			list := filepath.Join(t.TempDir(), "sanctioned.csv")
			if err := os.WriteFile(list, []byte(out), 0o644); err != nil {
				t.Fatal(err)
			}
			if got := checkWithList(t, list); !strings.Contains(got, fmt.Sprintf("1 lists with %d addresses", tt.rows)) {
				t.Errorf("keywatch check: %s", got)
			}
		})
	}
}

func TestListsImportBadInput(t *testing.T) {
	excerpt, err := os.ReadFile(testenv.Data(t, "ofac/sdn_advanced_2025-11-19_excerpt.xml"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	truncated := write("sdn_advanced.xml", excerpt[:len(excerpt)/2])
	notXML := write("sdn.xml", []byte(`{"error": "rate limited"}`+"\n"))
	badRow := write("sdn.csv", []byte("25308,\"YAN, Xiaobing\",\"individual\",\"SDNTK\",-0- ,-0- \r\n"))
	badPlain := write("sanctioned_addresses_ETH.txt", []byte("0x098B716B8Aaf21512996dC57EB0615e2383E2f96\nnot-an-address\n"))
	tests := []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"a truncated XML file", []string{"-format", "ofac-xml", truncated}, 1,
			[]string{truncated + ":", ": the file ends in the middle of the XML document (truncated download?)", "keywatch lists import: nothing written"}},
		{"a file that is not XML", []string{"-format", "ofac-xml", notXML}, 1,
			[]string{notXML + ":1: not an XML file: text but no XML element (is it JSON, CSV or a plain list?)"}},
		{"a legacy row with columns missing", []string{"-format", "ofac-csv", badRow}, 1,
			[]string{badRow + ":1: 6 columns: want 12 (sdn.csv) or 2 (sdn_comments.csv)"}},
		{"a plain line that is not an address", []string{"-format", "plain", badPlain}, 1,
			[]string{badPlain + `:2: "not-an-address" is not an EVM address (chain ethereum wants 0x and 40 hex digits)`}},
		{"a missing file", []string{"-format", "plain", filepath.Join(dir, "sanctioned_addresses_XBT.txt")}, 1,
			[]string{"sanctioned_addresses_XBT.txt: open "}},
		{"two XML files", []string{"-format", "ofac-xml", truncated, notXML}, 2, []string{"-format ofac-xml reads one file"}},
		{"an unknown format", []string{"-format", "ofac-json", notXML}, 2, []string{`unknown -format "ofac-json"`}},
		{"no format", []string{notXML}, 2, []string{"-format is required"}},
		{"no file", []string{"-format", "plain"}, 2, []string{"name at least one FILE"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errs := runCmd(t, append([]string{"lists", "import"}, tt.args...)...)
			if code != tt.code {
				t.Errorf("exit %d, want %d\n%s", code, tt.code, errs)
			}
			if out != "" {
				t.Errorf("something was written to stdout:\n%s", out)
			}
			for _, w := range tt.want {
				if !strings.Contains(errs, w) {
					t.Errorf("stderr does not contain %q:\n%s", w, errs)
				}
			}
		})
	}
}
