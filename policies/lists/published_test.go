package lists_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keywatch/keywatch/config"
	"github.com/keywatch/keywatch/policies/lists"
)

// TestPublishedDate: a list file dates its content with a "# published:"
// comment before its first entry; without one, its modification time counts.
func TestPublishedDate(t *testing.T) {
	mtime := time.Date(2025, 12, 1, 8, 0, 0, 0, time.UTC)
	tests := []struct {
		name, data string
		date       time.Time
		datedBy    string
		err        string
	}{
		{"date", "# published: 2025-11-19\nchain,address,label,source\nethereum,0x098B716B8Aaf21512996dC57EB0615e2383E2f96,Lazarus,OFAC\n",
			time.Date(2025, 11, 19, 0, 0, 0, 0, time.UTC), "published comment", ""},
		{"time, after other comments, plain file", "# OFAC SDN ETH addresses\n# published: 2025-11-19T10:30:00+01:00\n0x098B716B8Aaf21512996dC57EB0615e2383E2f96\n",
			time.Date(2025, 11, 19, 9, 30, 0, 0, time.UTC), "published comment", ""},
		{"none", "chain,address\nethereum,0x098B716B8Aaf21512996dC57EB0615e2383E2f96\n", mtime, "modification time", ""},
		{"after the first entry it is an ordinary comment", "0x098B716B8Aaf21512996dC57EB0615e2383E2f96\n# published: 2025-11-19\n", mtime, "modification time", ""},
		{"not a date", "# published: last tuesday\n0x098B716B8Aaf21512996dC57EB0615e2383E2f96\n", time.Time{}, "",
			`FILE:1: # published: "last tuesday": want a date such as 2025-11-19 or 2025-11-19T00:00:00Z`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			name := "sanctioned.txt"
			if strings.Contains(tt.data, "chain,address") {
				name = "sanctioned.csv"
			}
			file := filepath.Join(dir, name)
			if err := os.WriteFile(file, []byte(tt.data), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Chtimes(file, mtime, mtime); err != nil {
				t.Fatal(err)
			}
			cfgPath := filepath.Join(dir, "keywatch.yaml")
			doc := fmt.Sprintf("store: {memory: true}\nnats: {url: \"nats://127.0.0.1:4222\"}\nlists:\n  sanctioned: [%q]\n", file)
			cfg, err := config.Parse(cfgPath, []byte(doc), func(string) (string, bool) { return "", false })
			if err != nil {
				t.Fatal(err)
			}
			set, err := lists.Load(cfg)
			if tt.err != "" {
				want := tt.err[len("FILE"):]
				if err == nil || err.Error() != file+want {
					t.Fatalf("error %v, want %s%s", err, file, want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			l, _ := set.Get("sanctioned")
			s := l.Stamps[0]
			if !s.Date().Equal(tt.date) || s.DatedBy() != tt.datedBy || l.Len() != 1 || len(s.SHA256) != 64 {
				t.Errorf("dated %s (%s), %d entries, sha256 %q; want %s (%s), 1 entry", s.Date(), s.DatedBy(), l.Len(), s.SHA256, tt.date, tt.datedBy)
			}
		})
	}
}
