package bitcoin

import "fmt"

// An xpub wallet is watched through a window of derived addresses on each
// branch: gap-limit addresses past the last one used. A payment to an
// address in the window moves it on (use); the set of watched outputs keeps
// where each window stands (used, restoreUsed).

// deriveTo derives branch b of wl up to (not including) index n.
func (s *watchSet) deriveTo(wl *wallet, b uint32, n uint32) error {
	for ; wl.derived[b] < n; wl.derived[b]++ {
		i := wl.derived[b]
		script, err := wl.account.Derive(b, i)
		if err != nil {
			return fmt.Errorf("wallet %s: %w", wl.Name, err)
		}
		if h, dup := s.scripts[string(script)]; dup && h.wallet != wl {
			return fmt.Errorf("wallet %s: derived address %d/%d is also watched by wallet %s", wl.Name, b, i, h.wallet.Name)
		}
		s.scripts[string(script)] = holder{wallet: wl, derived: true, branch: b, index: i}
	}
	return nil
}

// use records that h's script received coins: the window of watched
// addresses moves so that gap-limit unused ones follow it. It reports
// whether new scripts were derived.
func (s *watchSet) use(h holder) (bool, error) {
	if !h.derived {
		return false, nil
	}
	want := h.index + 1 + uint32(h.wallet.GapLimit)
	if h.wallet.derived[h.branch] >= want {
		return false, nil
	}
	return true, s.deriveTo(h.wallet, h.branch, want)
}

// used returns, per xpub wallet and branch, the first index after the last
// used one, as far as the derived window shows.
func (s *watchSet) used() map[string][2]uint32 {
	out := map[string][2]uint32{}
	for _, wl := range s.wallets {
		if wl.account == nil {
			continue
		}
		gap := uint32(wl.GapLimit)
		var u [2]uint32
		for b := range u {
			if wl.derived[b] > gap {
				u[b] = wl.derived[b] - gap
			}
		}
		out[wl.Name] = u
	}
	return out
}

// restoreUsed re-derives the windows recorded by used.
func (s *watchSet) restoreUsed(u map[string][2]uint32) error {
	for name, next := range u {
		wl, ok := s.byName[name]
		if !ok || wl.account == nil {
			continue
		}
		for b := Receive; b <= Change; b++ {
			if err := s.deriveTo(wl, b, next[b]+uint32(wl.GapLimit)); err != nil {
				return err
			}
		}
	}
	return nil
}

// widenTo moves the window of each xpub wallet of s at least as far as the
// window of the wallet of the same name in other (a scan of a new wallet's
// past blocks), so the addresses it found used stay watched.
func (s *watchSet) widenTo(other *watchSet) error {
	for _, w := range other.wallets {
		if main := s.byName[w.Name]; main != nil && main.account != nil {
			for b := Receive; b <= Change; b++ {
				if err := s.deriveTo(main, b, w.derived[b]); err != nil {
					return err
				}
			}
		}
	}
	return nil
}
