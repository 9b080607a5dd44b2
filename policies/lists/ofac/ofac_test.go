package ofac_test

import (
	"bytes"
	"encoding/csv"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/keywatch/keywatch/internal/testenv"
	"github.com/keywatch/keywatch/policies/lists"
	"github.com/keywatch/keywatch/policies/lists/ofac"
)

// expected reads the expected side of the importer tests: the
// sdn_digital_currency_addresses_<date>.csv extracted from the same SDN
// release (asset, address, sdn_fixed_ref, primary_name, programs). refs,
// when given, keeps only the rows of those SDN entries.
func expected(t *testing.T, rel string, refs ...string) map[string]map[string]bool {
	t.Helper()
	f, err := os.Open(testenv.Data(t, rel))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	keep := map[string]bool{}
	for _, r := range refs {
		keep[r] = true
	}
	out := map[string]map[string]bool{} // asset -> addresses
	for _, r := range rows[1:] {
		if len(refs) > 0 && !keep[r[2]] {
			continue
		}
		if out[r[0]] == nil {
			out[r[0]] = map[string]bool{}
		}
		out[r[0]][r[1]] = true
	}
	return out
}

// imported turns an import into the same shape: asset -> addresses.
func imported(im *ofac.Import) map[string]map[string]bool {
	out := map[string]map[string]bool{}
	for _, a := range im.Addresses {
		for _, as := range a.Assets {
			if out[as] == nil {
				out[as] = map[string]bool{}
			}
			out[as][a.Address] = true
		}
	}
	return out
}

func compareSets(t *testing.T, got, want map[string]map[string]bool) {
	t.Helper()
	assets := map[string]bool{}
	for a := range got {
		assets[a] = true
	}
	for a := range want {
		assets[a] = true
	}
	for a := range assets {
		var missing, extra []string
		for addr := range want[a] {
			if !got[a][addr] {
				missing = append(missing, addr)
			}
		}
		for addr := range got[a] {
			if !want[a][addr] {
				extra = append(extra, addr)
			}
		}
		if len(missing)+len(extra) > 0 {
			sort.Strings(missing)
			sort.Strings(extra)
			t.Errorf("%s: %d addresses imported, %d expected; missing %v; not expected %v", a, len(got[a]), len(want[a]), missing, extra)
		}
	}
}

func counts(m map[string]map[string]bool) map[string]int {
	out := map[string]int{}
	for a, s := range m {
		out[a] = len(s)
	}
	return out
}

// loadCSV writes the import as a list file and loads it the way keywatch
// loads lists, returning the loaded entries.
func loadCSV(t *testing.T, im *ofac.Import) (string, []lists.Entry) {
	t.Helper()
	var buf bytes.Buffer
	if err := im.WriteCSV(&buf); err != nil {
		t.Fatal(err)
	}
	if first, _, _ := strings.Cut(buf.String(), "\n"); first != "chain,address,label,source" {
		t.Fatalf("first line %q, want the header chain,address,label,source", first)
	}
	path := filepath.Join(t.TempDir(), "sanctioned.csv")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	entries, err := lists.ReadFile(path)
	if err != nil {
		t.Fatalf("the imported list does not load: %v", err)
	}
	if len(entries) != len(im.Addresses) {
		t.Fatalf("loaded %d entries from %d imported rows", len(entries), len(im.Addresses))
	}
	return buf.String(), entries
}

