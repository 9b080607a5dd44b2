package ethereum

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/ethereum/go-ethereum/rpc"
)

// Recorded is an Ethereum node played back from recorded JSON-RPC responses:
// eth_getBlockByNumber (or eth_getBlockByHash) with full transactions,
// eth_getTransactionReceipt and eth_getLogs / eth_getFilterLogs results, one
// response per file, as `curl` or a test recorder saves them. It serves them
// through go-ethereum's own RPC server and client, so a Source reads recorded
// blocks with exactly the decoding it uses on a live node.
//
// Calls for data that was not recorded (a receipt, a balance) fail with an
// error naming what is missing; nothing is made up.
type Recorded struct {
	blocks     map[uint64]json.RawMessage // blocks with full transactions, by number
	heights    []uint64                   // of blocks, lowest first
	byHash     map[common.Hash]uint64
	headerOnly map[uint64]string // blocks recorded without transactions -> file
	receipts   map[common.Hash]json.RawMessage
	logs       []types.Log                 // by block number, then index
	blockLogs  map[common.Hash][]types.Log // logs by block hash, for the source's per-block filters
	files      int
	skipped    []string
	server     *rpc.Server
	client     *ethclient.Client
}

// OpenRecorded reads every .json file under dir (recursively). Responses
// that hold no block, receipt or logs (eth_newFilter ids, say) are passed
// over, and so are JSON files that are no JSON-RPC response (exports beside
// the recordings; see Skipped). A file named for an eth_ method that is not a
// valid response, or a block whose header does not hash to its recorded
// hash, is an error naming the file.
func OpenRecorded(dir string) (*Recorded, error) {
	r := &Recorded{
		blocks:     map[uint64]json.RawMessage{},
		byHash:     map[common.Hash]uint64{},
		headerOnly: map[uint64]string{},
		receipts:   map[common.Hash]json.RawMessage{},
	}
	seenLog := map[string]bool{}
	var paths []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.EqualFold(filepath.Ext(path), ".json") {
			paths = append(paths, path)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("recorded responses in %s: %w", dir, err)
	}
	sort.Strings(paths)
	for _, p := range paths {
		if err := r.add(p, seenLog); err != nil {
			return nil, err
		}
	}
	if len(r.blocks) == 0 {
		return nil, fmt.Errorf("recorded responses in %s: no eth_getBlockByNumber response with full transactions among %d JSON files", dir, len(paths))
	}
	sort.Slice(r.logs, func(i, j int) bool {
		if r.logs[i].BlockNumber != r.logs[j].BlockNumber {
			return r.logs[i].BlockNumber < r.logs[j].BlockNumber
		}
		return r.logs[i].Index < r.logs[j].Index
	})
	r.blockLogs = map[common.Hash][]types.Log{}
	for _, l := range r.logs {
		r.blockLogs[l.BlockHash] = append(r.blockLogs[l.BlockHash], l)
	}
	for n := range r.blocks {
		r.heights = append(r.heights, n)
	}
	slices.Sort(r.heights)
	r.server = rpc.NewServer()
	if err := r.server.RegisterName("eth", &recordedAPI{r}); err != nil {
		return nil, err
	}
	r.client = ethclient.NewClient(rpc.DialInProc(r.server))
	return r, nil
}

