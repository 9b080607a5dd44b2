// Package regtest runs btcd in regression-test mode as a child process and
// pays with keys held in memory: a real Bitcoin network, private to one test
// or to the demo. Blocks are mined on demand (generate), segwit and taproot
// are active from the start (Start mines past the activation height), and
// transactions are built and signed here with btcd's txscript.
package regtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/rpcclient"
	"github.com/btcsuite/btcd/wire"
)

// Version is the btcd release the tests and the demo are pinned to;
// scripts/deps.sh builds it. It matches the btcd module in go.mod.
const Version = "v0.24.2"

// BinEnv names the variable that points at a btcd binary.
const BinEnv = "KEYWATCH_BTCD"

// Net is the network a regtest node runs.
var Net = &chaincfg.RegressionNetParams

// SegwitHeight is a height past which btcd's regtest has segwit and taproot
// active (BIP9 activation takes three 144-block periods).
const SegwitHeight = 432

// User and Password are the node's RPC credentials (Options.Password
// overrides the password).
const (
	User     = "keywatch"
	Password = "regtest-only-password"
)

// BinDir is where scripts/deps.sh installs pinned binaries:
// ${XDG_CACHE_HOME:-$HOME/.cache}/keywatch/bin.
func BinDir() string {
	base := os.Getenv("XDG_CACHE_HOME")
	if base == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return ""
		}
		base = filepath.Join(home, ".cache")
	}
	return filepath.Join(base, "keywatch", "bin")
}

