package policies

import (
	"context"
	"fmt"
	"math/big"
	"strings"

	"github.com/keywatch/keywatch/chains"
	"github.com/keywatch/keywatch/config"
)

// DetailApprovedForAll is set on approval events from setApprovalForAll:
// "true" grants the operator every token of the contract, "false" revokes.
const DetailApprovedForAll = "approved_for_all"

// approval fires when a watched wallet grants an allowance (ERC-20 approve,
// or setApprovalForAll) to a spender that is not in the address book.
// Revocations (an allowance of 0, approved false) do not fire. Parameters:
// lists (address_book).
type approval struct{ book []string }

func buildApproval(b *builder, path string, p config.Policy) Detector {
	b.unused(path, p, "lists")
	return &approval{book: b.listNames(path, p, []string{"address_book"}, "of known spenders")}
}

// maxUint256 is the "unlimited" allowance.
var maxUint256 = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 256), big.NewInt(1))

func (d *approval) Detect(_ context.Context, ev *chains.Event, in *Input) (Finding, error) {
	var grant string
	switch all, isAll := ev.Detail[DetailApprovedForAll]; {
	case isAll && all == "true":
		tok := ev.Token
		if tok == "" {
			tok = ev.Asset
		}
		grant = "every token of " + tok + " (setApprovalForAll)"
	case isAll:
		return Finding{}, nil
	case ev.Amount.IsZero():
		return Finding{}, nil
	case ev.Amount.Units.Cmp(maxUint256) == 0:
		grant = "an unlimited allowance of " + ev.Asset + " (approve)"
	default:
		grant = fmt.Sprintf("an allowance of %s %s (approve)", ev.Amount, ev.Asset)
	}
	if _, ok, err := lookup(ev, in, d.book); err != nil || ok {
		return Finding{}, err
	}
	return Finding{Hit: true, Reasons: []string{fmt.Sprintf("%s granted %s to %s, which is not on %s",
		ev.Wallet, grant, ev.Counterparty, strings.Join(d.book, " or "))}}, nil
}
