package bitcoin

import (
	"context"
	"fmt"
	"math/big"
	"sort"
	"sync"
	"testing"

	"github.com/btcsuite/btcd/chaincfg"

	"github.com/keywatch/keywatch/chains"
	"github.com/keywatch/keywatch/hops"
	"github.com/keywatch/keywatch/store/memory"
	"github.com/keywatch/keywatch/watchers"
)

const (
	// The key block 9's coinbase paid (Satoshi Nakamoto), and Hal Finney's
	// key, which received the first bitcoin transaction between people:
	// f4184fc5…9e16 in block 170, 10 BTC, with 40 BTC back to the sender.
	satoshiKey = "0411db93e1dcdb8a016b49840f8c53bc1eb68a382e97b1482ecad7b148a6909a5cb2e0eaddfb84ccf9744464f82e160bfa9b8b64f9d4c03f999b8643f656b412a3"
	halKey     = "04ae1a62fe09c5f51b13905f07f06b99a2f7159b2225f374cd378d71302fa28414e7aab37397f554a7df5f142c21c1b7303b8a0626f1baded5c72a704f7e6cd84c"
	firstTx    = "f4184fc596403b9d638783cf57adfe4c75c605f6356fbc91338530e9831e9e16"
)

type collected struct {
	mu  sync.Mutex
	evs []chains.Event
}

func (c *collected) deliver(_ context.Context, evs []chains.Event) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.evs = append(c.evs, evs...)
	return nil
}

// TestFollowMainnetBlocks1To255 follows the real first 255 mainnet blocks
// with Satoshi's block-9 key watched: the coinbase is an inflow, block 170's
// payment to Hal Finney an outflow of 10 BTC, and the 40 BTC returned to the
// same key is change, not an outflow. Whatever else the key did in these
// blocks, what came in minus what went out and the fees is what the set of
// watched outputs holds at the end.
func TestFollowMainnetBlocks1To255(t *testing.T) {
	blocks := readBlocks(t, "btc_fixtures/btcd/database/testdata/blocks1-256.bz2")
	if len(blocks) != 255 { // blocks 1 to 255
		t.Fatalf("%d blocks in the fixture, want 255", len(blocks))
	}
	node := newFixtureNode(1, blocks)
	st := memory.New()
	src, err := NewSource(node, Options{Chain: "btc", Network: &chaincfg.MainNetParams, NativeUSD: 60000, Store: st,
		Wallets: []Wallet{{Name: "satoshi", Address: satoshiKey, Role: "hot"}}})
	if err != nil {
		t.Fatal(err)
	}
	var got collected
	start := uint64(1)
	f, err := watchers.New(src, watchers.Options{Chain: "btc", Confirmations: 1, StartBlock: &start, Store: st, Deliver: got.deliver})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Step(context.Background()); err != nil {
		t.Fatal(err)
	}

	byID := map[string]chains.Event{}
	for _, ev := range got.evs {
		if ev.Status != chains.StatusConfirmed {
			t.Errorf("event %s delivered as %s; with one confirmation every processed block is final", ev.ID, ev.Status)
		}
		byID[ev.ID] = ev
	}
	hal, ok := byID["btc:"+firstTx+":0"]
	if !ok {
		t.Fatalf("no out event for the payment to Hal Finney; events: %v", ids(got.evs))
	}
	want := map[string]string{
		"direction": "out", "block": "170", "wallet": "satoshi", "amount": "10", "asset": "BTC",
		"counterparty": halKey, "from": satoshiKey, "usd": "600000", "fee": "0",
	}
	have := map[string]string{
		"direction": string(hal.Direction), "block": fmt.Sprint(hal.Block), "wallet": hal.Wallet, "amount": hal.Amount.String(),
		"asset": hal.Asset, "counterparty": hal.Counterparty, "from": hal.From, "usd": fmt.Sprint(hal.USD), "fee": hal.Detail["fee"],
	}
	for k, v := range want {
		if have[k] != v {
			t.Errorf("Hal's payment: %s = %q, want %q", k, have[k], v)
		}
	}
	if _, ok := byID["btc:"+firstTx+":1"]; ok {
		t.Error("the 40 BTC returned to Satoshi's key was reported as a movement; it is change")
	}
	coinbase := blocks[8].Transactions[0].TxHash().String()
	if in, ok := byID["btc:"+coinbase+":0"]; !ok || in.Direction != chains.In || in.Amount.String() != "50" || in.Detail["sender"] == "" {
		t.Errorf("block 9's coinbase: %+v, want an in event of 50 BTC from the coinbase", in)
	}

	// Conservation: inflows - outflows - fees = the watched outputs left.
	sum := new(big.Int)
	for _, ev := range byID {
		switch ev.Direction {
		case chains.In:
			sum.Add(sum, ev.Amount.Units)
		case chains.Out:
			sum.Sub(sum, ev.Amount.Units)
		}
	}
	fees := map[string]bool{}
	for _, ev := range byID {
		if ev.Direction == chains.Out && !fees[ev.Tx] {
			fees[ev.Tx] = true
			a, err := chains.ParseAmount(ev.Detail["fee"])
			if err != nil {
				t.Fatalf("%s: fee %q: %v", ev.ID, ev.Detail["fee"], err)
			}
			sum.Sub(sum, new(big.Int).Mul(a.Units, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(8-a.Decimals)), nil)))
		}
	}
	var left int64
	for _, u := range src.set.UTXOs {
		left += u.Value
	}
	if sum.Int64() != left {
		t.Errorf("in - out - fees = %d sat, but the watched outputs hold %d sat", sum.Int64(), left)
	}
	t.Logf("%d events; %d sat left on the key: %v", len(byID), left, ids(got.evs))
}

