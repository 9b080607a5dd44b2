package main

import (
	"bytes"
	"compress/bzip2"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/wire"

	"github.com/keywatch/keywatch/alertmodel"
	"github.com/keywatch/keywatch/internal/testenv"
)

const (
	// The key block 9's coinbase paid (Satoshi Nakamoto), whose payment of
	// 10 BTC to Hal Finney in block 170 is the first bitcoin transaction
	// between people.
	satoshiKey = "0411db93e1dcdb8a016b49840f8c53bc1eb68a382e97b1482ecad7b148a6909a5cb2e0eaddfb84ccf9744464f82e160bfa9b8b64f9d4c03f999b8643f656b412a3"
	halKey     = "04ae1a62fe09c5f51b13905f07f06b99a2f7159b2225f374cd378d71302fa28414e7aab37397f554a7df5f142c21c1b7303b8a0626f1baded5c72a704f7e6cd84c"
	toHal      = "f4184fc596403b9d638783cf57adfe4c75c605f6356fbc91338530e9831e9e16"
)

// The real mainnet blocks of btcd's test data (../shared/data/btc_fixtures).
const (
	blocks1To255 = "btc_fixtures/btcd/database/testdata/blocks1-256.bz2"                                                        // blocks 1 to 255, framed
	block277647  = "btc_fixtures/btcd/blockchain/testdata/277647.dat.bz2"                                                       // one block, framed
	block574200  = "btc_fixtures/btcd/wire/testdata/block-0000000000000000001602407ac49862a7bca9d00f7f402db20b7be2f5de59d2.blk" // one bare block
)

// mainnetConfig watches Satoshi's key and an address paid in block 277647.
// The node is never contacted with -files: its password variable is unset.
func mainnetConfig(t *testing.T, birthday string) string {
	return writeConfig(t, `store: {memory: true}
nats: {url: "nats://127.0.0.1:4222"}   # not contacted: a backtest publishes nothing
chains:
  - {name: btc, kind: bitcoin, network: mainnet, rpc: [wss://btcd.example.net:8334], rpc_user: keywatch, rpc_password_env: KEYWATCH_TEST_UNSET_PASSWORD, native_usd: 60000}
wallets:
  - {name: satoshi, chain: btc, address: "`+satoshiKey+`", role: hot`+birthday+`}
  - {name: exchange, chain: btc, address: 1No9o8Wsd35KTqauDeDhuMfa4BfnzKrwT8, role: warm}
policies:
  - {name: big-outflow, detector: threshold, usd_over: 100000, severity: high, actions: [page]}
  - {name: inflow, detector: threshold, direction: in, usd_over: 0, severity: info}
`)
}

// btcBrief is what a reader checks in a Bitcoin alert.
func btcBrief(a alertmodel.Alert) string {
	e := a.Event
	s := fmt.Sprintf("%s %s %s %s block %d %s", a.Policy, e.ID, e.Direction, e.Amount, e.Block, e.Counterparty)
	if e.Detail["sender"] != "" {
		s += " sender " + e.Detail["sender"]
	}
	return s
}