// add reads one response file, telling its kind by the shape of its result.
func (r *Recorded) add(path string, seenLog map[string]bool) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var env struct {
		Result json.RawMessage `json:"result"`
		Error  json.RawMessage `json:"error"`
	}
	if err := json.Unmarshal(data, &env); err != nil || (env.Result == nil && env.Error == nil) {
		if strings.Contains(filepath.Base(path), "eth_") {
			if err == nil {
				err = errors.New("no result")
			}
			return fmt.Errorf("%s: not a JSON-RPC response: %v", path, err)
		}
		r.skipped = append(r.skipped, path)
		return nil
	}
	res := bytes.TrimSpace(env.Result)
	switch {
	case len(res) == 0 || bytes.Equal(res, []byte("null")):
		return nil
	case res[0] == '[':
		var ls []types.Log
		if err := json.Unmarshal(res, &ls); err != nil {
			var probe []json.RawMessage
			if json.Unmarshal(res, &probe) == nil && len(probe) > 0 && probe[0][0] != '{' {
				return nil // a list of hashes (eth_getFilterChanges of a block filter): no data
			}
			return fmt.Errorf("%s: logs: %w", path, err)
		}
		r.files++
		for _, l := range ls {
			r.addLog(l, seenLog)
		}
		return nil
	case res[0] != '{':
		return nil // a filter id, true, a number: nothing to replay
	}
	var shape struct {
		Transactions    []json.RawMessage `json:"transactions"`
		TransactionHash *common.Hash      `json:"transactionHash"`
		Logs            []types.Log       `json:"logs"`
		Hash            *common.Hash      `json:"hash"`
	}
	if err := json.Unmarshal(res, &shape); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	switch {
	case shape.TransactionHash != nil && shape.Logs != nil:
		r.files++
		r.receipts[*shape.TransactionHash] = res
		for _, l := range shape.Logs {
			r.addLog(l, seenLog)
		}
		return nil
	case shape.Transactions != nil && shape.Hash != nil:
		var h types.Header
		if err := json.Unmarshal(res, &h); err != nil {
			return fmt.Errorf("%s: block header: %w", path, err)
		}
		if h.Hash() != *shape.Hash {
			return fmt.Errorf("%s: block %d: the recorded header does not hash to its recorded hash %s (computed %s): fields are missing or altered", path, h.Number, shape.Hash.Hex(), h.Hash().Hex())
		}
		n := h.Number.Uint64()
		full := len(shape.Transactions) > 0 && shape.Transactions[0][0] == '{'
		if !full && !(len(shape.Transactions) == 0 && h.TxHash == types.EmptyTxsHash) {
			if _, ok := r.blocks[n]; !ok {
				r.headerOnly[n] = path
			}
			return nil
		}
		r.files++
		delete(r.headerOnly, n)
		r.blocks[n] = res
		r.byHash[*shape.Hash] = n
		return nil
	}
	return nil
}

func (r *Recorded) addLog(l types.Log, seen map[string]bool) {
	k := fmt.Sprintf("%s:%d", l.BlockHash.Hex(), l.Index)
	if seen[k] {
		return
	}
	seen[k] = true
	r.logs = append(r.logs, l)
}

// Client is an ethclient over the recorded responses.
func (r *Recorded) Client() *ethclient.Client { return r.client }

// Heights lists the recorded blocks (with their transactions), lowest first.
func (r *Recorded) Heights() []uint64 { return r.heights }

// head is the highest recorded block.
func (r *Recorded) head() uint64 { return r.heights[len(r.heights)-1] }

// HeaderOnly lists blocks recorded without their transactions (as
// eth_getBlockByNumber with false returns them): they cannot be replayed.
func (r *Recorded) HeaderOnly() map[uint64]string { return r.headerOnly }

// Skipped lists the JSON files that are no JSON-RPC response.
func (r *Recorded) Skipped() []string { return r.skipped }

// Files is how many files held a block, receipt or logs.
func (r *Recorded) Files() int { return r.files }

// Close stops the in-process server.
func (r *Recorded) Close() {
	r.client.Close()
	r.server.Stop()
}

// errNotRecorded says which response a replay needed and did not find.
var errNotRecorded = errors.New("not among the recorded responses")

// recordedAPI answers the eth_ methods a Source calls.
type recordedAPI struct{ r *Recorded }

func (a *recordedAPI) BlockNumber() (hexutil.Uint64, error) {
	return hexutil.Uint64(a.r.head()), nil
}

func (a *recordedAPI) ChainId() (*hexutil.Big, error) {
	return nil, fmt.Errorf("eth_chainId: %w", errNotRecorded)
}

func (a *recordedAPI) GetBlockByNumber(n rpc.BlockNumber, _ bool) (json.RawMessage, error) {
	if n < 0 {
		n = rpc.BlockNumber(a.r.head())
	}
	if b, ok := a.r.blocks[uint64(n)]; ok {
		return b, nil
	}
	if f, ok := a.r.headerOnly[uint64(n)]; ok {
		return nil, fmt.Errorf("block %d was recorded without its transactions (%s): record eth_getBlockByNumber with true", n, f)
	}
	return json.RawMessage("null"), nil
}

