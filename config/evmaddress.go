package config

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/ethereum/go-ethereum/common"
)

var hexAddrRe = regexp.MustCompile(`^0x[0-9a-fA-F]{40}$`)

// CheckEVMAddress accepts 0x-prefixed 20-byte hex; mixed-case input must
// carry a valid EIP-55 checksum (a wrong one is usually a typo).
func CheckEVMAddress(s string) error {
	if s == "" {
		return fmt.Errorf("required")
	}
	if !hexAddrRe.MatchString(s) {
		return fmt.Errorf("%q is not an address (want 0x and 40 hex digits)", s)
	}
	body := s[2:]
	if body != strings.ToLower(body) && body != strings.ToUpper(body) {
		if common.HexToAddress(s).Hex() != s {
			return fmt.Errorf("%q has a bad EIP-55 checksum (a typo?); write it in lowercase to skip the check", s)
		}
	}
	return nil
}
