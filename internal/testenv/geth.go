package testenv

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
)

// GethEnv names the variable that points at a geth binary.
const GethEnv = "KEYWATCH_GETH"

// GethVersion is the geth release the tests are pinned to; scripts/deps.sh
// installs it. It matches the go-ethereum module in go.mod.
const GethVersion = "v1.17.10"

const (
	gethReadyTimeout = 60 * time.Second
	gethStopGrace    = 15 * time.Second
	gethFundTimeout  = 60 * time.Second
	gethAPIs         = "eth,net,web3,debug,txpool"
)

// GethNode is a geth --dev child process: a one-node proof-of-authority
// chain whose developer account is prefunded and unlocked. It serves JSON-RPC
// over HTTP and WebSocket on loopback ports that stay the same across Stop
// and Start; the chain lives in a temporary data folder and survives a
// restart.
type GethNode struct {
	// HTTPURL is http://127.0.0.1:<port>.
	HTTPURL string
	// WSURL is ws://127.0.0.1:<port>.
	WSURL string
	// DataDir is the node's --datadir (its log is geth.log beside it).
	DataDir string
	// DevAccount is the prefunded, unlocked developer account Fund sends
	// from (eth_accounts[0]).
	DevAccount common.Address
	// Period is the block period: with 0 geth seals a block only when a
	// transaction is pending.
	Period time.Duration

	t       testing.TB
	bin     string
	logPath string
	args    []string
	rpcID   atomic.Int64

	mu   sync.Mutex
	proc *process
}

// GethOption configures Geth.
type GethOption func(*gethConfig)

type gethConfig struct {
	periodSeconds uint64
	apis          string
}

// GethAPIs sets the JSON-RPC namespaces served over HTTP and WebSocket
// (--http.api, --ws.api; default eth,net,web3,debug,txpool): "eth,net,web3"
// is a node without the debug API.
func GethAPIs(list string) GethOption {
	return func(c *gethConfig) { c.apis = list }
}

// GethDevPeriod sets the block period in whole seconds (--dev.period; the
// default is 1). With 0, geth seals a block only when a transaction is
// pending, so the chain does not advance by itself.
func GethDevPeriod(seconds uint64) GethOption {
	return func(c *gethConfig) { c.periodSeconds = seconds }
}

// Geth starts geth --dev (KEYWATCH_GETH, PATH or BinDir) with HTTP and WS
// JSON-RPC on free loopback ports, waits until eth_blockNumber answers, and
// stops it when the test ends. Its log is printed if the test fails.
func Geth(t testing.TB, opts ...GethOption) *GethNode {
	t.Helper()
	cfg := gethConfig{periodSeconds: 1, apis: gethAPIs}
	for _, opt := range opts {
		opt(&cfg)
	}
	bin := findBinary(t, "geth", GethEnv)
	if bin == "" {
		return nil
	}
	checkGethVersion(t, bin)

	dir := t.TempDir()
	httpPort, wsPort, authPort := FreePort(t), FreePort(t), FreePort(t)
	for wsPort == httpPort || authPort == httpPort || authPort == wsPort {
		wsPort, authPort = FreePort(t), FreePort(t)
	}
	g := &GethNode{
		HTTPURL: fmt.Sprintf("http://127.0.0.1:%d", httpPort),
		WSURL:   fmt.Sprintf("ws://127.0.0.1:%d", wsPort),
		DataDir: filepath.Join(dir, "data"),
		Period:  time.Duration(cfg.periodSeconds) * time.Second,
		t:       t,
		bin:     bin,
		logPath: filepath.Join(dir, "geth.log"),
	}
	g.args = []string{
		"--dev",
		"--dev.period", strconv.FormatUint(cfg.periodSeconds, 10),
		"--datadir", g.DataDir,
		"--http", "--http.addr", "127.0.0.1", "--http.port", strconv.Itoa(httpPort),
		"--http.api", cfg.apis,
		"--ws", "--ws.addr", "127.0.0.1", "--ws.port", strconv.Itoa(wsPort),
		"--ws.api", cfg.apis, "--ws.origins", "*",
		"--authrpc.addr", "127.0.0.1", "--authrpc.port", strconv.Itoa(authPort),
		"--nodiscover", "--maxpeers", "0",
		"--ipcdisable",
		"--verbosity", "2",
	}
	logOnFailure(t, "geth", g.logPath)
	t.Cleanup(func() {
		if err := g.stop(); err != nil {
			t.Errorf("stop geth: %v", err)
		}
	})
	start := time.Now()
	if err := g.start(); err != nil {
		t.Fatalf("start geth: %v", err)
	}
	t.Logf("geth --dev ready in %s at %s (dev account %s)", time.Since(start).Round(time.Millisecond), g.HTTPURL, g.DevAccount)
	return g
}

