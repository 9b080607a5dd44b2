package bitcoin

import (
	"bufio"
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/btcsuite/btcd/blockchain"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"
	"github.com/keywatch/keywatch/chains/bitcoin/btcaddr"
)

// Recorded is a Bitcoin node played back from raw blocks read from files,
// for backtests. It answers the calls a Source makes (block hashes by
// height, headers, blocks, transactions of the recorded blocks) and nothing
// else: a transaction that is not in a recorded block is not found, and the
// mempool is empty.
//
// Files hold blocks in any of these forms, optionally compressed with bzip2
// or gzip (recognised by their content):
//
//   - blocks framed as in Bitcoin Core's blk*.dat files and btcd's test
//     data: the network's magic, the length, the block; repeated (zero
//     padding at the end is allowed);
//   - one bare serialized block (a .blk file);
//   - hex text, one block a line (`bitcoin-cli getblock HASH 0`);
//   - a JSON-RPC response of getblock with verbosity 0 ({"result": "<hex>"}).
//
// A raw block does not say its height. It is known when the block is the
// network's genesis block or its child, from the height its coinbase
// carries (BIP34, on blocks where the network enforces it), from the
// network's checkpoints, and through parent links from any recorded block
// whose height is known. Every block must check: its transactions hash to
// its header's merkle root and its header meets its own proof of work
// within the network's limit (a block of another network does not).
type Recorded struct {
	net      *chaincfg.Params
	heights  []uint64 // sorted
	byHeight map[uint64]*wire.MsgBlock
	byHash   map[chainhash.Hash]*wire.MsgBlock
	txs      map[chainhash.Hash]*wire.MsgTx
	files    int
	skipped  []Skipped
}

// Skipped is a file that holds no block, and why.
type Skipped struct {
	Path   string
	Reason string
}

var (
	_ Node   = (*Recorded)(nil)
	_ gapped = (*Recorded)(nil)
)

// recBlock is a block as read, with where it came from.
type recBlock struct {
	blk  *wire.MsgBlock
	hash chainhash.Hash
	file string
	txs  []*btcutil.Tx // with their hashes, once checked
}

// OpenRecorded reads the blocks of the files given, and of every file under
// the folders given (recursively; there, files that hold no block are passed
// over, see Skipped). A file named directly that holds no block, a file that
// breaks off inside a block, a block that fails its checks, a file of
// another network, blocks whose heights cannot be told, and two blocks at
// one height are errors naming the file.
func OpenRecorded(net *chaincfg.Params, paths ...string) (*Recorded, error) {
	type file struct {
		path     string
		explicit bool
	}
	var all []file
	for _, path := range paths {
		fi, err := os.Stat(path)
		if err != nil {
			return nil, fmt.Errorf("recorded blocks: %w", err)
		}
		if !fi.IsDir() {
			all = append(all, file{path, true})
			continue
		}
		var found []string
		err = filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.Type().IsRegular() {
				found = append(found, p)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("recorded blocks in %s: %w", path, err)
		}
		sort.Strings(found)
		for _, p := range found {
			all = append(all, file{p, false})
		}
	}
	r := &Recorded{net: net, byHeight: map[uint64]*wire.MsgBlock{}, byHash: map[chainhash.Hash]*wire.MsgBlock{}, txs: map[chainhash.Hash]*wire.MsgTx{}}
	var blocks []recBlock
	seen := map[chainhash.Hash]bool{}
	for _, f := range all {
		bs, notBlocks, err := readRecordedFile(f.path, net)
		if err != nil {
			return nil, err
		}
		if notBlocks != "" {
			if f.explicit {
				return nil, fmt.Errorf("%s: %s", f.path, notBlocks)
			}
			r.skipped = append(r.skipped, Skipped{Path: f.path, Reason: notBlocks})
			continue
		}
		r.files++
		for _, b := range bs {
			if err := checkBlock(&b, net); err != nil {
				return nil, err
			}
			if !seen[b.hash] { // the same block in two files is one block
				seen[b.hash] = true
				blocks = append(blocks, b)
			}
		}
	}
	if len(blocks) == 0 {
		return nil, fmt.Errorf("recorded blocks in %s: no block among %d files", strings.Join(paths, ", "), len(all))
	}
	heights, err := blockHeights(blocks, net)
	if err != nil {
		return nil, err
	}
	at := map[uint64]recBlock{}
	for _, b := range blocks {
		h := heights[b.hash]
		if other, dup := at[h]; dup {
			return nil, fmt.Errorf("block %s (%s) and block %s (%s) are both at height %d: the files hold two branches of the chain; replay one",
				other.hash, other.file, b.hash, b.file, h)
		}
		at[h] = b
		r.byHeight[h] = b.blk
		r.byHash[b.hash] = b.blk
		r.heights = append(r.heights, h)
		for _, tx := range b.txs {
			r.txs[*tx.Hash()] = tx.MsgTx()
		}
	}
	sort.Slice(r.heights, func(i, j int) bool { return r.heights[i] < r.heights[j] })
	return r, nil
}

