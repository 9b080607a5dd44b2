package ethereum

import (
	"bufio"
	"context"
	"encoding/json"
	"maps"
	"math/big"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/keywatch/keywatch/chains"
	"github.com/keywatch/keywatch/internal/testenv"
)

// etlLog is one line of ethereum-etl's expected_logs.json.
type etlLog struct {
	LogIndex  uint           `json:"log_index"`
	TxHash    common.Hash    `json:"transaction_hash"`
	Address   common.Address `json:"address"`
	Data      hexutil.Bytes  `json:"data"`
	Topics    []common.Hash  `json:"topics"`
	Block     uint64         `json:"block_number"`
	BlockHash common.Hash    `json:"block_hash"`
	Time      int64          `json:"block_timestamp"`
}

// mainnetLogs reads the logs of mainnet blocks 17173049 and 17173050 (May
// 2023, when Permit2 was six months old), by block.
func mainnetLogs(t testing.TB) (map[uint64][]types.Log, map[uint64]int64) {
	t.Helper()
	path := testenv.Data(t, "eth_fixtures/ethereum-etl/tests/resources/test_stream/blocks_17173049_17173050/expected_logs.json")
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	logs, times := map[uint64][]types.Log{}, map[uint64]int64{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var l etlLog
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		logs[l.Block] = append(logs[l.Block], types.Log{Address: l.Address, Topics: l.Topics, Data: l.Data,
			BlockNumber: l.Block, BlockHash: l.BlockHash, TxHash: l.TxHash, Index: l.LogIndex})
		times[l.Block] = l.Time
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return logs, times
}

// TestRealMainnetApprovals decodes the approvals of four mainnet wallets in
// two real blocks, as the approvals query selects them from every log of the
// block: a Permit2 Permit (an unlimited PEPE allowance for the Universal
// Router) and what the token logs of the wallet's allowance for Permit2 as
// Permit2 spends it, an ERC-721 approve (an Azuki for Blur's delegate) and
// its clearing when sold, a setApprovalForAll (for OpenSea's conduit) and a
// USDT approve of Permit2 itself.
func TestRealMainnetApprovals(t *testing.T) {
	logs, times := mainnetLogs(t)
	var (
		trader    = common.HexToAddress("0x8336612144bc990301331256dea1b50d8960a92f")
		collector = common.HexToAddress("0x29469395eaf6f95920e59f858042f0e28d98a20b")
		seller    = common.HexToAddress("0x47b3c1c8c059bd3df06ad5da0acb57cd206f7454")
		payer     = common.HexToAddress("0xb09eadee5e0417e5ab217124c03157d908967068")
		usdt      = common.HexToAddress("0xdac17f958d2ee523a2206206994597c13d831ec7")
	)
	s := NewSource(receiptsOnly{}, Options{Chain: "eth", Wallets: []Wallet{
		{Name: "trader", Address: trader, Role: "hot"}, {Name: "collector", Address: collector, Role: "hot"},
		{Name: "seller", Address: seller, Role: "hot"}, {Name: "payer", Address: payer, Role: "hot"},
	}, Tokens: []Token{{Symbol: "USDT", Address: usdt, Decimals: 6, USD: 1}}})

	var got []chains.Event
	for _, n := range []uint64{17173049, 17173050} {
		hash := logs[n][0].BlockHash
		var selected []types.Log
		for _, q := range s.approvalQueries(hash) {
			for _, l := range logs[n] {
				if topicsMatch(q.Topics, l.Topics) {
					selected = append(selected, l)
				}
			}
		}
		block := types.NewBlockWithHeader(&types.Header{Number: new(big.Int).SetUint64(n), Time: uint64(times[n])})
		evs, err := s.decode(context.Background(), block, selected, nil)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, evs...)
	}

	want := []struct {
		id, wallet, spender, asset, token, amount string
		detail                                    map[string]string
	}{
		{"eth:0x040b743181187013c6b91174111364974a0c2b60ec31b9d13dc8570e648a9e0f:143", "trader", "0xef1c6e67703c7bd7107eed8303fbe6ec2554bf6b",
			"0x6982508145454ce325ddbe47a25d4ec3d2311933", "0x6982508145454ce325ddbe47a25d4ec3d2311933", "1461501637330902918203684832716283019655932542975",
			map[string]string{"standard": "permit2", "event": "Permit", "contract": "0x000000000022d473030f116ddee9f6b43ac78ba3", "spender": "0xef1c6e67703c7bd7107eed8303fbe6ec2554bf6b",
				"token": "0x6982508145454ce325ddbe47a25d4ec3d2311933", "expiration": "1685621536", "nonce": "0", "unlimited": "true", "revoked": "false"}},
		// In the same transaction PEPE, which lowers even a max allowance on
		// transferFrom, logs what is left of the trader's allowance for
		// Permit2: still unlimited.
		{"eth:0x040b743181187013c6b91174111364974a0c2b60ec31b9d13dc8570e648a9e0f:146", "trader", "0x000000000022d473030f116ddee9f6b43ac78ba3",
			"0x6982508145454ce325ddbe47a25d4ec3d2311933", "0x6982508145454ce325ddbe47a25d4ec3d2311933", "115792089237316195423570985008687907853269984665640284039457584007913129639935",
			map[string]string{"standard": "erc20", "event": "Approval", "contract": "0x6982508145454ce325ddbe47a25d4ec3d2311933", "spender": "0x000000000022d473030f116ddee9f6b43ac78ba3",
				"unlimited": "true", "revoked": "false"}},
		{"eth:0xcae768eb478e0f3d4fe037c36d741663e66662bcccc38ac1790e2f4e54d91902:207", "payer", "0x000000000022d473030f116ddee9f6b43ac78ba3",
			"USDT", "0xdac17f958d2ee523a2206206994597c13d831ec7", "25",
			map[string]string{"standard": "erc20", "event": "Approval", "contract": "0xdac17f958d2ee523a2206206994597c13d831ec7", "spender": "0x000000000022d473030f116ddee9f6b43ac78ba3",
				"unlimited": "false", "revoked": "false"}},
		{"eth:0x63fd57422f2051d8307eca6fa1e2874759bef24549be34cc820a443efc5f9e90:197", "collector", "0x00000000000111abe46ff893f3b2fdf1f759a8a8",
			"0xed5af388653567af2f388e6224dc7c4b3241c544", "0xed5af388653567af2f388e6224dc7c4b3241c544", "1",
			map[string]string{"standard": "erc721", "event": "Approval", "contract": "0xed5af388653567af2f388e6224dc7c4b3241c544", "spender": "0x00000000000111abe46ff893f3b2fdf1f759a8a8",
				"token_id": "1527", "unlimited": "false", "revoked": "false"}},
		// Sold in the same transaction: the collection clears the approval.
		{"eth:0x63fd57422f2051d8307eca6fa1e2874759bef24549be34cc820a443efc5f9e90:199", "collector", "0x0000000000000000000000000000000000000000",
			"0xed5af388653567af2f388e6224dc7c4b3241c544", "0xed5af388653567af2f388e6224dc7c4b3241c544", "0",
			map[string]string{"standard": "erc721", "event": "Approval", "contract": "0xed5af388653567af2f388e6224dc7c4b3241c544", "spender": "0x0000000000000000000000000000000000000000",
				"token_id": "1527", "unlimited": "false", "revoked": "true"}},
		{"eth:0x73b718102e7b879da4b23740e6af3b6674efd914652d67f0f8fed9848332201c:253", "seller", "0x1e0049783f008a0085193e00003d00cd54003c71",
			"0x34d85c9cdeb23fa97cb08333b511ac86e1c4e258", "0x34d85c9cdeb23fa97cb08333b511ac86e1c4e258", "0",
			// Nothing answers ERC-165 here (no node): the standard is unknown.
			map[string]string{"standard": "unknown", "event": "ApprovalForAll", "contract": "0x34d85c9cdeb23fa97cb08333b511ac86e1c4e258", "spender": "0x1e0049783f008a0085193e00003d00cd54003c71",
				"approved_for_all": "true", "unlimited": "true", "revoked": "false"}},
	}
	byID := map[string]chains.Event{}
	for _, e := range got {
		byID[e.ID] = e
	}
	if len(got) != len(want) {
		t.Errorf("%d events, want %d: %+v", len(got), len(want), got)
	}
	for _, w := range want {
		e, ok := byID[w.id]
		if !ok {
			t.Errorf("no event %s (got %v)", w.id, slices.Collect(maps.Keys(byID)))
			continue
		}
		if e.Kind != chains.KindApproval || e.Wallet != w.wallet || e.Counterparty != w.spender || e.To != w.spender ||
			e.Asset != w.asset || e.Token != w.token || e.Amount.String() != w.amount || !maps.Equal(e.Detail, w.detail) {
			t.Errorf("%s:\n got %s %s counterparty %s asset %s token %s amount %s detail %v\nwant %s counterparty %s asset %s token %s amount %s detail %v",
				w.id, e.Kind, e.Wallet, e.Counterparty, e.Asset, e.Token, e.Amount, e.Detail, w.wallet, w.spender, w.asset, w.token, w.amount, w.detail)
		}
	}
	if e := byID[want[0].id]; e.Time != time.Unix(1683029999, 0).UTC() {
		t.Errorf("the Permit's time is %v, want its block's", e.Time)
	}
}
