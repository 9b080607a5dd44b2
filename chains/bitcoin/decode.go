package bitcoin

import (
	"bytes"
	"math"
	"math/big"
	"time"

	"github.com/btcsuite/btcd/blockchain"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"

	"github.com/keywatch/keywatch/chains"
	"github.com/keywatch/keywatch/chains/bitcoin/btcaddr"
)

// Decimals of a bitcoin amount (satoshi).
const Decimals = 8

// txMeta is where a transaction was seen: in a block, or (block 0) in the
// mempool.
type txMeta struct {
	block     uint64
	blockHash string
	time      time.Time
}

// txResult is what one transaction does to the watched wallets.
type txResult struct {
	events  []chains.Event
	spends  []wire.OutPoint // watched (and followed) outputs it spends
	creates []createdOut    // outputs it pays to watched (and followed) scripts
	// candidates are the outputs it pays out of watched wallets or followed
	// addresses to scripts nobody follows yet: forwarding may follow their
	// address once it has judged the event (see Source.refreshFollowed).
	candidates []createdOut
}

type createdOut struct {
	op wire.OutPoint
	u  utxo
	h  holder // zero for followed outputs
}

// lookupFunc finds a watched (or followed) unspent output.
type lookupFunc func(op wire.OutPoint) (utxo, bool)

// senderFunc finds the script of the output an input spends when it is not
// a watched one, for an inflow's counterparty; false when unknown.
type senderFunc func(op wire.OutPoint) ([]byte, bool)

// balanceFunc returns what a wallet holds in the view a transaction is
// decoded against (in satoshi).
type balanceFunc func(wallet string) int64

// decoder turns transactions into events against a view of the watched
// unspent outputs.
type decoder struct {
	chain     string
	symbol    string
	nativeUSD float64
	watch     *watchSet
	// followed maps the scripts of the addresses forwarding follows to the
	// address as the followed set names it; candidates says whether outputs
	// that may become followed are collected at all (a source with a
	// followed set).
	followed   map[string]string
	candidates bool
	// unknownSender is the detail of an inflow whose sender cannot be found.
	unknownSender string
}

// DetailBalanceBefore is the Detail key of an outflow that holds what the
// spending wallet held just before the transaction (watched outputs,
// unconfirmed ones included for a mempool transaction), in BTC.
const DetailBalanceBefore = "balance_before"

// senderUnknownNode is the detail of an inflow whose sender the node could
// not give.
const senderUnknownNode = "unknown: the node could not return the spent output (run it with a transaction index)"

