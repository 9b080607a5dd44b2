package ethereum

// Approvals: what a watched wallet lets others move. Every allowance it
// grants on any contract (configured under chains[].tokens or not) is an
// approval event: ERC-20 Approval, ERC-721 Approval (the token id indexed),
// ApprovalForAll of ERC-721 and ERC-1155 collections, and Uniswap Permit2's
// Approval and Permit, whose owner is the watched wallet. One eth_getLogs
// per block (per 500 watched wallets) fetches them all: the four event
// signatures from any contract, the owner topic a watched wallet.

import (
	"context"
	"math/big"
	"strconv"
	"sync"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/keywatch/keywatch/chains"
)

// Permit2 is Uniswap's Permit2, at the same address on every chain it is
// deployed on (a CREATE2 deployment; no other code can be placed there).
var Permit2 = common.HexToAddress("0x000000000022D473030F116dDEE9F6B43aC78BA3")

// Permit2's allowance events (src/interfaces/IAllowanceTransfer.sol of
// github.com/Uniswap/permit2): Approval(address indexed owner, address
// indexed token, address indexed spender, uint160 amount, uint48
// expiration) and Permit(…, uint160 amount, uint48 expiration, uint48
// nonce).
var (
	TopicPermit2Approval = crypto.Keccak256Hash([]byte("Approval(address,address,address,uint160,uint48)"))
	TopicPermit2Permit   = crypto.Keccak256Hash([]byte("Permit(address,address,address,uint160,uint48,uint48)"))
)

// approvalTopics are the event signatures of the approvals query.
var approvalTopics = []common.Hash{TopicApproval, TopicApprovalForAll, TopicPermit2Approval, TopicPermit2Permit}

// The allowances that mean "everything".
var (
	// ERC-20: max uint256 by convention; tokens that decrease even that on
	// transferFrom log what is left of it (still far above any supply), so
	// anything from 2^255 up counts.
	unlimitedERC20 = new(big.Int).Lsh(big.NewInt(1), 255)
	// Compound-style tokens (COMP, UNI) keep allowances in a uint96 and
	// store approve(spender, max uint256) as max uint96.
	maxUint96 = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 96), big.NewInt(1))
	// Permit2: max uint160, which its transfers never decrease.
	maxUint160 = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 160), big.NewInt(1))
)

// ERC-165 interface ids of the collections whose ApprovalForAll looks alike.
var (
	supportsInterfaceSelector = common.FromHex("0x01ffc9a7")
	interfaceERC721           = common.FromHex("0x80ac58cd")
	interfaceERC1155          = common.FromHex("0xd9b67a26")
)

// contractCaller is implemented by Pool, *ethclient.Client and the simulated
// client: the ERC-165 question that tells an ERC-721 collection from an
// ERC-1155 one, and a Safe's VERSION(), nonce and owners (safes.go).
type contractCaller interface {
	CallContract(ctx context.Context, call ethereum.CallMsg, block *big.Int) ([]byte, error)
}

// approvalState remembers the standard of collections already asked. Its
// zero value is ready.
type approvalState struct {
	mu        sync.Mutex
	standards map[common.Address]string
}

// maxStandards bounds the remembered collections; the memory is dropped
// whole when full (asking again costs two calls).
const maxStandards = 4096

// approvalQueries fetches every approval a watched wallet grants in the
// block, from any contract.
func (s *Source) approvalQueries(hash common.Hash) []ethereum.FilterQuery {
	var qs []ethereum.FilterQuery
	for _, part := range chunks(s.topics, maxTopicsPerQuery) {
		qs = append(qs, ethereum.FilterQuery{BlockHash: &hash, Topics: [][]common.Hash{approvalTopics, part}})
	}
	return qs
}

// isApprovalLog reports whether l has one of the approval signatures.
func isApprovalLog(l types.Log) bool {
	if len(l.Topics) == 0 {
		return false
	}
	for _, t := range approvalTopics {
		if l.Topics[0] == t {
			return true
		}
	}
	return false
}

