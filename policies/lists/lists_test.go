package lists_test

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/keywatch/keywatch/config"
	"github.com/keywatch/keywatch/internal/testenv"
	"github.com/keywatch/keywatch/policies/lists"
)

// errorLines returns each reported problem as the user reads it.
func errorLines(t *testing.T, err error) []string {
	t.Helper()
	if err == nil {
		return nil
	}
	var es config.Errors
	if !errors.As(err, &es) {
		t.Fatalf("error is %T, not config.Errors: %v", err, err)
	}
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.Error()
	}
	return out
}

func checkErrors(t *testing.T, err error, want []string) {
	t.Helper()
	got := errorLines(t, err)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("errors:\n got: %s\nwant: %s", strings.Join(got, "\n      "), strings.Join(want, "\n      "))
	}
}

// summary prints an entry as the fields a user sees in evidence.
func summary(e lists.Entry) string {
	return fmt.Sprintf("%d %s %s chain=%q label=%q source=%q", e.Line, e.Family, e.Address, e.Chain, e.Label, e.Source)
}

func summaries(es []lists.Entry) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = summary(e)
	}
	return out
}

func checkEntries(t *testing.T, got []lists.Entry, want []string) {
	t.Helper()
	if g := summaries(got); strings.Join(g, "\n") != strings.Join(want, "\n") {
		t.Errorf("entries:\n got: %s\nwant: %s", strings.Join(g, "\n      "), strings.Join(want, "\n      "))
	}
}

func TestReadPlain(t *testing.T) {
	es, err := lists.ReadFile("testdata/plain.txt")
	if err != nil {
		t.Fatal(err)
	}
	checkEntries(t, es, []string{
		`3 evm 0x08723392Ed15743cc38513C4925f5e6be5c17243 chain="" label="Lazarus Group (SDN 27307)" source=""`,
		`4 evm 0x098b716b8aaf21512996dc57eb0615e2383e2f96 chain="" label="Ronin bridge exploiter" source=""`,
		`5 evm 0x7F367CC41522CE07553E823BF3BE79A889DEBE1B chain="" label="" source=""`,
		`8 bitcoin 123WBUDmSJv4GctdVEz6Qq6z8nXSKrJ4KX chain="" label="" source=""`,
		`9 bitcoin bc1qa5wkgaew2dkv56kfvj49j0av5nml45x9ek9hz6 chain="" label="coinjoin fee" source=""`,
	})
	if got := es[0].Evidence(); got != "Lazarus Group (SDN 27307); plain.txt:3" {
		t.Errorf("Evidence() = %q", got)
	}
	if got := es[2].Evidence(); got != "plain.txt:5" {
		t.Errorf("Evidence() without label = %q", got)
	}
}

func TestReadPlainErrors(t *testing.T) {
	es, err := lists.ReadFile("testdata/bad-plain.txt")
	checkErrors(t, err, []string{
		`testdata/bad-plain.txt:3: "0x08723392Ed15743cc38513C4925f5e6be5c1724" is not an address (want 0x and 40 hex digits, a Bitcoin address, or a chain column naming its chain)`,
		`testdata/bad-plain.txt:5: "hello" is not an address (want 0x and 40 hex digits, a Bitcoin address, or a chain column naming its chain)`,
	})
	// The good lines around the bad ones are still read.
	checkEntries(t, es, []string{
		`2 evm 0x08723392Ed15743cc38513C4925f5e6be5c17243 chain="" label="Lazarus Group" source=""`,
		`6 evm 0x098b716b8aaf21512996dc57eb0615e2383e2f96 chain="" label="" source=""`,
	})
}

