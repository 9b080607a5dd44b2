// Package descriptor reads Bitcoin Core output descriptors (BIP 380 to 389)
// of the kinds a custody wallet uses and derives their output scripts and
// addresses: pkh, sh(wpkh), wpkh, tr (key path only), wsh(multi|sortedmulti),
// sh(wsh(multi|sortedmulti)) and sh(multi|sortedmulti), with extended public
// keys, key origins, ranged (/*) and multipath (/<0;1>/*) keys. The BIP 380
// checksum is verified when present.
//
// It is a watch-only reader: private keys (xprv, tprv, WIF) are refused,
// naming their byte offset and never repeating the key, and so are hardened
// steps after an extended public key, which only the private key can take.
// Every error is an *Error carrying the byte offset of the problem.
package descriptor

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/schnorr"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/base58"
	"github.com/btcsuite/btcd/btcutil/hdkeychain"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/txscript"
)

// Error is a malformed or refused descriptor: Pos is the byte offset in the
// text given to Parse where the problem starts.
type Error struct {
	Pos  int
	Msg  string
	kind error // a sentinel the error matches with errors.Is
}

func (e *Error) Error() string { return fmt.Sprintf("at byte %d: %s", e.Pos, e.Msg) }

func (e *Error) Unwrap() error { return e.kind }

// ErrPrivateKey is wrapped by the error for a descriptor holding a private
// key; test it with errors.Is.
var ErrPrivateKey = errors.New("private key in descriptor")

func privateKey(pos int, msg string) error {
	return &Error{Pos: pos, Msg: msg, kind: ErrPrivateKey}
}

// Type is the kind of output a descriptor pays to.
type Type string

const (
	P2PKH      Type = "pkh"
	P2SHP2WPKH Type = "sh(wpkh)"
	P2WPKH     Type = "wpkh"
	P2TR       Type = "tr"
	P2SH       Type = "sh(multi)"
	P2WSH      Type = "wsh(multi)"
	P2SHP2WSH  Type = "sh(wsh(multi))"
)

// Limits of BIP 383: at most 20 keys in a multisig, 15 inside a bare sh().
const (
	maxMultiKeys   = 20
	maxP2SHKeys    = 15
	hardenedOffset = hdkeychain.HardenedKeyStart
)

// Descriptor is a parsed output descriptor. It is safe for concurrent use.
type Descriptor struct {
	text      string // without the checksum
	typ       Type
	sorted    bool
	threshold int
	keys      []*key
	branches  int
	ranged    bool
}

// key is one key expression. For an extended key, base[b] is the key
// derived through every fixed step of branch b, so deriving index i is one
// more step (or none when the key is not ranged).
type key struct {
	pos    int
	fixed  []byte // serialized public key of a plain hex key
	xpub   *hdkeychain.ExtendedKey
	base   []*hdkeychain.ExtendedKey
	fixedB [][]byte // serialized public key per branch of an unranged xpub
	multi  int      // length of the multipath tuple, 0 if none
	ranged bool
}

// Output is what a descriptor pays to at one branch and index.
type Output struct {
	Script        []byte // the output script (scriptPubKey)
	RedeemScript  []byte // the P2SH redeem script, for sh(...)
	WitnessScript []byte // the witness script, for wsh(...) and sh(wsh(...))
}

// Parse reads a descriptor, verifying its checksum when one follows a '#'.
func Parse(s string) (*Descriptor, error) {
	body, err := splitChecksum(s)
	if err != nil {
		return nil, err
	}
	p := &parser{s: body}
	d, err := p.top()
	if err != nil {
		return nil, err
	}
	d.text = body
	if err := d.settleBranches(); err != nil {
		return nil, err
	}
	return d, nil
}

// String is the descriptor with its checksum.
func (d *Descriptor) String() string {
	s, _ := WithChecksum(d.text)
	return s
}

// Type is the kind of output the descriptor pays to.
func (d *Descriptor) Type() Type { return d.typ }

// Branches is the number of descriptors a multipath descriptor stands for:
// 2 for /<0;1>/* (receive, change), 1 without a multipath step.
func (d *Descriptor) Branches() int { return d.branches }

// Ranged says whether the descriptor has a /* step, so that Derive's index
// selects the child; an unranged descriptor pays to one script per branch.
func (d *Descriptor) Ranged() bool { return d.ranged }

