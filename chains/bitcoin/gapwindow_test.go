package bitcoin

import (
	"testing"

	"github.com/btcsuite/btcd/chaincfg"
)

// bip84Account is BIP84's test vector account key (m/84'/0'/0').
const bip84Account = "zpub6rFR7y4Q2AijBEqTUquhVz398htDFrtymD9xYYfG1m4wAcvPhXNfE3EfH1r1ADqtfSdVCToUG868RvUUkgDKf31mGDtKsAYz2oz2AGutZYs"

// TestGapWindow: a payment to an address in an xpub wallet's window moves
// the window so that gap-limit unused addresses follow it, and only then;
// the window a scan of a new wallet's blocks reached joins the watch set,
// and is stored and restored as the first unused index of each branch.
func TestGapWindow(t *testing.T) {
	net := &chaincfg.MainNetParams
	wallets := []Wallet{{Name: "ops", XPub: bip84Account, GapLimit: 3}, {Name: "cold", Address: satoshiKey}}
	newSet := func() *watchSet {
		t.Helper()
		ws, err := newWatchSet(net, wallets)
		if err != nil {
			t.Fatal(err)
		}
		return ws
	}
	watched := func(ws *watchSet, branch, index uint32) bool {
		t.Helper()
		script, err := ws.byName["ops"].account.Derive(branch, index)
		if err != nil {
			t.Fatal(err)
		}
		_, ok := ws.scripts[string(script)]
		return ok
	}

	scan := newSet()
	ops := scan.byName["ops"]
	if ops.derived != [2]uint32{3, 3} || !watched(scan, Receive, 2) || watched(scan, Receive, 3) {
		t.Fatalf("a new window derives %v, want 3 per branch", ops.derived)
	}
	for _, c := range []struct {
		branch, index uint32
		moved         bool
		derived       [2]uint32
	}{
		{Receive, 2, true, [2]uint32{6, 3}},
		{Receive, 1, false, [2]uint32{6, 3}}, // behind the last used one
		{Change, 0, true, [2]uint32{6, 4}},
		{Receive, 5, true, [2]uint32{9, 4}},
	} {
		moved, err := scan.use(holder{wallet: ops, derived: true, branch: c.branch, index: c.index})
		if err != nil || moved != c.moved || ops.derived != c.derived {
			t.Fatalf("use %d/%d: moved %v, window %v, %v; want %v, %v", c.branch, c.index, moved, ops.derived, err, c.moved, c.derived)
		}
	}
	if moved, err := scan.use(holder{wallet: scan.byName["cold"]}); moved || err != nil {
		t.Errorf("a payment to an explicit address moved a window (%v, %v)", moved, err)
	}

	main := newSet()
	if err := main.widenTo(scan); err != nil {
		t.Fatal(err)
	}
	if got := main.byName["ops"].derived; got != [2]uint32{9, 4} || !watched(main, Receive, 8) || !watched(main, Change, 3) {
		t.Errorf("after widening, the window is %v, want the scan's [9 4]", got)
	}
	used := main.used()
	if used["ops"] != [2]uint32{6, 1} || len(used) != 1 {
		t.Errorf("used %v, want ops at [6 1]", used)
	}

	restored := newSet()
	if err := restored.restoreUsed(used); err != nil {
		t.Fatal(err)
	}
	if got := restored.byName["ops"].derived; got != [2]uint32{9, 4} {
		t.Errorf("restored window %v, want [9 4]", got)
	}
}
