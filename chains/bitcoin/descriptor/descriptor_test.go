package descriptor_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/hdkeychain"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/txscript"

	"github.com/keywatch/keywatch/chains/bitcoin/descriptor"
)

type vectors struct {
	BIP380Checksum struct {
		Valid      string            `json:"valid"`
		NoChecksum string            `json:"no_checksum"`
		Invalid    map[string]string `json:"invalid"`
	} `json:"bip380_checksum"`
	BIP380Keys struct {
		Valid        []string          `json:"valid"`
		NeedsPrivate []string          `json:"valid_needs_private_key"`
		Private      []string          `json:"private"`
		Invalid      map[string]string `json:"invalid"`
	} `json:"bip380_keys"`
	BIP383 struct {
		SortedMultiRanged struct {
			Desc    string   `json:"desc"`
			Scripts []string `json:"scripts"`
		} `json:"sortedmulti_ranged"`
		ShWshMulti16 struct {
			Desc   string `json:"desc"`
			Script string `json:"script"`
		} `json:"sh_wsh_multi_16"`
		Invalid map[string]string `json:"invalid"`
	} `json:"bip383"`
	BIP389 struct {
		Valid []struct {
			WrappedIn string   `json:"wrapped_in"`
			Desc      string   `json:"desc"`
			Expands   []string `json:"expands"`
		} `json:"valid"`
		Private string            `json:"private"`
		Invalid map[string]string `json:"invalid"`
	} `json:"bip389"`
	BIP86 struct {
		Desc    string `json:"desc"`
		Receive []struct {
			Script  string `json:"script"`
			Address string `json:"address"`
		} `json:"receive"`
	} `json:"bip86"`
}