// Threshold is k of a k-of-n multisig; 1 for a single-key descriptor.
func (d *Descriptor) Threshold() int { return d.threshold }

// Keys is n, the number of key expressions.
func (d *Descriptor) Keys() int { return len(d.keys) }

// IsForNet reports whether every extended key of the descriptor is written
// for network p (xpub for mainnet, tpub for the test networks). Plain public
// keys fit every network.
func (d *Descriptor) IsForNet(p *chaincfg.Params) bool {
	for _, k := range d.keys {
		if k.xpub != nil && !k.xpub.IsForNet(p) {
			return false
		}
	}
	return true
}

// Derive returns the output of branch b (0 receive, 1 change for /<0;1>)
// at child index i.
func (d *Descriptor) Derive(b, i uint32) (Output, error) {
	if int(b) >= d.branches || b >= hardenedOffset {
		return Output{}, fmt.Errorf("branch %d: the descriptor has %d branch(es)", b, d.branches)
	}
	if i >= hardenedOffset {
		return Output{}, fmt.Errorf("index %d: must be below 2^31 (unhardened)", i)
	}
	pubs := make([][]byte, len(d.keys))
	for n, k := range d.keys {
		pk, err := k.derive(int(b), i)
		if err != nil {
			return Output{}, fmt.Errorf("key %d branch %d index %d: %w", n+1, b, i, err)
		}
		pubs[n] = pk
	}
	switch d.typ {
	case P2PKH:
		return Output{Script: p2pkh(btcutil.Hash160(pubs[0]))}, nil
	case P2WPKH:
		return Output{Script: p2wpkh(btcutil.Hash160(pubs[0]))}, nil
	case P2SHP2WPKH:
		redeem := p2wpkh(btcutil.Hash160(pubs[0]))
		return Output{Script: p2sh(btcutil.Hash160(redeem)), RedeemScript: redeem}, nil
	case P2TR:
		pk, err := btcec.ParsePubKey(pubs[0])
		if err != nil {
			return Output{}, fmt.Errorf("key branch %d index %d: %w", b, i, err)
		}
		out := schnorr.SerializePubKey(txscript.ComputeTaprootKeyNoScript(pk))
		return Output{Script: append([]byte{txscript.OP_1, txscript.OP_DATA_32}, out...)}, nil
	}
	ms, err := d.multisig(pubs)
	if err != nil {
		return Output{}, fmt.Errorf("branch %d index %d: %w", b, i, err)
	}
	switch d.typ {
	case P2SH:
		return Output{Script: p2sh(btcutil.Hash160(ms)), RedeemScript: ms}, nil
	case P2WSH:
		h := sha256.Sum256(ms)
		return Output{Script: p2wsh(h[:]), WitnessScript: ms}, nil
	case P2SHP2WSH:
		h := sha256.Sum256(ms)
		redeem := p2wsh(h[:])
		return Output{Script: p2sh(btcutil.Hash160(redeem)), RedeemScript: redeem, WitnessScript: ms}, nil
	}
	return Output{}, fmt.Errorf("descriptor type %q cannot be derived", d.typ)
}

// Address returns the address of branch b at index i on network p. A
// descriptor whose extended keys are for another network is an error.
func (d *Descriptor) Address(b, i uint32, p *chaincfg.Params) (btcutil.Address, error) {
	if !d.IsForNet(p) {
		return nil, fmt.Errorf("the descriptor's extended keys are not for network %s (xpub is mainnet, tpub the test networks)", p.Name)
	}
	out, err := d.Derive(b, i)
	if err != nil {
		return nil, err
	}
	s := out.Script
	switch d.typ {
	case P2PKH:
		return btcutil.NewAddressPubKeyHash(s[3:23], p)
	case P2SH, P2SHP2WPKH, P2SHP2WSH:
		return btcutil.NewAddressScriptHashFromHash(s[2:22], p)
	case P2WPKH:
		return btcutil.NewAddressWitnessPubKeyHash(s[2:], p)
	case P2WSH:
		return btcutil.NewAddressWitnessScriptHash(s[2:], p)
	case P2TR:
		return btcutil.NewAddressTaproot(s[2:], p)
	}
	return nil, fmt.Errorf("descriptor type %q has no address", d.typ)
}

