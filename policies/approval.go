package policies

import (
	"context"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/keywatch/keywatch/chains"
	"github.com/keywatch/keywatch/config"
)

// DetailApprovedForAll is set on approval events from setApprovalForAll:
// "true" grants the operator every token of the contract, "false" revokes.
const DetailApprovedForAll = chains.DetailApprovedForAll

// approval fires when a watched wallet grants an allowance to a spender that
// is not in the address book: ERC-20 approve, ERC-721 approve and
// setApprovalForAll, ERC-1155 setApprovalForAll, on any contract, and
// Permit2 approve and permit. Revocations (detail.revoked: an allowance of
// 0, the zero address approved, approved false, a Permit2 allowance already
// expired) do not fire. Parameters: lists (address_book).
type approval struct{ book []string }

func buildApproval(b *builder, path string, p config.Policy) Detector {
	b.unused(path, p, "lists")
	return &approval{book: b.listNames(path, p, []string{"address_book"}, "of known spenders")}
}

// maxUint256 is the "unlimited" ERC-20 allowance, for events that do not say
// detail.unlimited.
var maxUint256 = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 256), big.NewInt(1))

func (d *approval) Detect(_ context.Context, ev *chains.Event, in *Input) (Finding, error) {
	if revoked(ev) {
		return Finding{}, nil
	}
	if _, ok, err := lookup(ev, in, d.book); err != nil || ok {
		return Finding{}, err
	}
	return Finding{Hit: true, Reasons: []string{fmt.Sprintf("%s granted %s to %s, which is not on %s",
		ev.Wallet, grant(ev), ev.Counterparty, strings.Join(d.book, " or "))}}, nil
}

// revoked reports whether an approval leaves the spender nothing: as the
// chain source says in detail.revoked, or, for events without it, an
// allowance of 0 or approved false. The zero address can spend nothing.
func revoked(ev *chains.Event) bool {
	if ev.Counterparty == "0x0000000000000000000000000000000000000000" {
		return true
	}
	if r, ok := ev.Detail[chains.DetailRevoked]; ok {
		return r == "true"
	}
	if all, ok := ev.Detail[DetailApprovedForAll]; ok {
		return all != "true"
	}
	return ev.Amount.IsZero()
}

// grant says what the wallet granted, in the words of its standard.
func grant(ev *chains.Event) string {
	std, unlimited := ev.Detail[chains.DetailStandard], ev.Detail[chains.DetailUnlimited] == "true"
	if _, ok := ev.Detail[chains.DetailUnlimited]; !ok && ev.Amount.Units != nil {
		unlimited = ev.Amount.Units.Cmp(maxUint256) == 0
	}
	tok := ev.Token
	if tok == "" {
		tok = ev.Asset
	}
	switch {
	case ev.Detail[DetailApprovedForAll] == "true":
		return "every token of " + tok + " (" + standardName(std, "setApprovalForAll") + ")"
	case std == chains.StandardERC721:
		return "token " + ev.Detail[chains.DetailTokenID] + " of " + tok + " (ERC-721 approve)"
	case std == chains.StandardPermit2:
		what := "a Permit2 allowance of " + quantity(ev)
		if unlimited {
			what = "an unlimited Permit2 allowance of " + ev.Asset
		}
		call := "Permit2 approve"
		if ev.Detail["event"] == "Permit" {
			call = "Permit2 permit signed by the wallet"
			if ev.Initiator != "" && ev.Initiator != ev.From {
				call += ", sent by " + ev.Initiator
			}
		}
		return what + " " + expiry(ev) + " (" + call + ")"
	case unlimited:
		return "an unlimited allowance of " + ev.Asset + " (" + standardName(std, "approve") + ")"
	default:
		return "an allowance of " + quantity(ev) + " (" + standardName(std, "approve") + ")"
	}
}

// quantity is the amount and asset of an allowance; the raw number of base
// units of a token whose decimals keywatch does not know (not configured).
func quantity(ev *chains.Event) string {
	if ev.Token != "" && ev.Asset == ev.Token {
		return ev.Amount.String() + " base units of " + ev.Asset
	}
	return ev.Amount.String() + " " + ev.Asset
}

// standardName prefixes the call with the standard's name when known.
func standardName(std, call string) string {
	switch std {
	case chains.StandardERC20:
		return "ERC-20 " + call
	case chains.StandardERC721:
		return "ERC-721 " + call
	case chains.StandardERC1155:
		return "ERC-1155 " + call
	}
	return call
}

// expiry says until when a Permit2 allowance holds.
func expiry(ev *chains.Event) string {
	raw := ev.Detail[chains.DetailExpiration]
	secs, err := strconv.ParseInt(raw, 10, 64)
	switch {
	case err != nil:
		return "with expiration " + raw
	case secs == 0:
		return "for the rest of its block"
	default:
		return "until " + time.Unix(secs, 0).UTC().Format(time.RFC3339)
	}
}
