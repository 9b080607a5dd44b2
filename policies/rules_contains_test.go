package policies

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/keywatch/keywatch/config"
	"github.com/keywatch/keywatch/policies/lists"
)

// TestListContains checks the membership test of when: rules on addresses of
// both families, in the forms events carry them.
func TestListContains(t *testing.T) {
	dir := t.TempDir()
	list := "0xD90e2f925DA726b50C4Ed8D0Fb90Ad053324F31b router\n" +
		"1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa base58\n" +
		"bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu bech32\n"
	if err := os.WriteFile(filepath.Join(dir, "l.txt"), []byte(list), 0o600); err != nil {
		t.Fatal(err)
	}
	doc := "store: {memory: true}\nnats: {embedded: true, data_dir: nats}\nlists:\n  l: [l.txt]\n"
	cfg, err := config.Parse(filepath.Join(dir, "kw.yaml"), []byte(doc), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	ls, err := lists.Load(cfg)
	if err != nil {
		t.Fatal(err)
	}
	v := listValues(ls)["l"]
	tests := []struct {
		addr string
		want bool
	}{
		{"0xd90e2f925da726b50c4ed8d0fb90ad053324f31b", true},
		{"0XD90E2F925DA726B50C4ED8D0FB90AD053324F31B", true},
		{"0x00000000000000000000000000000000deadbeef", false},
		{"1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa", true},
		{"1a1zp1ep5qgefi2dmptftl5slmv7divfna", false},          // base58 is case-sensitive
		{"bcrt1qcr8te4kr609gcawutmrza0j4xv80jy8zeqchgx", true}, // on regtest
		{"BC1QCR8TE4KR609GCAWUTMRZA0J4XV80JY8Z306FYU", true},
		{"tb1qcr8te4kr609gcawutmrza0j4xv80jy8zmfp6l0", true}, // the same script on testnet
		{"", false},
	}
	for _, tt := range tests {
		if got := v.contains(tt.addr); got != tt.want {
			t.Errorf("contains(%q) = %v, want %v", tt.addr, got, tt.want)
		}
	}
}
