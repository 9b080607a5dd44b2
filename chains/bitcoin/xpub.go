package bitcoin

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/schnorr"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/base58"
	"github.com/btcsuite/btcd/btcutil/hdkeychain"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/keywatch/keywatch/chains/bitcoin/btcaddr"
)

// ScriptType is how a derived key is paid to.
type ScriptType string

const (
	P2PKH      ScriptType = "p2pkh"       // BIP44
	P2SHP2WPKH ScriptType = "p2sh-p2wpkh" // BIP49
	P2WPKH     ScriptType = "p2wpkh"      // BIP84
	P2TR       ScriptType = "p2tr"        // BIP86 (key path only)
)

// ScriptTypes lists the script types a wallet's script field accepts.
func ScriptTypes() []string {
	return []string{string(P2PKH), string(P2SHP2WPKH), string(P2WPKH), string(P2TR)}
}

// keyVersion describes the four version bytes an extended key starts with.
type keyVersion struct {
	prefix   string
	test     bool // a test-network key (tpub, upub, vpub)
	simnet   bool
	private  bool
	multisig bool
	script   ScriptType // the script type the prefix fixes; "" for xpub/tpub
}

// keyVersions are the SLIP-132 version bytes keywatch recognises.
var keyVersions = map[[4]byte]keyVersion{
	{0x04, 0x88, 0xb2, 0x1e}: {prefix: "xpub"},
	{0x04, 0x9d, 0x7c, 0xb2}: {prefix: "ypub", script: P2SHP2WPKH},
	{0x04, 0xb2, 0x47, 0x46}: {prefix: "zpub", script: P2WPKH},
	{0x02, 0x95, 0xb4, 0x3f}: {prefix: "Ypub", multisig: true},
	{0x02, 0xaa, 0x7e, 0xd3}: {prefix: "Zpub", multisig: true},
	{0x04, 0x35, 0x87, 0xcf}: {prefix: "tpub", test: true},
	{0x04, 0x4a, 0x52, 0x62}: {prefix: "upub", test: true, script: P2SHP2WPKH},
	{0x04, 0x5f, 0x1c, 0xf6}: {prefix: "vpub", test: true, script: P2WPKH},
	{0x02, 0x42, 0x89, 0xef}: {prefix: "Upub", test: true, multisig: true},
	{0x02, 0x57, 0x54, 0x83}: {prefix: "Vpub", test: true, multisig: true},
	{0x04, 0x20, 0xbd, 0x3a}: {prefix: "spub", simnet: true},

	{0x04, 0x88, 0xad, 0xe4}: {prefix: "xprv", private: true},
	{0x04, 0x9d, 0x78, 0x78}: {prefix: "yprv", private: true},
	{0x04, 0xb2, 0x43, 0x0c}: {prefix: "zprv", private: true},
	{0x02, 0x95, 0xb0, 0x05}: {prefix: "Yprv", private: true},
	{0x02, 0xaa, 0x7a, 0x99}: {prefix: "Zprv", private: true},
	{0x04, 0x35, 0x83, 0x94}: {prefix: "tprv", private: true},
	{0x04, 0x4a, 0x4e, 0x28}: {prefix: "uprv", private: true},
	{0x04, 0x5f, 0x18, 0xbc}: {prefix: "vprv", private: true},
	{0x02, 0x42, 0x85, 0xb5}: {prefix: "Uprv", private: true},
	{0x02, 0x57, 0x50, 0x48}: {prefix: "Vprv", private: true},
	{0x04, 0x20, 0xb9, 0x00}: {prefix: "sprv", private: true},
}

// ErrPrivateKey is returned for private extended keys: keywatch never holds
// a key that can spend.
var ErrPrivateKey = errors.New("private extended key")

// Account is an account-level extended public key (m/purpose'/coin'/account')
// from which a wallet's receive (0/i) and change (1/i) scripts are derived.
type Account struct {
	Script   ScriptType
	branches [2]*hdkeychain.ExtendedKey
}

// Branches of an account.
const (
	Receive uint32 = 0
	Change  uint32 = 1
)