// decodeTx finds what tx does to watched wallets. An out event for each
// output a watched wallet's spend creates that does not return to a watched
// wallet, attributed to the wallet of the first watched input; an in event
// for each output a watched wallet receives from someone else (another
// watched wallet included). Change back to the spending wallet is neither.
//
// A spend of a followed output (an address forwarding follows) that no
// watched input joins is an out event of the followed address (wallet_role
// followed) for each output that does not return to that address. Outputs
// paid to followed scripts are created as followed outputs, whoever pays.
//
// With wantEvents false only the spends, creations and candidates are found
// (a silent scan for existing coins).
func (d *decoder) decodeTx(tx *wire.MsgTx, meta txMeta, lookup lookupFunc, sender senderFunc, balance balanceFunc, wantEvents bool) txResult {
	var r txResult
	var spender *wallet
	var spenderScript []byte
	var fol utxo // the first followed output spent (when followed)
	followed := false
	var inSum int64
	allKnown := true
	coinbase := blockchain.IsCoinBaseTx(tx)
	if !coinbase {
		for _, in := range tx.TxIn {
			u, ok := lookup(in.PreviousOutPoint)
			if !ok {
				allKnown = false
				continue
			}
			r.spends = append(r.spends, in.PreviousOutPoint)
			inSum += u.Value
			if u.Followed {
				if !followed {
					fol, followed = u, true
				}
				continue
			}
			if spender == nil {
				if wl, ok := d.watch.byName[u.Wallet]; ok {
					spender, spenderScript = wl, u.Script
				}
			}
		}
	}
	if spender != nil {
		followed = false // the firm's spend: its outputs are the wallet's events
	}
	// The hash and the spender's address cost a double SHA-256 and an
	// encoding each: made once, and only for transactions that matter.
	var hash *chainhash.Hash
	var txid, spenderAddr string
	id := func() string {
		if hash == nil {
			h := tx.TxHash()
			hash, txid = &h, h.String()
		}
		return txid
	}
	from := func() string {
		if spenderAddr == "" {
			spenderAddr = btcaddr.AddressOf(spenderScript, d.watch.net)
		}
		return spenderAddr
	}
	for vout, o := range tx.TxOut {
		h, watched := d.watch.scripts[string(o.PkScript)]
		toAddr, toFollowed := "", false
		if !watched && len(d.followed) > 0 {
			toAddr, toFollowed = d.followed[string(o.PkScript)]
		}
		switch {
		case watched:
			id()
			r.creates = append(r.creates, createdOut{
				op: wire.OutPoint{Hash: *hash, Index: uint32(vout)},
				u:  utxo{Wallet: h.wallet.Name, Script: o.PkScript, Value: o.Value},
				h:  h,
			})
		case toFollowed:
			id()
			r.creates = append(r.creates, createdOut{
				op: wire.OutPoint{Hash: *hash, Index: uint32(vout)},
				u:  utxo{Wallet: toAddr, Script: o.PkScript, Value: o.Value, Followed: true},
			})
		}
		if !watched && spender == nil && !followed {
			continue
		}
		switch {
		case watched && h.wallet == spender:
			// change
		case watched:
			if !wantEvents {
				continue
			}
			ev := d.event(id(), vout, meta, o, chains.In, h.wallet.Name, h.wallet.Role, h.wallet.Owner)
			ev.To = btcaddr.AddressOf(o.PkScript, d.watch.net)
			switch {
			case spender != nil:
				ev.From = from()
				ev.Detail["script"] = scriptHex(spenderScript)
				ev.Detail["from_wallet"] = spender.Name
			case followed:
				ev.From = fol.Wallet
				ev.Detail["script"] = scriptHex(fol.Script)
			case coinbase:
				ev.Detail["sender"] = "coinbase (newly mined coins)"
			default:
				if script, ok := sender(tx.TxIn[0].PreviousOutPoint); ok {
					ev.From = btcaddr.AddressOf(script, d.watch.net)
					ev.Detail["script"] = scriptHex(script)
				} else {
					ev.Detail["sender"] = d.unknownSender
					if ev.Detail["sender"] == "" {
						ev.Detail["sender"] = senderUnknownNode
					}
				}
			}
			ev.Counterparty = ev.From
			r.events = append(r.events, ev)
		case followed && bytes.Equal(o.PkScript, fol.Script):
			// back to the followed address it came from
		case o.Value > 0:
			if d.candidates && !toFollowed {
				id()
				r.candidates = append(r.candidates, createdOut{
					op: wire.OutPoint{Hash: *hash, Index: uint32(vout)},
					u:  utxo{Script: o.PkScript, Value: o.Value, Followed: true},
				})
			}
			if !wantEvents {
				continue
			}
			var ev chains.Event
			if spender != nil {
				ev = d.event(id(), vout, meta, o, chains.Out, spender.Name, spender.Role, spender.Owner)
				ev.From = from()
			} else {
				ev = d.event(id(), vout, meta, o, chains.Out, fol.Wallet, chains.RoleFollowed, "")
				ev.From = fol.Wallet
			}
			ev.To = btcaddr.AddressOf(o.PkScript, d.watch.net)
			ev.Counterparty = ev.To
			ev.Detail["script"] = scriptHex(o.PkScript)
			r.events = append(r.events, ev)
		}
	}
	if len(r.events) > 0 && (spender != nil || followed) {
		d.annotate(tx, r.events, allKnown, inSum)
		if balance != nil && spender != nil {
			bal := chains.NewAmount(big.NewInt(balance(spender.Name)), Decimals).String()
			for i := range r.events {
				if r.events[i].Direction == chains.Out {
					r.events[i].Detail[DetailBalanceBefore] = bal
				}
			}
		}
	}
	return r
}

func (d *decoder) event(txid string, vout int, meta txMeta, o *wire.TxOut, dir chains.Direction, wallet, role, owner string) chains.Event {
	amount := chains.NewAmount(big.NewInt(o.Value), Decimals)
	return chains.Event{
		ID:         chains.EventID(d.chain, txid, vout),
		Chain:      d.chain,
		Tx:         txid,
		Block:      meta.block,
		BlockHash:  meta.blockHash,
		Time:       meta.time,
		Kind:       chains.KindTransfer,
		Direction:  dir,
		Wallet:     wallet,
		WalletRole: role,
		Owner:      owner,
		Asset:      d.symbol,
		Amount:     amount,
		USD:        math.Round(float64(o.Value)/1e8*d.nativeUSD*100) / 100,
		Detail:     map[string]string{},
	}
}

// annotate adds what the whole spend says to its events: the fee when every
// input is known, and whether it signals replaceability (BIP125), which
// tells the reader that a pending outflow may still be replaced.
func (d *decoder) annotate(tx *wire.MsgTx, evs []chains.Event, allKnown bool, inSum int64) {
	rbf := false
	for _, in := range tx.TxIn {
		if in.Sequence < wire.MaxTxInSequenceNum-1 {
			rbf = true
		}
	}
	var fee string
	if allKnown {
		var outSum int64
		for _, o := range tx.TxOut {
			outSum += o.Value
		}
		fee = chains.NewAmount(big.NewInt(inSum-outSum), Decimals).String()
	}
	for i := range evs {
		if rbf {
			evs[i].Detail["rbf"] = "true"
		}
		if fee != "" && evs[i].Direction == chains.Out {
			evs[i].Detail["fee"] = fee
		}
	}
}
