package chains

import "strings"

// NormaliseAddress is the form events carry addresses in: EVM addresses
// (0x...) lowercase, every other form (Bitcoin base58 and bech32, scripts)
// as written, since lowercasing a base58 address makes it another string.
func NormaliseAddress(addr string) string {
	if strings.HasPrefix(addr, "0x") || strings.HasPrefix(addr, "0X") {
		return strings.ToLower(addr)
	}
	return addr
}