func load(t testing.TB) vectors {
	t.Helper()
	b, err := os.ReadFile("testdata/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var v vectors
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func mustParse(t testing.TB, s string) *descriptor.Descriptor {
	t.Helper()
	d, err := descriptor.Parse(s)
	if err != nil {
		t.Fatalf("%s: %v", s, err)
	}
	return d
}

func script(t testing.TB, d *descriptor.Descriptor, b, i uint32) descriptor.Output {
	t.Helper()
	out, err := d.Derive(b, i)
	if err != nil {
		t.Fatalf("derive %d/%d: %v", b, i, err)
	}
	return out
}

func posOf(t *testing.T, err error) int {
	t.Helper()
	var de *descriptor.Error
	if !errors.As(err, &de) {
		t.Fatalf("error %v is not a *descriptor.Error with a position", err)
	}
	return de.Pos
}

// TestChecksumBIP380 runs BIP 380's checksum vectors: the valid checksum is
// accepted (the descriptor is then refused only for raw(), which keywatch
// does not watch), every broken one is refused at the checksum.
func TestChecksumBIP380(t *testing.T) {
	v := load(t).BIP380Checksum
	body, want, _ := strings.Cut(v.Valid, "#")
	if got, err := descriptor.Checksum(body); err != nil || got != want {
		t.Fatalf("Checksum(%q) = %q, %v; BIP 380 says %q", body, got, err, want)
	}
	for _, s := range []string{v.Valid, v.NoChecksum} {
		_, err := descriptor.Parse(s)
		if err == nil || !strings.Contains(err.Error(), `"raw" is not supported`) || strings.Contains(err.Error(), "checksum") {
			t.Errorf("%s: got %v, want only the refusal of raw()", s, err)
		}
	}
	for name, s := range v.Invalid {
		_, err := descriptor.Parse(s)
		if err == nil || strings.Contains(err.Error(), "raw") {
			t.Errorf("%s (%s): got %v, want a checksum or character error", name, s, err)
			continue
		}
		if p := posOf(t, err); p < 4 || p > len(s) {
			t.Errorf("%s: position %d outside the checksum or payload", name, p)
		}
	}
	_, err := descriptor.Parse("raw(Ü)#00000000")
	if p := posOf(t, err); p != 4 {
		t.Errorf("invalid character: position %d, want 4 (%v)", p, err)
	}
	_, err = descriptor.Parse("raw(deedbeef)#89f8spxm")
	if p := posOf(t, err); p != 14 || !strings.Contains(err.Error(), "checksum does not match") {
		t.Errorf("wrong checksum: %v, want a mismatch at byte 14", err)
	}
}

// TestKeyExpressionsBIP380 puts each of BIP 380's key expressions into
// pkh(): public keys parse; hardened steps after an xpub, which a watcher
// cannot take, are refused by name; private keys are refused without being
// repeated; the invalid ones are refused.
func TestKeyExpressionsBIP380(t *testing.T) {
	v := load(t).BIP380Keys
	for _, k := range v.Valid {
		d := mustParse(t, "pkh("+k+")")
		if d.Type() != descriptor.P2PKH || d.Branches() != 1 || d.Ranged() != strings.HasSuffix(k, "/*") {
			t.Errorf("pkh(%s): type %s, %d branches, ranged %v", k, d.Type(), d.Branches(), d.Ranged())
		}
		script(t, d, 0, 0)
	}
	for _, k := range v.NeedsPrivate {
		_, err := descriptor.Parse("pkh(" + k + ")")
		if err == nil || !strings.Contains(err.Error(), "hardened") {
			t.Errorf("pkh(%s): got %v, want a refusal naming the hardened step", k, err)
		}
	}
	for _, k := range v.Private {
		checkPrivateRefused(t, "pkh("+k+")")
	}
	for name, k := range v.Invalid {
		if _, err := descriptor.Parse("pkh(" + k + ")"); err == nil {
			t.Errorf("%s: pkh(%s) accepted", name, k)
		} else {
			posOf(t, err)
			assertNoSecret(t, err, k)
		}
	}
}

// checkPrivateRefused: the descriptor is refused as holding a private key,
// at the key's offset, and the error does not repeat the key.
func checkPrivateRefused(t *testing.T, s string) {
	t.Helper()
	_, err := descriptor.Parse(s)
	if !errors.Is(err, descriptor.ErrPrivateKey) {
		t.Errorf("%s: got %v, want ErrPrivateKey", s, err)
		return
	}
	p := posOf(t, err)
	if rest := s[p:]; !strings.HasPrefix(rest, "xprv") && !strings.HasPrefix(rest, "tprv") && !strings.HasPrefix(rest, "L") && !strings.HasPrefix(rest, "K") && !strings.HasPrefix(rest, "5") && !strings.HasPrefix(rest, "c") {
		t.Errorf("%s: position %d does not point at the key (%.8q...)", s, p, rest)
	}
	assertNoSecret(t, err, s)
}

// assertNoSecret fails if the error text holds any 12-character run of a
// base58 key found in s.
func assertNoSecret(t *testing.T, err error, s string) {
	t.Helper()
	msg := err.Error()
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return strings.ContainsRune("()[],/<>;'#", r) }) {
		if len(f) < 50 {
			continue
		}
		for j := 0; j+12 <= len(f); j++ {
			if strings.Contains(msg, f[j:j+12]) {
				t.Fatalf("error repeats key material: %v", err)
			}
		}
	}
}

// TestMultisigBIP383 checks sortedmulti's BIP 67 ordering of ranged xpub
// keys against BIP 383's scripts (as the witness script of wsh()), the
// sh(wsh(multi(16,...))) output, and the invalid vectors.
func TestMultisigBIP383(t *testing.T) {
	v := load(t).BIP383
	d := mustParse(t, "wsh("+v.SortedMultiRanged.Desc+")")
	for i, want := range v.SortedMultiRanged.Scripts {
		out := script(t, d, 0, uint32(i))
		if hex.EncodeToString(out.WitnessScript) != want {
			t.Errorf("index %d: witness script %x, BIP 383 says %s", i, out.WitnessScript, want)
		}
		h := sha256.Sum256(out.WitnessScript)
		if !bytes.Equal(out.Script, append([]byte{0, 32}, h[:]...)) {
			t.Errorf("index %d: output %x is not P2WSH of the witness script", i, out.Script)
		}
	}
	d = mustParse(t, v.ShWshMulti16.Desc)
	if got := hex.EncodeToString(script(t, d, 0, 0).Script); got != v.ShWshMulti16.Script {
		t.Errorf("sh(wsh(multi(16,...))): script %s, BIP 383 says %s", got, v.ShWshMulti16.Script)
	}
	wants := map[string]string{
		"More than 15 keys in P2SH multisig": "at most 15 keys",
		"Invalid threshold":                  "threshold must be a number",
		"Threshold of 0":                     "threshold 0 must be from 1",
		"Threshold larger than keys":         "private key",
	}
	for name, s := range v.Invalid {
		if strings.HasPrefix(s, "multi(") {
			s = "sh(" + s + ")" // bare multi is not watched; sh() keeps the BIP's keys valid
		}
		_, err := descriptor.Parse(s)
		if err == nil || !strings.Contains(err.Error(), wants[name]) {
			t.Errorf("%s: got %v, want an error saying %q", name, err, wants[name])
		}
	}
}