// TestDecodeMainnetBlock574200 decodes a real 3,315-transaction block
// (574200, 2019-05-02) watching the address its coinbase paid: one in event
// of the block reward plus fees, 13.00076961 BTC.
func TestDecodeMainnetBlock574200(t *testing.T) {
	blocks := readBlocks(t, "btc_fixtures/btcd/wire/testdata/block-0000000000000000001602407ac49862a7bca9d00f7f402db20b7be2f5de59d2.blk")
	node := newFixtureNode(574200, blocks)
	st := memory.New()
	src, err := NewSource(node, Options{Chain: "btc", Network: &chaincfg.MainNetParams, Store: st,
		Wallets: []Wallet{{Name: "pool", Address: "bc1qjl8uwezzlech723lpnyuza0h2cdkvxvh54v3dn", Role: "hot"}}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := src.BlockAt(context.Background(), 574200)
	if err != nil {
		t.Fatal(err)
	}
	if b.Hash != "0000000000000000001602407ac49862a7bca9d00f7f402db20b7be2f5de59d2" {
		t.Fatalf("block hash %s", b.Hash)
	}
	evs, err := src.Events(context.Background(), b)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 {
		t.Fatalf("%d events, want the coinbase's one: %v", len(evs), ids(evs))
	}
	ev := evs[0]
	if ev.Direction != chains.In || ev.Amount.String() != "13.00076961" || ev.Block != 574200 || ev.To != "bc1qjl8uwezzlech723lpnyuza0h2cdkvxvh54v3dn" {
		t.Errorf("event %+v", ev)
	}
	// A second call (a retry after a failed delivery) returns the same
	// events without applying the block twice.
	again, err := src.Events(context.Background(), b)
	if err != nil || len(again) != 1 || again[0].ID != ev.ID || len(src.set.UTXOs) != 1 {
		t.Errorf("retry: %v events, %d watched outputs, err %v", len(again), len(src.set.UTXOs), err)
	}
}

func ids(evs []chains.Event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = fmt.Sprintf("%s %s %s", e.ID, e.Direction, e.Amount)
	}
	sort.Strings(out)
	return out
}

// TestFollowedCoinsOnMainnetBlocks follows Satoshi's key as an address
// forwarding follows (not a watched wallet) until block 175's time: the
// coinbase of block 9 paid to it is followed, so its spend in block 170 is
// the followed address's outflow of 10 BTC to Hal Finney (the 40 BTC change
// back to the key is no event); once the window has passed, its later
// spends are not decoded and its followed coins are dropped.
func TestFollowedCoinsOnMainnetBlocks(t *testing.T) {
	ctx := context.Background()
	blocks := readBlocks(t, "btc_fixtures/btcd/database/testdata/blocks1-256.bz2")
	node := newFixtureNode(1, blocks)
	st := memory.New()
	reg := hops.New(st)
	until := blocks[174].Header.Timestamp.UTC()
	if err := reg.Follow(ctx, hops.Hop{Policy: "forwarding", Chain: "btc", Address: satoshiKey, Depth: 1, Root: "treasury", Until: until}); err != nil {
		t.Fatal(err)
	}
	src, err := NewSource(node, Options{Chain: "btc", Network: &chaincfg.MainNetParams, NativeUSD: 60000, Store: st, Followed: reg})
	if err != nil {
		t.Fatal(err)
	}
	var got collected
	start := uint64(1)
	f, err := watchers.New(src, watchers.Options{Chain: "btc", Confirmations: 1, StartBlock: &start, Store: st, Deliver: got.deliver})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Step(ctx); err != nil {
		t.Fatal(err)
	}
	if len(got.evs) != 1 {
		t.Fatalf("%d events, want the spend of block 170 alone: %v", len(got.evs), ids(got.evs))
	}
	ev := got.evs[0]
	want := map[string]string{
		"id": "btc:" + firstTx + ":0", "direction": "out", "block": "170", "wallet": satoshiKey, "role": chains.RoleFollowed,
		"from": satoshiKey, "counterparty": halKey, "amount": "10", "usd": "600000", "fee": "0",
	}
	have := map[string]string{
		"id": ev.ID, "direction": string(ev.Direction), "block": fmt.Sprint(ev.Block), "wallet": ev.Wallet, "role": ev.WalletRole,
		"from": ev.From, "counterparty": ev.Counterparty, "amount": ev.Amount.String(), "usd": fmt.Sprint(ev.USD), "fee": ev.Detail["fee"],
	}
	for k, v := range want {
		if have[k] != v {
			t.Errorf("%s = %q, want %q", k, have[k], v)
		}
	}
	for op, u := range src.set.UTXOs {
		t.Errorf("output %s (%s, %d sat) still followed after the window", op, u.Wallet, u.Value)
	}
}