func TestXMLWholeFile(t *testing.T) {
	im, err := ofac.ReadXMLFile(testenv.Data(t, "ofac/brave-intl_lists_2025-11-19/sdn_advanced.xml.bz2"))
	if err != nil {
		t.Fatal(err)
	}
	if got := im.Published.Format("2006-01-02"); got != "2025-11-19" {
		t.Errorf("published %s, want the file's DateOfIssue 2025-11-19", got)
	}
	got := imported(im)
	// The whole file against the addresses extracted from it independently.
	compareSets(t, got, expected(t, "ofac/sdn_digital_currency_addresses_2025-11-19.csv"))
	if n := len(got["ETH"]); n != 77 {
		t.Errorf("%d ETH addresses, want 77", n)
	}
	if n := len(got["XBT"]); n != 517 {
		t.Errorf("%d XBT addresses, want 517", n)
	}
	// The per-asset plain lists published from the same file agree too.
	for _, asset := range []string{"ETH", "XBT", "USDT", "TRX", "LTC", "XMR"} {
		pl, err := ofac.ReadPlainFiles(testenv.Data(t, "ofac/brave-intl_lists_2025-11-19/sanctioned_addresses_"+asset+".txt"))
		if err != nil {
			t.Fatal(err)
		}
		compareSets(t, map[string]map[string]bool{asset: got[asset]}, imported(pl))
	}

	text, entries := loadCSV(t, im)
	fam := map[lists.Family]int{}
	for _, e := range entries {
		fam[e.Family]++
	}
	t.Logf("families loaded: %v", fam)
	// An address two SDN entries share is one row naming both.
	if !strings.Contains(text, "bitcoin,1H939dom7i4WDLCKyGbXUp3fs9CSTNRzgL,") {
		t.Error("shared XBT address 1H939dom7i4WDLCKyGbXUp3fs9CSTNRzgL missing")
	}
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, "bitcoin,1H939dom7i4WDLCKyGbXUp3fs9CSTNRzgL,") &&
			!(strings.Contains(line, "SDN 38419") && strings.Contains(line, "SDN 38420")) {
			t.Errorf("shared address row does not name both entries: %s", line)
		}
	}
	// Omni Layer USDT on a Bitcoin address is kept, on chain bitcoin.
	if !strings.Contains(text, `bitcoin,16iWn2J1McqjToYLHSsAyS6En3QA8YQ91H,"SUEX OTC, S.R.O. (SDN 33151; CYBER2)",OFAC SDN 2025-11-19 (USDT)`) {
		t.Error("Omni USDT address of SUEX missing or mislabelled")
	}
}

func TestXMLExcerpts(t *testing.T) {
	tests := []struct {
		file, expected string
		refs           []string // the SDN entries the excerpt holds (MANIFEST.csv)
		counts         map[string]int
		rows           []string // rows of the CSV written
	}{
		{
			file: "ofac/sdn_advanced_2025-11-19_excerpt.xml", expected: "ofac/sdn_digital_currency_addresses_2025-11-19.csv",
			refs:   []string{"27307", "44437", "37070", "44718"},
			counts: map[string]int{"ETH": 16, "XBT": 47},
			rows: []string{
				"ethereum,0x098B716B8Aaf21512996dC57EB0615e2383E2f96,Lazarus Group (SDN 27307; DPRK3),OFAC SDN 2025-11-19 (ETH)",
				`bitcoin,1JHdQHkBZiim1cb4hyUh2PbzEbbg6z2TrF,"Sinbad (SDN 44437; CYBER2, DPRK3)",OFAC SDN 2025-11-19 (XBT)`,
				"bitcoin,15PggTG7YhJKiE6B16vkKzA1YDTZipXEX4,Blender.io (SDN 37070; CYBER2),OFAC SDN 2025-11-19 (XBT)",
			},
		},
		{
			file: "ofac/sdn_advanced_2025-03-04_tornado_excerpt.xml", expected: "ofac/sdn_digital_currency_addresses_2025-03-04.csv",
			refs:   []string{"39796"},
			counts: map[string]int{"ETH": 90},
			rows: []string{
				// The Tornado Cash 1 ETH pool, still on the SDN before 2025-03-21.
				`ethereum,0x47CE0C6eD5B0Ce3d3A51fdb1C52DC66a7c3c2936,"TORNADO CASH (SDN 39796; CYBER2, DPRK3)",OFAC SDN 2025-03-04 (ETH)`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(filepath.Base(tt.file), func(t *testing.T) {
			im, err := ofac.ReadXMLFile(testenv.Data(t, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			got := imported(im)
			want := expected(t, tt.expected, tt.refs...)
			compareSets(t, got, want)
			for asset, n := range tt.counts {
				if len(got[asset]) != n {
					t.Errorf("%s: %d addresses, want %d", asset, len(got[asset]), n)
				}
			}
			text, _ := loadCSV(t, im)
			for _, row := range tt.rows {
				if !strings.Contains(text, row+"\n") {
					t.Errorf("row missing: %s\nCSV:\n%s", row, text)
				}
			}
		})
	}
}

// TestXMLBadInput: a truncated download, a file that is not XML, an XML file
// that is not the SDN list. Each is an error naming the file and where.
func TestXMLBadInput(t *testing.T) {
	excerpt, err := os.ReadFile(testenv.Data(t, "ofac/sdn_advanced_2025-11-19_excerpt.xml"))
	if err != nil {
		t.Fatal(err)
	}
	whole, err := os.ReadFile(testenv.Data(t, "ofac/brave-intl_lists_2025-11-19/sdn_advanced.xml.bz2"))
	if err != nil {
		t.Fatal(err)
	}
	jsonList, err := os.ReadFile(testenv.Data(t, "ofac/brave-intl_lists_2025-11-19/sanctioned_addresses_ETH.json"))
	if err != nil {
		t.Fatal(err)
	}
	// Cut the excerpt inside the DistinctParties, on line 1500.
	cut := bytes.Join(bytes.SplitAfter(excerpt, []byte("\n"))[:1499], nil)
	cut = append(cut, []byte("        <Feature ID=\"50215\" Feat")...)

	tests := []struct {
		name string
		data []byte
		want string // regexp over the error; FILE is the file's path
	}{
		{"truncated.xml", cut, `^FILE:1500: the file ends in the middle of the XML document \(truncated download\?\)$`},
		{"truncated-at-tag.xml", excerpt[:len(excerpt)-len("</Sanctions>\n")], `^FILE:\d+: the file ends in the middle of the XML document`},
		{"sdn_advanced.xml.bz2", whole[:1<<20], `^FILE:\d+ \(compressed byte offset \d+\): the file ends in the middle of the XML document`},
		{"sanctioned_addresses_ETH.json", jsonList, `^FILE:1: not an XML file: text but no XML element \(is it JSON, CSV or a plain list\?\)$`},
		{"empty.xml", nil, `^FILE: not an SDN advanced XML file: no XML element found \(empty file\?\)$`},
		{"page.html", []byte("<html><body>Service unavailable</body></html>\n"), `^FILE:1: not an SDN advanced XML file: the root element is <html>, want <Sanctions>$`},
		{"no-parties.xml", []byte(`<?xml version="1.0"?>` + "\n<Sanctions>\n</Sanctions>\n"), `^FILE:\d+: no DistinctParties: not an SDN advanced XML file$`},
		{"mismatched.xml", []byte("<Sanctions>\n<DateOfIssue><Year>2025</Month></DateOfIssue></Sanctions>"), `^FILE:2: not well-formed XML: element <Year> closed by </Month>$`},
	}
	dir := t.TempDir()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, tt.name)
			if err := os.WriteFile(path, tt.data, 0o644); err != nil {
				t.Fatal(err)
			}
			im, err := ofac.ReadXMLFile(path)
			if err == nil {
				t.Fatalf("no error; imported %d addresses", len(im.Addresses))
			}
			re := regexp.MustCompile(strings.ReplaceAll(tt.want, "FILE", regexp.QuoteMeta(path)))
			if !re.MatchString(err.Error()) {
				t.Errorf("error:\n %s\nwant it to match:\n %s", err, re)
			}
		})
	}
}

