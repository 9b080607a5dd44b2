package ethereum

import (
	"math/big"

	"github.com/ethereum/go-ethereum/common"

	"github.com/keywatch/keywatch/chains"
)

// The events of a transaction's native value, shared by the block decoder
// and the mempool (mempool.go), so that a transfer seen pending and the same
// transfer mined are the same events: same id, sides, amounts and
// counterparties.

// watchesNative reports whether the native value of a transaction from
// from to to (nil: a contract creation) is a movement keywatch decodes: some
// value, sent by a watched or followed address or to a watched one.
func (s *Source) watchesNative(from common.Address, to *common.Address, value *big.Int, followed map[common.Address]bool) bool {
	if value == nil || value.Sign() <= 0 {
		return false
	}
	if _, ok := s.wallets[from]; ok || followed[from] {
		return true
	}
	if to == nil {
		return false
	}
	_, ok := s.wallets[*to]
	return ok
}

// native makes the events of value moving from from to dest in transaction
// tx (dest is the created contract for a creation): the sender's out event
// and the recipient's in event, each when watched (see sides), with base's
// chain, block and time.
func (s *Source) native(base chains.Event, tx common.Hash, from, dest common.Address, value *big.Int, followed map[common.Address]bool) []chains.Event {
	amount := chains.NewAmount(value, 18)
	ev := base
	ev.Tx = tx.Hex()
	ev.Initiator = lower(from)
	ev.From, ev.To = lower(from), lower(dest)
	ev.Asset, ev.Token = s.opts.NativeSymbol, ""
	ev.Amount = amount
	ev.USD = amount.Float64() * s.opts.NativeUSD
	return s.sides(ev, from, dest, "native", followed)
}
