package descriptor

import (
	"fmt"
	"strings"
)

// The BIP 380 checksum: a BCH code over the descriptor's characters, eight
// characters of the bech32 alphabet written after a '#'.
const (
	inputCharset    = "0123456789()[],'/*abcdefgh@:$%{}IJKLMNOPQRSTUVWXYZ&+-.;<=>?!^_|~ijklmnopqrstuvwxyzABCDEFGH`#\"\\ "
	checksumCharset = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
	checksumLen     = 8
)

var generator = [5]uint64{0xf5dee51989, 0xa9fdca3312, 0x1bab10e32d, 0x3706b1677a, 0x644d626ffd}

func polymod(c uint64, v int) uint64 {
	top := c >> 35
	c = (c&0x7ffffffff)<<5 ^ uint64(v)
	for i := range generator {
		if (top>>i)&1 == 1 {
			c ^= generator[i]
		}
	}
	return c
}

// Checksum computes the BIP 380 checksum of a descriptor written without
// one, as Bitcoin Core's getdescriptorinfo reports it. A character outside
// the descriptor character set is an error naming its byte offset.
func Checksum(desc string) (string, error) {
	c := uint64(1)
	cls, clsCount := 0, 0
	for pos := 0; pos < len(desc); pos++ {
		v := strings.IndexByte(inputCharset, desc[pos])
		if v < 0 || desc[pos] >= 0x80 {
			return "", &Error{Pos: pos, Msg: fmt.Sprintf("character %s is not allowed in a descriptor", quoteByte(desc[pos]))}
		}
		c = polymod(c, v&31)
		cls = cls*3 + v>>5
		clsCount++
		if clsCount == 3 {
			c = polymod(c, cls)
			cls, clsCount = 0, 0
		}
	}
	if clsCount > 0 {
		c = polymod(c, cls)
	}
	for range checksumLen {
		c = polymod(c, 0)
	}
	c ^= 1
	var out [checksumLen]byte
	for j := range checksumLen {
		out[j] = checksumCharset[(c>>(5*(7-j)))&31]
	}
	return string(out[:]), nil
}

// WithChecksum returns desc (without a checksum) followed by '#' and its
// checksum.
func WithChecksum(desc string) (string, error) {
	cs, err := Checksum(desc)
	if err != nil {
		return "", err
	}
	return desc + "#" + cs, nil
}

// splitChecksum separates a descriptor from its checksum and verifies it
// when present.
func splitChecksum(s string) (string, error) {
	hash := strings.LastIndexByte(s, '#')
	if hash < 0 {
		if _, err := Checksum(s); err != nil {
			return "", err
		}
		return s, nil
	}
	body, given := s[:hash], s[hash+1:]
	want, err := Checksum(body)
	if err != nil {
		return "", err
	}
	if len(given) != checksumLen {
		return "", &Error{Pos: hash + 1, Msg: fmt.Sprintf("checksum after '#' has %d characters, want %d", len(given), checksumLen)}
	}
	for j := 0; j < len(given); j++ {
		if strings.IndexByte(checksumCharset, given[j]) < 0 {
			return "", &Error{Pos: hash + 1 + j, Msg: fmt.Sprintf("character %s is not allowed in a checksum", quoteByte(given[j]))}
		}
	}
	if given != want {
		return "", &Error{Pos: hash + 1, Msg: "checksum does not match the descriptor: the descriptor or its checksum was changed or mistyped"}
	}
	return body, nil
}

func quoteByte(b byte) string {
	if b < 0x20 || b >= 0x7f {
		return fmt.Sprintf("0x%02x", b)
	}
	return fmt.Sprintf("%q", b)
}
