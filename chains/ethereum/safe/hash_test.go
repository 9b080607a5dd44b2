package safe_test

import (
	"encoding/json"
	"math/big"
	"os"
	"slices"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/keywatch/keywatch/chains/ethereum/safe"
	"github.com/keywatch/keywatch/internal/testenv"
)

// serviceTx is a multisig transaction as the Safe Transaction Service
// serves it.
type serviceTx struct {
	Safe           common.Address `json:"safe"`
	To             common.Address `json:"to"`
	Value          string         `json:"value"`
	Data           *hexutil.Bytes `json:"data"`
	Operation      uint8          `json:"operation"`
	GasToken       common.Address `json:"gasToken"`
	SafeTxGas      json.Number    `json:"safeTxGas"`
	BaseGas        json.Number    `json:"baseGas"`
	GasPrice       string         `json:"gasPrice"`
	RefundReceiver common.Address `json:"refundReceiver"`
	Nonce          json.Number    `json:"nonce"`
	SafeTxHash     common.Hash    `json:"safeTxHash"`
	Signatures     *hexutil.Bytes `json:"signatures"`
	Confirmations  []struct {
		Owner common.Address `json:"owner"`
	} `json:"confirmations"`
}

func num(t *testing.T, s string) *big.Int {
	t.Helper()
	n, ok := new(big.Int).SetString(s, 10)
	if !ok {
		t.Fatalf("not a number: %q", s)
	}
	return n
}

// TestBybitTransaction71 recomputes the safeTxHash of the 2025 Bybit theft
// (nonce 71 of Bybit's cold Safe, version 1.1.1, on mainnet) from its
// payload and recovers the three owners whose eth_sign signatures it
// carried: the hash the signers' devices signed is the delegatecall's.
func TestBybitTransaction71(t *testing.T) {
	b, err := os.ReadFile(testenv.Data(t, "dprk/bybit-safe-tx-71.json"))
	if err != nil {
		t.Fatal(err)
	}
	var page struct {
		Results []serviceTx `json:"results"`
	}
	if err := json.Unmarshal(b, &page); err != nil {
		t.Fatal(err)
	}
	var tx71 *serviceTx
	for i := range page.Results {
		if page.Results[i].Nonce == "71" && page.Results[i].Signatures != nil && page.Results[i].Data != nil {
			tx71 = &page.Results[i]
		}
	}
	if tx71 == nil {
		t.Fatal("no executed transaction of nonce 71 in the record")
	}
	n := func(s json.Number) *big.Int { return num(t, s.String()) }
	tx := safe.Tx{To: tx71.To, Value: num(t, tx71.Value), Data: *tx71.Data, Operation: safe.Operation(tx71.Operation),
		SafeTxGas: n(tx71.SafeTxGas), BaseGas: n(tx71.BaseGas), GasPrice: num(t, tx71.GasPrice),
		GasToken: tx71.GasToken, RefundReceiver: tx71.RefundReceiver, Nonce: n(tx71.Nonce)}
	got, err := safe.Hash(big.NewInt(1), tx71.Safe, "1.1.1", tx)
	if err != nil {
		t.Fatal(err)
	}
	if got != tx71.SafeTxHash {
		t.Fatalf("safeTxHash %s, the service says %s", got.Hex(), tx71.SafeTxHash.Hex())
	}
	if tx.Operation.String() != "delegatecall" {
		t.Errorf("operation %s, want delegatecall", tx.Operation)
	}
	// The 1.3.0 domain (with the chain id) gives another hash.
	if other, _ := safe.Hash(big.NewInt(1), tx71.Safe, "1.3.0", tx); other == got {
		t.Error("the 1.3.0 domain gave the 1.1.1 hash")
	}
	signers, err := safe.Signers(got, *tx71.Signatures)
	if err != nil {
		t.Fatal(err)
	}
	var want []common.Address
	for _, c := range tx71.Confirmations {
		want = append(want, c.Owner)
	}
	if !slices.Equal(signers, want) {
		t.Fatalf("signers %v, the service lists %v", signers, want)
	}
}

// TestSignersOfEachKind packs an ECDSA signature, an eth_sign one and an
// approved hash, and reads back their owners.
func TestSignersOfEachKind(t *testing.T) {
	hash := crypto.Keccak256Hash([]byte("a safe transaction"))
	k1, _ := crypto.GenerateKey()
	k2, _ := crypto.GenerateKey()
	plain, err := crypto.Sign(hash[:], k1)
	if err != nil {
		t.Fatal(err)
	}
	plain[64] += 27
	ethSign, err := crypto.Sign(crypto.Keccak256([]byte("\x19Ethereum Signed Message:\n32"), hash[:]), k2)
	if err != nil {
		t.Fatal(err)
	}
	ethSign[64] += 31
	approver := common.HexToAddress("0x00000000000000000000000000000000000000aa")
	approved := append(common.LeftPadBytes(approver[:], 32), make([]byte, 32)...)
	approved = append(approved, 1)

	sigs := slices.Concat(plain, ethSign, approved)
	got, err := safe.Signers(hash, sigs)
	if err != nil {
		t.Fatal(err)
	}
	want := []common.Address{crypto.PubkeyToAddress(k1.PublicKey), crypto.PubkeyToAddress(k2.PublicKey), approver}
	if !slices.Equal(got, want) {
		t.Fatalf("signers %v, want %v", got, want)
	}
	if _, err := safe.Signers(hash, sigs[:64]); err == nil {
		t.Fatal("a truncated signature was accepted")
	}
}

func TestSupportedVersions(t *testing.T) {
	for v, want := range map[string]bool{"1.1.1": true, "1.2.0": true, "1.3.0": true, "1.4.1": true, "1.4.1+L2": true, "1.0.0": false, "1.5.0": false, "x": false} {
		if got := safe.Supported(v); got != want {
			t.Errorf("Supported(%q) = %v, want %v", v, got, want)
		}
	}
}