// FindBinary returns the btcd to run: KEYWATCH_BTCD, then PATH, then BinDir.
func FindBinary() (string, error) {
	if p := os.Getenv(BinEnv); p != "" {
		if isExecutable(p) {
			return p, nil
		}
		return "", fmt.Errorf("%s=%s: not an executable file", BinEnv, p)
	}
	if p, err := exec.LookPath("btcd"); err == nil {
		return p, nil
	}
	if dir := BinDir(); dir != "" {
		if p := filepath.Join(dir, "btcd"); isExecutable(p) {
			return p, nil
		}
	}
	return "", fmt.Errorf("btcd not found: set %s, put it on PATH or in %s (scripts/deps.sh btcd builds btcd %s there)", BinEnv, BinDir(), Version)
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// Options configure a node.
type Options struct {
	Bin string // btcd binary (default: FindBinary)
	Dir string // data, log and certificate folder (required)
	// Mine is how many blocks Start mines (default SegwitHeight+8); the
	// miner's coinbases become spendable after 100 more.
	Mine int
	// Password is the RPC password (default Password; the user is User).
	Password string
	// NoTLS runs btcd with --notls: the RPC endpoint is plain ws:// and
	// http://, with no certificate (btcd allows it on loopback only).
	NoTLS bool
}

// Node is a running btcd --regtest. Its RPC endpoint serves TLS with a
// self-signed certificate (CertPath) on one loopback port, as WebSocket
// (WSURL) and HTTP POST (HTTPURL); the port stays the same across Stop and
// Start, and the chain survives a restart. With Options.NoTLS it serves
// plain WebSocket and HTTP, and CertPath and Cert are empty.
type Node struct {
	WSURL    string // wss://127.0.0.1:<port> (ws:// with NoTLS)
	HTTPURL  string // https://127.0.0.1:<port> (http:// with NoTLS)
	CertPath string
	Cert     []byte
	Dir      string
	LogPath  string
	// Miner receives the coinbases of the blocks Generate mines.
	Miner *Key

	host     string
	bin      string
	password string
	noTLS    bool
	args     []string

	mu    sync.Mutex
	cmd   *exec.Cmd
	done  chan struct{}
	rpc   *rpcclient.Client
	spent map[wire.OutPoint]bool // miner coinbases handed out
}

// Start runs btcd --regtest in o.Dir, waits until it answers, and mines o.Mine
// blocks to the miner key.
func Start(ctx context.Context, o Options) (*Node, error) {
	if o.Dir == "" {
		return nil, errors.New("regtest: Dir is required")
	}
	if o.Bin == "" {
		bin, err := FindBinary()
		if err != nil {
			return nil, err
		}
		o.Bin = bin
	}
	if o.Mine == 0 {
		o.Mine = SegwitHeight + 8
	}
	if o.Password == "" {
		o.Password = Password
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	miner, err := NewKey("regtest miner", P2PKH)
	if err != nil {
		return nil, err
	}
	conf := filepath.Join(o.Dir, "btcd.conf")
	if err := os.WriteFile(conf, nil, 0o600); err != nil {
		return nil, err
	}
	n := &Node{
		host:     "127.0.0.1:" + strconv.Itoa(port),
		Dir:      o.Dir,
		LogPath:  filepath.Join(o.Dir, "btcd.log"),
		Miner:    miner,
		bin:      o.Bin,
		password: o.Password,
		noTLS:    o.NoTLS,
		spent:    map[wire.OutPoint]bool{},
	}
	n.args = []string{
		"--configfile=" + conf,
		"--regtest",
		"--datadir=" + filepath.Join(o.Dir, "data"),
		"--logdir=" + filepath.Join(o.Dir, "logs"),
		"--rpcuser=" + User, "--rpcpass=" + o.Password,
		"--rpclisten=" + n.host,
		"--nolisten",
		"--txindex",
		"--miningaddr=" + miner.Address,
		"--debuglevel=info",
	}
	if o.NoTLS {
		n.WSURL, n.HTTPURL = "ws://"+n.host, "http://"+n.host
		n.args = append(n.args, "--notls")
	} else {
		n.CertPath = filepath.Join(o.Dir, "rpc.cert")
		n.WSURL, n.HTTPURL = "wss://"+n.host, "https://"+n.host
		n.args = append(n.args, "--rpccert="+n.CertPath, "--rpckey="+filepath.Join(o.Dir, "rpc.key"))
	}
	if err := n.Start(ctx); err != nil {
		return nil, err
	}
	if _, err := n.Generate(ctx, o.Mine); err != nil {
		n.Stop()
		return nil, err
	}
	return n, nil
}

// Start brings a stopped node back on the same port and data and waits until
// it answers. Starting a running node does nothing.
func (n *Node) Start(ctx context.Context) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd != nil {
		return nil
	}
	logf, err := os.OpenFile(n.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(n.bin, n.args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = childAttr()
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start btcd: %w", err)
	}
	done := make(chan struct{})
	go func() {
		cmd.Wait()
		logf.Close()
		close(done)
	}()
	n.cmd, n.done = cmd, done
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-done:
			n.cmd = nil
			return fmt.Errorf("btcd exited while starting; see %s", n.LogPath)
		default:
		}
		if err := n.connect(); err == nil {
			return nil
		} else if time.Now().After(deadline) || ctx.Err() != nil {
			n.stopLocked()
			return fmt.Errorf("btcd did not answer within 60s: %v (log %s)", err, n.LogPath)
		}
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond): // poll interval
		}
	}
}

// connect opens the control client once the certificate exists (unless
// NoTLS) and the node answers.
func (n *Node) connect() error {
	var cert []byte
	if !n.noTLS {
		var err error
		if cert, err = os.ReadFile(n.CertPath); err != nil {
			return err
		}
	}
	c, err := rpcclient.New(&rpcclient.ConnConfig{Host: n.host, User: User, Pass: n.password, Certificates: cert, DisableTLS: n.noTLS, HTTPPostMode: true}, nil)
	if err != nil {
		return err
	}
	if _, err := c.GetBlockCount(); err != nil {
		c.Shutdown()
		return err
	}
	n.Cert, n.rpc = cert, c
	return nil
}

// Stop shuts the node down (SIGINT, SIGKILL after 15s). Stopping a stopped
// node does nothing.
func (n *Node) Stop() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.stopLocked()
}

