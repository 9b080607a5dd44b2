package policies_test

import (
	"testing"

	"github.com/keywatch/keywatch/chains"
)

// TestApprovalStandards: the approval detector on events as the EVM source
// writes them for each standard (chains/ethereum's tests make them on a
// chain); a detail it cannot read fires rather than passes.
func TestApprovalStandards(t *testing.T) {
	h := newHarness(t, `policies:
  - {name: approval, detector: approval, severity: high}
`)
	const (
		nft     = "0xed5af388653567af2f388e6224dc7c4b3241c544"
		permit2 = "0x000000000022d473030f116ddee9f6b43ac78ba3"
		zero    = "0x0000000000000000000000000000000000000000"
	)
	d := func(kv ...string) map[string]string {
		m := map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	h.run(t, []step{
		{name: "ERC-20 of a configured token", ev: event{kind: chains.KindApproval, asset: "USDC", counterparty: stranger, amount: "250",
			detail: d("standard", "erc20", "spender", stranger, "unlimited", "false", "revoked", "false")},
			want: []string{"approval: treasury-hot granted an allowance of 250 USDC (ERC-20 approve) to " + stranger + ", which is not on address_book"}},
		{name: "ERC-20 unlimited", ev: event{kind: chains.KindApproval, asset: "USDC", counterparty: stranger, amount: "1",
			detail: d("standard", "erc20", "unlimited", "true", "revoked", "false")},
			want: []string{"approval: treasury-hot granted an unlimited allowance of USDC (ERC-20 approve) to " + stranger + ", which is not on address_book"}},
		{name: "ERC-20 to the vendor", ev: event{kind: chains.KindApproval, asset: "USDC", counterparty: vendor, amount: "250",
			detail: d("standard", "erc20", "unlimited", "false", "revoked", "false")}},
		{name: "ERC-721 approve", ev: event{kind: chains.KindApproval, asset: nft, counterparty: stranger, amount: "1",
			detail: d("standard", "erc721", "token_id", "1527", "unlimited", "false", "revoked", "false")},
			want: []string{"approval: treasury-hot granted token 1527 of " + nft + " (ERC-721 approve) to " + stranger + ", which is not on address_book"}},
		{name: "ERC-721 approval cleared", ev: event{kind: chains.KindApproval, asset: nft, counterparty: zero, amount: "0",
			detail: d("standard", "erc721", "token_id", "1527", "unlimited", "false", "revoked", "true")}},
		{name: "setApprovalForAll of a contract that does not say its standard", ev: event{kind: chains.KindApproval, asset: nft, counterparty: stranger, amount: "0",
			detail: d("standard", "unknown", "approved_for_all", "true", "unlimited", "true", "revoked", "false")},
			want: []string{"approval: treasury-hot granted every token of " + nft + " (setApprovalForAll) to " + stranger + ", which is not on address_book"}},
		{name: "Permit2 permit sent by the spender", ev: event{kind: chains.KindApproval, asset: "USDC", counterparty: stranger, amount: "1000", initiator: stranger,
			detail: d("standard", "permit2", "event", "Permit", "contract", permit2, "token", "0xca7fabb8e22bc919bb3fbcb488edd1e96c298f1d", "expiration", "1685621536", "nonce", "3", "unlimited", "false", "revoked", "false")},
			want: []string{"approval: treasury-hot granted a Permit2 allowance of 1000 USDC until 2023-06-01T12:12:16Z (Permit2 permit signed by the wallet, sent by " + stranger + ") to " + stranger + ", which is not on address_book"}},
		{name: "Permit2 approve already expired", ev: event{kind: chains.KindApproval, asset: "USDC", counterparty: stranger, amount: "1000",
			detail: d("standard", "permit2", "event", "Approval", "expiration", "1", "unlimited", "false", "revoked", "true")}},
		{name: "an expiration keywatch cannot read", ev: event{kind: chains.KindApproval, asset: "USDC", counterparty: stranger, amount: "1000",
			detail: d("standard", "permit2", "event", "Approval", "expiration", "soon", "unlimited", "false", "revoked", "false")},
			want: []string{"approval: treasury-hot granted a Permit2 allowance of 1000 USDC with expiration soon (Permit2 approve) to " + stranger + ", which is not on address_book"}},
		{name: "a revoked flag keywatch cannot read fires", ev: event{kind: chains.KindApproval, asset: "USDC", counterparty: stranger, amount: "0",
			detail: d("standard", "erc20", "unlimited", "false", "revoked", "maybe")},
			want: []string{"approval: treasury-hot granted an allowance of 0 USDC (ERC-20 approve) to " + stranger + ", which is not on address_book"}},
		{name: "an allowance for the zero address", ev: event{kind: chains.KindApproval, asset: "USDC", counterparty: zero, amount: "5"}},
	})
}