func TestReadCSV(t *testing.T) {
	es, err := lists.ReadFile("testdata/columns.csv")
	if err != nil {
		t.Fatal(err)
	}
	checkEntries(t, es, []string{
		`3 evm 0x47CE0C6eD5B0Ce3d3A51fdb1C52DC66a7c3c2936 chain="ethereum" label="Tornado Cash 1 ETH pool" source="tornadocash/tornado-cli"`,
		`4 evm 0xd90e2f925da726b50c4ed8d0fb90ad053324f31b chain="ethereum" label="Tornado Cash router" source="tornadocash/tornado-cli"`,
		`5 bitcoin 15PggTG7YhJKiE6B16vkKzA1YDTZipXEX4 chain="bitcoin" label="Blender.io" source="OFAC SDN"`,
		`6 bitcoin bc1qq7p0es3dv5hcynjjf40f2xjjr6qp5py47d2f6n847vduuq9gvnyq7y9ecd chain="XBT" label="Sinbad" source="OFAC SDN"`,
		// A chain keywatch does not watch: kept, not refused.
		`7 other 4ADN9x7bGmZ1EgQ3BwgdReaaS6u5Uvmb7sDnRTbeD4BB9y2n5m6rRAudEJ6cwpaqtyq7eVZt9R1vEUq9TJ6dCRMk7JfA7tC chain="monero" label="Sanctioned monero wallet" source="OFAC SDN"`,
		// OFAC's XBT list carries a Tron-form address: kept as published.
		`8 tron TUCsTq7TofTCJRRoHk6RvhMoS2mJLm5Yzq chain="XBT" label="OFAC XBT entry in Tron form" source="OFAC SDN"`,
		`9 tron TXx7MwFydPgrrLrNVbL6WLrdmA3kAYvf9G chain="TRX" label="Tron wallet" source="OFAC SDN"`,
		`10 evm 0x6Bf694a291DF3FeC1f7e69701E3ab6c592435Ae7 chain="goerli(testnet)" label="Goerli pool" source="tornadocash/tornado-cli"`,
	})
	if got := es[0].Evidence(); got != "Tornado Cash 1 ETH pool; source tornadocash/tornado-cli; columns.csv:3" {
		t.Errorf("Evidence() = %q", got)
	}
}

func TestReadFileErrors(t *testing.T) {
	tests := []struct {
		name       string
		file       string
		want       []string
		wantLoaded []int // lines still loaded
	}{
		{
			name: "header without address",
			file: "testdata/no-address.csv",
			want: []string{"testdata/no-address.csv:1: CSV header has no address column (columns: chain, wallet, label)"},
		},
		{
			name: "every bad row, with exact lines after comments",
			file: "testdata/bad-rows.csv",
			want: []string{
				`testdata/bad-rows.csv:5: address: "0x47CE0C6eD5B0Ce3d3A51fdb1C52DC66a7c3c293" is not an EVM address (chain ethereum wants 0x and 40 hex digits)`,
				`testdata/bad-rows.csv:7: address: "0x910Cbd523D972eb0a6f4cAe4618aD62622b39DbF" is not a Bitcoin address (chain bitcoin)`,
				`testdata/bad-rows.csv:9: address: "not-an-address" is not an address (want 0x and 40 hex digits, a Bitcoin address, or a chain column naming its chain)`,
			},
			wantLoaded: []int{4, 8, 10},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			es, err := lists.ReadFile(tc.file)
			checkErrors(t, err, tc.want)
			var lines []int
			for _, e := range es {
				lines = append(lines, e.Line)
			}
			if fmt.Sprint(lines) != fmt.Sprint(tc.wantLoaded) {
				t.Errorf("loaded lines %v, want %v", lines, tc.wantLoaded)
			}
		})
	}
}

func TestReadEncodings(t *testing.T) {
	// Files saved by spreadsheet programs start with a byte-order mark and
	// end lines with CRLF.
	tests := []struct {
		file string
		want []string
	}{
		{"testdata/bom-crlf.csv", []string{
			`2 evm 0x47CE0C6eD5B0Ce3d3A51fdb1C52DC66a7c3c2936 chain="" label="Tornado Cash 1 ETH pool" source=""`,
			`3 evm 0x910Cbd523D972eb0a6f4cAe4618aD62622b39DbF chain="" label="Tornado Cash 10 ETH pool" source=""`,
		}},
		{"testdata/bom-crlf.txt", []string{
			`1 evm 0x08723392Ed15743cc38513C4925f5e6be5c17243 chain="" label="Lazarus Group" source=""`,
			`3 evm 0x098b716b8aaf21512996dc57eb0615e2383e2f96 chain="" label="" source=""`,
		}},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			es, err := lists.ReadFile(tc.file)
			if err != nil {
				t.Fatal(err)
			}
			checkEntries(t, es, tc.want)
		})
	}
}