func (d *Descriptor) multisig(pubs [][]byte) ([]byte, error) {
	if d.sorted {
		pubs = slices.Clone(pubs)
		slices.SortFunc(pubs, bytes.Compare) // BIP 67
	}
	b := txscript.NewScriptBuilder().AddInt64(int64(d.threshold))
	for _, pk := range pubs {
		b.AddData(pk)
	}
	return b.AddInt64(int64(len(pubs))).AddOp(txscript.OP_CHECKMULTISIG).Script()
}

func (k *key) derive(b int, i uint32) ([]byte, error) {
	if k.fixed != nil {
		return k.fixed, nil
	}
	if !k.ranged {
		return k.fixedB[b], nil
	}
	child, err := k.base[b].Derive(i)
	if err != nil {
		return nil, err
	}
	pk, err := child.ECPubKey()
	if err != nil {
		return nil, err
	}
	return pk.SerializeCompressed(), nil
}

// settleBranches checks that multipath tuples agree in length (BIP 389) and
// that ranged keys are all ranged together.
func (d *Descriptor) settleBranches() error {
	d.branches = 1
	var first *key
	for _, k := range d.keys {
		if k.multi == 0 {
			continue
		}
		if first == nil {
			first, d.branches = k, k.multi
		} else if k.multi != first.multi {
			return &Error{Pos: k.pos, Msg: fmt.Sprintf("multipath step has %d values but the key at byte %d has %d; all must have the same number", k.multi, first.pos, first.multi)}
		}
	}
	for _, k := range d.keys {
		if k.ranged {
			d.ranged = true
		}
		if k.xpub != nil && k.multi == 0 && d.branches > 1 {
			// A key without a multipath step is the same on every branch.
			for len(k.base) < d.branches {
				k.base = append(k.base, k.base[0])
				k.fixedB = append(k.fixedB, k.fixedB[0])
			}
		}
	}
	return nil
}

func p2pkh(h []byte) []byte {
	s := append([]byte{txscript.OP_DUP, txscript.OP_HASH160, txscript.OP_DATA_20}, h...)
	return append(s, txscript.OP_EQUALVERIFY, txscript.OP_CHECKSIG)
}
func p2sh(h []byte) []byte {
	return append(append([]byte{txscript.OP_HASH160, txscript.OP_DATA_20}, h...), txscript.OP_EQUAL)
}
func p2wpkh(h []byte) []byte { return append([]byte{txscript.OP_0, txscript.OP_DATA_20}, h...) }
func p2wsh(h []byte) []byte  { return append([]byte{txscript.OP_0, txscript.OP_DATA_32}, h...) }

// parser is a recursive descent reader over the descriptor text; pos is the
// byte offset of the next unread character.
type parser struct {
	s   string
	pos int
}

func (p *parser) fail(pos int, format string, args ...any) error {
	return &Error{Pos: pos, Msg: fmt.Sprintf(format, args...)}
}

// name reads a function name and its opening parenthesis.
func (p *parser) name() (string, int, error) {
	start := p.pos
	for p.pos < len(p.s) && p.s[p.pos] >= 'a' && p.s[p.pos] <= 'z' {
		p.pos++
	}
	n := p.s[start:p.pos]
	if p.pos >= len(p.s) || p.s[p.pos] != '(' {
		if n == "" {
			return "", start, p.fail(start, "expected a script function such as wpkh( or wsh(")
		}
		return "", start, p.fail(start, "expected a script function such as wpkh( or wsh(, found text that is not one")
	}
	p.pos++
	return n, start, nil
}

func (p *parser) expect(c byte) error {
	if p.pos >= len(p.s) {
		return p.fail(p.pos, "descriptor ends early: expected %q", c)
	}
	if p.s[p.pos] != c {
		return p.fail(p.pos, "expected %q, found %s", c, quoteByte(p.s[p.pos]))
	}
	p.pos++
	return nil
}

func unknown(n string) string {
	if len(n) > 16 {
		return "unknown script function"
	}
	return fmt.Sprintf("unknown script function %q", n)
}

