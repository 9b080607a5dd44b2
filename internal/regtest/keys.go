package regtest

import (
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/schnorr"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/hdkeychain"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"
)

// KeyType is how a key is paid to.
type KeyType string

const (
	P2PKH      KeyType = "p2pkh"
	P2SHP2WPKH KeyType = "p2sh-p2wpkh"
	P2WPKH     KeyType = "p2wpkh"
	P2TR       KeyType = "p2tr" // BIP86 key path
)

// scriptFor builds the output script paying to pub.
func scriptFor(t KeyType, pub *btcec.PublicKey) ([]byte, error) {
	h := btcutil.Hash160(pub.SerializeCompressed())
	var addr btcutil.Address
	var err error
	switch t {
	case P2PKH:
		addr, err = btcutil.NewAddressPubKeyHash(h, Net)
	case P2WPKH:
		addr, err = btcutil.NewAddressWitnessPubKeyHash(h, Net)
	case P2SHP2WPKH:
		var redeem []byte
		if redeem, err = scriptFor(P2WPKH, pub); err == nil {
			addr, err = btcutil.NewAddressScriptHash(redeem, Net)
		}
	case P2TR:
		addr, err = btcutil.NewAddressTaproot(schnorr.SerializePubKey(txscript.ComputeTaprootKeyNoScript(pub)), Net)
	default:
		return nil, fmt.Errorf("unknown key type %q", t)
	}
	if err != nil {
		return nil, err
	}
	return txscript.PayToAddrScript(addr)
}

// Key is a private key held in memory, with the script it is paid to.
type Key struct {
	Priv    *btcec.PrivateKey
	Type    KeyType
	Script  []byte
	Address string // on regtest
}

// NewKey derives a key from a seed phrase (the same seed gives the same key,
// so addresses in the demo stay put).
func NewKey(seed string, t KeyType) (*Key, error) {
	sum := sha256.Sum256([]byte("keywatch regtest key: " + seed))
	priv, _ := btcec.PrivKeyFromBytes(sum[:])
	return KeyOf(priv, t)
}

// KeyOf wraps a private key.
func KeyOf(priv *btcec.PrivateKey, t KeyType) (*Key, error) {
	script, err := scriptFor(t, priv.PubKey())
	if err != nil {
		return nil, err
	}
	_, addrs, _, err := txscript.ExtractPkScriptAddrs(script, Net)
	if err != nil || len(addrs) != 1 {
		return nil, fmt.Errorf("no address for script %x", script)
	}
	return &Key{Priv: priv, Type: t, Script: script, Address: addrs[0].EncodeAddress()}, nil
}

// Coin is an output a Key can spend.
type Coin struct {
	OutPoint wire.OutPoint
	Value    int64
	Key      *Key
}

// Output is a payment.
type Output struct {
	Script []byte
	Value  int64
}

// ScriptOf returns the output script of a mainnet or regtest address (a
// mainnet address's script is paid on regtest just the same).
func ScriptOf(addr string) ([]byte, error) {
	a, err := btcutil.DecodeAddress(addr, &chaincfg.MainNetParams)
	if err != nil {
		if a, err = btcutil.DecodeAddress(addr, Net); err != nil {
			return nil, fmt.Errorf("%q: %w", addr, err)
		}
	}
	return txscript.PayToAddrScript(a)
}

// Pay builds and signs a transaction spending coins to outs, with the rest
// minus fee as change to changeScript (no change output when changeScript is
// nil). Inputs signal replaceability (BIP125), so a higher-fee transaction
// may replace it.
func Pay(coins []Coin, outs []Output, changeScript []byte, fee int64) (*wire.MsgTx, error) {
	tx := wire.NewMsgTx(2)
	var in int64
	prev := map[wire.OutPoint]*wire.TxOut{}
	for _, c := range coins {
		tx.AddTxIn(&wire.TxIn{PreviousOutPoint: c.OutPoint, Sequence: wire.MaxTxInSequenceNum - 2})
		in += c.Value
		prev[c.OutPoint] = wire.NewTxOut(c.Value, c.Key.Script)
	}
	var out int64
	for _, o := range outs {
		tx.AddTxOut(wire.NewTxOut(o.Value, o.Script))
		out += o.Value
	}
	change := in - out - fee
	if change < 0 {
		return nil, fmt.Errorf("coins hold %d sat, outputs and fee need %d", in, out+fee)
	}
	if changeScript != nil && change > 0 {
		tx.AddTxOut(wire.NewTxOut(change, changeScript))
	}
	fetcher := txscript.NewMultiPrevOutFetcher(prev)
	hashes := txscript.NewTxSigHashes(tx, fetcher)
	for i, c := range coins {
		if err := sign(tx, hashes, i, c); err != nil {
			return nil, fmt.Errorf("sign input %d: %w", i, err)
		}
	}
	return tx, nil
}