// Heights are the heights of the recorded blocks, in order.
func (r *Recorded) Heights() []uint64 { return r.heights }

// Files is how many files held blocks.
func (r *Recorded) Files() int { return r.files }

// Skipped are the files that held no block, with the reason.
func (r *Recorded) Skipped() []Skipped { return r.skipped }

// BlockCount returns the height of the highest recorded block.
func (r *Recorded) BlockCount(context.Context) (int64, error) {
	return int64(r.heights[len(r.heights)-1]), nil
}

// BlockHash returns the hash of the block at height: a recorded one, or the
// parent of a recorded one.
func (r *Recorded) BlockHash(_ context.Context, height int64) (*chainhash.Hash, error) {
	if height >= 0 {
		if b, ok := r.byHeight[uint64(height)]; ok {
			h := b.BlockHash()
			return &h, nil
		}
		if b, ok := r.byHeight[uint64(height)+1]; ok {
			p := b.Header.PrevBlock
			return &p, nil
		}
	}
	return nil, fmt.Errorf("block %d is not in the recorded files: %w", height, ErrNoBlock)
}

// BlockHeader returns a recorded block's header.
func (r *Recorded) BlockHeader(_ context.Context, hash *chainhash.Hash) (*wire.BlockHeader, error) {
	b, ok := r.byHash[*hash]
	if !ok {
		return nil, fmt.Errorf("block %s is not in the recorded files", hash)
	}
	return &b.Header, nil
}

// Block returns a recorded block.
func (r *Recorded) Block(_ context.Context, hash *chainhash.Hash) (*wire.MsgBlock, error) {
	b, ok := r.byHash[*hash]
	if !ok {
		return nil, fmt.Errorf("block %s is not in the recorded files", hash)
	}
	return b, nil
}

// Transaction returns a transaction of a recorded block.
func (r *Recorded) Transaction(_ context.Context, txid *chainhash.Hash) (*wire.MsgTx, error) {
	tx, ok := r.txs[*txid]
	if !ok {
		return nil, fmt.Errorf("transaction %s: not found in the recorded blocks", txid)
	}
	return tx, nil
}

// Mempool is empty: recorded blocks have none.
func (r *Recorded) Mempool(context.Context) ([]*chainhash.Hash, error) { return nil, nil }

// NextHeight returns the lowest recorded height at or above from.
func (r *Recorded) NextHeight(from uint64) (uint64, bool) {
	i := sort.Search(len(r.heights), func(i int) bool { return r.heights[i] >= from })
	if i == len(r.heights) {
		return 0, false
	}
	return r.heights[i], true
}

// maxBlockFile bounds what one file may decompress to (Bitcoin Core's blk
// files are 128 MiB).
const maxBlockFile = 1 << 30