func TestReadTokenNamedChains(t *testing.T) {
	// USDT and USDC live on several chains: the address's form decides.
	es, err := lists.ReadFile("testdata/token-chains.csv")
	checkErrors(t, err, []string{
		`testdata/token-chains.csv:6: address: "0x7F367CC41522CE07553E823BF3BE79A889DEBE1" is not an address of a chain keywatch knows for USDT (want 0x and 40 hex digits, a Tron address or a Bitcoin address)`,
	})
	checkEntries(t, es, []string{
		`3 tron TA3941uFAvmVibSkQ6fMJXxmaSNovX86mz chain="USDT" label="CHEIL CREDIT BANK" source=""`,
		`4 evm 0x7F367CC41522CE07553E823BF3BE79A889DEBE1B chain="USDT" label="an EVM USDT address" source=""`,
		`5 evm 0x983a81ca6FB1e441266D2FbcB7D8E530AC2E05A2 chain="USDC" label="an EVM USDC address" source=""`,
	})
}

func TestReadBadQuote(t *testing.T) {
	es, err := lists.ReadFile("testdata/bad-quote.csv")
	checkErrors(t, err, []string{
		`testdata/bad-quote.csv:3:55: CSV: bare " in non-quoted-field`,
		`testdata/bad-quote.csv:5: address: "0xA160cdAB225685dA1d56aa342Ad8841c3b53f29" is not an EVM address (chain ethereum wants 0x and 40 hex digits)`,
	})
	var lines []int
	for _, e := range es {
		lines = append(lines, e.Line)
	}
	if fmt.Sprint(lines) != "[2 4]" {
		t.Errorf("loaded lines %v, want [2 4]", lines)
	}
}

