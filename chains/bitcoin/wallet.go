package bitcoin

import (
	"fmt"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/txscript"
	"github.com/keywatch/keywatch/chains/bitcoin/btcaddr"
)

// Wallet is a watched Bitcoin wallet: one address, or an account-level
// extended public key whose receive and change addresses are derived.
type Wallet struct {
	Name  string
	Role  string
	Owner string
	// Address is one address (or a hex public key, for P2PK outputs).
	Address string
	// XPub is an account-level extended public key; Script sets its script
	// type where the key's prefix leaves it open.
	XPub   string
	Script string
	// GapLimit is how many unused addresses are watched past the last used
	// one on each branch (default 20).
	GapLimit int
	// Birthday is the height from which the wallet's existing coins are
	// looked for when keywatch first watches it (0: none; only coins received
	// from then on are known).
	Birthday uint64
}

// fingerprint identifies what a wallet watches, to notice a wallet whose
// key or address changed under the same name.
func (w Wallet) fingerprint() string {
	if w.XPub != "" {
		return w.XPub + "/" + w.Script
	}
	return w.Address
}

// wallet is a watched wallet with its derivation state.
type wallet struct {
	Wallet
	account *Account
	// derived[b] is the first index of branch b not derived yet.
	derived [2]uint32
	address string // explicit wallets: the address as the network shows it
}

// holder says which wallet (and, for derived scripts, which branch and
// index) a watched script belongs to.
type holder struct {
	wallet  *wallet
	derived bool
	branch  uint32
	index   uint32
}

// watchSet is every watched script of a chain.
type watchSet struct {
	net     *chaincfg.Params
	scripts map[string]holder
	wallets []*wallet
	byName  map[string]*wallet
}

func newWatchSet(net *chaincfg.Params, ws []Wallet) (*watchSet, error) {
	s := &watchSet{net: net, scripts: map[string]holder{}, byName: map[string]*wallet{}}
	for _, w := range ws {
		if err := s.add(w); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// CheckWallets judges wallets as a chain on network net would watch them,
// in order, and returns one error per wallet that cannot be watched (a
// malformed address, one of another network, a private key, a script that
// an earlier wallet already watches), by the wallet's index in ws.
func CheckWallets(net *chaincfg.Params, ws []Wallet) map[int]error {
	set := &watchSet{net: net, scripts: map[string]holder{}, byName: map[string]*wallet{}}
	errs := map[int]error{}
	for i, w := range ws {
		if err := set.add(w); err != nil {
			errs[i] = err
		}
	}
	return errs
}

// add parses a wallet and watches its scripts (for an xpub, the first
// gap-limit addresses of each branch).
func (s *watchSet) add(w Wallet) error {
	if _, dup := s.byName[w.Name]; dup {
		return fmt.Errorf("wallet %s: defined twice", w.Name)
	}
	wl := &wallet{Wallet: w}
	switch {
	case w.XPub != "" && w.Address != "":
		return fmt.Errorf("wallet %s: set address or xpub, not both", w.Name)
	case w.XPub != "":
		acct, err := ParseAccountKey(w.XPub, w.Script, s.net)
		if err != nil {
			return fmt.Errorf("wallet %s: xpub: %w", w.Name, err)
		}
		if wl.GapLimit <= 0 {
			wl.GapLimit = 20
		}
		wl.account = acct
		s.byName[w.Name] = wl
		s.wallets = append(s.wallets, wl)
		for b := Receive; b <= Change; b++ {
			if err := s.deriveTo(wl, b, uint32(wl.GapLimit)); err != nil {
				return err
			}
		}
		return nil
	default:
		script, err := btcaddr.ParseAddress(w.Address, s.net)
		if err != nil {
			return fmt.Errorf("wallet %s: address: %w", w.Name, err)
		}
		if h, dup := s.scripts[string(script)]; dup {
			return fmt.Errorf("wallet %s: address %s pays to the same script as wallet %s", w.Name, w.Address, h.wallet.Name)
		}
		wl.address = btcaddr.AddressOf(script, s.net)
		s.scripts[string(script)] = holder{wallet: wl}
		s.byName[w.Name] = wl
		s.wallets = append(s.wallets, wl)
		return nil
	}
}

// addresses returns every watched script as an address of the network, for
// btcd's transaction filter (scripts without an address are left out).
func (s *watchSet) addresses() []btcutil.Address {
	out := make([]btcutil.Address, 0, len(s.scripts))
	for script := range s.scripts {
		_, addrs, _, err := txscript.ExtractPkScriptAddrs([]byte(script), s.net)
		if err == nil && len(addrs) == 1 {
			out = append(out, addrs[0])
		}
	}
	return out
}