// TestMultipathBIP389: each BIP 389 multipath descriptor has one branch per
// tuple value, and branch b derives what the BIP's b-th expanded descriptor
// derives. The invalid vectors are refused.
func TestMultipathBIP389(t *testing.T) {
	v := load(t).BIP389
	for _, c := range v.Valid {
		wrap := func(s string) string {
			if c.WrappedIn != "" {
				return c.WrappedIn + "(" + s + ")"
			}
			return s
		}
		d := mustParse(t, wrap(c.Desc))
		if d.Branches() != len(c.Expands) {
			t.Errorf("%s: %d branches, want %d", c.Desc, d.Branches(), len(c.Expands))
			continue
		}
		for b, e := range c.Expands {
			single := mustParse(t, wrap(e))
			for i := uint32(0); i < 3; i++ {
				got, want := script(t, d, uint32(b), i).Script, script(t, single, 0, i).Script
				if !bytes.Equal(got, want) {
					t.Errorf("%s branch %d index %d: %x, expanded %s gives %x", c.Desc, b, i, got, e, want)
				}
			}
		}
		if _, err := d.Derive(uint32(len(c.Expands)), 0); err == nil {
			t.Errorf("%s: branch %d past the tuple derived", c.Desc, len(c.Expands))
		}
	}
	checkPrivateRefused(t, v.Private)
	for name, s := range v.Invalid {
		_, err := descriptor.Parse(s)
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		posOf(t, err)
		assertNoSecret(t, err, s)
	}
	// The mismatched-length vectors above fail on their private keys and
	// script tree first; the same mismatch with public keys only:
	s := "wsh(multi(2,xpub6ERApfZwUNrhLCkDtcHTcxd75RbzS1ed54G1LkBUHQVHQKqhMkhgbmJbZRkrgZw4koxb5JaHWkY4ALHY2grBGRjaDMzQLcgJvLJuZZvRcEL/<1;2;3>/0/*,xpub68NZiKmJWnxxS6aaHmn81bvJeTESw724CRDs6HbuccFQN9Ku14VQrADWgqbhhTHBaohPX4CjNLf9fq9MYo6oDaPPLPxSb7gwQN3ih19Zm4Y/<3;4>/*))"
	_, err := descriptor.Parse(s)
	if p := posOf(t, err); p != strings.Index(s, "xpub68") || !strings.Contains(err.Error(), "multipath step has 2 values") {
		t.Errorf("mismatched tuples: %v (position %d)", err, p)
	}
}

// TestTaprootBIP86: tr() of BIP 86's account xpub derives the BIP's
// receive scripts and addresses (the BIP 86 tweak, no script tree).
func TestTaprootBIP86(t *testing.T) {
	v := load(t).BIP86
	d := mustParse(t, v.Desc)
	for i, want := range v.Receive {
		if got := hex.EncodeToString(script(t, d, 0, uint32(i)).Script); got != want.Script {
			t.Errorf("0/%d: script %s, BIP 86 says %s", i, got, want.Script)
		}
		a, err := d.Address(0, uint32(i), &chaincfg.MainNetParams)
		if err != nil || a.EncodeAddress() != want.Address {
			t.Errorf("0/%d: address %v, %v; BIP 86 says %s", i, a, err, want.Address)
		}
	}
	if _, err := d.Address(0, 0, &chaincfg.RegressionNetParams); err == nil || !strings.Contains(err.Error(), "not for network regtest") {
		t.Errorf("xpub descriptor on regtest: %v, want a network error", err)
	}
}