func (p *parser) top() (*Descriptor, error) {
	n, at, err := p.name()
	if err != nil {
		return nil, err
	}
	d := &Descriptor{threshold: 1}
	switch n {
	case "pkh", "wpkh", "tr":
		d.typ = map[string]Type{"pkh": P2PKH, "wpkh": P2WPKH, "tr": P2TR}[n]
		k, err := p.key(n != "pkh")
		if err != nil {
			return nil, err
		}
		d.keys = []*key{k}
		if n == "tr" && p.pos < len(p.s) && p.s[p.pos] == ',' {
			return nil, p.fail(p.pos, "tr() with a script tree is not supported: only the key path (tr(KEY)) is watched")
		}
	case "sh":
		inner, iat, err := p.name()
		if err != nil {
			return nil, err
		}
		switch inner {
		case "wpkh":
			d.typ = P2SHP2WPKH
			k, err := p.key(true)
			if err != nil {
				return nil, err
			}
			d.keys = []*key{k}
		case "wsh":
			d.typ = P2SHP2WSH
			if err := p.multiInside(d); err != nil {
				return nil, err
			}
			if err := p.expect(')'); err != nil {
				return nil, err
			}
		case "multi", "sortedmulti":
			d.typ = P2SH
			if err := p.multiArgs(d, inner, iat); err != nil {
				return nil, err
			}
			if len(d.keys) > maxP2SHKeys {
				return nil, p.fail(iat, "%s inside sh() takes at most %d keys, found %d (the P2SH script limit); use wsh()", inner, maxP2SHKeys, len(d.keys))
			}
			return d, p.close(d)
		default:
			return nil, p.fail(iat, "%s inside sh(): supported are sh(wpkh(...)), sh(wsh(multi|sortedmulti(...))) and sh(multi|sortedmulti(...))", unknownOr(inner))
		}
	case "wsh":
		d.typ = P2WSH
		if err := p.multiInside(d); err != nil {
			return nil, err
		}
	case "pk", "combo", "raw", "addr", "multi", "sortedmulti", "rawtr", "musig", "multi_a", "sortedmulti_a":
		return nil, p.fail(at, "script function %q is not supported at the top level: supported are pkh, wpkh, sh(wpkh), tr (key path), wsh(multi|sortedmulti), sh(wsh(multi|sortedmulti)) and sh(multi|sortedmulti)", n)
	default:
		return nil, p.fail(at, "%s: supported are pkh, wpkh, sh(wpkh), tr (key path), wsh(multi|sortedmulti), sh(wsh(multi|sortedmulti)) and sh(multi|sortedmulti)", unknown(n))
	}
	return d, p.close(d)
}

func unknownOr(n string) string {
	switch n {
	case "pk", "pkh", "sh", "tr", "combo", "raw", "addr":
		return fmt.Sprintf("script function %q is not supported", n)
	}
	return unknown(n)
}

// close reads the closing parentheses of the outer functions and checks
// nothing follows.
func (p *parser) close(d *Descriptor) error {
	depth := 1
	if d.typ == P2SHP2WPKH { // sh( and wpkh( are both open after the key
		depth = 2
	}
	for range depth {
		if err := p.expect(')'); err != nil {
			return err
		}
	}
	if p.pos != len(p.s) {
		return p.fail(p.pos, "unexpected text after the end of the descriptor")
	}
	return nil
}

// multiInside reads multi(...) or sortedmulti(...) inside wsh(); the
// caller reads wsh's closing parenthesis.
func (p *parser) multiInside(d *Descriptor) error {
	n, at, err := p.name()
	if err != nil {
		return err
	}
	if n != "multi" && n != "sortedmulti" {
		return p.fail(at, "%s inside wsh(): supported are multi(...) and sortedmulti(...)", unknownOr(n))
	}
	return p.multiArgs(d, n, at)
}

// multiArgs reads "k,KEY,...,KEY" and the closing parenthesis of multi().
func (p *parser) multiArgs(d *Descriptor, n string, at int) error {
	d.sorted = n == "sortedmulti"
	start := p.pos
	for p.pos < len(p.s) && p.s[p.pos] >= '0' && p.s[p.pos] <= '9' {
		p.pos++
	}
	k, err := strconv.Atoi(p.s[start:p.pos])
	if err != nil || p.pos-start > 2 {
		return p.fail(start, "%s threshold must be a number from 1 to %d", n, maxMultiKeys)
	}
	d.threshold = k
	for p.pos < len(p.s) && p.s[p.pos] == ',' {
		p.pos++
		key, err := p.key(d.typ != P2SH) // legacy P2SH allows uncompressed keys
		if err != nil {
			return err
		}
		d.keys = append(d.keys, key)
	}
	if err := p.expect(')'); err != nil {
		return err
	}
	switch {
	case len(d.keys) == 0:
		return p.fail(p.pos, "%s needs a threshold and at least one key", n)
	case len(d.keys) > maxMultiKeys:
		return p.fail(at, "%s takes at most %d keys, found %d", n, maxMultiKeys, len(d.keys))
	case k < 1 || k > len(d.keys):
		return p.fail(start, "%s threshold %d must be from 1 to the number of keys (%d)", n, k, len(d.keys))
	}
	return nil
}