func sign(tx *wire.MsgTx, hashes *txscript.TxSigHashes, i int, c Coin) error {
	k := c.Key
	switch k.Type {
	case P2PKH:
		sig, err := txscript.SignatureScript(tx, i, k.Script, txscript.SigHashAll, k.Priv, true)
		if err != nil {
			return err
		}
		tx.TxIn[i].SignatureScript = sig
	case P2WPKH:
		w, err := txscript.WitnessSignature(tx, hashes, i, c.Value, k.Script, txscript.SigHashAll, k.Priv, true)
		if err != nil {
			return err
		}
		tx.TxIn[i].Witness = w
	case P2SHP2WPKH:
		redeem, err := scriptFor(P2WPKH, k.Priv.PubKey())
		if err != nil {
			return err
		}
		w, err := txscript.WitnessSignature(tx, hashes, i, c.Value, redeem, txscript.SigHashAll, k.Priv, true)
		if err != nil {
			return err
		}
		push, err := txscript.NewScriptBuilder().AddData(redeem).Script()
		if err != nil {
			return err
		}
		tx.TxIn[i].Witness, tx.TxIn[i].SignatureScript = w, push
	case P2TR:
		w, err := txscript.TaprootWitnessSignature(tx, hashes, i, c.Value, k.Script, txscript.SigHashDefault, k.Priv)
		if err != nil {
			return err
		}
		tx.TxIn[i].Witness = w
	default:
		return errors.New("unknown key type " + string(k.Type))
	}
	return nil
}

// Amount converts whole bitcoins to satoshi.
func Amount(btc float64) int64 {
	a, err := btcutil.NewAmount(btc)
	if err != nil {
		panic(err)
	}
	return int64(a)
}

// Account is an HD account (m/purpose'/1'/0') whose private keys the caller
// holds; XPub is its account-level public key as a watcher is given it.
type Account struct {
	XPub   string
	Type   KeyType
	Script string // the script: field a wallet needs for XPub ("" when the prefix says it)
	key    *hdkeychain.ExtendedKey
}

// NewAccount derives an account from a seed phrase. p2wpkh accounts are
// given as vpub, p2sh-p2wpkh as upub, p2pkh as tpub, p2tr as tpub with
// script p2tr (BIP86).
func NewAccount(seed string, t KeyType) (*Account, error) {
	sum := sha256.Sum256([]byte("keywatch regtest account: " + seed))
	master, err := hdkeychain.NewMaster(sum[:], Net)
	if err != nil {
		return nil, err
	}
	purpose := map[KeyType]uint32{P2PKH: 44, P2SHP2WPKH: 49, P2WPKH: 84, P2TR: 86}[t]
	if purpose == 0 {
		return nil, fmt.Errorf("unknown script type %q", t)
	}
	k := master
	for _, i := range []uint32{purpose, 1, 0} {
		if k, err = k.Derive(hdkeychain.HardenedKeyStart + i); err != nil {
			return nil, err
		}
	}
	pub, err := k.Neuter()
	if err != nil {
		return nil, err
	}
	a := &Account{Type: t, key: k}
	switch t {
	case P2WPKH:
		pub, err = pub.CloneWithVersion([]byte{0x04, 0x5f, 0x1c, 0xf6}) // vpub
	case P2SHP2WPKH:
		pub, err = pub.CloneWithVersion([]byte{0x04, 0x4a, 0x52, 0x62}) // upub
	case P2TR:
		a.Script = string(P2TR)
	}
	if err != nil {
		return nil, err
	}
	a.XPub = pub.String()
	return a, nil
}

// Key returns the key at branch/index (branch 0 receive, 1 change).
func (a *Account) Key(branch, index uint32) (*Key, error) {
	k, err := a.key.Derive(branch)
	if err != nil {
		return nil, err
	}
	if k, err = k.Derive(index); err != nil {
		return nil, err
	}
	priv, err := k.ECPrivKey()
	if err != nil {
		return nil, err
	}
	return KeyOf(priv, a.Type)
}