// checkGethVersion notes in the test log when bin is not the pinned release.
func checkGethVersion(t testing.TB, bin string) {
	t.Helper()
	out, err := exec.Command(bin, "version").Output()
	if err != nil {
		t.Logf("geth version: %v", err)
		return
	}
	want := strings.TrimPrefix(GethVersion, "v")
	for line := range strings.SplitSeq(string(out), "\n") {
		if v, ok := strings.CutPrefix(line, "Version: "); ok {
			if !strings.HasPrefix(v, want) {
				t.Logf("note: %s is geth %s, tests are pinned to %s (scripts/deps.sh installs it)", bin, v, GethVersion)
			}
			return
		}
	}
}

// Start brings a stopped node back on the same ports and data folder and
// waits until it answers. Starting a running node does nothing.
func (g *GethNode) Start() {
	g.t.Helper()
	if err := g.start(); err != nil {
		g.t.Fatalf("restart geth: %v", err)
	}
}

// Stop shuts the node down (SIGINT, then SIGKILL after 15s) and waits for it
// to exit. Stopping a stopped node does nothing.
func (g *GethNode) Stop() {
	g.t.Helper()
	if err := g.stop(); err != nil {
		g.t.Fatalf("stop geth: %v", err)
	}
}

func (g *GethNode) stop() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.proc == nil {
		return nil
	}
	return g.proc.stop(syscall.SIGINT, gethStopGrace)
}

func (g *GethNode) start() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.proc != nil {
		if done, _ := g.proc.exited(); !done {
			return nil
		}
	}
	p, err := startProcess(g.bin, g.args, g.logPath)
	if err != nil {
		return err
	}
	g.proc = p
	ctx, cancel := context.WithTimeout(context.Background(), gethReadyTimeout)
	defer cancel()
	var lastErr error
	for {
		if done, exitErr := p.exited(); done {
			return fmt.Errorf("geth exited while starting (%v); log:\n%s", exitErr, logTail(g.logPath, 8<<10))
		}
		if lastErr = g.ready(ctx); lastErr == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			_ = p.stop(syscall.SIGKILL, time.Second)
			return fmt.Errorf("geth did not answer within %s: %v", gethReadyTimeout, lastErr)
		case <-time.After(50 * time.Millisecond): // poll interval
		}
	}
}

// ready checks that HTTP answers eth_blockNumber and eth_accounts and that
// the WS port accepts connections.
func (g *GethNode) ready(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if _, err := g.BlockNumber(cctx); err != nil {
		return err
	}
	var accounts []common.Address
	if err := g.Call(cctx, &accounts, "eth_accounts"); err != nil {
		return err
	}
	if len(accounts) == 0 {
		return errors.New("eth_accounts is empty: no developer account")
	}
	if g.DevAccount == (common.Address{}) { // set once, on the first start
		g.DevAccount = accounts[0]
	}
	conn, err := (&net.Dialer{}).DialContext(cctx, "tcp", strings.TrimPrefix(g.WSURL, "ws://"))
	if err != nil {
		return fmt.Errorf("ws: %w", err)
	}
	return conn.Close()
}

// RPCError is a JSON-RPC error answered by the node.
type RPCError struct {
	Code    int             `json:"code"`
	Message string          `json:"message"`
	Data    json.RawMessage `json:"data,omitempty"`
}

func (e *RPCError) Error() string {
	if len(e.Data) > 0 {
		return fmt.Sprintf("json-rpc error %d: %s (%s)", e.Code, e.Message, e.Data)
	}
	return fmt.Sprintf("json-rpc error %d: %s", e.Code, e.Message)
}

