package chains

// The Detail keys of events of queued Safe multisig transactions (status
// proposed, then confirmed or retracted), as the Safe queue poller
// (watchers/safequeue) writes them and the safe-hash detector reads them.
const (
	// DetailSafeTxHash is the safeTxHash the Safe Transaction Service shows
	// (the hash its signers are asked to sign).
	DetailSafeTxHash = "safe_tx_hash"
	// DetailComputedSafeTxHash is the EIP-712 safeTxHash keywatch computed
	// from the transaction's payload, the Safe's address, its version and the
	// chain id: what execTransaction will check the signatures against.
	DetailComputedSafeTxHash = "computed_safe_tx_hash"
	// DetailBadConfirmations lists the confirmations whose signature does
	// not recover to the owner the service names against the computed hash
	// ("0xowner: signature recovers to 0xother"; "; " between them).
	DetailBadConfirmations = "bad_confirmations"
	// DetailConfirmations is how many confirmations the transaction carries
	// and how many the Safe requires ("2 of 3").
	DetailConfirmations = "confirmations"
	// DetailSafeVersion is the Safe's VERSION() as the chain answers it.
	DetailSafeVersion = "safe_version"
	// DetailProposer is the owner or delegate the service says proposed the
	// transaction.
	DetailProposer = "proposer"
	// DetailMethod is the method the service decoded from the call data
	// (its dataDecoded), a claim of the service shown as evidence.
	DetailMethod = "method"
	// DetailExecution says how the Safe executed a confirmed transaction:
	// success, or failure (the inner call reverted; the nonce is used all
	// the same).
	DetailExecution = "execution"
)

// SafeTxEventID is the stable id of the event of a queued Safe transaction:
// <chain>:safe-tx:<safeTxHash>, with the safeTxHash keywatch computed (which
// commits to the Safe, its chain and the nonce).
func SafeTxEventID(chain, safeTxHash string) string {
	return chain + ":safe-tx:" + safeTxHash
}
