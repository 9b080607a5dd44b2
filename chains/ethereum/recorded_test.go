package ethereum_test

import (
	"context"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"

	"github.com/keywatch/keywatch/chains"
	kwe "github.com/keywatch/keywatch/chains/ethereum"
	"github.com/keywatch/keywatch/internal/testenv"
)

func TestRecordedNode(t *testing.T) {
	dir := testenv.Data(t, "eth_fixtures/ethereum-etl")
	rec, err := kwe.OpenRecorded(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Close()
	if got := fmt.Sprint(rec.Heights()); got != "[0 47218 47219 483920 1755634 1755635]" {
		t.Errorf("recorded blocks %s", got)
	}
	if _, ok := rec.HeaderOnly()[7444794]; !ok || len(rec.HeaderOnly()) != 1 {
		t.Errorf("header-only blocks %v, want 7444794 (eth_getBlockByNumber latest, false)", rec.HeaderOnly())
	}
	ctx := context.Background()
	c := rec.Client()

	head, err := c.BlockNumber(ctx)
	if err != nil || head != 1755635 {
		t.Errorf("BlockNumber = %d, %v", head, err)
	}
	h, err := c.HeaderByNumber(ctx, big.NewInt(483920))
	if err != nil {
		t.Fatal(err)
	}
	if h.Hash().Hex() != "0x246edb4b351d93c27926f4649bcf6c24366e2a7c7c718dc9158eea20c03bc6ae" {
		t.Errorf("block 483920 hash %s", h.Hash().Hex())
	}
	if _, err := c.HeaderByNumber(ctx, big.NewInt(483921)); err != ethereum.NotFound {
		t.Errorf("a block not recorded: %v, want not found", err)
	}
	b, err := c.BlockByHash(ctx, h.Hash())
	if err != nil || len(b.Transactions()) != 4 {
		t.Fatalf("block 483920: %v (%d transactions)", err, len(b.Transactions()))
	}

	// eth_getLogs over the recorded eth_getFilterLogs results and receipts.
	token := common.HexToAddress("0xf4eced2f682ce333f96f2d8966c613ded8fc95dd")
	hash := h.Hash()
	from := common.HexToHash("0x0000000000000000000000009b22a80d5c7b3374a05b446081f97d0a34079e7f")
	tests := []struct {
		name   string
		q      ethereum.FilterQuery
		wantTx []string
	}{
		{"every Transfer of the token", ethereum.FilterQuery{BlockHash: &hash, Addresses: []common.Address{token}, Topics: [][]common.Hash{{kwe.TopicTransfer}}},
			[]string{"0x04cbcb236043d8fb7839e07bbc7f5eed692fb2ca55d897f1101eac3e3ad4fab8", "0xcea6f89720cc1d2f46cc7a935463ae0b99dd5fad9c91bb7357de5421511cee49"}},
		{"from one sender", ethereum.FilterQuery{BlockHash: &hash, Topics: [][]common.Hash{{kwe.TopicTransfer, kwe.TopicApproval}, {from}}},
			[]string{"0xcea6f89720cc1d2f46cc7a935463ae0b99dd5fad9c91bb7357de5421511cee49"}},
		{"Approvals only", ethereum.FilterQuery{BlockHash: &hash, Topics: [][]common.Hash{{kwe.TopicApproval}}}, nil},
		{"another contract", ethereum.FilterQuery{BlockHash: &hash, Addresses: []common.Address{common.HexToAddress("0x01")}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ls, err := c.FilterLogs(ctx, tt.q)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, l := range ls {
				got = append(got, l.TxHash.Hex())
			}
			if strings.Join(got, " ") != strings.Join(tt.wantTx, " ") {
				t.Errorf("logs of %v, want %v", got, tt.wantTx)
			}
		})
	}

	// A pre-Byzantium receipt: "status": null, the state root instead.
	r, err := c.TransactionReceipt(ctx, common.HexToHash("0x05287a561f218418892ab053adfb3d919860988b19458c570c5c30f51c146f02"))
	if err != nil {
		t.Fatal(err)
	}
	if len(r.PostState) == 0 || r.Status != 0 {
		t.Errorf("receipt: post state %x, status %d", r.PostState, r.Status)
	}
	// ... which the source counts as a movement made.
	src := kwe.NewSource(c, kwe.Options{Chain: "eth", NativeSymbol: "ETH", Wallets: []kwe.Wallet{{Name: "payout", Address: common.HexToAddress("0x2a65aca4d5fc5b5c859090a6c34d164135398226"), Role: "hot"}}})
	wb, err := src.BlockAt(ctx, 483920)
	if err != nil {
		t.Fatal(err)
	}
	evs, err := src.Events(ctx, wb)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || evs[0].Amount.String() != "1.53021962" || evs[0].Direction != chains.Out {
		t.Errorf("events %+v", evs)
	}
	if _, err := src.BlockAt(ctx, 483921); err != chains.ErrNoBlock {
		t.Errorf("BlockAt of a block not recorded: %v", err)
	}

	// What was not recorded is named, never made up.
	if _, err := c.BalanceAt(ctx, common.HexToAddress("0x2a65aca4d5fc5b5c859090a6c34d164135398226"), nil); err == nil || !strings.Contains(err.Error(), "not among the recorded responses") {
		t.Errorf("BalanceAt: %v", err)
	}
	if _, err := c.TransactionReceipt(ctx, common.HexToHash("0x01")); err == nil || !strings.Contains(err.Error(), "record its eth_getTransactionReceipt response") {
		t.Errorf("receipt not recorded: %v", err)
	}
	if _, err := c.HeaderByNumber(ctx, big.NewInt(7444794)); err == nil || !strings.Contains(err.Error(), "recorded without its transactions") {
		t.Errorf("header-only block: %v", err)
	}
}

func TestRecordedBadFiles(t *testing.T) {
	block, err := os.ReadFile(testenv.Data(t, "eth_fixtures/ethereum-etl/tests/resources/test_stream/blocks_1755634_1755635/web3_response.eth_getBlockByNumber_0x1ac9f3_true.json"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, file, data, want string
	}{
		{"an altered header", "web3_response.eth_getBlockByNumber_0x1ac9f3_true.json",
			strings.Replace(string(block), `"gasUsed": "0xe04a"`, `"gasUsed": "0xe04b"`, 1),
			`block 1755635: the recorded header does not hash to its recorded hash 0x1dec87ec1ba8e65b7773bb6f62249468948a28a427efd3d896a2ff7d7c591a67`},
		{"a truncated response", "web3_response.eth_getBlockByNumber_0x1ac9f3_true.json", string(block[:len(block)/2]),
			"web3_response.eth_getBlockByNumber_0x1ac9f3_true.json: not a JSON-RPC response: unexpected end of JSON input"},
		{"no block at all", "notes.json", `{"note": "nothing here"}`,
			"no eth_getBlockByNumber response with full transactions among 1 JSON files"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, tt.file), []byte(tt.data), 0o644); err != nil {
				t.Fatal(err)
			}
			rec, err := kwe.OpenRecorded(dir)
			if err == nil {
				rec.Close()
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error:\n %v\nwant it to contain:\n %s", err, tt.want)
			}
		})
	}
}