// ParseAccountKey reads an account-level extended public key for network p.
// script overrides the script type where the prefix leaves it open (xpub and
// tpub default to p2pkh; give p2tr for BIP86 or p2wpkh for descriptor
// wallets); ypub/upub fix p2sh-p2wpkh and zpub/vpub fix p2wpkh. Private keys,
// multisig keys, keys of another network and keys not at account depth are
// refused with an error that says which.
func ParseAccountKey(s, script string, p *chaincfg.Params) (*Account, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("required")
	}
	raw := base58.Decode(s)
	if len(raw) != 82 {
		return nil, fmt.Errorf("not an extended public key: %d bytes after base58 decoding, want 82 (a typo or a truncated key?)", len(raw))
	}
	payload, sum := raw[:78], raw[78:]
	if string(chainhash.DoubleHashB(payload)[:4]) != string(sum) {
		return nil, errors.New("not an extended public key: bad checksum (a typo?)")
	}
	var version [4]byte
	copy(version[:], payload[:4])
	v, known := keyVersions[version]
	keyData := payload[45:78]
	switch {
	case known && v.private, !known && keyData[0] == 0x00:
		name := v.prefix
		if name == "" {
			name = "private"
		}
		return nil, fmt.Errorf("%w (%s…): keywatch watches with public keys only; give the account's public key and treat this one as exposed", ErrPrivateKey, name)
	case !known:
		return nil, fmt.Errorf("unknown extended key version %x (want xpub, ypub, zpub or, on test networks, tpub, upub, vpub)", version)
	case v.multisig:
		return nil, fmt.Errorf("%s is a multisig account key: watch the multisig's addresses instead", v.prefix)
	}
	switch {
	case v.simnet && p.Net != chaincfg.SimNetParams.Net:
		return nil, fmt.Errorf("%s is a simnet key, but the chain's network is %s", v.prefix, p.Name)
	case v.test && !btcaddr.IsTestNetwork(p):
		return nil, fmt.Errorf("%s is a test-network key, but the chain's network is %s (mainnet keys start with xpub, ypub or zpub)", v.prefix, p.Name)
	case !v.test && !v.simnet && btcaddr.IsTestNetwork(p):
		return nil, fmt.Errorf("%s is a mainnet key, but the chain's network is %s (test-network keys start with tpub, upub or vpub)", v.prefix, p.Name)
	}
	if keyData[0] != 0x02 && keyData[0] != 0x03 {
		return nil, fmt.Errorf("%s carries no valid public key (first byte %#x)", v.prefix, keyData[0])
	}
	depth, parentFP, child := payload[4], binary.BigEndian.Uint32(payload[5:9]), binary.BigEndian.Uint32(payload[9:13])
	if depth == 0 && (parentFP != 0 || child != 0) {
		return nil, fmt.Errorf("%s is malformed: depth 0 with a parent fingerprint or child number", v.prefix)
	}
	if depth != 3 {
		return nil, fmt.Errorf("%s is at depth %d: want the account-level key (depth 3, m/purpose'/coin'/account'), from which receive and change addresses are derived", v.prefix, depth)
	}
	st := v.script
	switch {
	case script == "" && st == "":
		st = P2PKH
	case script != "" && st != "" && ScriptType(script) != st:
		return nil, fmt.Errorf("%s keys pay to %s; script: %s contradicts it (use an xpub/tpub with script: %s)", v.prefix, st, script, script)
	case script != "":
		st = ScriptType(script)
		if !slices.Contains(ScriptTypes(), script) {
			return nil, fmt.Errorf("unknown script %q (want one of %s)", script, strings.Join(ScriptTypes(), ", "))
		}
	}
	key, err := hdkeychain.NewKeyFromString(s)
	if err != nil {
		return nil, fmt.Errorf("not a valid extended public key: %v", err)
	}
	a := &Account{Script: st}
	for i := range a.branches {
		if a.branches[i], err = key.Derive(uint32(i)); err != nil {
			return nil, fmt.Errorf("derive branch %d: %w", i, err)
		}
	}
	return a, nil
}

// Derive returns the output script of branch/index (branch 0 receive, 1
// change).
func (a *Account) Derive(branch, index uint32) ([]byte, error) {
	if branch > 1 {
		return nil, fmt.Errorf("branch %d: want 0 (receive) or 1 (change)", branch)
	}
	if index >= hdkeychain.HardenedKeyStart {
		return nil, fmt.Errorf("index %d is out of the non-hardened range", index)
	}
	child, err := a.branches[branch].Derive(index)
	if err != nil {
		return nil, fmt.Errorf("derive %d/%d: %w", branch, index, err)
	}
	pub, err := child.ECPubKey()
	if err != nil {
		return nil, fmt.Errorf("derive %d/%d: %w", branch, index, err)
	}
	return ScriptForKey(a.Script, pub)
}

// ScriptForKey builds the output script paying to pub with script type st.
func ScriptForKey(st ScriptType, pub *btcec.PublicKey) ([]byte, error) {
	switch st {
	case P2PKH:
		return txscript.NewScriptBuilder().AddOp(txscript.OP_DUP).AddOp(txscript.OP_HASH160).
			AddData(btcutil.Hash160(pub.SerializeCompressed())).AddOp(txscript.OP_EQUALVERIFY).AddOp(txscript.OP_CHECKSIG).Script()
	case P2WPKH:
		return txscript.NewScriptBuilder().AddOp(txscript.OP_0).AddData(btcutil.Hash160(pub.SerializeCompressed())).Script()
	case P2SHP2WPKH:
		redeem, err := ScriptForKey(P2WPKH, pub)
		if err != nil {
			return nil, err
		}
		return txscript.NewScriptBuilder().AddOp(txscript.OP_HASH160).AddData(btcutil.Hash160(redeem)).AddOp(txscript.OP_EQUAL).Script()
	case P2TR:
		out := txscript.ComputeTaprootKeyNoScript(pub)
		return txscript.NewScriptBuilder().AddOp(txscript.OP_1).AddData(schnorr.SerializePubKey(out)).Script()
	}
	return nil, fmt.Errorf("unknown script type %q", st)
}