// vaultKeys makes three cosigner account keys (m/48'/1'/0'/2', as Sparrow
// and Specter export for P2WSH multisig) from fixed seeds.
func vaultKeys(t testing.TB) (tpubs []*hdkeychain.ExtendedKey, desc string) {
	t.Helper()
	var parts []string
	for n := range 3 {
		seed := bytes.Repeat([]byte{byte(0x11 * (n + 1))}, 32)
		m, err := hdkeychain.NewMaster(seed, &chaincfg.RegressionNetParams)
		if err != nil {
			t.Fatal(err)
		}
		mpub, _ := m.Neuter()
		mpk, _ := mpub.ECPubKey()
		fp := btcutil.Hash160(mpk.SerializeCompressed())[:4]
		acct := m
		for _, s := range []uint32{48, 1, 0, 2} {
			if acct, err = acct.Derive(hdkeychain.HardenedKeyStart + s); err != nil {
				t.Fatal(err)
			}
		}
		pub, err := acct.Neuter()
		if err != nil {
			t.Fatal(err)
		}
		tpubs = append(tpubs, pub)
		parts = append(parts, fmt.Sprintf("[%x/48h/1h/0h/2h]%s/<0;1>/*", fp, pub.String()))
	}
	return tpubs, strings.Join(parts, ",")
}

// expected2of3 derives the vault's witness script at b/i with btcd alone.
func expected2of3(t testing.TB, tpubs []*hdkeychain.ExtendedKey, b, i uint32, sorted bool) []byte {
	t.Helper()
	var keys []*btcutil.AddressPubKey
	var raw [][]byte
	for _, k := range tpubs {
		c, err := k.Derive(b)
		if err == nil {
			c, err = c.Derive(i)
		}
		if err != nil {
			t.Fatal(err)
		}
		pk, _ := c.ECPubKey()
		raw = append(raw, pk.SerializeCompressed())
	}
	if sorted {
		slices.SortFunc(raw, bytes.Compare)
	}
	for _, r := range raw {
		a, err := btcutil.NewAddressPubKey(r, &chaincfg.RegressionNetParams)
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, a)
	}
	ms, err := txscript.MultiSigScript(keys, 2)
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

