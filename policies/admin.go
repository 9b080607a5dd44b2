package policies

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/keywatch/keywatch/chains"
	"github.com/keywatch/keywatch/config"
)

// Event details of admin events, as the chain sources write them.
const (
	DetailEvent    = "event"    // Upgraded, AdminChanged, BeaconUpgraded, OwnershipTransferred, RoleGranted
	DetailContract = "contract" // the contract whose admin changed
)

// adminChange fires on a change of who controls a contract: EIP-1967
// Upgraded, BeaconUpgraded and AdminChanged, OwnershipTransferred and
// RoleGranted, on watched contracts (role contract) or in a transaction
// signed by a watched employee key; a watched Safe's owner, threshold,
// module, guard, fallback-handler and singleton changes; and a watched
// storage slot that changed (detail.change slot). No parameters.
type adminChange struct{}

func buildAdminChange(b *builder, path string, p config.Policy) Detector {
	b.unused(path, p)
	return adminChange{}
}

func (adminChange) Detect(_ context.Context, ev *chains.Event, in *Input) (Finding, error) {
	if reasons, ok := changeReasons(ev, in); ok { // Safe and slot changes: safeadmin.go
		return Finding{Hit: true, Reasons: reasons}, nil
	}
	name := ev.Detail[DetailEvent]
	if name == "" {
		name = "admin change"
	}
	var args []string
	for k, v := range ev.Detail {
		if k != DetailEvent && k != DetailContract {
			args = append(args, k+" "+v)
		}
	}
	sort.Strings(args)
	contract := ev.Detail[DetailContract]
	where := contract
	if w, ok := in.WalletAt(ev.Chain, contract); ok {
		where = fmt.Sprintf("watched contract %s (%s)", w.Name, contract)
	}
	reason := fmt.Sprintf("%s on %s", name, where)
	if len(args) > 0 {
		reason += ": " + strings.Join(args, ", ")
	}
	f := Finding{Hit: true, Reasons: []string{reason}}
	if ev.Initiator != "" {
		signer := ev.Initiator
		if w, ok := in.WalletAt(ev.Chain, ev.Initiator); ok {
			signer = describe(w) + " " + ev.Initiator
		}
		f.Reasons = append(f.Reasons, "signed by "+signer+" in tx "+ev.Tx)
	}
	return f, nil
}