// approval decodes an approval log whose owner is a watched wallet. ev
// carries the block and the transaction. Logs of another shape (an ERC-20
// Approval with data that is not one word, a Permit2 event from any contract
// but Permit2) are not approvals keywatch can read, and are skipped.
func (s *Source) approval(ctx context.Context, ev chains.Event, l types.Log) (chains.Event, bool) {
	if len(l.Topics) < 3 {
		return ev, false
	}
	owner, spender := common.BytesToAddress(l.Topics[1].Bytes()), common.BytesToAddress(l.Topics[2].Bytes())
	w, ok := s.wallets[owner]
	if !ok {
		return ev, false
	}
	contract := l.Address
	d := map[string]string{"contract": lower(contract)}
	unlimited, revoked := false, false
	amount := chains.NewAmount(new(big.Int), 0)
	token := contract
	tok, known := s.tokens[token]
	switch {
	case l.Topics[0] == TopicApproval && len(l.Topics) == 3 && len(l.Data) == 32:
		// ERC-20 approve(spender, value).
		v := new(big.Int).SetBytes(l.Data)
		d["event"], d[chains.DetailStandard] = "Approval", chains.StandardERC20
		amount = chains.NewAmount(v, tok.Decimals) // decimals 0 when not configured
		unlimited = v.Cmp(unlimitedERC20) >= 0 || v.Cmp(maxUint96) == 0
		revoked = v.Sign() == 0
	case l.Topics[0] == TopicApproval && len(l.Topics) == 4 && len(l.Data) == 0:
		// ERC-721 approve(approved, tokenId): one token; the zero address
		// clears the approval.
		d["event"], d[chains.DetailStandard] = "Approval", chains.StandardERC721
		d[chains.DetailTokenID] = new(big.Int).SetBytes(l.Topics[3].Bytes()).String()
		revoked = spender == (common.Address{})
		if !revoked {
			amount = chains.NewAmount(big.NewInt(1), 0)
		}
	case l.Topics[0] == TopicApprovalForAll && len(l.Topics) == 3 && len(l.Data) == 32:
		// setApprovalForAll(operator, approved) of an ERC-721 or ERC-1155
		// collection: every token of the contract, amount 0.
		all := new(big.Int).SetBytes(l.Data).Sign() != 0
		d["event"], d[chains.DetailStandard] = "ApprovalForAll", s.collectionStandard(ctx, contract, ev.Block)
		d[chains.DetailApprovedForAll] = strconv.FormatBool(all)
		unlimited, revoked = all, !all
	case contract == Permit2 && len(l.Topics) == 4 &&
		((l.Topics[0] == TopicPermit2Approval && len(l.Data) == 64) || (l.Topics[0] == TopicPermit2Permit && len(l.Data) == 96)):
		// Permit2 approve (by the owner) or permit (the owner's signature,
		// sent by anyone): the token is topic 2, the spender topic 3.
		token, spender = spender, common.BytesToAddress(l.Topics[3].Bytes())
		tok, known = s.tokens[token]
		v := new(big.Int).SetBytes(l.Data[:32])
		expiration := new(big.Int).SetBytes(l.Data[32:64])
		d["event"], d[chains.DetailStandard] = "Approval", chains.StandardPermit2
		if l.Topics[0] == TopicPermit2Permit {
			d["event"], d[chains.DetailPermitNonce] = "Permit", new(big.Int).SetBytes(l.Data[64:96]).String()
		}
		d[chains.DetailToken], d[chains.DetailExpiration] = lower(token), expiration.String()
		amount = chains.NewAmount(v, tok.Decimals)
		unlimited = v.Cmp(maxUint160) == 0
		// Permit2 refuses a transfer once the block time is past the
		// expiration; 0 stands for the block time of the approval itself.
		expired := expiration.Sign() != 0 && expiration.Cmp(big.NewInt(ev.Time.Unix())) < 0
		revoked = v.Sign() == 0 || expired
	default:
		return ev, false
	}
	d[chains.DetailSpender] = lower(spender)
	d[chains.DetailUnlimited], d[chains.DetailRevoked] = strconv.FormatBool(unlimited), strconv.FormatBool(revoked)
	ev.Kind = chains.KindApproval
	ev.ID = chains.EventID(s.opts.Chain, ev.Tx, l.Index)
	ev.From, ev.To = lower(owner), lower(spender)
	ev.Token, ev.Asset = lower(token), lower(token)
	if known {
		ev.Asset = tok.Symbol
		if d[chains.DetailStandard] == chains.StandardERC20 || d[chains.DetailStandard] == chains.StandardPermit2 {
			ev.USD = amount.Float64() * tok.USD
		}
	}
	ev.Amount = amount
	ev.Detail = d
	return s.attribute(ev, w, chains.Out, spender), true
}

// collectionStandard asks a contract through ERC-165 whether it is an
// ERC-721 or an ERC-1155 collection, and remembers the answer. A contract
// that answers neither, both, or not at all is StandardUnknown; an answer
// with a failed call in it is not remembered.
func (s *Source) collectionStandard(ctx context.Context, contract common.Address, block uint64) string {
	st := &s.approvals
	st.mu.Lock()
	std, ok := st.standards[contract]
	st.mu.Unlock()
	if ok {
		return std
	}
	caller, ok := s.client.(contractCaller)
	if !ok {
		return chains.StandardUnknown
	}
	supports := func(id []byte) (bool, error) {
		data := append(append([]byte(nil), supportsInterfaceSelector...), common.RightPadBytes(id, 32)...)
		// ERC-165: supportsInterface uses less than 30,000 gas.
		out, err := caller.CallContract(ctx, ethereum.CallMsg{To: &contract, Gas: 30_000, Data: data}, new(big.Int).SetUint64(block))
		if err != nil {
			return false, err
		}
		return len(out) == 32 && new(big.Int).SetBytes(out).Cmp(big.NewInt(1)) == 0, nil
	}
	is721, err721 := supports(interfaceERC721)
	is1155, err1155 := supports(interfaceERC1155)
	switch {
	case is721 && !is1155:
		std = chains.StandardERC721
	case is1155 && !is721:
		std = chains.StandardERC1155
	default:
		std = chains.StandardUnknown
	}
	if err721 != nil || err1155 != nil {
		return std // not a whole answer: ask again next time
	}
	st.mu.Lock()
	if st.standards == nil || len(st.standards) >= maxStandards {
		st.standards = map[common.Address]string{}
	}
	st.standards[contract] = std
	st.mu.Unlock()
	return std
}
