package config

import (
	"fmt"
	"slices"
	"strings"
)

var (
	walletRoles = []string{"hot", "warm", "cold", "employee-key", "contract", "honeytoken"}
	// bitcoinScripts are the scripts chains/bitcoin derives an xpub's
	// addresses for.
	bitcoinScripts = []string{"p2pkh", "p2sh-p2wpkh", "p2wpkh", "p2tr"}
)

// maxGapLimit bounds an xpub wallet's gap limit: each unused address costs a
// derivation and a slot in the node's transaction filter.
const maxGapLimit = 1000

// WalletRoles lists the roles a wallet may have.
func WalletRoles() []string { return append([]string(nil), walletRoles...) }

// Wallet is a watched address, extended public key or contract.
type Wallet struct {
	Name     string `yaml:"name"`
	Chain    string `yaml:"chain"`
	Address  string `yaml:"address"`
	XPub     string `yaml:"xpub"`
	GapLimit int    `yaml:"gap_limit"`
	Birthday uint64 `yaml:"birthday"`
	Script   string `yaml:"script"`
	Role     string `yaml:"role"`
	Owner    string `yaml:"owner"`
	Hours    string `yaml:"hours"`
	// Account says what sort of account an EVM address is: "" (a key or
	// a contract, as its role says) or safe (a Safe multisig, 1.1.1 to
	// 1.4.1, whose executions, owner and module changes and storage are
	// watched).
	Account string `yaml:"account"`
}

// AccountSafe marks a wallet that is a Safe multisig.
const AccountSafe = "safe"

// IsSafe reports whether the wallet is a Safe multisig.
func (w Wallet) IsSafe() bool { return w.Account == AccountSafe }

// validateWallets fills in each wallet's defaults and checks it against the
// kind of the chain it names; known holds the chains. No two wallets share a
// name, nor watch the same address or key of a chain.
func validateWallets(v *checker, wallets []Wallet, known names) {
	seen := map[string]bool{}
	keys := walletKeys{}
	for i := range wallets {
		w := &wallets[i]
		p := fmt.Sprintf("wallets[%d]", i)
		w.setDefaults(v, p)
		switch {
		case w.Name == "":
			v.add(p+".name", "required")
		case seen[w.Name]:
			v.add(p+".name", "wallet %q is defined twice", w.Name)
		}
		seen[w.Name] = true
		kind, ok := known.chains[w.Chain]
		switch {
		case w.Chain == "":
			v.add(p+".chain", "required")
		case !ok:
			v.add(p+".chain", "no chain named %q (chains: %s)", w.Chain, strings.Join(known.chainNames, ", "))
		}
		w.check(v, p, kind, keys)
	}
}

// setDefaults gives an xpub wallet a gap limit of 20; p is its path.
func (w *Wallet) setDefaults(v *checker, p string) {
	if w.XPub != "" && !v.isSet(p+".gap_limit") {
		w.GapLimit = 20
	}
}

// check checks the wallet's role, what it watches given its chain's kind
// ("" when the chain is unknown: then only the role and hours are checked),
// and its hours; keys takes the address or key it watches. p is its path.
func (w Wallet) check(v *checker, p, kind string, keys walletKeys) {
	if w.Role == "" {
		v.add(p+".role", "required: one of %s", strings.Join(walletRoles, ", "))
	} else if !slices.Contains(walletRoles, w.Role) {
		v.add(p+".role", "unknown role %q (want one of %s)", w.Role, strings.Join(walletRoles, ", "))
	}
	switch kind {
	case "ethereum":
		w.checkEthereum(v, p, keys)
	case "bitcoin":
		w.checkBitcoin(v, p, keys)
	}
	if w.Hours != "" {
		if _, err := ParseHours(w.Hours); err != nil {
			v.add(p+".hours", "%v", err)
		}
	}
}

// checkEthereum checks the wallet's EVM address (no Bitcoin settings).
func (w Wallet) checkEthereum(v *checker, p string, keys walletKeys) {
	if w.XPub != "" || w.GapLimit != 0 || w.Birthday != 0 || w.Script != "" {
		v.add(p, "xpub, gap_limit, birthday and script are for bitcoin wallets")
	}
	if w.Account != "" && w.Account != AccountSafe {
		v.add(p+".account", "unknown account %q (want safe, or leave it out)", w.Account)
	}
	if err := CheckEVMAddress(w.Address); err != nil {
		v.add(p+".address", "%v", err)
	} else {
		keys.claim(v, p+".address", "address", w, strings.ToLower(w.Address))
	}
}

// checkBitcoin checks that the wallet watches one address or one xpub, and
// the xpub's gap limit and script. Whether they fit the chain's network is
// checked where Bitcoin is wired (see daemon.CheckBitcoin).
func (w Wallet) checkBitcoin(v *checker, p string, keys walletKeys) {
	if w.Account != "" {
		v.add(p+".account", "only for EVM wallets")
	}
	switch {
	case w.Address == "" && w.XPub == "":
		v.add(p, "set address (one address) or xpub (an account-level extended public key)")
	case w.Address != "" && w.XPub != "":
		v.add(p+".xpub", "set address or xpub, not both")
	case w.Address != "":
		if w.GapLimit != 0 || w.Script != "" {
			v.add(p, "gap_limit and script are for xpub wallets")
		}
		keys.claim(v, p+".address", "address", w, w.Address)
	default:
		if w.GapLimit < 1 || w.GapLimit > maxGapLimit {
			v.add(p+".gap_limit", "must be between 1 and %d", maxGapLimit)
		}
		if w.Script != "" && !slices.Contains(bitcoinScripts, w.Script) {
			v.add(p+".script", "unknown script %q (want one of %s)", w.Script, strings.Join(bitcoinScripts, ", "))
		}
		keys.claim(v, p+".xpub", "key", w, w.XPub)
	}
}

// walletKeys remembers which wallet watches each address or key of a chain.
type walletKeys map[chainKey]string

type chainKey struct{ chain, key string }

// claim records that w watches key on its chain; what ("address" or "key")
// names it in the problem when another wallet at path already does.
func (k walletKeys) claim(v *checker, path, what string, w Wallet, key string) {
	ck := chainKey{w.Chain, key}
	if other, dup := k[ck]; dup {
		v.add(path, "same %s as wallet %q", what, other)
	}
	k[ck] = w.Name
}