// Call makes one JSON-RPC call over HTTP and decodes the result into result
// (which may be nil to discard it).
func (g *GethNode) Call(ctx context.Context, result any, method string, params ...any) error {
	if params == nil {
		params = []any{}
	}
	body, err := json.Marshal(map[string]any{
		"jsonrpc": "2.0",
		"id":      g.rpcID.Add(1),
		"method":  method,
		"params":  params,
	})
	if err != nil {
		return fmt.Errorf("%s: encode: %w", method, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, g.HTTPURL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%s: %w", method, err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", method, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: http status %s", method, resp.Status)
	}
	var out struct {
		Result json.RawMessage `json:"result"`
		Error  *RPCError       `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return fmt.Errorf("%s: decode: %w", method, err)
	}
	if out.Error != nil {
		return fmt.Errorf("%s: %w", method, out.Error)
	}
	if result == nil {
		return nil
	}
	if err := json.Unmarshal(out.Result, result); err != nil {
		return fmt.Errorf("%s: decode result: %w", method, err)
	}
	return nil
}

// BlockNumber returns the number of the node's head block.
func (g *GethNode) BlockNumber(ctx context.Context) (uint64, error) {
	var n hexutil.Uint64
	if err := g.Call(ctx, &n, "eth_blockNumber"); err != nil {
		return 0, err
	}
	return uint64(n), nil
}

// WaitForBlock waits until the head block is at least n.
func (g *GethNode) WaitForBlock(ctx context.Context, n uint64) error {
	for {
		head, err := g.BlockNumber(ctx)
		if err == nil && head >= n {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for block %d (head %d, last error %v): %w", n, head, err, ctx.Err())
		case <-time.After(100 * time.Millisecond): // poll interval
		}
	}
}

// Balance returns the balance of addr at the head block.
func (g *GethNode) Balance(ctx context.Context, addr common.Address) (*big.Int, error) {
	var b hexutil.Big
	if err := g.Call(ctx, &b, "eth_getBalance", addr, "latest"); err != nil {
		return nil, err
	}
	return b.ToInt(), nil
}

// Receipt is the part of a transaction receipt tests look at.
type Receipt struct {
	TxHash      common.Hash    `json:"transactionHash"`
	BlockNumber hexutil.Uint64 `json:"blockNumber"`
	BlockHash   common.Hash    `json:"blockHash"`
	Status      hexutil.Uint64 `json:"status"`
	GasUsed     hexutil.Uint64 `json:"gasUsed"`
}

// WaitForReceipt polls until the transaction is mined and returns its
// receipt.
func (g *GethNode) WaitForReceipt(ctx context.Context, tx common.Hash) (*Receipt, error) {
	for {
		var r *Receipt
		err := g.Call(ctx, &r, "eth_getTransactionReceipt", tx)
		if err == nil && r != nil {
			return r, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for receipt of %s (last error %v): %w", tx, err, ctx.Err())
		case <-time.After(100 * time.Millisecond): // poll interval
		}
	}
}

// Fund sends wei from the developer account to addr and waits until the
// transfer is mined successfully. It uses eth_sendTransaction: in --dev mode
// geth imports its developer key into the keystore with an empty passphrase
// and unlocks it, so the node signs, picks the nonce and the fees itself, and
// concurrent Funds get distinct nonces. Without a deadline on ctx, Fund gives
// up after a minute.
func (g *GethNode) Fund(ctx context.Context, addr common.Address, wei *big.Int) error {
	if wei == nil || wei.Sign() < 0 {
		return fmt.Errorf("fund %s: invalid amount %v", addr, wei)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, gethFundTimeout)
		defer cancel()
	}
	var hash common.Hash
	err := g.Call(ctx, &hash, "eth_sendTransaction", map[string]any{
		"from":  g.DevAccount,
		"to":    addr,
		"value": (*hexutil.Big)(wei),
	})
	if err != nil {
		return fmt.Errorf("fund %s: %w", addr, err)
	}
	r, err := g.WaitForReceipt(ctx, hash)
	if err != nil {
		return fmt.Errorf("fund %s: %w", addr, err)
	}
	if r.Status != 1 {
		return fmt.Errorf("fund %s: transaction %s failed in block %d", addr, hash, uint64(r.BlockNumber))
	}
	return nil
}
