// Package chains holds the chain-neutral event model that every watcher
// produces and every policy judges: one Event per value movement touching a
// watched wallet. Chain clients live in subpackages (chains/ethereum,
// chains/bitcoin); what they share beyond the event model (node URLs
// redacted for logs) is here too.
package chains

import (
	"fmt"
	"time"
)

// Status says how settled an event is.
type Status string

const (
	// StatusPending: seen but not yet at the chain's confirmation depth
	// (mempool on Bitcoin; included in a shallow block on EVM chains).
	StatusPending Status = "pending"
	// StatusConfirmed: at the configured confirmation depth.
	StatusConfirmed Status = "confirmed"
	// StatusRetracted: reorged out or replaced.
	StatusRetracted Status = "retracted"
	// StatusProposed: a Safe multisig transaction queued in a Safe
	// Transaction Service, not yet executed by any owner.
	StatusProposed Status = "proposed"
)

// Kind says what sort of movement an event is.
type Kind string

const (
	KindTransfer Kind = "transfer" // value moved
	KindApproval Kind = "approval" // ERC-20 approve / setApprovalForAll
	KindAdmin    Kind = "admin"    // Upgraded, AdminChanged, OwnershipTransferred, RoleGranted
	KindSystem   Kind = "system"   // keywatch about itself (alertmodel.System): no chain movement
	// KindExecution is a Safe's execTransaction or execTransactionFromModule
	// (executed, or proposed in the Safe queue): what the Safe was made to
	// do, whatever value it moved.
	KindExecution Kind = "execution"
)

// RoleFollowed is the wallet_role of events from addresses keywatch follows
// because funds that left a watched wallet reached them (see package hops).
// Such an address is not the firm's: only the forwarding detector judges
// these events; every other policy leaves them alone.
const RoleFollowed = "followed"

// Direction is relative to the watched wallet.
type Direction string

const (
	Out Direction = "out"
	In  Direction = "in"
)

// Event is one value movement (or approval, or admin change) that involves a
// watched wallet. Its JSON form is the event of the product specification.
type Event struct {
	ID           string    `json:"id"`
	Chain        string    `json:"chain"`
	Tx           string    `json:"tx"`
	Block        uint64    `json:"block"`
	BlockHash    string    `json:"block_hash"`
	Time         time.Time `json:"time"`
	Status       Status    `json:"status"`
	Kind         Kind      `json:"kind"`
	Direction    Direction `json:"direction"`
	Wallet       string    `json:"wallet"`
	WalletRole   string    `json:"wallet_role"`
	Owner        string    `json:"owner,omitempty"`
	From         string    `json:"from"`
	To           string    `json:"to"`
	Counterparty string    `json:"counterparty"`
	Initiator    string    `json:"initiator,omitempty"`
	Asset        string    `json:"asset"`
	Token        string    `json:"token"`
	Amount       Amount    `json:"amount"`
	USD          float64   `json:"usd"`
	Intent       string    `json:"intent"`
	// The fields of an execution event (kind execution): how the Safe ran
	// the transaction (call or delegatecall), the contract it called, the
	// wei it sent along (decimal), the call's 4-byte selector (hex), the
	// Safe nonce, the owners whose signatures it carried, and the module
	// that ran it (execTransactionFromModule).
	Operation string   `json:"operation,omitempty"`
	Target    string   `json:"target,omitempty"`
	Value     string   `json:"value,omitempty"`
	Selector  string   `json:"selector,omitempty"`
	SafeNonce *uint64  `json:"safe_nonce,omitempty"`
	Signers   []string `json:"signers,omitempty"`
	Module    string   `json:"module,omitempty"`
	// Detail carries kind-specific facts (for admin events: the event name and
	// its arguments) shown as evidence.
	Detail map[string]string `json:"detail,omitempty"`
}

// DetailRetracted is the Detail key that says why an event was retracted
// when it was not a block leaving the chain (a mempool transaction replaced,
// double-spent or evicted).
const DetailRetracted = "retracted"

// DetailVia is the Detail key naming a contract a movement went through on
// its way to the counterparty (the Tornado Cash router, whose deposit sends
// the funds on to a pool: the pool is the counterparty).
const DetailVia = "via"

// The Detail keys of admin events on Safes and watched contracts.
const (
	// DetailChange says what changed: added-owner, removed-owner,
	// threshold, enabled-module, disabled-module, guard, fallback-handler,
	// singleton, or slot (a watched storage slot changed, logged or not).
	DetailChange = "change"
	// DetailSlot, DetailOld and DetailNew are the storage slot that changed
	// and its values before and after (32-byte hex).
	DetailSlot = "slot"
	DetailOld  = "old"
	DetailNew  = "new"
)

// EventID builds the stable id <chain>:<tx>:<index>.
func EventID(chain, tx string, index any) string {
	return fmt.Sprintf("%s:%s:%v", chain, tx, index)
}

// WithStatus returns a copy of e with another status.
func (e Event) WithStatus(s Status) Event {
	e.Status = s
	return e
}
