package bitcoin

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/wire"

	"github.com/keywatch/keywatch/store"
	"github.com/keywatch/keywatch/store/memory"
)

// storedSatoshiSet is a set of watched outputs as the store holds it: one
// unspent output of Satoshi's block-9 key and the undo data of block 170,
// which spent another.
const storedSatoshiSet = `{"height":170,"hash":"00000000d1145790a8694403d4063f323d499e655c83426834d4ce2f8dd4a2ee",` +
	`"utxos":{"b1fea52486ce0c62bb442b530a3f0132b826c74e473d1f2c220bfa78111c5082:0":{"wallet":"satoshi","script":"qg==","value":5000000000}},` +
	`"journal":[{"height":170,"hash":"00000000d1145790a8694403d4063f323d499e655c83426834d4ce2f8dd4a2ee",` +
	`"parent":"000000002a22cfee1f2c846adbd12b3e183d4f97683f85dad08a79780a84bd55",` +
	`"spent":{"0437cd7f8525ceed2324359c2d0ba26006d92d856a9c20fa0241106ee5a597c9:0":{"wallet":"satoshi","script":"qg==","value":5000000000,` +
	`"by":"f4184fc596403b9d638783cf57adfe4c75c605f6356fbc91338530e9831e9e16"}},` +
	`"created":["f4184fc596403b9d638783cf57adfe4c75c605f6356fbc91338530e9831e9e16:1"]}],` +
	`"used":{},"wallets":{"satoshi":"` + satoshiKey + `"}}`

func satoshiSource(t *testing.T, st store.Store) *Source {
	t.Helper()
	src, err := NewSource(nil, Options{Chain: "btc", Network: &chaincfg.MainNetParams, Store: st,
		Wallets: []Wallet{{Name: "satoshi", Address: satoshiKey, Role: "hot"}}})
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// TestStoredSetRoundTrips: a stored set is read back as it was written, and
// written again byte for byte, at the same key.
func TestStoredSetRoundTrips(t *testing.T) {
	ctx := context.Background()
	st := memory.New()
	if err := st.Set(ctx, "watch:btc:utxo", []byte(storedSatoshiSet), 0); err != nil {
		t.Fatal(err)
	}
	src := satoshiSource(t, st)
	if err := src.load(ctx); err != nil {
		t.Fatal(err)
	}
	unspent, _ := wire.NewOutPointFromString("b1fea52486ce0c62bb442b530a3f0132b826c74e473d1f2c220bfa78111c5082:0")
	spentOp, _ := wire.NewOutPointFromString("0437cd7f8525ceed2324359c2d0ba26006d92d856a9c20fa0241106ee5a597c9:0")
	if u, ok := src.set.UTXOs[*unspent]; !ok || u.Wallet != "satoshi" || u.Value != 5000000000 || len(src.set.UTXOs) != 1 {
		t.Errorf("watched outputs %v, want the one of satoshi at %s", src.set.UTXOs, unspent)
	}
	if by, height, ok := src.set.spender(*spentOp); !ok || by != firstTx || height != 170 {
		t.Errorf("spender of %s: %s at %d (%v), want %s at 170", spentOp, by, height, ok, firstTx)
	}
	if src.set.Height != 170 || len(src.set.Journal) != 1 || len(src.set.Journal[0].Created) != 1 {
		t.Errorf("set at %d with %d journal entries, want 170 with block 170's", src.set.Height, len(src.set.Journal))
	}
	if err := src.save(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := st.Get(ctx, "watch:btc:utxo")
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != storedSatoshiSet {
		t.Errorf("saved\n%s\nwant\n%s", got, storedSatoshiSet)
	}
}

// TestStoredSetErrors: a set that cannot be read or is corrupt stops the
// source with an error naming the chain's set.
func TestStoredSetErrors(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name    string
		stored  string
		closed  bool
		want    string
		corrupt bool
	}{
		{name: "not json", stored: `{"height":`, want: "set of watched outputs of chain btc is corrupt", corrupt: true},
		{name: "bad outpoint", stored: `{"utxos":{"nonsense":{"wallet":"satoshi"}}}`, want: `set of watched outputs of chain btc is corrupt: outpoint "nonsense"`, corrupt: true},
		{name: "store closed", closed: true, want: "read set of watched outputs of chain btc: " + memory.ErrClosed.Error()},
	} {
		t.Run(c.name, func(t *testing.T) {
			st := memory.New()
			if c.stored != "" {
				if err := st.Set(ctx, "watch:btc:utxo", []byte(c.stored), 0); err != nil {
					t.Fatal(err)
				}
			}
			if c.closed {
				st.Close()
			}
			src := satoshiSource(t, st)
			err := src.load(ctx)
			if err == nil || !strings.HasPrefix(err.Error(), c.want) {
				t.Fatalf("load: %v, want an error starting %q", err, c.want)
			}
			if errors.Is(err, store.ErrCorrupt) != c.corrupt {
				t.Errorf("load: %v; corrupt %v, want %v", err, errors.Is(err, store.ErrCorrupt), c.corrupt)
			}
			if src.set != nil {
				t.Errorf("a set was taken from a failed read")
			}
		})
	}
}