// TestVault2of3Multipath derives a 2-of-3 wsh(sortedmulti) vault written
// with origins, multipath and a checksum, as a wallet exports it, and
// compares receive and change addresses with ones built from btcd's
// primitives; the same for sh(wsh(...)), and multi() keeps the key order.
func TestVault2of3Multipath(t *testing.T) {
	tpubs, keys := vaultKeys(t)
	net := &chaincfg.RegressionNetParams
	for _, c := range []struct {
		fn     string
		sorted bool
		nested bool
	}{
		{"wsh(sortedmulti(2,%s))", true, false},
		{"sh(wsh(sortedmulti(2,%s)))", true, true},
		{"wsh(multi(2,%s))", false, false},
	} {
		text, err := descriptor.WithChecksum(fmt.Sprintf(c.fn, keys))
		if err != nil {
			t.Fatal(err)
		}
		d := mustParse(t, text)
		if d.Branches() != 2 || !d.Ranged() || d.Threshold() != 2 || d.Keys() != 3 || d.String() != text {
			t.Fatalf("%s: %d branches, ranged %v, %d of %d, string %s", c.fn, d.Branches(), d.Ranged(), d.Threshold(), d.Keys(), d.String())
		}
		seen := map[string]bool{}
		for b := uint32(0); b < 2; b++ {
			for i := uint32(0); i < 5; i++ {
				ms := expected2of3(t, tpubs, b, i, c.sorted)
				h := sha256.Sum256(ms)
				var want btcutil.Address
				want, err = btcutil.NewAddressWitnessScriptHash(h[:], net)
				if c.nested {
					want, err = btcutil.NewAddressScriptHash(append([]byte{0, 32}, h[:]...), net)
				}
				if err != nil {
					t.Fatal(err)
				}
				got, err := d.Address(b, i, net)
				if err != nil {
					t.Fatalf("%s %d/%d: %v", c.fn, b, i, err)
				}
				if got.EncodeAddress() != want.EncodeAddress() {
					t.Errorf("%s %d/%d: %s, btcd gives %s", c.fn, b, i, got, want)
				}
				if out := script(t, d, b, i); !bytes.Equal(out.WitnessScript, ms) {
					t.Errorf("%s %d/%d: witness script %x, want %x", c.fn, b, i, out.WitnessScript, ms)
				}
				seen[got.EncodeAddress()] = true
			}
		}
		if len(seen) != 10 {
			t.Errorf("%s: %d distinct addresses over receive and change 0..4, want 10", c.fn, len(seen))
		}
	}
	// Sorting must matter for this vault at some index, or the test above
	// could not tell sortedmulti from multi.
	differs := false
	for i := uint32(0); i < 5; i++ {
		differs = differs || !bytes.Equal(expected2of3(t, tpubs, 0, i, true), expected2of3(t, tpubs, 0, i, false))
	}
	if !differs {
		t.Fatal("key order equals sorted order at every index; choose other seeds")
	}
	if _, err := mustParse(t, fmt.Sprintf("wsh(sortedmulti(2,%s))", keys)).Address(0, 0, &chaincfg.MainNetParams); err == nil {
		t.Error("tpub vault gave a mainnet address")
	}
}

// TestSingleKeyTypes: pkh, wpkh and sh(wpkh) of one xpub pay to the
// scripts btcd builds for the same derived key.
func TestSingleKeyTypes(t *testing.T) {
	tpubs, _ := vaultKeys(t)
	k := tpubs[0]
	c, _ := k.Derive(1)
	c, _ = c.Derive(7)
	pk, _ := c.ECPubKey()
	h := btcutil.Hash160(pk.SerializeCompressed())
	net := &chaincfg.RegressionNetParams
	wpkh, _ := btcutil.NewAddressWitnessPubKeyHash(h, net)
	wpkhScript, _ := txscript.PayToAddrScript(wpkh)
	pkh, _ := btcutil.NewAddressPubKeyHash(h, net)
	shwpkh, _ := btcutil.NewAddressScriptHash(wpkhScript, net)
	for fn, want := range map[string]btcutil.Address{"pkh(%s)": pkh, "wpkh(%s)": wpkh, "sh(wpkh(%s))": shwpkh} {
		d := mustParse(t, fmt.Sprintf(fn, "[deadbeef/84h/1h/0h]"+k.String()+"/<0;1>/*"))
		got, err := d.Address(1, 7, net)
		if err != nil || got.EncodeAddress() != want.EncodeAddress() {
			t.Errorf("%s at 1/7: %v, %v; want %s", fn, got, err, want)
		}
	}
}