func TestLegacyCSV(t *testing.T) {
	sdn := testenv.Data(t, "ofac/legacy_csv/sdn_csv_2024-05-03_digital_currency_rows.csv")
	comments := testenv.Data(t, "ofac/legacy_csv/watchman_bench_sdn_comments.csv")

	// The order of the files does not matter: each is known by its columns.
	im, err := ofac.ReadLegacyCSVFiles(comments, sdn)
	if err != nil {
		t.Fatal(err)
	}
	text, _ := loadCSV(t, im)
	// Addresses that were cut off in sdn.csv and completed from
	// sdn_comments.csv: the XBT address of SECONDEYE SOLUTION (cut after
	// "1Gq") and the ETH address of ANDREYEV (cut in "Digital Currency Addres").
	for _, row := range []string{
		`bitcoin,1GqChmWqGtsaLrGbHfgdrV5Nkvahtjjuxr,"SECONDEYE SOLUTION (SDN 30518; CYBER2, ELECTION-EO13848)",OFAC SDN legacy CSV (XBT)`,
		`ethereum,0x8576acc5c05d6ce88f4e49bf65bdf0c62f91353c,"ANDREYEV, Anton Nikolaeyvich (SDN 29703; CYBER2, ELECTION-EO13848)",OFAC SDN legacy CSV (ETH)`,
		`bitcoin,12QtD5BFwRsdNsAZY76UVE1xyCGNTojH9h,"YAN, Xiaobing (SDN 25308; SDNTK)",OFAC SDN legacy CSV (XBT)`,
	} {
		if !strings.Contains(text, row+"\n") {
			t.Errorf("row missing: %s", row)
		}
	}
	// Rows cut at 1,000 characters whose continuation is not in this
	// comments file: the address running into the cut is left out (the
	// prefix "3F6bbvS1krsc1qR8FsbTDfYQyvkMm" of Blender.io's
	// 3F6bbvS1krsc1qR8FsbTDfYQyvkMm3QvmR still looks like an address) and
	// the user is told.
	if strings.Contains(text, "3F6bbvS1krsc1qR8FsbTDfYQyvkMm,") {
		t.Error("the cut-off prefix of 3F6bbvS1krsc1qR8FsbTDfYQyvkMm3QvmR was imported as an address")
	}
	cutEntries := map[string]bool{}
	entRe := regexp.MustCompile(`ent_num (\d+)`)
	for _, w := range im.Warnings {
		cutEntries[entRe.FindStringSubmatch(w)[1]] = true
	}
	if !strings.Contains(strings.Join(im.Warnings, "\n"), `sdn_csv_2024-05-03_digital_currency_rows.csv:25: ent_num 37070 (BLENDER.IO): remarks cut at 1000 characters and not continued in sdn_comments.csv: addresses after the cut are missing; the last address "3F6bbvS1krsc1qR8FsbTDfYQyvkMm" (XBT) is incomplete and left out`) {
		t.Errorf("no warning about Blender.io's cut address; warnings:\n%s", strings.Join(im.Warnings, "\n"))
	}

	// Against the SDN advanced XML of 2025-03-04, entry by entry: every
	// address imported is there, and entries read whole have exactly its
	// addresses.
	want := map[string]map[string]bool{} // ref -> asset:address
	f, err := os.Open(testenv.Data(t, "ofac/sdn_digital_currency_addresses_2025-03-04.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows[1:] {
		if want[r[2]] == nil {
			want[r[2]] = map[string]bool{}
		}
		want[r[2]][r[0]+":"+r[1]] = true
	}
	got := map[string]map[string]bool{}
	for _, a := range im.Addresses {
		for _, ref := range a.Refs {
			if got[ref] == nil {
				got[ref] = map[string]bool{}
			}
			for _, as := range a.Assets {
				got[ref][as+":"+a.Address] = true
			}
		}
	}
	whole := 0
	for ref, addrs := range got {
		for k := range addrs {
			if !want[ref][k] {
				t.Errorf("entry %s: %s imported but not in the SDN list", ref, k)
			}
		}
		if cutEntries[ref] {
			continue
		}
		whole++
		for k := range want[ref] {
			if !addrs[k] {
				t.Errorf("entry %s: %s not imported", ref, k)
			}
		}
	}
	if whole < 40 {
		t.Errorf("only %d entries read whole", whole)
	}
}

func TestLegacyCSVBadInput(t *testing.T) {
	sdnPath := testenv.Data(t, "ofac/legacy_csv/sdn_csv_2024-05-03_digital_currency_rows.csv")
	sdn, err := os.ReadFile(sdnPath)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(sdn), "\r\n")
	comments := testenv.Data(t, "ofac/legacy_csv/watchman_bench_sdn_comments.csv")
	dir := t.TempDir()
	write := func(name, data string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name  string
		files func() []string
		want  string
	}{
		{"without the comments file", func() []string { return []string{sdnPath} },
			`^16 rows have remarks cut at 1,000 characters, continued in sdn_comments.csv: give that file too \(.*sdn_csv_2024-05-03_digital_currency_rows.csv:6 \(ent_num 27307\)`},
		{"a row with a column missing", func() []string {
			bad := strings.Replace(lines[2], `"individual",`, "", 1)
			return []string{write("sdn.csv", lines[0]+lines[1]+bad+lines[3]), comments}
		}, `^FILE:3: 11 columns where the file's first row has 12$`},
		{"an unclosed quote", func() []string {
			return []string{write("sdn.csv", lines[0]+strings.TrimSuffix(lines[1], "\"\r\n")+"\r\n"), comments}
		}, `^FILE:\d+: column \d+: not valid CSV: extraneous or missing " in quoted-field$`},
		{"ent_num not a number", func() []string {
			return []string{write("sdn.csv", lines[0]+"x"+lines[1]), comments}
		}, `^FILE:2: ent_num "x26137" is not a number$`},
		{"an address in no known form", func() []string {
			bad := strings.Replace(lines[0], "12QtD5BFwRsdNsAZY76UVE1xyCGNTojH9h", "12QtD5BFw-RsdNs", 1)
			return []string{write("sdn.csv", bad), comments}
		}, `^FILE:1: ent_num 25308 \(YAN, Xiaobing\), Digital Currency Address - XBT: "12QtD5BFw-RsdNs" is not a Bitcoin address \(chain bitcoin\)$`},
		{"only a comments file", func() []string { return []string{comments} }, `no sdn.csv among the files`},
		{"not an OFAC file", func() []string { return []string{write("other.csv", "a,b,c\n1,2,3\n")} },
			`^FILE:1: 3 columns: want 12 \(sdn.csv\) or 2 \(sdn_comments.csv\)$`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := tt.files()
			im, err := ofac.ReadLegacyCSVFiles(files...)
			if err == nil {
				t.Fatalf("no error; imported %d addresses", len(im.Addresses))
			}
			re := regexp.MustCompile(strings.ReplaceAll(tt.want, "FILE", regexp.QuoteMeta(files[0])))
			if !re.MatchString(err.Error()) {
				t.Errorf("error:\n %s\nwant it to match:\n %s", err, re)
			}
		})
	}
}

