package ethereum

import (
	"encoding/json"
	"fmt"
	"math/big"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
)

// frameWithoutInput is callFrame as it was before frames kept their input:
// the baseline of BenchmarkDecodeCallTracerAnswer.
type frameWithoutInput struct {
	Type  string              `json:"type"`
	From  common.Address      `json:"from"`
	To    *common.Address     `json:"to"`
	Value *hexutil.Big        `json:"value"`
	Error string              `json:"error"`
	Calls []frameWithoutInput `json:"calls"`
}

// BenchmarkDecodeCallTracerAnswer decodes a callTracer answer the size of a
// busy mainnet block (322 transactions, each a call with three nested
// calls, every input 300 bytes), as frames were read before they kept
// their input, as they are now with no Safe watched, and with a watched
// Safe called in every transaction (its calls found and their inputs
// decoded).
func BenchmarkDecodeCallTracerAnswer(b *testing.B) {
	const txs = 322
	safeAddr := common.HexToAddress("0x5afe")
	input := `"0x` + strings.Repeat("ab", 300) + `"`
	var txList []*types.Transaction
	var sb strings.Builder
	sb.WriteString("[")
	for i := range txs {
		tx := types.NewTx(&types.LegacyTx{Nonce: uint64(i), Gas: 21000, GasPrice: big.NewInt(1)})
		txList = append(txList, tx)
		if i > 0 {
			sb.WriteString(",")
		}
		frame := func(to string, inner string) string {
			return fmt.Sprintf(`{"from":"0x000000000000000000000000000000000000aaaa","gas":"0x1e8480","gasUsed":"0x5208","to":%q,"input":%s,"output":"0x","value":"0x1","type":"CALL","calls":[%s]}`, to, input, inner)
		}
		leaf := frame("0x000000000000000000000000000000000000cccc", "")
		mid := frame(safeAddr.Hex(), leaf+","+leaf)
		fmt.Fprintf(&sb, `{"txHash":%q,"result":%s}`, tx.Hash().Hex(), frame("0x000000000000000000000000000000000000bbbb", mid))
	}
	sb.WriteString("]")
	answer := []byte(sb.String())
	block := types.NewBlockWithHeader(&types.Header{Number: big.NewInt(1)}).WithBody(types.Body{Transactions: txList})
	b.Logf("answer: %d KB", len(answer)/1024)

	b.Run("frames-without-input", func(b *testing.B) {
		b.SetBytes(int64(len(answer)))
		for b.Loop() {
			var res []struct {
				TxHash common.Hash        `json:"txHash"`
				Result *frameWithoutInput `json:"result"`
			}
			if err := json.Unmarshal(answer, &res); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, c := range []struct {
		name  string
		safes map[common.Address]bool
	}{
		{"with-input-no-safe", nil},
		{"with-input-safe-in-every-tx", map[common.Address]bool{safeAddr: true}},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(answer)))
			for b.Loop() {
				var res []debugTxTrace
				if err := json.Unmarshal(answer, &res); err != nil {
					b.Fatal(err)
				}
				if _, err := decodeDebugTrace(block, res); err != nil {
					b.Fatal(err)
				}
				calls, err := debugSafeCalls(block, res, c.safes)
				if err != nil || (c.safes != nil && len(calls) != txs) {
					b.Fatalf("%d calls, %v", len(calls), err)
				}
			}
		})
	}
}