func (a *recordedAPI) GetBlockByHash(h common.Hash, full bool) (json.RawMessage, error) {
	n, ok := a.r.byHash[h]
	if !ok {
		return json.RawMessage("null"), nil
	}
	return a.GetBlockByNumber(rpc.BlockNumber(n), full)
}

func (a *recordedAPI) GetTransactionReceipt(h common.Hash) (json.RawMessage, error) {
	if rc, ok := a.r.receipts[h]; ok {
		return rc, nil
	}
	return nil, fmt.Errorf("receipt of transaction %s: %w (record its eth_getTransactionReceipt response)", h.Hex(), errNotRecorded)
}

// GetStorageAt fails: a recording holds no state (see Source.WithoutSlotReads).
func (a *recordedAPI) GetStorageAt(addr common.Address, slot string, _ json.RawMessage) (hexutil.Bytes, error) {
	return nil, fmt.Errorf("storage slot %s of %s: %w", slot, addr.Hex(), errNotRecorded)
}

func (a *recordedAPI) GetBalance(addr common.Address, _ json.RawMessage) (*hexutil.Big, error) {
	return nil, fmt.Errorf("balance of %s: %w", addr.Hex(), errNotRecorded)
}

// logFilter is the eth_getLogs argument.
type logFilter struct {
	BlockHash *common.Hash      `json:"blockHash"`
	FromBlock *rpc.BlockNumber  `json:"fromBlock"`
	ToBlock   *rpc.BlockNumber  `json:"toBlock"`
	Address   json.RawMessage   `json:"address"`
	Topics    []json.RawMessage `json:"topics"`
}

// oneOrMany decodes a JSON value that is null, one item or a list of items.
func oneOrMany[T any](raw json.RawMessage) ([]T, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, nil
	}
	if raw[0] == '[' {
		var out []T
		err := json.Unmarshal(raw, &out)
		return out, err
	}
	var one T
	if err := json.Unmarshal(raw, &one); err != nil {
		return nil, err
	}
	return []T{one}, nil
}

func (a *recordedAPI) GetLogs(_ context.Context, f logFilter) ([]types.Log, error) {
	addrs, err := oneOrMany[common.Address](f.Address)
	if err != nil {
		return nil, fmt.Errorf("address: %w", err)
	}
	topics := make([][]common.Hash, len(f.Topics))
	for i, t := range f.Topics {
		if topics[i], err = oneOrMany[common.Hash](t); err != nil {
			return nil, fmt.Errorf("topics[%d]: %w", i, err)
		}
	}
	if f.BlockHash != nil {
		if _, ok := a.r.byHash[*f.BlockHash]; !ok {
			return nil, fmt.Errorf("logs of block %s: the block %w", f.BlockHash.Hex(), errNotRecorded)
		}
	}
	candidates := a.r.logs
	if f.BlockHash != nil {
		candidates = a.r.blockLogs[*f.BlockHash]
	}
	out := []types.Log{}
	for _, l := range candidates {
		if f.FromBlock != nil && *f.FromBlock >= 0 && l.BlockNumber < uint64(*f.FromBlock) {
			continue
		}
		if f.ToBlock != nil && *f.ToBlock >= 0 && l.BlockNumber > uint64(*f.ToBlock) {
			continue
		}
		if len(addrs) > 0 && !slices.Contains(addrs, l.Address) {
			continue
		}
		if !topicsMatch(topics, l.Topics) {
			continue
		}
		out = append(out, l)
	}
	return out, nil
}

// topicsMatch applies eth_getLogs topic filters: position i matches any of
// filter[i] (an empty position matches anything).
func topicsMatch(filter [][]common.Hash, topics []common.Hash) bool {
	if len(filter) > len(topics) {
		return false
	}
	for i, alts := range filter {
		if len(alts) == 0 {
			continue
		}
		if !slices.Contains(alts, topics[i]) {
			return false
		}
	}
	return true
}
