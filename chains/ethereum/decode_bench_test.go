package ethereum

import (
	"context"
	"encoding/json"
	"math/big"
	"os"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/keywatch/keywatch/internal/testenv"
)

// receiptsOnly answers receipts (all successful) and nothing else: decode
// needs no other call.
type receiptsOnly struct{ Client }

func (receiptsOnly) TransactionReceipt(context.Context, common.Hash) (*types.Receipt, error) {
	return &types.Receipt{Status: types.ReceiptStatusSuccessful}, nil
}

// mainnetBlock reads the execution payload of a real mainnet block (19431837,
// 322 transactions) from the shared test data.
func mainnetBlock(b *testing.B) *types.Block {
	path := testenv.Data(b, "eth_fixtures/go-ethereum/beacon/types/testdata/block_deneb.json")
	raw, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	var doc struct {
		Body struct {
			Payload struct {
				Number       string          `json:"block_number"`
				Timestamp    string          `json:"timestamp"`
				Transactions []hexutil.Bytes `json:"transactions"`
			} `json:"execution_payload"`
		} `json:"body"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		b.Fatal(err)
	}
	var txs []*types.Transaction
	for i, enc := range doc.Body.Payload.Transactions {
		tx := new(types.Transaction)
		if err := tx.UnmarshalBinary(enc); err != nil {
			b.Fatalf("tx %d: %v", i, err)
		}
		txs = append(txs, tx)
	}
	n, _ := new(big.Int).SetString(doc.Body.Payload.Number, 10)
	return types.NewBlockWithHeader(&types.Header{Number: n}).WithBody(types.Body{Transactions: txs})
}

// watchSome watches the recipients of every 20th value transfer in the block.
func watchSome(block *types.Block) []Wallet {
	var ws []Wallet
	for i, tx := range block.Transactions() {
		if tx.To() != nil && tx.Value().Sign() > 0 && i%20 == 0 {
			ws = append(ws, Wallet{Name: tx.To().Hex(), Address: *tx.To(), Role: "hot"})
		}
	}
	return ws
}

// BenchmarkDecodeMainnetBlock decodes a real 322-transaction block, recovering
// every sender from its signature, as a replay from files must.
func BenchmarkDecodeMainnetBlock(b *testing.B) {
	block := mainnetBlock(b)
	s := NewSource(receiptsOnly{}, Options{Chain: "eth", NativeSymbol: "ETH", NativeUSD: 3000, Wallets: watchSome(block)})
	ctx := context.Background()
	b.ReportAllocs()
	var events int
	for b.Loop() {
		// A fresh copy each round so signature caches do not carry over.
		fresh := types.NewBlockWithHeader(block.Header()).WithBody(types.Body{Transactions: copyTxs(b, block)})
		evs, err := s.decode(ctx, fresh, nil, nil)
		if err != nil {
			b.Fatal(err)
		}
		events = len(evs)
	}
	b.ReportMetric(float64(len(block.Transactions())), "txs/block")
	b.ReportMetric(float64(events), "events/block")
}

// BenchmarkDecodeMainnetBlockServerSenders is the same block with the
// senders already known, as when the node reports them over RPC.
func BenchmarkDecodeMainnetBlockServerSenders(b *testing.B) {
	block := mainnetBlock(b)
	s := NewSource(receiptsOnly{}, Options{Chain: "eth", NativeSymbol: "ETH", NativeUSD: 3000, Wallets: watchSome(block)})
	for _, tx := range block.Transactions() {
		if _, err := types.Sender(types.LatestSignerForChainID(tx.ChainId()), tx); err != nil {
			b.Fatal(err)
		}
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.decode(ctx, block, nil, nil); err != nil {
			b.Fatal(err)
		}
	}
}

func copyTxs(b *testing.B, block *types.Block) []*types.Transaction {
	out := make([]*types.Transaction, 0, len(block.Transactions()))
	for _, tx := range block.Transactions() {
		enc, _ := tx.MarshalBinary()
		c := new(types.Transaction)
		if err := c.UnmarshalBinary(enc); err != nil {
			b.Fatal(err)
		}
		out = append(out, c)
	}
	return out
}

// BenchmarkDecodeTransferLogs decodes ERC-20 Transfer logs of watched wallets
// (the eth_getLogs answer for a busy block), per log.
func BenchmarkDecodeTransferLogs(b *testing.B) {
	s, wallets, token := logBenchSource()
	block := types.NewBlockWithHeader(&types.Header{Number: big.NewInt(1)})
	const n = 1000
	logs := make([]types.Log, n)
	for i := range logs {
		from := wallets[i%len(wallets)].Address
		to := common.BigToAddress(big.NewInt(int64(5000 + i)))
		logs[i] = types.Log{Address: token, Index: uint(i), TxHash: common.BigToHash(big.NewInt(int64(i))),
			Topics: []common.Hash{TopicTransfer, common.BytesToHash(from.Bytes()), common.BytesToHash(to.Bytes())},
			Data:   common.LeftPadBytes(big.NewInt(int64(1_000_000*i+1)).Bytes(), 32)}
	}
	benchDecodeLogs(b, s, block, logs)
}

// logBenchSource is a Source over 50 watched wallets and USDC.
func logBenchSource() (*Source, []Wallet, common.Address) {
	token := common.HexToAddress("0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48")
	var wallets []Wallet
	for i := range 50 {
		a := common.BigToAddress(big.NewInt(int64(1000 + i)))
		wallets = append(wallets, Wallet{Name: a.Hex(), Address: a, Role: "hot"})
	}
	return NewSource(receiptsOnly{}, Options{Chain: "eth", Wallets: wallets, Tokens: []Token{{Symbol: "USDC", Address: token, Decimals: 6, USD: 1}}}), wallets, token
}

// benchDecodeLogs decodes logs, each one event, and reports the time per
// event.
func benchDecodeLogs(b *testing.B, s *Source, block *types.Block, logs []types.Log) {
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		evs, err := s.decode(ctx, block, logs, nil)
		if err != nil || len(evs) != len(logs) {
			b.Fatalf("%d events, %v", len(evs), err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(logs)), "ns/event")
}