// TestBacktestBitcoinRecordedBlocks replays real mainnet blocks from btcd's
// test data. From block 170 with the wallet's birthday (block 9), the coin
// Satoshi spends in block 170 is found in the blocks before the range, so the
// payment to Hal Finney is an outflow; without a birthday the replay says
// it cannot know that coin, and the change of that spend shows as an
// inflow. Replaying every file, the gaps between them are named, and an
// inflow whose spent output is in no recorded block says so.
func TestBacktestBitcoinRecordedBlocks(t *testing.T) {
	early, b277647, b574200 := testenv.Data(t, blocks1To255), testenv.Data(t, block277647), testenv.Data(t, block574200)
	tests := []struct {
		name     string
		birthday string
		args     []string
		want     []string
		stderr   []string
		notInErr []string
	}{
		{
			name:     "from block 170, the wallet's coins found from its birthday",
			birthday: ", birthday: 9",
			args:     []string{"-files", early, "-from", "170"},
			want: []string{
				"big-outflow btc:" + toHal + ":0 out 10 block 170 " + halKey,
				"big-outflow btc:a16f3ce4dd5deb92d98ef5cf8afeaf0775ebca408f708b2146c4fb42b41e14be:0 out 10 block 181 04b5abd412d4341b45056d3e376cd446eca43fa871b51961330deebd84423e740daa520690e1d9e074654c59ff87b408db903649623e86f1ca5412786f61ade2bf",
				"big-outflow btc:828ef3b079f9c23829c56fe86e85b4a69d9e06e5b54ea597eef5fb3ffef509fe:0 out 10 block 248 04bed827d37474beffb37efe533701ac1f7c600957a4487be8b371346f016826ee6f57ba30d88a472a0e4ecd2f07599a795f1f01de78d791b382e65ee1c58b4508",
			},
			stderr: []string{
				"recorded: 255 blocks from 1 files, heights 1..255 (0 other files passed over)",
				`msg="looking for the watched wallets' existing coins from their birthday" chain=btc from_block=9 to_block=169`,
				"backtest of btc blocks 170..255: 86 blocks, 5 events: 3 alerts (big-outflow 3); nothing was published",
			},
			notInErr: []string{"warning: wallet satoshi"},
		},
		{
			name: "from block 170 without a birthday",
			args: []string{"-files", early, "-from", "170"},
			want: []string{
				"inflow btc:" + toHal + ":1 in 40 block 170 " + satoshiKey,
				"big-outflow btc:a16f3ce4dd5deb92d98ef5cf8afeaf0775ebca408f708b2146c4fb42b41e14be:0 out 10 block 181 04b5abd412d4341b45056d3e376cd446eca43fa871b51961330deebd84423e740daa520690e1d9e074654c59ff87b408db903649623e86f1ca5412786f61ade2bf",
				"big-outflow btc:828ef3b079f9c23829c56fe86e85b4a69d9e06e5b54ea597eef5fb3ffef509fe:0 out 10 block 248 04bed827d37474beffb37efe533701ac1f7c600957a4487be8b371346f016826ee6f57ba30d88a472a0e4ecd2f07599a795f1f01de78d791b382e65ee1c58b4508",
			},
			stderr: []string{
				"warning: wallet satoshi has no birthday: coins it received before block 170 are unknown to the replay: spending them is not seen (change from such a spend shows as an inflow)",
				"backtest of btc blocks 170..255: 86 blocks, 5 events: 3 alerts (big-outflow 2, inflow 1)",
			},
		},
		{
			name:     "every recorded file",
			birthday: ", birthday: 9",
			args:     []string{"-files", early, "-files", b277647, "-files", filepath.Dir(b574200)},
			want: []string{
				"inflow btc:0437cd7f8525ceed2324359c2d0ba26006d92d856a9c20fa0241106ee5a597c9:0 in 50 block 9  sender coinbase (newly mined coins)",
				"big-outflow btc:" + toHal + ":0 out 10 block 170 " + halKey,
				"big-outflow btc:a16f3ce4dd5deb92d98ef5cf8afeaf0775ebca408f708b2146c4fb42b41e14be:0 out 10 block 181 04b5abd412d4341b45056d3e376cd446eca43fa871b51961330deebd84423e740daa520690e1d9e074654c59ff87b408db903649623e86f1ca5412786f61ade2bf",
				"big-outflow btc:828ef3b079f9c23829c56fe86e85b4a69d9e06e5b54ea597eef5fb3ffef509fe:0 out 10 block 248 04bed827d37474beffb37efe533701ac1f7c600957a4487be8b371346f016826ee6f57ba30d88a472a0e4ecd2f07599a795f1f01de78d791b382e65ee1c58b4508",
				"inflow btc:d88bca3658a3ca6a2fe7fd2b1ad19da2793fcf24617003eacad813322035e5a1:0 in 1 block 277647  sender unknown: the spent output is not in the recorded blocks",
			},
			stderr: []string{
				"recorded: 257 blocks from 3 files, heights 1..255, 277647, 574200 (0 other files passed over)",
				"warning: blocks 256..277646 are not in the files: coins of watched wallets and followed addresses created or spent there are unknown to the replay",
				"warning: blocks 277648..574199 are not in the files",
				"note: the senders of inflows are looked up in the recorded blocks only",
				"backtest of btc blocks 1..574200: 257 blocks, 7 events: 5 alerts (big-outflow 3, inflow 2); nothing was published",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"backtest", "-config", mainnetConfig(t, tt.birthday), "-chain", "btc"}, tt.args...)
			code, out, errs := runCmd(t, args...)
			if code != 0 {
				t.Fatalf("exit %d\n%s", code, errs)
			}
			var got []string
			for _, a := range alertLines(t, out) {
				got = append(got, btcBrief(a))
				if a.Event.Status != "confirmed" || !a.ObservedAt.Equal(a.Event.Time) {
					t.Errorf("%s: status %s, observed at %s (block time %s)", a.ID, a.Event.Status, a.ObservedAt, a.Event.Time)
				}
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("alerts:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
			for _, w := range tt.stderr {
				if !strings.Contains(errs, w) {
					t.Errorf("stderr does not say %q:\n%s", w, errs)
				}
			}
			for _, w := range tt.notInErr {
				if strings.Contains(errs, w) {
					t.Errorf("stderr says %q:\n%s", w, errs)
				}
			}
		})
	}
}

// mainnetBlocks reads the framed blocks of a bzip2 fixture.
func mainnetBlocks(t *testing.T, rel string) []*wire.MsgBlock {
	t.Helper()
	f, err := os.Open(testenv.Data(t, rel))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	raw, err := io.ReadAll(bzip2.NewReader(f))
	if err != nil {
		t.Fatal(err)
	}
	var out []*wire.MsgBlock
	for r := bytes.NewReader(raw); r.Len() > 0; {
		var hdr [8]byte
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			t.Fatal(err)
		}
		var b wire.MsgBlock
		if err := b.Deserialize(r); err != nil {
			t.Fatal(err)
		}
		out = append(out, &b)
	}
	return out
}