// TestErrorsNamePosition: what a user sees for the mistakes they make.
func TestErrorsNamePosition(t *testing.T) {
	tpubs, _ := vaultKeys(t)
	tpub := tpubs[0].String()
	good, _ := descriptor.WithChecksum("wpkh(" + tpub + "/0/*)")
	m, _ := hdkeychain.NewMaster(bytes.Repeat([]byte{7}, 32), &chaincfg.RegressionNetParams)
	tprv := m.String()
	wif, _ := btcutil.NewWIF(mustPriv(t, m), &chaincfg.RegressionNetParams, true)
	bad := []byte(good)
	bad[len(bad)-1] ^= 1 // one character of the checksum
	cases := []struct {
		name, desc string
		pos        int
		want       string
		private    bool
	}{
		{"wrong checksum", string(bad), len(good) - 8, "checksum does not match", false},
		{"payload changed under its checksum", strings.Replace(good, "/0/*", "/1/*", 1), len(good) - 8, "checksum does not match", false},
		{"short checksum", good[:len(good)-1], len(good) - 8, "has 7 characters", false},
		{"tprv", "wsh(sortedmulti(2," + tpub + "/0/*," + tprv + "/0/*))", len("wsh(sortedmulti(2," + tpub + "/0/*,"), "extended private key", true},
		{"WIF", "wpkh(" + wif.String() + ")", 5, "private key (WIF)", true},
		{"unknown function", "wpk(" + tpub + ")", 0, `unknown script function "wpk"`, false},
		{"unknown inner function", "sh(wsh(thresh(2," + tpub + ")))", 7, `unknown script function "thresh"`, false},
		{"non-numeric step", "wpkh(" + tpub + "/1x/*)", 5 + len(tpub) + 1, "path step must be a number", false},
		{"step out of range", "wpkh(" + tpub + "/2147483648/*)", 5 + len(tpub) + 1, "below 2^31", false},
		{"hardened after xpub", "wpkh(" + tpub + "/0h/*)", 5 + len(tpub), "hardened step after an extended public key", false},
		{"hardened children", "wpkh(" + tpub + "/*h)", 5 + len(tpub) + 1, "hardened children", false},
		{"star not last", "wpkh(" + tpub + "/*/0)", 5 + len(tpub) + 1, "'*' must be the last step", false},
		{"script tree", "tr(" + tpub + "/0/*,pk(" + tpub + "))", 3 + len(tpub) + 4, "script tree is not supported", false},
		{"trailing text", "wpkh(" + tpub + "))", 5 + len(tpub) + 1, "unexpected text", false},
		{"unclosed", "wsh(sortedmulti(2," + tpub + "/0/*", len("wsh(sortedmulti(2," + tpub + "/0/*"), "ends early", false},
		{"uncompressed in segwit", "wpkh(04a34b99f22c790c4e36b2b3c2c35a36db06226e41c692fc82b8b56ac1c540c5bd5b8dec5235a0fa8722476c7709c02559e3aa73aa03918ba2d492eea75abea235)", 5, "uncompressed", false},
		{"not a key", "wpkh(" + tpub[:60] + "/0/*)", 5, "not a public key or extended public key", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := descriptor.Parse(c.desc)
			if err == nil {
				t.Fatalf("%s accepted", c.desc)
			}
			if p := posOf(t, err); p != c.pos || !strings.Contains(err.Error(), c.want) {
				t.Errorf("got %q (byte %d), want %q at byte %d", err, p, c.want, c.pos)
			}
			if errors.Is(err, descriptor.ErrPrivateKey) != c.private {
				t.Errorf("errors.Is(err, ErrPrivateKey) = %v", !c.private)
			}
			if strings.Contains(err.Error(), tprv[4:20]) || strings.Contains(err.Error(), wif.String()[2:14]) {
				t.Errorf("error repeats the private key: %v", err)
			}
		})
	}
}

func mustPriv(t *testing.T, k *hdkeychain.ExtendedKey) *btcec.PrivateKey {
	t.Helper()
	p, err := k.ECPrivKey()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// BenchmarkDerive2of3Multipath measures addresses derived per second for a
// 2-of-3 wsh(sortedmulti) vault, alternating receive and change.
func BenchmarkDerive2of3Multipath(b *testing.B) {
	_, keys := vaultKeys(b)
	d := mustParse(b, fmt.Sprintf("wsh(sortedmulti(2,%s))", keys))
	net := &chaincfg.RegressionNetParams
	b.ReportAllocs()
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		if _, err := d.Address(uint32(n&1), uint32(n>>1), net); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "addresses/s")
}

// BenchmarkDeriveOneChildKey is the baseline for the benchmark above: one
// unhardened BIP 32 child public key with btcd, as each cosigner needs.
func BenchmarkDeriveOneChildKey(b *testing.B) {
	tpubs, _ := vaultKeys(b)
	base, err := tpubs[0].Derive(0)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		c, err := base.Derive(uint32(n))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.ECPubKey(); err != nil {
			b.Fatal(err)
		}
	}
}
