package store_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/keywatch/keywatch/store"
	"github.com/keywatch/keywatch/store/memory"
)

type checkpoint struct {
	Height uint64 `json:"height"`
	Hash   string `json:"hash"`
}

func TestRecordsRoundTripAndNameTheirErrors(t *testing.T) {
	ctx := t.Context()
	st := memory.New()
	t.Cleanup(func() { st.Close() })
	r := store.NewRecords[checkpoint](st, "checkpoint of chain eth")

	if _, found, err := r.Get(ctx, "cp"); err != nil || found {
		t.Fatalf("Get of nothing = found %v, %v; want not found, no error", found, err)
	}
	if err := r.Put(ctx, "cp", checkpoint{Height: 7, Hash: "0x07"}, 0); err != nil {
		t.Fatal(err)
	}
	if got, found, err := r.Get(ctx, "cp"); err != nil || !found || got.Height != 7 || got.Hash != "0x07" {
		t.Fatalf("Get = %+v, %v, %v; want height 7", got, found, err)
	}
	if ok, err := r.PutNew(ctx, "cp", checkpoint{Height: 1}, 0); err != nil || ok {
		t.Fatalf("PutNew over a record = %v, %v; want false", ok, err)
	}

	if err := r.Update(ctx, "cp", func(c checkpoint, found bool) (checkpoint, error) {
		if !found {
			t.Error("Update found no record")
		}
		c.Height++
		return c, nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := r.Update(ctx, "cp", func(c checkpoint, _ bool) (checkpoint, error) {
		c.Height = 100
		return c, store.ErrUnchanged
	}); err != nil {
		t.Fatalf("Update with ErrUnchanged = %v, want nil", err)
	}
	if got, _, _ := r.Get(ctx, "cp"); got.Height != 8 {
		t.Fatalf("height %d after one update and one unchanged, want 8", got.Height)
	}

	if err := st.Set(ctx, "cp", []byte("{not json"), 0); err != nil {
		t.Fatal(err)
	}
	_, _, err := r.Get(ctx, "cp")
	if !errors.Is(err, store.ErrCorrupt) || !strings.HasPrefix(err.Error(), "checkpoint of chain eth is corrupt") {
		t.Fatalf("Get of a corrupt record = %v; want ErrCorrupt naming the checkpoint", err)
	}
	called := false
	err = r.Update(ctx, "cp", func(c checkpoint, _ bool) (checkpoint, error) { called = true; return c, nil })
	if !errors.Is(err, store.ErrCorrupt) || called {
		t.Fatalf("Update of a corrupt record = %v (fn called: %v); want ErrCorrupt without calling fn", err, called)
	}
	if b, _ := st.Get(ctx, "cp"); string(b) != "{not json" {
		t.Fatalf("a failed update wrote %q", b)
	}
}

func TestRecordsInHashesAndLists(t *testing.T) {
	ctx := t.Context()
	st := memory.New()
	t.Cleanup(func() { st.Close() })
	r := store.NewRecords[checkpoint](st, "block")
	if err := r.HPut(ctx, "h", "a", checkpoint{Height: 1}); err != nil {
		t.Fatal(err)
	}
	if err := r.HPut(ctx, "h", "b", checkpoint{Height: 2}); err != nil {
		t.Fatal(err)
	}
	all, err := r.HGetAll(ctx, "h")
	if err != nil || len(all) != 2 || all["b"].Height != 2 {
		t.Fatalf("HGetAll = %v, %v", all, err)
	}
	if got, found, err := r.HGet(ctx, "h", "a"); err != nil || !found || got.Height != 1 {
		t.Fatalf("HGet = %+v, %v, %v", got, found, err)
	}
	if _, found, err := r.HGet(ctx, "h", "c"); err != nil || found {
		t.Fatalf("HGet of an absent field = %v, %v", found, err)
	}
	if err := st.HSet(ctx, "h", "c", []byte("nope")); err != nil {
		t.Fatal(err)
	}
	if _, err := r.HGetAll(ctx, "h"); !errors.Is(err, store.ErrCorrupt) || !strings.Contains(err.Error(), "field c") {
		t.Fatalf("HGetAll with a corrupt field = %v; want ErrCorrupt naming field c", err)
	}

	if n, err := r.Push(ctx, "l", checkpoint{Height: 1}, checkpoint{Height: 2}, checkpoint{Height: 3}); err != nil || n != 3 {
		t.Fatalf("Push = %d, %v", n, err)
	}
	got, err := r.Range(ctx, "l", 1, -1)
	if err != nil || len(got) != 2 || got[0].Height != 2 || got[1].Height != 3 {
		t.Fatalf("Range(1, -1) = %+v, %v; want heights 2 and 3", got, err)
	}
}
