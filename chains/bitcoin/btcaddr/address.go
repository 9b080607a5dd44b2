// Package btcaddr reads and writes Bitcoin addresses and names the networks
// keywatch knows: an address (base58 or bech32/bech32m) to its output script
// and back, and the network parameters of a configuration name. It is a leaf
// without a node client, so intents, lists and screening can judge Bitcoin
// addresses without pulling in package bitcoin.
package btcaddr

import (
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/bech32"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/txscript"
)

// scriptPrefix marks a counterparty written as its output script, for
// outputs no address form describes (bare multisig, unknown witness
// versions): "script:<hex>".
const scriptPrefix = "script:"

// addressNetworks is the order networks are tried when an address is read
// without knowing its network.
var addressNetworks = []string{"mainnet", "testnet", "regtest", "signet", "simnet"}

// ParseAddress reads a watched wallet's address on network p and returns the
// output script it pays to. It accepts P2PKH, P2SH (P2SH-P2WPKH among
// others), P2WPKH, P2WSH and P2TR addresses, and a hex public key (P2PK, as
// early coinbase outputs pay). An address written for another network is an
// error that names both networks.
func ParseAddress(s string, p *chaincfg.Params) ([]byte, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("required")
	}
	if strings.HasPrefix(s, scriptPrefix) {
		return nil, fmt.Errorf("%q: want an address, not a script", s)
	}
	if isPrivateKeyForm(s) {
		return nil, fmt.Errorf("this looks like a private key (WIF): keywatch watches addresses and public keys only; remove it from the file and treat the key as exposed")
	}
	addr, err := btcutil.DecodeAddress(normalizeBech32(s), p)
	if err == nil && addr.IsForNet(p) {
		return txscript.PayToAddrScript(addr)
	}
	for _, name := range addressNetworks {
		other, _ := Network(name)
		if other == p || (other.Bech32HRPSegwit == p.Bech32HRPSegwit && other.PubKeyHashAddrID == p.PubKeyHashAddrID) {
			continue
		}
		if a, err2 := btcutil.DecodeAddress(normalizeBech32(s), other); err2 == nil && a.IsForNet(other) {
			return nil, fmt.Errorf("%q is a %s address, but the chain's network is %s", s, name, p.Name)
		}
	}
	if err == nil {
		return nil, fmt.Errorf("%q is not an address of network %s", s, p.Name)
	}
	return nil, fmt.Errorf("%q is not a Bitcoin address: %v", s, err)
}

// ScriptOf returns the output script an address pays to, whatever network it
// is written for, so that an address on a mainnet list matches payments on a
// test network: bc1q…, tb1q… and bcrt1q… of the same program are one
// script. It also reads the "script:<hex>" form keywatch uses for outputs
// without an address.
func ScriptOf(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if h, ok := strings.CutPrefix(s, scriptPrefix); ok {
		b, err := hex.DecodeString(h)
		if err != nil {
			return nil, fmt.Errorf("%q: script is not hex", s)
		}
		return b, nil
	}
	if script, ok, err := segwitScript(s); ok {
		return script, err
	}
	var firstErr error
	for _, name := range addressNetworks {
		p, _ := Network(name)
		addr, err := btcutil.DecodeAddress(normalizeBech32(s), p)
		if err == nil {
			return txscript.PayToAddrScript(addr)
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return nil, fmt.Errorf("%q is not a Bitcoin address: %v", s, firstErr)
}

// AddressOf renders the output script as the address a user would see on
// network p: the address for standard scripts, the hex public key for P2PK,
// and "script:<hex>" for anything else.
func AddressOf(script []byte, p *chaincfg.Params) string {
	class, addrs, _, err := txscript.ExtractPkScriptAddrs(script, p)
	if err == nil && len(addrs) == 1 {
		switch class {
		case txscript.PubKeyTy:
			if pk, ok := addrs[0].(*btcutil.AddressPubKey); ok {
				return pk.String() // the hex key: ScriptOf maps it back to this P2PK script
			}
		case txscript.PubKeyHashTy, txscript.ScriptHashTy, txscript.WitnessV0PubKeyHashTy,
			txscript.WitnessV0ScriptHashTy, txscript.WitnessV1TaprootTy:
			return addrs[0].EncodeAddress()
		}
	}
	return scriptPrefix + hex.EncodeToString(script)
}

// normalizeBech32 lowercases an all-uppercase bech32 address (QR codes use
// them); mixed case stays and fails the checksum, as BIP173 requires.
func normalizeBech32(s string) string {
	if s == strings.ToUpper(s) && strings.Contains(s, "1") {
		l := strings.ToLower(s)
		for _, hrp := range []string{"bc1", "tb1", "bcrt1", "sb1"} {
			if strings.HasPrefix(l, hrp) {
				return l
			}
		}
	}
	return s
}

// isPrivateKeyForm reports whether s decodes as a WIF private key.
func isPrivateKeyForm(s string) bool {
	_, err := btcutil.DecodeWIF(s)
	return err == nil
}

// segwitHRPs are the human-readable parts of segwit addresses on the
// networks keywatch knows.
var segwitHRPs = []string{"bc", "tb", "bcrt", "sb"}

// segwitScript decodes a native segwit address of any witness version
// (BIP173 for version 0, BIP350 for versions 1 to 16) into its output script.
// ok is false when s does not look like a segwit address at all.
func segwitScript(s string) (script []byte, ok bool, err error) {
	sep := strings.LastIndexByte(s, '1')
	if sep < 1 || !slices.Contains(segwitHRPs, strings.ToLower(s[:sep])) {
		return nil, false, nil
	}
	fail := func(format string, args ...any) ([]byte, bool, error) {
		return nil, true, fmt.Errorf("%q is not a valid segwit address: %s", s, fmt.Sprintf(format, args...))
	}
	_, data, enc, err := bech32.DecodeGeneric(s)
	if err != nil {
		return fail("%v", err)
	}
	if len(data) < 1 {
		return fail("empty data section")
	}
	version := data[0]
	if version > 16 {
		return fail("witness version %d is over 16", version)
	}
	if (version == 0) != (enc == bech32.Version0) {
		return fail("witness version %d needs the %s checksum", version, map[bool]string{true: "bech32", false: "bech32m"}[version == 0])
	}
	program, err := bech32.ConvertBits(data[1:], 5, 8, false)
	if err != nil {
		return fail("%v", err)
	}
	if len(program) < 2 || len(program) > 40 {
		return fail("witness program of %d bytes (want 2 to 40)", len(program))
	}
	if version == 0 && len(program) != 20 && len(program) != 32 {
		return fail("version 0 witness program of %d bytes (want 20 or 32)", len(program))
	}
	op := byte(txscript.OP_0)
	if version > 0 {
		op = txscript.OP_1 + version - 1
	}
	return append([]byte{op, byte(len(program))}, program...), true, nil
}
