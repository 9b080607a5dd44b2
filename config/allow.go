package config

import (
	"fmt"
	"strings"
)

// AllowSafeLibraries names, in a policy's allow:, Safe's own deployments of
// MultiSend, MultiSendCallOnly and SignMessageLib (1.3.0 and 1.4.1): the
// delegatecall detector's default. The addresses are in package
// chains/ethereum/safe (Libraries).
const AllowSafeLibraries = "safe-libraries"

// checkAllow checks a policy's allow: entries: each is an EVM address, a
// list defined under lists:, or safe-libraries. p is the policy's path.
func (pol Policy) checkAllow(v *checker, p string, known names) {
	for j, a := range pol.Allow {
		path := fmt.Sprintf("%s.allow[%d]", p, j)
		switch {
		case a == AllowSafeLibraries:
		case strings.HasPrefix(a, "0x") || strings.HasPrefix(a, "0X"):
			if err := CheckEVMAddress(a); err != nil {
				v.add(path, "%v", err)
			}
		default:
			if _, ok := known.lists[a]; !ok {
				v.add(path, "%q is neither an address (0x and 40 hex digits), a list under lists:, nor %s", a, AllowSafeLibraries)
			}
		}
	}
}
