package bitcoin

import (
	"bytes"
	"os"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"

	"github.com/keywatch/keywatch/internal/testenv"
)

const bigBlock = "btc_fixtures/btcd/wire/testdata/block-0000000000000000001602407ac49862a7bca9d00f7f402db20b7be2f5de59d2.blk"

// busyWatch watches the output scripts of every tenth transaction of blk
// (as wallets with one address each) and holds, as watched coins, the
// outputs every tenth other transaction spends: a block where watched
// wallets both receive and pay a lot.
func busyWatch(b *testing.B, blk *wire.MsgBlock) (*decoder, map[wire.OutPoint]utxo) {
	net := &chaincfg.MainNetParams
	ws := &watchSet{net: net, scripts: map[string]holder{}, byName: map[string]*wallet{}}
	payer := &wallet{Wallet: Wallet{Name: "payer", Role: "hot"}}
	ws.byName[payer.Name], ws.wallets = payer, append(ws.wallets, payer)
	coins := map[wire.OutPoint]utxo{}
	for i, tx := range blk.Transactions[1:] {
		switch i % 10 {
		case 0:
			for _, o := range tx.TxOut {
				if _, ok := ws.scripts[string(o.PkScript)]; ok || len(o.PkScript) == 0 || o.PkScript[0] == 0x6a {
					continue
				}
				w := &wallet{Wallet: Wallet{Name: "w" + string(rune(len(ws.wallets))), Role: "hot"}}
				ws.byName[w.Name], ws.wallets = w, append(ws.wallets, w)
				ws.scripts[string(o.PkScript)] = holder{wallet: w}
			}
		case 5:
			for _, in := range tx.TxIn {
				coins[in.PreviousOutPoint] = utxo{Wallet: payer.Name, Script: []byte{0x00, 0x14, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20}, Value: 1e8}
			}
		}
	}
	return &decoder{chain: "btc", symbol: "BTC", nativeUSD: 60000, watch: ws}, coins
}

func readBlockFile(b *testing.B) []byte {
	raw, err := os.ReadFile(testenv.Data(b, bigBlock))
	if err != nil {
		b.Fatal(err)
	}
	return raw
}

// BenchmarkBlock574200 measures decoding a real 3,315-transaction mainnet
// block into events, against the baseline of deserializing it (which every
// decode needs first). Run: go test -run '^$' -bench Block574200 ./chains/bitcoin/
func BenchmarkBlock574200(b *testing.B) {
	raw := readBlockFile(b)
	var blk wire.MsgBlock
	if err := blk.Deserialize(bytes.NewReader(raw)); err != nil {
		b.Fatal(err)
	}
	inBlock := map[chainhash.Hash]*wire.MsgTx{}
	for _, tx := range blk.Transactions {
		inBlock[tx.TxHash()] = tx
	}
	sender := func(op wire.OutPoint) ([]byte, bool) {
		if tx := inBlock[op.Hash]; tx != nil {
			return tx.TxOut[op.Index].PkScript, true
		}
		return nil, false
	}
	meta := txMeta{block: 574200, blockHash: blk.BlockHash().String(), time: blk.Header.Timestamp}

	b.Run("deserialize (baseline)", func(b *testing.B) {
		b.SetBytes(int64(len(raw)))
		for b.Loop() {
			var m wire.MsgBlock
			if err := m.Deserialize(bytes.NewReader(raw)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("recorded: read from its file for a backtest, merkle root and proof of work checked", func(b *testing.B) {
		path := testenv.Data(b, bigBlock)
		b.SetBytes(int64(len(raw)))
		for b.Loop() {
			if _, err := OpenRecorded(&chaincfg.MainNetParams, path); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("quiet: 20 xpub wallets, nothing watched in the block", func(b *testing.B) {
		ws := &watchSet{net: &chaincfg.MainNetParams, scripts: map[string]holder{}, byName: map[string]*wallet{}}
		for i := range 20 {
			acct, err := ParseAccountKey("zpub6rFR7y4Q2AijBEqTUquhVz398htDFrtymD9xYYfG1m4wAcvPhXNfE3EfH1r1ADqtfSdVCToUG868RvUUkgDKf31mGDtKsAYz2oz2AGutZYs", "", &chaincfg.MainNetParams)
			if err != nil {
				b.Fatal(err)
			}
			w := &wallet{Wallet: Wallet{Name: "w" + string(rune('a'+i)), GapLimit: 20}, account: acct}
			// Distinct windows of the one account, 40 scripts per wallet.
			w.derived = [2]uint32{uint32(i * 20), uint32(i * 20)}
			ws.byName[w.Name], ws.wallets = w, append(ws.wallets, w)
			for br := Receive; br <= Change; br++ {
				if err := ws.deriveTo(w, br, uint32(i*20+20)); err != nil {
					b.Fatal(err)
				}
			}
		}
		d := &decoder{chain: "btc", symbol: "BTC", watch: ws}
		empty := func(wire.OutPoint) (utxo, bool) { return utxo{}, false }
		b.SetBytes(int64(len(raw)))
		for b.Loop() {
			for _, tx := range blk.Transactions {
				d.decodeTx(tx, meta, empty, sender, nil, true)
			}
		}
	})
	b.Run("busy: every 10th transaction pays or is paid by a watched wallet", func(b *testing.B) {
		d, coins := busyWatch(b, &blk)
		lookup := func(op wire.OutPoint) (utxo, bool) { u, ok := coins[op]; return u, ok }
		events := 0
		start := time.Now()
		b.SetBytes(int64(len(raw)))
		for b.Loop() {
			events = 0
			for _, tx := range blk.Transactions {
				events += len(d.decodeTx(tx, meta, lookup, sender, nil, true).events)
			}
		}
		b.ReportMetric(float64(events), "events/block")
		b.ReportMetric(float64(events)*float64(b.N)/time.Since(start).Seconds(), "events/s")
	})
}
