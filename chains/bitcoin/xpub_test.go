package bitcoin_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/btcutil/hdkeychain"
	"github.com/btcsuite/btcd/chaincfg"

	"github.com/keywatch/keywatch/chains/bitcoin"
	"github.com/keywatch/keywatch/chains/bitcoin/btcaddr"
	"github.com/keywatch/keywatch/internal/testenv"
)

type child struct {
	Path    string `json:"path"`
	Address string `json:"address"`
}

type vectors struct {
	BIP84 struct {
		Zpub     string  `json:"account_zpub"`
		Children []child `json:"children"`
	} `json:"bip84_p2wpkh_mainnet"`
	BIP86 struct {
		Xpub     string  `json:"account_xpub"`
		Children []child `json:"children"`
	} `json:"bip86_p2tr_mainnet"`
	BIP49 struct {
		Upub     string  `json:"account_upub"`
		Children []child `json:"children"`
	} `json:"bip49_p2sh_p2wpkh_testnet"`
	BIP32 struct {
		ParentXpub string `json:"parent_xpub"`
		Steps      []struct {
			Path string `json:"path"`
			Xpub string `json:"xpub"`
		} `json:"steps"`
	} `json:"bip32_public_derivation_tv1"`
}

func loadVectors(t *testing.T) vectors {
	t.Helper()
	b, err := os.ReadFile(testenv.Data(t, "bitcoin_vectors/xpub_watch_vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	var v vectors
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// TestAccountDerivationMatchesBIPVectors derives the published receive and
// change addresses of the BIP84, BIP86 and BIP49 test vectors from their
// account keys.
func TestAccountDerivationMatchesBIPVectors(t *testing.T) {
	v := loadVectors(t)
	cases := []struct {
		name, key, script string
		net               *chaincfg.Params
		children          []child
		wantType          bitcoin.ScriptType
	}{
		{"BIP84 zpub", v.BIP84.Zpub, "", &chaincfg.MainNetParams, v.BIP84.Children, bitcoin.P2WPKH},
		{"BIP86 xpub with script p2tr", v.BIP86.Xpub, "p2tr", &chaincfg.MainNetParams, v.BIP86.Children, bitcoin.P2TR},
		{"BIP49 upub", v.BIP49.Upub, "", &chaincfg.TestNet3Params, v.BIP49.Children, bitcoin.P2SHP2WPKH},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if len(c.children) == 0 {
				t.Fatal("vector file has no children for this key")
			}
			acct, err := bitcoin.ParseAccountKey(c.key, c.script, c.net)
			if err != nil {
				t.Fatal(err)
			}
			if acct.Script != c.wantType {
				t.Errorf("script type %s, want %s", acct.Script, c.wantType)
			}
			for _, ch := range c.children {
				var branch, index uint32
				if _, err := fmt.Sscanf(ch.Path, "%d/%d", &branch, &index); err != nil {
					t.Fatalf("path %q: %v", ch.Path, err)
				}
				script, err := acct.Derive(branch, index)
				if err != nil {
					t.Fatal(err)
				}
				if got := btcaddr.AddressOf(script, c.net); got != ch.Address {
					t.Errorf("%s: derived %s, BIP vector says %s", ch.Path, got, ch.Address)
				}
			}
		})
	}
}

// TestPublicDerivationMatchesBIP32 checks the public child derivation the
// watcher relies on against BIP32 test vector 1's non-hardened steps.
func TestPublicDerivationMatchesBIP32(t *testing.T) {
	v := loadVectors(t)
	if _, err := bitcoin.ParseAccountKey(v.BIP32.ParentXpub, "", &chaincfg.MainNetParams); err != nil {
		t.Fatalf("the depth-3 parent key of BIP32 vector 1 is refused: %v", err)
	}
	key, err := hdkeychain.NewKeyFromString(v.BIP32.ParentXpub)
	if err != nil {
		t.Fatal(err)
	}
	for _, step := range v.BIP32.Steps {
		parts := strings.Split(step.Path, "/")
		idx, err := strconv.ParseUint(parts[len(parts)-1], 10, 31) // non-hardened
		if err != nil {
			t.Fatal(err)
		}
		key, err = key.Derive(uint32(idx))
		if err != nil {
			t.Fatal(err)
		}
		if got := key.String(); got != step.Xpub {
			t.Errorf("%s: derived %s, BIP32 says %s", step.Path, got, step.Xpub)
		}
	}
}

// TestInvalidExtendedKeysAreRefused feeds BIP32 test vector 5 (every key in
// it is invalid) and keys that are valid but unusable for watching.
func TestInvalidExtendedKeysAreRefused(t *testing.T) {
	b, err := os.ReadFile(testenv.Data(t, "bitcoin_vectors/bips/bip-0032.mediawiki"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "===Test vector 5===")
	if !ok {
		t.Fatal("BIP32 text has no test vector 5")
	}
	section, _, _ = strings.Cut(section, "==Acknowledgements==")
	re := regexp.MustCompile(`(?m)^\* (\S+) \((.*)\)$`)
	keys := re.FindAllStringSubmatch(section, -1)
	if len(keys) != 16 {
		t.Fatalf("found %d invalid keys in BIP32 vector 5, the BIP lists 16", len(keys))
	}
	for _, k := range keys {
		if _, err := bitcoin.ParseAccountKey(k[1], "", &chaincfg.MainNetParams); err == nil {
			t.Errorf("BIP32 vector 5 key (%s) accepted", k[2])
		}
	}

	v := loadVectors(t)
	depth4, err := hdkeychain.NewKeyFromString(v.BIP84.Zpub)
	if err != nil {
		t.Fatal(err)
	}
	depth4, err = depth4.Derive(0)
	if err != nil {
		t.Fatal(err)
	}
	// BIP32 vector 1's master private key.
	xprv := "xprv9s21ZrQH143K3QTDL4LXw2F7HEK3wJUD2nW2nRk4stbPy6cq3jPPqjiChkVvvNKmPGJxWUtg6LnF5kejMRNNU3TGtRBeJgk33yuGBxrMPHi"
	refused := []struct {
		name, key, script string
		net               *chaincfg.Params
		want              string
	}{
		{"private master key", xprv, "", &chaincfg.MainNetParams, "private extended key"},
		{"mainnet zpub on regtest", v.BIP84.Zpub, "", &chaincfg.RegressionNetParams, "mainnet key, but the chain's network is regtest"},
		{"test-network upub on mainnet", v.BIP49.Upub, "", &chaincfg.MainNetParams, "test-network key, but the chain's network is mainnet"},
		{"zpub with script p2tr", v.BIP84.Zpub, "p2tr", &chaincfg.MainNetParams, "zpub keys pay to p2wpkh"},
		{"unknown script", v.BIP86.Xpub, "p2wsh", &chaincfg.MainNetParams, "unknown script"},
		{"branch-level key", depth4.String(), "", &chaincfg.MainNetParams, "depth 4"},
		{"typo", v.BIP84.Zpub[:50] + "x" + v.BIP84.Zpub[51:], "", &chaincfg.MainNetParams, "bad checksum"},
		{"truncated", v.BIP84.Zpub[:60], "", &chaincfg.MainNetParams, "truncated"},
	}
	for _, c := range refused {
		t.Run(c.name, func(t *testing.T) {
			_, err := bitcoin.ParseAccountKey(c.key, c.script, c.net)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one saying %q", err, c.want)
			}
			if c.name == "private master key" && !errors.Is(err, bitcoin.ErrPrivateKey) {
				t.Errorf("error %v is not ErrPrivateKey", err)
			}
			if strings.Contains(err.Error(), c.key) {
				t.Errorf("error repeats the key: %v", err)
			}
		})
	}
}