// readRecordedFile reads the blocks of one file. notBlocks, when set, says why
// the file holds no block (it is not an error in a folder of recordings);
// err is a file that looks like blocks but is damaged.
func readRecordedFile(path string, net *chaincfg.Params) (blocks []recBlock, notBlocks string, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, "", fmt.Errorf("recorded blocks: %w", err)
	}
	defer f.Close()
	br := bufio.NewReader(f)
	head, _ := br.Peek(3)
	var rd io.Reader = br
	compressed := ""
	switch {
	case bytes.HasPrefix(head, []byte("BZh")):
		rd, compressed = bzip2.NewReader(br), "bzip2"
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, "", fmt.Errorf("%s: gzip: %w", path, err)
		}
		defer zr.Close()
		rd, compressed = zr, "gzip"
	}
	raw, err := io.ReadAll(io.LimitReader(rd, maxBlockFile+1))
	if err != nil {
		return nil, "", fmt.Errorf("%s: %s data is damaged: %w", path, compressed, err)
	}
	if len(raw) > maxBlockFile {
		return nil, "", fmt.Errorf("%s: larger than %d bytes: split it", path, maxBlockFile)
	}
	if len(raw) >= 4 {
		if name, ok := magicNetwork(binary.LittleEndian.Uint32(raw)); ok {
			if name != net.Name {
				return nil, "", fmt.Errorf("%s: holds blocks of network %s, but the chain is on %s", path, name, net.Name)
			}
			bs, err := readFramed(path, raw, net)
			return bs, "", err
		}
	}
	trimmed := bytes.TrimSpace(raw)
	switch {
	case len(trimmed) == 0:
		return nil, "empty", nil
	case trimmed[0] == '{':
		var resp struct {
			Result json.RawMessage `json:"result"`
			Error  json.RawMessage `json:"error"`
		}
		if err := json.Unmarshal(trimmed, &resp); err != nil {
			return nil, "JSON, but not a JSON-RPC response", nil
		}
		var hexBlock string
		if err := json.Unmarshal(resp.Result, &hexBlock); err != nil {
			return nil, "a JSON-RPC response without a hex block (record getblock with verbosity 0)", nil
		}
		b, err := decodeBlock(hexBlock)
		if err != nil {
			return nil, fmt.Sprintf("a JSON-RPC response whose result is not a block: %v", err), nil
		}
		return []recBlock{{blk: b, hash: b.BlockHash(), file: path}}, "", nil
	case isHexText(trimmed):
		var out []recBlock
		for i, line := range strings.Split(string(trimmed), "\n") {
			line = strings.TrimSpace(line)
			if line == "" {
				continue
			}
			b, err := decodeBlock(line)
			if err != nil {
				if len(out) == 0 {
					return nil, fmt.Sprintf("hex text, but line %d is not a block: %v", i+1, err), nil
				}
				return nil, "", fmt.Errorf("%s:%d: not a block: %v", path, i+1, err)
			}
			out = append(out, recBlock{blk: b, hash: b.BlockHash(), file: fmt.Sprintf("%s:%d", path, i+1)})
		}
		return out, "", nil
	}
	var b wire.MsgBlock
	rest := bytes.NewReader(raw)
	if err := b.Deserialize(rest); err != nil || rest.Len() != 0 || len(b.Transactions) == 0 {
		return nil, "not a block (neither framed blocks, a bare block, hex nor a getblock response)", nil
	}
	return []recBlock{{blk: &b, hash: b.BlockHash(), file: path}}, "", nil
}

// readFramed reads magic-length-block records.
func readFramed(path string, raw []byte, net *chaincfg.Params) ([]recBlock, error) {
	var out []recBlock
	for off := 0; off < len(raw); {
		if allZero(raw[off:]) {
			break // preallocated space at the end of a blk file
		}
		if len(raw)-off < 8 {
			return nil, fmt.Errorf("%s: byte %d: the file breaks off inside a block's frame", path, off)
		}
		if magic := binary.LittleEndian.Uint32(raw[off:]); magic != uint32(net.Net) {
			return nil, fmt.Errorf("%s: byte %d: expected the %s magic %08x, found %08x", path, off, net.Name, uint32(net.Net), magic)
		}
		n := int(binary.LittleEndian.Uint32(raw[off+4:]))
		off += 8
		if n > len(raw)-off {
			return nil, fmt.Errorf("%s: byte %d: block %d is %d bytes, the file has %d left: it breaks off", path, off, len(out)+1, n, len(raw)-off)
		}
		var b wire.MsgBlock
		rd := bytes.NewReader(raw[off : off+n])
		if err := b.Deserialize(rd); err != nil {
			return nil, fmt.Errorf("%s: byte %d: block %d: %v", path, off, len(out)+1, err)
		}
		if rd.Len() != 0 {
			return nil, fmt.Errorf("%s: byte %d: block %d: %d bytes after the block inside its frame", path, off, len(out)+1, rd.Len())
		}
		out = append(out, recBlock{blk: &b, hash: b.BlockHash(), file: fmt.Sprintf("%s, block %d of the file", path, len(out)+1)})
		off += n
	}
	return out, nil
}

func decodeBlock(s string) (*wire.MsgBlock, error) {
	raw, err := hex.DecodeString(s)
	if err != nil {
		return nil, err
	}
	var b wire.MsgBlock
	rd := bytes.NewReader(raw)
	if err := b.Deserialize(rd); err != nil {
		return nil, err
	}
	if rd.Len() != 0 {
		return nil, fmt.Errorf("%d bytes after the block", rd.Len())
	}
	if len(b.Transactions) == 0 {
		return nil, errors.New("no transactions")
	}
	return &b, nil
}

