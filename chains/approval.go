package chains

// The Detail keys of approval events (kind approval). Every approval event
// carries standard, contract, spender, unlimited and revoked; the others
// belong to one standard.
const (
	// DetailStandard names the approval's standard: StandardERC20,
	// StandardERC721, StandardERC1155, StandardPermit2, or StandardUnknown
	// for a setApprovalForAll whose contract answers neither ERC-721 nor
	// ERC-1155 to ERC-165.
	DetailStandard = "standard"
	// DetailSpender is who may now move the wallet's tokens: the spender,
	// the approved address or the operator (the event's counterparty).
	DetailSpender = "spender"
	// DetailUnlimited is "true" for an allowance of the standard's maximum
	// and for setApprovalForAll(…, true); "false" otherwise. ERC-20: max
	// uint256, or anything from 2^255 up (what is left of it after
	// transferFrom on tokens that decrease it), or max uint96, which
	// Compound-style tokens such as UNI and COMP store for it. Permit2: max
	// uint160.
	DetailUnlimited = "unlimited"
	// DetailRevoked is "true" when the event leaves the spender nothing to
	// move: an allowance of 0, an ERC-721 approval of the zero address,
	// setApprovalForAll(…, false), or a Permit2 allowance that had expired
	// before its block; "false" otherwise.
	DetailRevoked = "revoked"
	// DetailApprovedForAll is "true" or "false" on setApprovalForAll
	// (ERC-721 and ERC-1155).
	DetailApprovedForAll = "approved_for_all"
	// DetailTokenID is the token id (decimal) of an ERC-721 approve.
	DetailTokenID = "token_id"
	// DetailToken is the ERC-20 contract of a Permit2 allowance (the
	// event's token; the log comes from Permit2).
	DetailToken = "token"
	// DetailExpiration is when a Permit2 allowance ends (unix seconds,
	// decimal); "0" means at the end of the block that set it.
	DetailExpiration = "expiration"
	// DetailPermitNonce is the nonce (decimal) of a Permit2 Permit.
	DetailPermitNonce = "nonce"
)

// The values of DetailStandard.
const (
	StandardERC20   = "erc20"
	StandardERC721  = "erc721"
	StandardERC1155 = "erc1155"
	StandardPermit2 = "permit2"
	StandardUnknown = "unknown"
)
