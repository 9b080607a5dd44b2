package btcaddr_test

import (
	"encoding/hex"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/chaincfg"

	"github.com/keywatch/keywatch/chains/bitcoin/btcaddr"
	"github.com/keywatch/keywatch/internal/testenv"
)

// TestScriptOfMatchesBIP350 reads BIP350's segwit address vectors: every
// valid address maps to the scriptPubKey the BIP gives, every invalid one is
// refused.
func TestScriptOfMatchesBIP350(t *testing.T) {
	b, err := os.ReadFile(testenv.Data(t, "bitcoin_vectors/bips/bip-0350.mediawiki"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "===Test vectors for v0-v16 native segregated witness addresses===")
	if !ok {
		t.Fatal("BIP350 text has no segwit address vectors")
	}
	section, _, _ = strings.Cut(section, "==Appendix")
	valid := regexp.MustCompile(`(?m)^\* <tt>(\S+)</tt>: <tt>([0-9a-f]+)</tt>$`).FindAllStringSubmatch(section, -1)
	invalid := regexp.MustCompile(`(?m)^\* <tt>(\S+)</tt>: ([^<]+)$`).FindAllStringSubmatch(section, -1)
	if len(valid) != 8 || len(invalid) != 15 {
		t.Fatalf("found %d valid and %d invalid vectors; BIP350 has 8 and 15", len(valid), len(invalid))
	}
	for _, v := range valid {
		got, err := btcaddr.ScriptOf(v[1])
		if err != nil {
			t.Errorf("%s: %v", v[1], err)
			continue
		}
		if hex.EncodeToString(got) != v[2] {
			t.Errorf("%s: script %x, BIP350 says %s", v[1], got, v[2])
		}
	}
	for _, v := range invalid {
		if got, err := btcaddr.ScriptOf(v[1]); err == nil {
			t.Errorf("%s (%s): accepted as script %x", v[1], v[2], got)
		}
	}
}

// TestScriptOfIgnoresNetwork: the same key hash written for mainnet, testnet
// and regtest is one script, which is what lets a mainnet sanctions list
// catch a regtest payment.
func TestScriptOfIgnoresNetwork(t *testing.T) {
	groups := [][]string{
		// BIP84 vector 0/0 on mainnet, testnet and regtest.
		{"bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu", "tb1qcr8te4kr609gcawutmrza0j4xv80jy8zmfp6l0", "bcrt1qcr8te4kr609gcawutmrza0j4xv80jy8zeqchgx"},
		// The genesis coinbase key's P2PKH address on mainnet and testnet.
		{"1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa", "mpXwg4jMtRhuSpVq4xS3HFHmCmWp9NyGKt"},
	}
	for _, g := range groups {
		first, err := btcaddr.ScriptOf(g[0])
		if err != nil {
			t.Fatalf("%s: %v", g[0], err)
		}
		for _, a := range g[1:] {
			s, err := btcaddr.ScriptOf(a)
			if err != nil {
				t.Fatalf("%s: %v", a, err)
			}
			if string(s) != string(first) {
				t.Errorf("%s pays to %x, %s to %x: want the same script", a, s, g[0], first)
			}
		}
	}
}

// TestParseAddress reads watched addresses of every kind the issue lists and
// refuses wrong networks, typos and private keys with a message saying which.
func TestParseAddress(t *testing.T) {
	main, reg := &chaincfg.MainNetParams, &chaincfg.RegressionNetParams
	cases := []struct {
		addr string
		net  *chaincfg.Params
		want string // script type, or the error's words
		ok   bool
	}{
		{"1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa", main, "76a914", true},                           // P2PKH
		{"3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy", main, "a914", true},                             // P2SH
		{"bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu", main, "0014", true},                     // P2WPKH
		{"bc1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3qccfmv3", main, "0020", true}, // P2WSH
		{"bc1p5cyxnuxmeuwuvkwfem96lqzszd02n6xdcjrs20cac6yqjjwudpxqkedrcr", main, "5120", true}, // P2TR
		{"BC1QCR8TE4KR609GCAWUTMRZA0J4XV80JY8Z306FYU", main, "0014", true},                     // upper case (QR codes)
		{"bcrt1qcr8te4kr609gcawutmrza0j4xv80jy8zeqchgx", reg, "0014", true},                    // regtest
		{"mpXwg4jMtRhuSpVq4xS3HFHmCmWp9NyGKt", reg, "76a914", true},                            // test-network P2PKH on regtest
		{"bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu", reg, "is a mainnet address, but the chain's network is regtest", false},
		{"tb1qcr8te4kr609gcawutmrza0j4xv80jy8zmfp6l0", reg, "is a testnet address, but the chain's network is regtest", false},
		{"1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa", reg, "is a mainnet address, but the chain's network is regtest", false},
		{"bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyv", main, "is not a Bitcoin address", false}, // typo
		{"5HueCGU8rMjxEXxiPuD5BDku4MkFqeZyd4dZ1jvhTVqvbTLvyTJ", main, "private key", false},     // WIF
		{"0x47CE0C6eD5B0Ce3d3A51fdb1C52DC66a7c3c2936", main, "is not a Bitcoin address", false},
	}
	for _, c := range cases {
		t.Run(c.addr, func(t *testing.T) {
			script, err := btcaddr.ParseAddress(c.addr, c.net)
			switch {
			case c.ok && err != nil:
				t.Fatal(err)
			case c.ok && !strings.HasPrefix(hex.EncodeToString(script), c.want):
				t.Fatalf("script %x, want a %s… script", script, c.want)
			case !c.ok && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Fatalf("error %v, want one saying %q", err, c.want)
			case !c.ok && strings.Contains(err.Error(), "5HueCGU8"):
				t.Fatalf("error repeats the private key: %v", err)
			}
			if c.ok {
				back, err := btcaddr.ScriptOf(btcaddr.AddressOf(script, c.net))
				if err != nil || string(back) != string(script) {
					t.Errorf("AddressOf(%x) = %s does not read back (%v)", script, btcaddr.AddressOf(script, c.net), err)
				}
			}
		})
	}
}