func TestPlainLists(t *testing.T) {
	dir := testenv.Data(t, "ofac/brave-intl_lists_2025-11-19")
	files, err := filepath.Glob(filepath.Join(dir, "sanctioned_addresses_*.txt"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no plain lists in %s: %v", dir, err)
	}
	im, err := ofac.ReadPlainFiles(files...)
	if err != nil {
		t.Fatal(err)
	}
	got := imported(im)
	// The plain lists are derived from the whole SDN XML of the same day.
	compareSets(t, got, expected(t, "ofac/sdn_digital_currency_addresses_2025-11-19.csv"))
	text, entries := loadCSV(t, im)
	// The XBT list's one Tron-form address: kept, as a Tron address.
	if !strings.Contains(text, "tron,TUCsTq7TofTCJRRoHk6RvhMoS2mJLm5Yzq,OFAC SDN digital currency address,OFAC SDN per-asset lists (XBT)\n") {
		t.Error("the Tron-form address of the XBT list is missing or not on chain tron")
	}
	for _, e := range entries {
		if e.Address == "TUCsTq7TofTCJRRoHk6RvhMoS2mJLm5Yzq" && e.Family != lists.Tron {
			t.Errorf("TUCsTq7… loaded as family %s, want tron", e.Family)
		}
	}
	// Older lists of another publisher load the same way.
	old, err := filepath.Glob(filepath.Join(testenv.Data(t, "ofac/0xB10C_lists_2024-09-27"), "sanctioned_addresses_*.txt"))
	if err != nil {
		t.Fatal(err)
	}
	im2, err := ofac.ReadPlainFiles(old...)
	if err != nil {
		t.Fatal(err)
	}
	c2 := counts(imported(im2))
	if c2["ETH"] < 100 {
		t.Errorf("2024-09-27 ETH list: %d addresses; it still holds Tornado Cash (over 100)", c2["ETH"])
	}
}

func TestPlainBadInput(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, data, want string
	}{
		{"sanctioned_addresses_ETH.txt", "0x098B716B8Aaf21512996dC57EB0615e2383E2f96\n0x098B716B8Aaf2151\n",
			`^FILE:2: "0x098B716B8Aaf2151" is not an EVM address \(chain ethereum wants 0x and 40 hex digits\)$`},
		{"sanctioned_addresses_XBT.txt", "12QtD5BFwRsdNsAZY76UVE1xyCGNTojH9h extra\n",
			`^FILE:1: "12QtD5BFwRsdNsAZY76UVE1xyCGNTojH9h extra": want one address per line$`},
		{"addresses.txt", "0x098B716B8Aaf21512996dC57EB0615e2383E2f96\n",
			`^FILE: cannot tell the asset from the file name: want sanctioned_addresses_<ASSET>.txt`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, tt.name)
			if err := os.WriteFile(path, []byte(tt.data), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := ofac.ReadPlainFiles(path)
			if err == nil {
				t.Fatal("no error")
			}
			re := regexp.MustCompile(strings.ReplaceAll(tt.want, "FILE", regexp.QuoteMeta(path)))
			if !re.MatchString(err.Error()) {
				t.Errorf("error:\n %s\nwant it to match:\n %s", err, re)
			}
			var pe *ofac.PosError
			if tt.name != "addresses.txt" && !errors.As(err, &pe) {
				t.Errorf("error %T does not carry the position", err)
			}
		})
	}
}
