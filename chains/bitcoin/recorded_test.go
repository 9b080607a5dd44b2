package bitcoin

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/wire"
)

func serialize(t *testing.T, b *wire.MsgBlock) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := b.Serialize(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func framed(t *testing.T, net wire.BitcoinNet, bs ...*wire.MsgBlock) []byte {
	var buf bytes.Buffer
	for _, b := range bs {
		raw := serialize(t, b)
		binary.Write(&buf, binary.LittleEndian, uint32(net))
		binary.Write(&buf, binary.LittleEndian, uint32(len(raw)))
		buf.Write(raw)
	}
	return buf.Bytes()
}

func gzipped(t *testing.T, b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

// TestOpenRecordedForms reads real mainnet blocks 1 to 5 written in each
// form a recording takes, in any order and with a block in two files, and
// refuses what is not a block of the chain's network.
func TestOpenRecordedForms(t *testing.T) {
	blocks := readBlocks(t, "btc_fixtures/btcd/database/testdata/blocks1-256.bz2")[:5] // heights 1 to 5
	hexOf := func(i int) string { return hex.EncodeToString(serialize(t, blocks[i])) }
	tests := []struct {
		name    string
		files   map[string][]byte
		want    string // heights read, or the error
		skipped string // files passed over
	}{
		{"a blk file with its zero padding, and hex lines", map[string][]byte{
			"blk00000.dat": append(framed(t, wire.MainNet, blocks[3], blocks[4], blocks[0]), make([]byte, 4096)...),
			"more.hex":     []byte(hexOf(2) + "\n" + hexOf(1) + "\n\n"),
		}, "1..5", ""},
		{"getblock responses, a bare block and a gzip-compressed one", map[string][]byte{
			"b1.json": []byte(`{"result":"` + hexOf(0) + `","error":null,"id":1}`),
			"b2.blk":  serialize(t, blocks[1]),
			"b3.gz":   gzipped(t, serialize(t, blocks[2])),
			"b4.json": []byte(`{"jsonrpc":"2.0","id":"x","result":"` + hexOf(3) + `"}`),
			"b5.hex":  []byte(strings.ToUpper(hexOf(4))),
			"b3again": framed(t, wire.MainNet, blocks[2]),
			"notes":   []byte("blocks of January 2009\n"),
			"tx.json": []byte(`{"result":{"txid":"f4184fc5"}}`),
		}, "1..5", "notes tx.json"},
		{"blocks that do not reach a known height", map[string][]byte{
			"b3.blk": serialize(t, blocks[2]),
			"b4.blk": serialize(t, blocks[3]),
		}, "its height cannot be told", ""},
		{"a testnet file", map[string][]byte{"blk.dat": framed(t, wire.TestNet3, blocks[0])}, "holds blocks of network testnet3, but the chain is on mainnet", ""},
		{"a frame that claims more than the file has", map[string][]byte{"blk.dat": framed(t, wire.MainNet, blocks[0])[:100]}, "blk.dat: byte 8: block 1 is 215 bytes, the file has 92 left: it breaks off", ""},
		{"damaged compression", map[string][]byte{"b.gz": gzipped(t, serialize(t, blocks[0]))[:40]}, "b.gz: gzip data is damaged", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, b := range tt.files {
				if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			r, err := OpenRecorded(&chaincfg.MainNetParams, dir)
			got := ""
			if err != nil {
				got = err.Error()
			} else {
				got = spanOf(r.Heights())
			}
			if !strings.Contains(got, tt.want) {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
			if err != nil {
				return
			}
			for i, b := range blocks {
				h, err := r.BlockHash(context.Background(), int64(i+1))
				if err != nil || *h != b.BlockHash() {
					t.Errorf("height %d: %v %v, want %s", i+1, h, err, b.BlockHash())
				}
			}
			// The genesis block is known by hash as block 1's parent.
			if h, err := r.BlockHash(context.Background(), 0); err != nil || *h != *chaincfg.MainNetParams.GenesisHash {
				t.Errorf("height 0: %v %v", h, err)
			}
			if _, err := r.BlockHash(context.Background(), 7); err == nil {
				t.Error("height 7 is not recorded, but BlockHash answered")
			}
			tx := blocks[2].Transactions[0].TxHash()
			if _, err := r.Transaction(context.Background(), &tx); err != nil {
				t.Errorf("transaction of a recorded block: %v", err)
			}
			var skipped []string
			for _, s := range r.Skipped() {
				skipped = append(skipped, filepath.Base(s.Path))
			}
			if strings.Join(skipped, " ") != tt.skipped {
				t.Errorf("passed over %v, want %q", skipped, tt.skipped)
			}
		})
	}
}

func spanOf(hs []uint64) string {
	if len(hs) == 0 {
		return "none"
	}
	for i := range hs {
		if hs[i] != hs[0]+uint64(i) {
			return fmt.Sprint(hs)
		}
	}
	return fmt.Sprintf("%d..%d", hs[0], hs[len(hs)-1])
}