func TestReadMissingFile(t *testing.T) {
	const file = "testdata/no-such-list.csv"
	_, err := lists.ReadFile(file)
	if err == nil || !errors.Is(err, os.ErrNotExist) || !strings.HasPrefix(err.Error(), "cannot read list "+file+": ") {
		t.Fatalf("ReadFile(%s) = %v, want a not-exist error naming the file", file, err)
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		addr, chain string
		want        lists.Family
		wantErr     string
	}{
		{"0x47CE0C6eD5B0Ce3d3A51fdb1C52DC66a7c3c2936", "", lists.EVM, ""},
		{"0x47ce0c6ed5b0ce3d3a51fdb1c52dc66a7c3c2936", "ethereum", lists.EVM, ""},
		{"0x47ce0c6ed5b0ce3d3a51fdb1c52dc66a7c3c2936", "Polygon", lists.EVM, ""},
		{"0x47ce0c6ed5b0ce3d3a51fdb1c52dc66a7c3c2936", "goerli(testnet)", lists.EVM, ""},
		{"0x47ce0c6ed5b0ce3d3a51fdb1c52dc66a7c3c2936", "bitcoin", "", `"0x47ce0c6ed5b0ce3d3a51fdb1c52dc66a7c3c2936" is not a Bitcoin address (chain bitcoin)`},
		{"0x47ce0c6ed5b0ce3d3a51fdb1c52dc66a7c3c2936", "XBT", "", `is not a Bitcoin address (chain XBT)`},
		{"15PggTG7YhJKiE6B16vkKzA1YDTZipXEX4", "ethereum", "", `"15PggTG7YhJKiE6B16vkKzA1YDTZipXEX4" is not an EVM address (chain ethereum wants 0x and 40 hex digits)`},
		{"15PggTG7YhJKiE6B16vkKzA1YDTZipXEX4", "", lists.Bitcoin, ""},
		{"3FZbgi29cpjq2GjdwV8eyHuJJnkLtktZc5", "btc", lists.Bitcoin, ""},
		{"bc1qq7p0es3dv5hcynjjf40f2xjjr6qp5py47d2f6n847vduuq9gvnyq7y9ecd", "", lists.Bitcoin, ""},
		{"BC1QQ7P0ES3DV5HCYNJJF40F2XJJR6QP5PY47D2F6N847VDUUQ9GVNYQ7Y9ECD", "", lists.Bitcoin, ""},
		{"TUCsTq7TofTCJRRoHk6RvhMoS2mJLm5Yzq", "XBT", lists.Tron, ""},
		{"TUCsTq7TofTCJRRoHk6RvhMoS2mJLm5Yzq", "", lists.Tron, ""},
		{"44AFFq5kSiGBoZ4NMDwYtN18obc8AemS33DBLWs3H7otXft3XjrpDtQGv7SqSsaBYBb98uNbr2VBBEt7f2wfn3RVGQBEP3A", "XMR", lists.Other, ""},
		{"anything at all", "monero", lists.Other, ""},
		{"TA3941uFAvmVibSkQ6fMJXxmaSNovX86mz", "USDT", lists.Tron, ""},
		{"0x983a81ca6FB1e441266D2FbcB7D8E530AC2E05A2", "USDC", lists.EVM, ""},
		// Omni Layer USDT lives on Bitcoin addresses: the OFAC SDN lists some (SUEX OTC).
		{"16iWn2J1McqjToYLHSsAyS6En3QA8YQ91H", "USDT", lists.Bitcoin, ""},
		{"0x7F367CC41522CE07553E823BF3BE79A889DEBE1", "USDT", "", `is not an address of a chain keywatch knows for USDT`},
		{"not-an-address", "", "", `"not-an-address" is not an address`},
	}
	for _, tc := range tests {
		t.Run(tc.chain+"/"+tc.addr, func(t *testing.T) {
			got, err := lists.Classify(tc.addr, tc.chain)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Classify = %q, %v; want an error containing %s", got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("Classify = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

// loadLists loads lists through a configuration that names their files by
// absolute path, as lists.Load sees them in production.
func loadLists(t *testing.T, files map[string][]string) (*lists.Set, error) {
	t.Helper()
	var b strings.Builder
	b.WriteString("store: {memory: true}\nnats: {embedded: true, data_dir: /var/lib/keywatch}\nlists:\n")
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(&b, "  %s:\n", n)
		for _, f := range files[n] {
			abs, err := filepath.Abs(f)
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&b, "    - %q\n", abs)
		}
	}
	cfg, err := config.Parse("keywatch.yaml", []byte(b.String()), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	return lists.Load(cfg)
}

func TestLookupIsCaseInsensitive(t *testing.T) {
	set, err := loadLists(t, map[string][]string{
		"sanctioned": {"testdata/plain.txt"},
		"mixers":     {"testdata/columns.csv"},
	})
	if err != nil {
		t.Fatal(err)
	}
	sanctioned, ok := set.Get("sanctioned")
	if !ok {
		t.Fatal("list sanctioned not loaded")
	}
	mixers, _ := set.Get("mixers")
	if _, ok := set.Get("address_book"); ok {
		t.Error("Get found a list that was not configured")
	}
	if got := strings.Join(sortedNames(set), ","); got != "mixers,sanctioned" {
		t.Errorf("Names() = %s", got)
	}

	tests := []struct {
		name     string
		list     *lists.List
		family   lists.Family
		addr     string
		wantLine int // 0: not found
	}{
		{"checksummed on the list, lowercase in the event", sanctioned, lists.EVM, "0x08723392ed15743cc38513c4925f5e6be5c17243", 3},
		{"lowercase on the list, checksummed in the event", sanctioned, lists.EVM, "0x098B716B8Aaf21512996dC57EB0615e2383E2f96", 4},
		{"uppercase on the list, lowercase in the event", sanctioned, lists.EVM, "0x7f367cc41522ce07553e823bf3be79a889debe1b", 5},
		{"as written", mixers, lists.EVM, "0x47CE0C6eD5B0Ce3d3A51fdb1C52DC66a7c3c2936", 3},
		{"with surrounding space", mixers, lists.EVM, " 0x47ce0c6ed5b0ce3d3a51fdb1c52dc66a7c3c2936 ", 3},
		{"EVM address looked up as Bitcoin", mixers, lists.Bitcoin, "0x47ce0c6ed5b0ce3d3a51fdb1c52dc66a7c3c2936", 0},
		{"not on the list", mixers, lists.EVM, "0x0000000000000000000000000000000000000001", 0},
		{"bech32 in upper case", mixers, lists.Bitcoin, "BC1QQ7P0ES3DV5HCYNJJF40F2XJJR6QP5PY47D2F6N847VDUUQ9GVNYQ7Y9ECD", 6},
		{"base58 is case-sensitive", mixers, lists.Bitcoin, "15pggtg7yhjkie6b16vkkza1ydtzipxex4", 0},
		{"base58 as written", mixers, lists.Bitcoin, "15PggTG7YhJKiE6B16vkKzA1YDTZipXEX4", 5},
		{"Tron entries are kept", mixers, lists.Tron, "TUCsTq7TofTCJRRoHk6RvhMoS2mJLm5Yzq", 8},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e, ok := tc.list.Lookup(tc.family, tc.addr)
			if tc.wantLine == 0 {
				if ok {
					t.Errorf("Lookup(%s, %s) found %s", tc.family, tc.addr, summary(e))
				}
				return
			}
			if !ok {
				t.Fatalf("Lookup(%s, %s) found nothing", tc.family, tc.addr)
			}
			if e.Line != tc.wantLine || e.List != tc.list.Name {
				t.Errorf("Lookup(%s, %s) = %s on list %q, want line %d of list %q", tc.family, tc.addr, summary(e), e.List, tc.wantLine, tc.list.Name)
			}
		})
	}
	if got := mixers.Len(); got != 8 {
		t.Errorf("mixers.Len() = %d, want 8", got)
	}
	if got := len(mixers.Entries()); got != 8 {
		t.Errorf("len(mixers.Entries()) = %d, want 8", got)
	}
}

func sortedNames(s *lists.Set) []string {
	n := s.Names()
	sort.Strings(n)
	return n
}

func TestLoadReportsEveryFile(t *testing.T) {
	cfg, err := config.Load("testdata/keywatch.yaml")
	if err != nil {
		t.Fatal(err)
	}
	set, err := lists.Load(cfg)
	if set != nil {
		t.Error("Load returned a set along with errors")
	}
	// Files that cannot be read point at the configuration line naming
	// them; files that can be read but hold errors point at their own lines.
	checkErrors(t, err, []string{
		"testdata/keywatch.yaml:9:7: lists.mixers[1]: cannot read list testdata/missing-mixers.csv: open testdata/missing-mixers.csv: no such file or directory",
		"testdata/keywatch.yaml:10:36: lists.address_book[1]: cannot read list testdata/also-missing.txt: open testdata/also-missing.txt: no such file or directory",
	})
}

func TestLoadBadListFile(t *testing.T) {
	_, err := loadLists(t, map[string][]string{
		"mixers":     {"testdata/columns.csv", "testdata/bad-rows.csv"},
		"sanctioned": {"testdata/bad-plain.txt"},
	})
	abs := func(p string) string {
		a, err := filepath.Abs(p)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	checkErrors(t, err, []string{
		abs("testdata/bad-rows.csv") + `:5: address: "0x47CE0C6eD5B0Ce3d3A51fdb1C52DC66a7c3c293" is not an EVM address (chain ethereum wants 0x and 40 hex digits)`,
		abs("testdata/bad-rows.csv") + `:7: address: "0x910Cbd523D972eb0a6f4cAe4618aD62622b39DbF" is not a Bitcoin address (chain bitcoin)`,
		abs("testdata/bad-rows.csv") + `:9: address: "not-an-address" is not an address (want 0x and 40 hex digits, a Bitcoin address, or a chain column naming its chain)`,
		abs("testdata/bad-plain.txt") + `:3: "0x08723392Ed15743cc38513C4925f5e6be5c1724" is not an address (want 0x and 40 hex digits, a Bitcoin address, or a chain column naming its chain)`,
		abs("testdata/bad-plain.txt") + `:5: "hello" is not an address (want 0x and 40 hex digits, a Bitcoin address, or a chain column naming its chain)`,
	})
}

func TestLoadFirstEntryWins(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a.txt")
	b := filepath.Join(dir, "b.csv")
	if err := os.WriteFile(a, []byte("0x47CE0C6eD5B0Ce3d3A51fdb1C52DC66a7c3c2936 first\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(b, []byte("address,label\n0x47ce0c6ed5b0ce3d3a51fdb1c52dc66a7c3c2936,second\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	set, err := loadLists(t, map[string][]string{"mixers": {a, b}})
	if err != nil {
		t.Fatal(err)
	}
	l, _ := set.Get("mixers")
	if l.Len() != 1 {
		t.Errorf("Len() = %d: the same address in two cases counted twice", l.Len())
	}
	if e, _ := l.Lookup(lists.EVM, "0x47ce0c6ed5b0ce3d3a51fdb1c52dc66a7c3c2936"); e.Label != "first" {
		t.Errorf("label = %q, want the first file's", e.Label)
	}
	if strings.Join(l.Files, ",") != a+","+b {
		t.Errorf("Files = %v", l.Files)
	}
}

// Real public data: the mixer list and OFAC's EVM addresses.

func TestRealMixerList(t *testing.T) {
	path := testenv.Data(t, "mixers/mixer_addresses.csv")
	set, err := loadLists(t, map[string][]string{"mixers": {path}})
	if err != nil {
		t.Fatal(err)
	}
	mixers, _ := set.Get("mixers")
	const pool = "0x47CE0C6eD5B0Ce3d3A51fdb1C52DC66a7c3c2936" // Tornado Cash 1 ETH
	for _, addr := range []string{pool, strings.ToLower(pool)} {
		e, ok := mixers.Lookup(lists.EVM, addr)
		if !ok {
			t.Fatalf("%s not found among %d entries", addr, mixers.Len())
		}
		if !strings.Contains(e.Label, "Tornado Cash") || !strings.Contains(e.Label, "1 ETH") {
			t.Errorf("label %q does not name Tornado Cash and 1 ETH", e.Label)
		}
		if !strings.HasSuffix(e.Evidence(), fmt.Sprintf("mixer_addresses.csv:%d", e.Line)) {
			t.Errorf("evidence %q does not end with the file and line", e.Evidence())
		}
	}
	// Every row is kept: EVM, Bitcoin and rows of other chains alike.
	fams := map[lists.Family]int{}
	for _, e := range mixers.Entries() {
		fams[e.Family]++
	}
	if fams[lists.EVM] == 0 || fams[lists.Bitcoin] == 0 {
		t.Errorf("families loaded: %v, want EVM and Bitcoin entries", fams)
	}
}

var evmLineRe = regexp.MustCompile(`^0x[0-9a-fA-F]{40}$`)

func TestRealOFACEVMList(t *testing.T) {
	path := testenv.Data(t, "ofac/evm_union_lowercase_2025-11-19.txt")
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	want := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if evmLineRe.MatchString(strings.TrimSpace(sc.Text())) {
			want++
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if want == 0 {
		t.Fatalf("%s holds no address lines", path)
	}
	es, err := lists.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != want {
		t.Errorf("ReadFile loaded %d entries, the file has %d address lines", len(es), want)
	}
	set, err := loadLists(t, map[string][]string{"sanctioned": {path}})
	if err != nil {
		t.Fatal(err)
	}
	l, _ := set.Get("sanctioned")
	if l.Len() != want {
		t.Errorf("Len() = %d, want %d", l.Len(), want)
	}
	// Lazarus Group (SDN), looked up in checksummed form.
	if _, ok := l.Lookup(lists.EVM, "0x08723392Ed15743cc38513C4925f5e6be5c17243"); !ok {
		t.Error("0x08723392Ed15743cc38513C4925f5e6be5c17243 not found")
	}
}

func TestRealOFACXBTListKeepsTronForm(t *testing.T) {
	path := testenv.Data(t, "ofac/brave-intl_lists_2025-11-19/sanctioned_addresses_XBT.txt")
	es, err := lists.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var tron []string
	for _, e := range es {
		if e.Family == lists.Tron {
			tron = append(tron, e.Address)
		}
	}
	if len(tron) != 1 || tron[0] != "TUCsTq7TofTCJRRoHk6RvhMoS2mJLm5Yzq" {
		t.Errorf("Tron-form entries on the XBT list: %v, want the one OFAC publishes", tron)
	}
}
