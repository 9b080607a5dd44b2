package safe

import (
	"strings"

	"github.com/ethereum/go-ethereum/common"
)

// Library is one of Safe's own deployments of a library that Safes run by
// delegatecall in normal use: MultiSend batches calls, MultiSendCallOnly
// batches them without delegatecalls, SignMessageLib marks a message signed.
type Library struct {
	Version  string // Safe release
	Contract string
	Kind     string // canonical (the deterministic deployment proxy) or eip155 (Safe's singleton factory)
	Address  common.Address
}

// DeploymentsPackage is the npm package, and its version, that Libraries
// were taken from (dist/assets/v<release>/<contract>.json, field
// deployments). contracts/safe/deployments.json is the same list as
// extracted by contracts/safe/extract.sh; a test keeps the two equal.
const DeploymentsPackage = "@safe-global/safe-deployments@1.37.63"

// Libraries are the delegatecall targets a Safe uses in normal operation:
// MultiSend, MultiSendCallOnly and SignMessageLib of Safe 1.3.0 (canonical
// and eip155 deployments) and 1.4.1 (canonical; 1.4.1 has no eip155 one).
// The zkSync deployments are left out: they are at other addresses, which
// on any other chain are no Safe library. They are the default allow list
// of the delegatecall detector (list name LibrariesList).
var Libraries = []Library{
	{"1.3.0", "MultiSend", "canonical", common.HexToAddress("0xA238CBeb142c10Ef7Ad8442C6D1f9E89e07e7761")},
	{"1.3.0", "MultiSend", "eip155", common.HexToAddress("0x998739BFdAAdde7C933B942a68053933098f9EDa")},
	{"1.3.0", "MultiSendCallOnly", "canonical", common.HexToAddress("0x40A2aCCbd92BCA938b02010E17A5b8929b49130D")},
	{"1.3.0", "MultiSendCallOnly", "eip155", common.HexToAddress("0xA1dabEF33b3B82c7814B6D82A79e50F4AC44102B")},
	{"1.3.0", "SignMessageLib", "canonical", common.HexToAddress("0xA65387F16B013cf2Af4605Ad8aA5ec25a2cbA3a2")},
	{"1.3.0", "SignMessageLib", "eip155", common.HexToAddress("0x98FFBBF51bb33A056B08ddf711f289936AafF717")},
	{"1.4.1", "MultiSend", "canonical", common.HexToAddress("0x38869bf66a61cF6bDB996A6aE40D5853Fd43B526")},
	{"1.4.1", "MultiSendCallOnly", "canonical", common.HexToAddress("0x9641d764fc13c8B624c04430C7356C1C7C8102e2")},
	{"1.4.1", "SignMessageLib", "canonical", common.HexToAddress("0xd53cd0aB83D845Ac265BE939c57F53AD838012c9")},
}

// LibrariesList is the name under which a policy's allow: names Libraries.
const LibrariesList = "safe-libraries"

// LibraryAt returns the Safe library at addr (0x hex, any case).
func LibraryAt(addr string) (Library, bool) {
	if !common.IsHexAddress(strings.TrimSpace(addr)) {
		return Library{}, false
	}
	a := common.HexToAddress(strings.TrimSpace(addr))
	for _, l := range Libraries {
		if l.Address == a {
			return l, true
		}
	}
	return Library{}, false
}