// key reads one key expression, up to the next ',' or ')'. compressedOnly
// refuses uncompressed public keys (segwit and taproot).
func (p *parser) key(compressedOnly bool) (*key, error) {
	start := p.pos
	end := start
	for end < len(p.s) && p.s[end] != ',' && p.s[end] != ')' && p.s[end] != '(' {
		end++
	}
	text := p.s[start:end]
	p.pos = end
	if text == "" {
		return nil, p.fail(start, "expected a key")
	}
	k := &key{pos: start}
	off := 0
	if text[0] == '[' {
		rb := strings.IndexByte(text, ']')
		if rb < 0 {
			return nil, p.fail(start, "key origin '[' is not closed by ']'")
		}
		if err := p.origin(text[1:rb], start+1); err != nil {
			return nil, err
		}
		off = rb + 1
	}
	if strings.ContainsAny(text[off:], "[]") {
		return nil, p.fail(start+off+strings.IndexAny(text[off:], "[]"), "a key has at most one origin [fingerprint/path], written before the key")
	}
	body := text[off:]
	kpos := start + off
	keyText, path, hasPath := strings.Cut(body, "/")
	if keyText == "" {
		return nil, p.fail(kpos, "expected a key after the origin")
	}
	if err := refusePrivate(keyText, kpos); err != nil {
		return nil, err
	}
	if isHex(keyText) {
		if hasPath {
			return nil, p.fail(kpos+len(keyText), "a plain public key takes no derivation path")
		}
		b, _ := hex.DecodeString(keyText)
		pk, err := btcec.ParsePubKey(b)
		if err != nil || (len(b) != 33 && len(b) != 65) {
			return nil, p.fail(kpos, "not a valid public key (want 33-byte compressed or 65-byte uncompressed hex)")
		}
		if len(b) == 65 {
			if compressedOnly {
				return nil, p.fail(kpos, "uncompressed public keys are not allowed here (segwit and taproot need compressed keys)")
			}
			k.fixed = pk.SerializeUncompressed()
		} else {
			k.fixed = pk.SerializeCompressed()
		}
		return k, nil
	}
	xk, err := hdkeychain.NewKeyFromString(keyText)
	if err != nil {
		return nil, p.fail(kpos, "not a public key or extended public key (xpub/tpub): %v", err)
	}
	if xk.IsPrivate() {
		return nil, privateKey(kpos, "this is an extended private key: keywatch takes public keys only (xpub/tpub); remove it and treat it as exposed")
	}
	k.xpub = xk
	var fixed, after []uint32
	var multi []uint32
	if hasPath {
		ppos := kpos + len(keyText) + 1
		for n, step := range strings.Split(path, "/") {
			last := n == strings.Count(path, "/")
			switch {
			case step == "*":
				if !last {
					return nil, p.fail(ppos, "'*' must be the last step of a path")
				}
				k.ranged = true
			case step == "*h" || step == "*'" || step == "*H":
				return nil, p.fail(ppos, "hardened children (%s) need the private key; a watch-only descriptor must end in /* ", step)
			case strings.HasPrefix(step, "<"):
				if multi != nil {
					return nil, p.fail(ppos, "only one multipath step <a;b> is allowed in a key")
				}
				if !strings.HasSuffix(step, ">") {
					return nil, p.fail(ppos, "multipath step '<' is not closed by '>'")
				}
				vals := strings.Split(step[1:len(step)-1], ";")
				if len(vals) < 2 {
					return nil, p.fail(ppos, "multipath step needs at least two values, as in <0;1>")
				}
				vpos := ppos + 1
				for _, v := range vals {
					idx, err := p.step(v, vpos)
					if err != nil {
						return nil, err
					}
					if slices.Contains(multi, idx) {
						return nil, p.fail(vpos, "multipath value %d is repeated", idx)
					}
					multi = append(multi, idx)
					vpos += len(v) + 1
				}
			default:
				idx, err := p.step(step, ppos)
				if err != nil {
					return nil, err
				}
				if multi != nil {
					after = append(after, idx)
				} else {
					fixed = append(fixed, idx)
				}
			}
			ppos += len(step) + 1
		}
	}
	for _, idx := range slices.Concat(fixed, multi, after) {
		if idx >= hardenedOffset {
			return nil, p.fail(kpos+len(keyText), "a hardened step after an extended public key needs the private key; give the xpub at that level instead")
		}
	}
	base, err := deriveAll(xk, fixed)
	if err != nil {
		return nil, p.fail(kpos, "derive: %v", err)
	}
	branches := [][]uint32{nil}
	if multi != nil {
		k.multi = len(multi)
		branches = branches[:0]
		for _, m := range multi {
			branches = append(branches, append([]uint32{m}, after...))
		}
	} else if len(after) > 0 {
		branches = [][]uint32{after}
	}
	for _, steps := range branches {
		bk, err := deriveAll(base, steps)
		if err != nil {
			return nil, p.fail(kpos, "derive: %v", err)
		}
		k.base = append(k.base, bk)
		pk, err := bk.ECPubKey()
		if err != nil {
			return nil, p.fail(kpos, "derive: %v", err)
		}
		k.fixedB = append(k.fixedB, pk.SerializeCompressed())
	}
	return k, nil
}

