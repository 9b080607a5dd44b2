package ofac_test

import (
	"bytes"
	"encoding/xml"
	"io"
	"os"
	"testing"

	"github.com/keywatch/keywatch/internal/testenv"
	"github.com/keywatch/keywatch/policies/lists/ofac"
)

// The importer against the floor under it: a bare encoding/xml token scan
// of the same bytes, measured in the same run. The ratio is what the
// importer adds to reading the XML at all.

func excerptBytes(b *testing.B) []byte {
	data, err := os.ReadFile(testenv.Data(b, "ofac/sdn_advanced_2025-11-19_excerpt.xml"))
	if err != nil {
		b.Fatal(err)
	}
	return data
}

func BenchmarkXMLImportExcerpt(b *testing.B) {
	data := excerptBytes(b)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		im, err := ofac.ReadXML(bytes.NewReader(data))
		if err != nil || len(im.Addresses) != 63 {
			b.Fatalf("%v (%d addresses)", err, len(im.Addresses))
		}
	}
}

func BenchmarkXMLTokenScanExcerpt(b *testing.B) {
	data := excerptBytes(b)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		d := xml.NewDecoder(bytes.NewReader(data))
		for {
			if _, err := d.Token(); err == io.EOF {
				break
			} else if err != nil {
				b.Fatal(err)
			}
		}
	}
}