func isHexText(b []byte) bool {
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9', c >= 'a' && c <= 'f', c >= 'A' && c <= 'F', c == '\n', c == '\r', c == ' ', c == '\t':
		default:
			return false
		}
	}
	return true
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// magicNetwork names the network whose message magic m is.
func magicNetwork(m uint32) (string, bool) {
	for _, name := range btcaddr.Networks() {
		if p, _ := btcaddr.Network(name); uint32(p.Net) == m {
			return p.Name, true
		}
	}
	return "", false
}

// checkBlock refuses a block whose transactions are not those its header
// commits to, or whose header does not meet its proof of work within the
// network's limit (a block of another network, or a made-up one).
func checkBlock(b *recBlock, net *chaincfg.Params) error {
	blk := btcutil.NewBlock(b.blk)
	b.txs = blk.Transactions()
	if root := blockchain.CalcMerkleRoot(b.txs, false); root != b.blk.Header.MerkleRoot {
		return fmt.Errorf("%s: block %s: its transactions do not hash to its header's merkle root: the block is damaged or was altered", b.file, b.hash)
	}
	if err := blockchain.CheckProofOfWork(blk, net.PowLimit); err != nil {
		return fmt.Errorf("%s: block %s is not a valid block of network %s: %v", b.file, b.hash, net.Name, err)
	}
	return nil
}

// bip34From is the height from which the network's coinbases carry their
// block's height. Regtest and signet nodes write it from block 1 (btcd's
// regtest parameters leave BIP34 unenforced, but btcd and Bitcoin Core
// both write the height).
func bip34From(net *chaincfg.Params) int32 {
	switch net.Net {
	case chaincfg.MainNetParams.Net, chaincfg.TestNet3Params.Net:
		return net.BIP0034Height
	default:
		return 1
	}
}

// blockHeights tells the height of every block: anchors (genesis, BIP34
// coinbases, checkpoints), then parent links both ways.
func blockHeights(blocks []recBlock, net *chaincfg.Params) (map[chainhash.Hash]uint64, error) {
	byHash := make(map[chainhash.Hash]recBlock, len(blocks))
	children := map[chainhash.Hash][]chainhash.Hash{}
	for _, b := range blocks {
		byHash[b.hash] = b
		children[b.blk.Header.PrevBlock] = append(children[b.blk.Header.PrevBlock], b.hash)
	}
	heights := map[chainhash.Hash]uint64{}
	why := map[chainhash.Hash]string{}
	var queue []chainhash.Hash
	set := func(h chainhash.Hash, height uint64, reason string) error {
		if prev, ok := heights[h]; ok {
			if prev != height {
				return fmt.Errorf("%s: block %s is at height %d (%s) and at %d (%s): the files contradict each other", byHash[h].file, h, prev, why[h], height, reason)
			}
			return nil
		}
		heights[h], why[h] = height, reason
		queue = append(queue, h)
		return nil
	}
	checkpoints := map[chainhash.Hash]int32{}
	for _, c := range net.Checkpoints {
		checkpoints[*c.Hash] = c.Height
	}
	for _, b := range blocks {
		var err error
		switch {
		case b.hash == *net.GenesisHash:
			err = set(b.hash, 0, "the genesis block")
		case b.blk.Header.PrevBlock == *net.GenesisHash:
			err = set(b.hash, 1, "the genesis block's child")
		case checkpoints[b.hash] > 0:
			err = set(b.hash, uint64(checkpoints[b.hash]), "a checkpoint of "+net.Name)
		case b.blk.Header.Version >= 2:
			if h, cerr := blockchain.ExtractCoinbaseHeight(btcutil.NewTx(b.blk.Transactions[0])); cerr == nil && h >= bip34From(net) {
				err = set(b.hash, uint64(h), "its coinbase (BIP34)")
			}
		}
		if err != nil {
			return nil, err
		}
	}
	for len(queue) > 0 {
		h := queue[0]
		queue = queue[1:]
		height := heights[h]
		if p := byHash[h].blk.Header.PrevBlock; height > 0 {
			if _, ok := byHash[p]; ok {
				if err := set(p, height-1, "parent of "+h.String()); err != nil {
					return nil, err
				}
			}
		}
		for _, c := range children[h] {
			if err := set(c, height+1, "child of "+h.String()); err != nil {
				return nil, err
			}
		}
	}
	for _, b := range blocks {
		if _, ok := heights[b.hash]; !ok {
			return nil, fmt.Errorf("%s: block %s: its height cannot be told: it is not linked to the genesis block or to a recorded block whose height is known, and its coinbase does not carry its height (BIP34, from block %d on %s); add the blocks before it",
				b.file, b.hash, bip34From(net), net.Name)
		}
	}
	return heights, nil
}
