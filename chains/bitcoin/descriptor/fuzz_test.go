package descriptor_test

import (
	"errors"
	"testing"

	"github.com/keywatch/keywatch/chains/bitcoin/descriptor"
)

// FuzzParse: any text either parses and derives, or is refused with a
// positioned error; never a panic.
func FuzzParse(f *testing.F) {
	v := load(f)
	f.Add(v.BIP383.SortedMultiRanged.Desc)
	f.Add(v.BIP86.Desc)
	for _, c := range v.BIP389.Valid {
		f.Add(c.Desc)
	}
	for _, s := range v.BIP389.Invalid {
		f.Add(s)
	}
	f.Add("sh(wpkh(0260b2003c386519fc9eadf2b5cf124dd8eea4c4e68d5e154050a9346ea98ce600))#00000000")
	f.Fuzz(func(t *testing.T, s string) {
		d, err := descriptor.Parse(s)
		if err != nil {
			var de *descriptor.Error
			if !errors.As(err, &de) || de.Pos < 0 || de.Pos > len(s) {
				t.Fatalf("%q: error without a position in range: %v", s, err)
			}
			return
		}
		for b := 0; b < d.Branches(); b++ {
			if _, err := d.Derive(uint32(b), 3); err != nil {
				t.Fatalf("%q: parsed but branch %d does not derive: %v", s, b, err)
			}
		}
	})
}