func (n *Node) stopLocked() error {
	if n.rpc != nil {
		n.rpc.Shutdown()
		n.rpc = nil
	}
	if n.cmd == nil {
		return nil
	}
	cmd, done := n.cmd, n.done
	n.cmd = nil
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	select {
	case <-done:
		return nil
	case <-time.After(15 * time.Second):
	}
	cmd.Process.Kill()
	<-done
	return errors.New("btcd did not stop within 15s of SIGINT; killed")
}

// RPC is a client for calls the helpers below do not cover.
func (n *Node) RPC() (*rpcclient.Client, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.rpc == nil {
		return nil, errors.New("regtest node is stopped")
	}
	return n.rpc, nil
}

// Generate mines k blocks to the miner key and returns their hashes.
func (n *Node) Generate(ctx context.Context, k int) ([]*chainhash.Hash, error) {
	c, err := n.RPC()
	if err != nil {
		return nil, err
	}
	var out []*chainhash.Hash
	for k > 0 { // in batches, so a long run is not one huge call
		b := min(k, 200)
		hs, err := c.Generate(uint32(b))
		if err != nil {
			return out, fmt.Errorf("generate: %w", err)
		}
		out = append(out, hs...)
		k -= b
		if err := ctx.Err(); err != nil {
			return out, err
		}
	}
	return out, nil
}

// Height is the node's best block height.
func (n *Node) Height(ctx context.Context) (int64, error) {
	c, err := n.RPC()
	if err != nil {
		return 0, err
	}
	return c.GetBlockCount()
}

// Send submits a signed transaction to the mempool.
func (n *Node) Send(ctx context.Context, tx *wire.MsgTx) (*chainhash.Hash, error) {
	c, err := n.RPC()
	if err != nil {
		return nil, err
	}
	h, err := c.SendRawTransaction(tx, true)
	if err != nil {
		return nil, fmt.Errorf("send %s: %w", tx.TxHash(), err)
	}
	return h, nil
}

// Invalidate marks a block invalid, so the node reorganises away from it
// (its transactions go back to the mempool).
func (n *Node) Invalidate(ctx context.Context, block *chainhash.Hash) error {
	c, err := n.RPC()
	if err != nil {
		return err
	}
	return c.InvalidateBlock(block)
}

// MinerCoin returns a mature coinbase output of the miner key not handed out
// before.
func (n *Node) MinerCoin(ctx context.Context) (Coin, error) {
	c, err := n.RPC()
	if err != nil {
		return Coin{}, err
	}
	height, err := c.GetBlockCount()
	if err != nil {
		return Coin{}, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	for h := int64(1); h <= height-100; h++ {
		hash, err := c.GetBlockHash(h)
		if err != nil {
			return Coin{}, err
		}
		blk, err := c.GetBlock(hash)
		if err != nil {
			return Coin{}, err
		}
		cb := blk.Transactions[0]
		op := wire.OutPoint{Hash: cb.TxHash(), Index: 0}
		if n.spent[op] || string(cb.TxOut[0].PkScript) != string(n.Miner.Script) {
			continue
		}
		n.spent[op] = true
		return Coin{OutPoint: op, Value: cb.TxOut[0].Value, Key: n.Miner}, nil
	}
	return Coin{}, errors.New("no mature miner coinbase left: generate more blocks")
}

// Fund pays value to key from a miner coinbase and returns the coin it
// created (unconfirmed until a block is mined).
func (n *Node) Fund(ctx context.Context, key *Key, value btcutil.Amount) (Coin, *wire.MsgTx, error) {
	cb, err := n.MinerCoin(ctx)
	if err != nil {
		return Coin{}, nil, err
	}
	tx, err := Pay([]Coin{cb}, []Output{{Script: key.Script, Value: int64(value)}}, n.Miner.Script, 1000)
	if err != nil {
		return Coin{}, nil, err
	}
	if _, err := n.Send(ctx, tx); err != nil {
		return Coin{}, nil, err
	}
	return Coin{OutPoint: wire.OutPoint{Hash: tx.TxHash(), Index: 0}, Value: int64(value), Key: key}, tx, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