func deriveAll(k *hdkeychain.ExtendedKey, steps []uint32) (*hdkeychain.ExtendedKey, error) {
	for _, s := range steps {
		var err error
		if k, err = k.Derive(s); err != nil {
			return nil, err
		}
	}
	return k, nil
}

// origin checks "[fingerprint/path]": 8 hex digits, then /NUM or /NUMh
// steps (hardened allowed here: they are only a record).
func (p *parser) origin(s string, pos int) error {
	fp, path, hasPath := strings.Cut(s, "/")
	if len(fp) != 8 || !isHex(fp) {
		return p.fail(pos, "key origin fingerprint must be 8 hex digits")
	}
	if !hasPath {
		return nil
	}
	ppos := pos + len(fp) + 1
	for _, step := range strings.Split(path, "/") {
		if strings.ContainsAny(step, "*<>;") {
			return p.fail(ppos, "key origin path takes fixed steps only, not '*' or <a;b>")
		}
		if _, err := p.step(step, ppos); err != nil {
			return err
		}
		ppos += len(step) + 1
	}
	return nil
}

// step reads NUM, NUMh or NUM' and returns the BIP 32 index.
func (p *parser) step(s string, pos int) (uint32, error) {
	hardened := false
	if n := len(s); n > 0 && (s[n-1] == 'h' || s[n-1] == '\'' || s[n-1] == 'H') {
		hardened, s = true, s[:n-1]
	}
	if s == "" {
		return 0, p.fail(pos, "empty path step")
	}
	for j := 0; j < len(s); j++ {
		if s[j] < '0' || s[j] > '9' {
			return 0, p.fail(pos, "path step must be a number, optionally followed by h or ' for hardened")
		}
	}
	v, err := strconv.ParseUint(s, 10, 32)
	if err != nil || v >= hardenedOffset {
		return 0, p.fail(pos, "path step must be below 2^31 (2147483648); write hardened steps with h")
	}
	if hardened {
		v += hardenedOffset
	}
	return uint32(v), nil
}

func isHex(s string) bool {
	if len(s)%2 != 0 {
		return false
	}
	for j := 0; j < len(s); j++ {
		c := s[j]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// refusePrivate recognises private keys before anything else reads them:
// extended private keys by their version and WIF keys by their base58check
// form. The error names the offset only.
func refusePrivate(s string, pos int) error {
	for _, pre := range []string{"xprv", "tprv", "yprv", "zprv", "uprv", "vprv", "Yprv", "Zprv", "Uprv", "Vprv"} {
		if strings.HasPrefix(s, pre) {
			return privateKey(pos, fmt.Sprintf("this is an extended private key (%s): keywatch takes public keys only (xpub/tpub); remove it and treat it as exposed", pre))
		}
	}
	if len(s) >= 51 && len(s) <= 52 {
		if b, ver, err := base58.CheckDecode(s); err == nil && (ver == 0x80 || ver == 0xef) && (len(b) == 32 || len(b) == 33) {
			return privateKey(pos, "this is a private key (WIF): keywatch takes public keys only; remove it and treat it as exposed")
		}
	}
	return nil
}
