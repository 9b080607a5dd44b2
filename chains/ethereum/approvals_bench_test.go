package ethereum

import (
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
)

// BenchmarkDecodeApprovalLogs decodes approval logs of watched wallets, a
// quarter each ERC-20 Approval, ERC-721 Approval, ApprovalForAll (of a
// contract already asked for its standard) and Permit2 Permit, per log: the
// counterpart of BenchmarkDecodeTransferLogs.
func BenchmarkDecodeApprovalLogs(b *testing.B) {
	s, wallets, token := logBenchSource()
	nft := common.HexToAddress("0xED5AF388653567Af2F388E6224dC7C4b3241C544")
	s.approvals.standards = map[common.Address]string{nft: "erc721"}
	block := types.NewBlockWithHeader(&types.Header{Number: big.NewInt(1), Time: 1_700_000_000})
	word := func(v int64) []byte { return common.LeftPadBytes(big.NewInt(v).Bytes(), 32) }
	const n = 1000
	logs := make([]types.Log, n)
	for i := range logs {
		owner := common.BytesToHash(wallets[i%len(wallets)].Address.Bytes())
		spender := common.BigToHash(big.NewInt(int64(5000 + i)))
		l := types.Log{Index: uint(i), TxHash: common.BigToHash(big.NewInt(int64(i)))}
		switch i % 4 {
		case 0:
			l.Address, l.Topics, l.Data = token, []common.Hash{TopicApproval, owner, spender}, word(int64(1_000_000*i+1))
		case 1:
			l.Address, l.Topics = nft, []common.Hash{TopicApproval, owner, spender, common.BigToHash(big.NewInt(int64(i)))}
		case 2:
			l.Address, l.Topics, l.Data = nft, []common.Hash{TopicApprovalForAll, owner, spender}, word(1)
		case 3:
			l.Address, l.Topics = Permit2, []common.Hash{TopicPermit2Permit, owner, common.BytesToHash(token.Bytes()), spender}
			l.Data = append(append(word(int64(i)), word(1_800_000_000)...), word(0)...)
		}
		logs[i] = l
	}
	benchDecodeLogs(b, s, block, logs)
}