func writeBlock(t *testing.T, dir, name string, b *wire.MsgBlock) string {
	t.Helper()
	var buf bytes.Buffer
	if err := b.Serialize(&buf); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestBacktestBitcoinBadInput: files that are not what they claim, and
// replays that cannot be done, are refused naming the file and the reason;
// nothing is printed on stdout.
func TestBacktestBitcoinBadInput(t *testing.T) {
	early := testenv.Data(t, blocks1To255)
	fixtures := filepath.Dir(filepath.Dir(filepath.Dir(early))) // btc_fixtures/btcd
	blocks := mainnetBlocks(t, blocks1To255)
	dir := t.TempDir()

	// Block 100 alone: before BIP34, and its parent is not recorded.
	lone := writeBlock(t, dir, "block100.blk", blocks[99])
	// Block 181 with the amount of its payment changed.
	altered := *blocks[180]
	altered.Transactions = append([]*wire.MsgTx(nil), altered.Transactions...)
	tx := altered.Transactions[1].Copy()
	tx.TxOut[0].Value = 100 * 1e8
	altered.Transactions[1] = tx
	forged := writeBlock(t, dir, "forged.blk", &altered)
	// The framed file cut in the middle of a block.
	raw := func() []byte {
		f, _ := os.Open(early)
		defer f.Close()
		b, _ := io.ReadAll(bzip2.NewReader(f))
		return b
	}()
	cut := filepath.Join(dir, "cut.dat")
	if err := os.WriteFile(cut, raw[:5000], 0o600); err != nil {
		t.Fatal(err)
	}
	regtestCfg := writeConfig(t, `store: {memory: true}
nats: {url: "nats://127.0.0.1:4222"}
chains:
  - {name: rt, kind: bitcoin, network: regtest, rpc: [wss://127.0.0.1:18334], rpc_user: u, rpc_password_env: KEYWATCH_TEST_UNSET_PASSWORD}
`)
	cfg := mainnetConfig(t, "")
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"two branches of the chain", []string{"-config", cfg, "-chain", "btc", "-files", fixtures}, 1,
			"are both at height 1: the files hold two branches of the chain; replay one"},
		{"a block whose height cannot be told", []string{"-config", cfg, "-chain", "btc", "-files", lone}, 1,
			lone + ": block " + blocks[99].BlockHash().String() + ": its height cannot be told"},
		{"an altered block", []string{"-config", cfg, "-chain", "btc", "-files", early, "-files", forged}, 1,
			forged + ": block " + altered.BlockHash().String() + ": its transactions do not hash to its header's merkle root"},
		{"a file cut inside a block", []string{"-config", cfg, "-chain", "btc", "-files", cut}, 1,
			cut + ": byte "},
		{"blocks of another network", []string{"-config", regtestCfg, "-chain", "rt", "-files", early}, 1,
			early + ": holds blocks of network mainnet, but the chain is on regtest"},
		{"a file that holds no block", []string{"-config", cfg, "-chain", "btc", "-files", filepath.Join(fixtures, "LICENSE")}, 1,
			"LICENSE: not a block"},
		{"a range outside the files", []string{"-config", cfg, "-chain", "btc", "-files", early, "-from", "300"}, 1,
			"no recorded block within 300.."},
		{"a node replay without the node's password", []string{"-config", cfg, "-chain", "btc", "-from", "1"}, 1,
			"chains[0].rpc_password_env: environment variable KEYWATCH_TEST_UNSET_PASSWORD is not set"},
		{"no -from with a node", []string{"-config", cfg, "-chain", "btc"}, 2,
			"-from N is required when replaying from the node"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.name == "no -from with a node" {
				t.Setenv("KEYWATCH_TEST_UNSET_PASSWORD", "set for this case")
			}
			code, out, errs := runCmd(t, append([]string{"backtest"}, tt.args...)...)
			if code != tt.code || !strings.Contains(errs, tt.want) {
				t.Errorf("exit %d (want %d), stderr:\n%s\nwant it to contain %q", code, tt.code, errs, tt.want)
			}
			if out != "" {
				t.Errorf("stdout: %q", out)
			}
		})
	}
	// Replaying a folder, files that hold no block are passed over and named.
	code, _, errs := runCmd(t, "backtest", "-config", cfg, "-chain", "btc", "-files", filepath.Join(fixtures, "btcutil"), "-files", filepath.Join(fixtures, "netsync"), "-files", early)
	if code != 0 || !strings.Contains(errs, "bip69-1.hex: hex text, but line 1 is not a block") || !strings.Contains(errs, "blockheaders-mainnet-1-11.txt: hex text, but line 1 is not a block") {
		t.Errorf("exit %d\n%s", code, errs)
	}
}
