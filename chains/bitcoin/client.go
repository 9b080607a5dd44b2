package bitcoin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/btcsuite/btcd/btcjson"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/rpcclient"
	"github.com/btcsuite/btcd/wire"

	"github.com/keywatch/keywatch/chains"
)

// ClientConfig says how to reach a chain's node.
type ClientConfig struct {
	// URLs are tried in order, the next on failure. ws(s)://host:port is btcd
	// with WebSocket notifications; http(s)://host:port is HTTP POST mode
	// (Bitcoin Core, or btcd without notifications), polled.
	URLs []string
	User string
	// Password is the RPC password: handed to the node's client, never
	// logged (ClientConfig has no String form that shows it).
	Password string
	// CookiePath, instead of User and Password, is Bitcoin Core's cookie
	// file ("user:password"). It is read when a connection is made, and
	// again when the node rewrote it (each start of Bitcoin Core does).
	CookiePath string
	// Cert is the node's PEM certificate, for a self-signed TLS endpoint.
	Cert []byte
	// Timeout bounds each call (default 20s).
	Timeout time.Duration
	Logger  *slog.Logger
}

// NoticeKind says what a node pushed.
type NoticeKind int

const (
	BlockConnected NoticeKind = iota
	BlockDisconnected
	// TxAccepted: a transaction the filter selected entered the mempool.
	TxAccepted
)

// Notice is one notification from btcd.
type Notice struct {
	Kind NoticeKind
	Tx   *wire.MsgTx // for TxAccepted
}

// Client is btcd's rpcclient behind methods that take a context. It
// connects lazily, bounds every call with a timeout, and on a connection
// failure drops the connection and moves to the next URL, so that a node
// that goes away costs a retry, not a hang. A WebSocket connection's
// notifications arrive on the channel Subscribe returns; the channel closes
// when that connection ends, and subscribing again re-registers them on the
// next connection.
type Client struct {
	cfg ClientConfig
	log *slog.Logger

	mu    sync.Mutex
	cur   int
	conn  *conn
	close bool
}

// conn is one connection to one URL.
type conn struct {
	rpc   *rpcclient.Client
	idx   int
	ws    bool
	notes chan Notice
	done  chan struct{} // closed when the connection has ended
}

// NewClient makes a client; nothing is dialled until the first call.
func NewClient(cfg ClientConfig) (*Client, error) {
	if len(cfg.URLs) == 0 {
		return nil, errors.New("bitcoin client: no node URL")
	}
	for _, u := range cfg.URLs {
		if _, _, _, err := parseNodeURL(u); err != nil {
			return nil, err
		}
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 20 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Client{cfg: cfg, log: cfg.Logger}, nil
}

// parseNodeURL splits a node URL into host, whether it is a WebSocket
// endpoint, and whether it uses TLS.
func parseNodeURL(raw string) (host string, ws, tls bool, err error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "", false, false, fmt.Errorf("node URL %s: want ws(s)://host:port or http(s)://host:port", chains.RedactNodeURL(raw))
	}
	switch u.Scheme {
	case "ws":
		ws = true
	case "wss":
		ws, tls = true, true
	case "http":
	case "https":
		tls = true
	default:
		return "", false, false, fmt.Errorf("node URL %s: want ws(s)://host:port or http(s)://host:port", chains.RedactNodeURL(raw))
	}
	return u.Host, ws, tls, nil
}

// IsWebSocket reports whether the endpoint in use pushes notifications.
func (c *Client) IsWebSocket() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ws, _, _ := parseNodeURL(c.cfg.URLs[c.cur])
	return ws
}

// get returns the live connection, dialling the URLs in turn when there is
// none.
func (c *Client) get(ctx context.Context) (*conn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.close {
		return nil, errors.New("bitcoin client is closed")
	}
	if c.conn != nil {
		select {
		case <-c.conn.done:
			c.conn = nil // the WebSocket ended since the last call
		default:
			return c.conn, nil
		}
	}
	var errs []error
	for range c.cfg.URLs {
		cn, err := c.dial(ctx, c.cur)
		if err == nil {
			c.conn = cn
			c.log.Info("connected to bitcoin node", "node", chains.RedactNodeURL(c.cfg.URLs[c.cur]), "notifications", cn.ws)
			return cn, nil
		}
		errs = append(errs, fmt.Errorf("%s: %v", chains.RedactNodeURL(c.cfg.URLs[c.cur]), err))
		c.cur = (c.cur + 1) % len(c.cfg.URLs)
	}
	return nil, fmt.Errorf("no bitcoin node reachable: %w", errors.Join(errs...))
}

func (c *Client) dial(ctx context.Context, idx int) (*conn, error) {
	host, ws, tls, err := parseNodeURL(c.cfg.URLs[idx])
	if err != nil {
		return nil, err
	}
	cc := &rpcclient.ConnConfig{
		Host:                 host,
		Endpoint:             "ws",
		User:                 c.cfg.User,
		Pass:                 c.cfg.Password,
		CookiePath:           c.cfg.CookiePath,
		DisableTLS:           !tls,
		Certificates:         c.cfg.Cert,
		HTTPPostMode:         !ws,
		DisableAutoReconnect: true, // reconnection is ours: next URL, then re-register
	}
	cn := &conn{idx: idx, ws: ws, notes: make(chan Notice, 256), done: make(chan struct{})}
	var handlers *rpcclient.NotificationHandlers
	if ws {
		push := func(n Notice) {
			select {
			case cn.notes <- n:
			default: // full: the mempool pass finds the transaction anyway
			}
		}
		handlers = &rpcclient.NotificationHandlers{
			OnFilteredBlockConnected: func(int32, *wire.BlockHeader, []*btcutil.Tx) {
				push(Notice{Kind: BlockConnected})
			},
			OnFilteredBlockDisconnected: func(int32, *wire.BlockHeader) {
				push(Notice{Kind: BlockDisconnected})
			},
			OnRelevantTxAccepted: func(raw []byte) {
				tx := new(wire.MsgTx)
				if err := tx.Deserialize(bytes.NewReader(raw)); err != nil {
					c.log.Warn("undecodable transaction notification", "err", err)
					return
				}
				push(Notice{Kind: TxAccepted, Tx: tx})
			},
		}
	}
	// rpcclient.New dials without a deadline: bound it here, and shut down a
	// client that connects after we gave up.
	type result struct {
		rpc *rpcclient.Client
		err error
	}
	ch := make(chan result, 1)
	go func() {
		r, err := rpcclient.New(cc, handlers)
		ch <- result{r, err}
	}()
	dctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	select {
	case <-dctx.Done():
		go func() {
			if r := <-ch; r.rpc != nil {
				r.rpc.Shutdown()
			}
		}()
		return nil, fmt.Errorf("connect: %w", dctx.Err())
	case r := <-ch:
		if r.err != nil {
			return nil, fmt.Errorf("connect: %s", c.scrub(r.err))
		}
		cn.rpc = r.rpc
	}
	if ws {
		go func() {
			cn.rpc.WaitForShutdown()
			close(cn.done)
			close(cn.notes)
		}()
	}
	return cn, nil
}

// scrub keeps the password out of an error text.
func (c *Client) scrub(err error) string {
	msg := err.Error()
	if p := c.cfg.Password; p != "" {
		msg = strings.ReplaceAll(msg, p, "[redacted]")
	}
	return msg
}

// drop ends the connection cn after a failure so the next call dials the
// next URL.
func (c *Client) drop(cn *conn, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn != cn {
		return
	}
	c.log.Warn("bitcoin node call failed; switching endpoint", "node", chains.RedactNodeURL(c.cfg.URLs[cn.idx]), "err", c.scrub(err))
	c.conn = nil
	c.cur = (cn.idx + 1) % len(c.cfg.URLs)
	go cn.rpc.Shutdown()
}

// Close ends the connection; the client cannot be used afterwards.
func (c *Client) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.close = true
	if c.conn != nil {
		c.conn.rpc.Shutdown()
		c.conn = nil
	}
}

// call runs f on the live connection within the call timeout. An RPC error
// (the node answered) is returned as is; any other failure drops the
// connection.
func call[T any](ctx context.Context, c *Client, what string, f func(r *rpcclient.Client) (T, error)) (T, error) {
	var zero T
	cn, err := c.get(ctx)
	if err != nil {
		return zero, err
	}
	cctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1)
	go func() {
		v, err := f(cn.rpc)
		ch <- result{v, err}
	}()
	select {
	case <-cctx.Done():
		if ctx.Err() == nil {
			c.drop(cn, fmt.Errorf("%s: no answer within %s", what, c.cfg.Timeout))
		}
		return zero, fmt.Errorf("%s: %w", what, cctx.Err())
	case r := <-ch:
		if r.err == nil {
			return r.v, nil
		}
		var rpcErr *btcjson.RPCError
		if !errors.As(r.err, &rpcErr) {
			c.drop(cn, r.err)
		}
		return zero, fmt.Errorf("%s: %s", what, c.scrub(r.err))
	}
}

// BlockCount returns the height of the node's best block.
func (c *Client) BlockCount(ctx context.Context) (int64, error) {
	return call(ctx, c, "getblockcount", func(r *rpcclient.Client) (int64, error) { return r.GetBlockCount() })
}

// ErrNoBlock is returned when the node has no block at a height.
var ErrNoBlock = errors.New("no block at that height")

// isNotFound reports whether a node error says the object does not exist.
func isNotFound(err error) bool {
	msg := strings.ToLower(err.Error())
	return strings.Contains(msg, "no information") || strings.Contains(msg, "not found") || strings.Contains(msg, "no such")
}

// BlockHash returns the hash of the best chain's block at height.
func (c *Client) BlockHash(ctx context.Context, height int64) (*chainhash.Hash, error) {
	h, err := call(ctx, c, "getblockhash", func(r *rpcclient.Client) (*chainhash.Hash, error) { return r.GetBlockHash(height) })
	if err != nil && strings.Contains(strings.ToLower(err.Error()), "out of range") {
		return nil, fmt.Errorf("block %d: %w", height, ErrNoBlock)
	}
	return h, err
}

// BlockHeader returns a block's header.
func (c *Client) BlockHeader(ctx context.Context, hash *chainhash.Hash) (*wire.BlockHeader, error) {
	return call(ctx, c, "getblockheader", func(r *rpcclient.Client) (*wire.BlockHeader, error) { return r.GetBlockHeader(hash) })
}

// Block returns a whole block.
func (c *Client) Block(ctx context.Context, hash *chainhash.Hash) (*wire.MsgBlock, error) {
	return call(ctx, c, "getblock", func(r *rpcclient.Client) (*wire.MsgBlock, error) { return r.GetBlock(hash) })
}

// Transaction returns a transaction from the mempool (or, on a node with a
// transaction index, from the chain).
func (c *Client) Transaction(ctx context.Context, txid *chainhash.Hash) (*wire.MsgTx, error) {
	return call(ctx, c, "getrawtransaction", func(r *rpcclient.Client) (*wire.MsgTx, error) {
		tx, err := r.GetRawTransaction(txid)
		if err != nil {
			return nil, err
		}
		return tx.MsgTx(), nil
	})
}

// Mempool lists the ids of the transactions in the node's mempool.
func (c *Client) Mempool(ctx context.Context) ([]*chainhash.Hash, error) {
	return call(ctx, c, "getrawmempool", func(r *rpcclient.Client) ([]*chainhash.Hash, error) { return r.GetRawMempool() })
}

// Network returns keywatch's name for the network the node is on (mainnet,
// testnet, regtest, signet, simnet), read from getblockchaininfo, which
// btcd and Bitcoin Core both answer.
func (c *Client) Network(ctx context.Context) (string, error) {
	raw, err := call(ctx, c, "getblockchaininfo", func(r *rpcclient.Client) (json.RawMessage, error) {
		return r.RawRequest("getblockchaininfo", nil)
	})
	if err != nil {
		return "", err
	}
	var info struct {
		Chain string `json:"chain"`
	}
	if err := json.Unmarshal(raw, &info); err != nil || info.Chain == "" {
		return "", fmt.Errorf("getblockchaininfo: no chain in the answer")
	}
	return networkOfNode(info.Chain), nil
}

// Subscribe registers for block notifications and loads the transaction
// filter (addresses and outpoints whose mempool transactions btcd pushes) on
// a WebSocket connection. It returns nil, nil on an HTTP endpoint, which is
// polled. The channel closes when the connection ends.
func (c *Client) Subscribe(ctx context.Context, addrs []btcutil.Address, ops []wire.OutPoint) (<-chan Notice, error) {
	cn, err := c.get(ctx)
	if err != nil {
		return nil, err
	}
	if !cn.ws {
		return nil, nil
	}
	if _, err := call(ctx, c, "notifyblocks", func(r *rpcclient.Client) (struct{}, error) { return struct{}{}, r.NotifyBlocks() }); err != nil {
		return nil, err
	}
	if err := c.LoadTxFilter(ctx, true, addrs, ops); err != nil {
		return nil, err
	}
	return cn.notes, nil
}

// LoadTxFilter replaces (reload) or extends btcd's transaction filter.
func (c *Client) LoadTxFilter(ctx context.Context, reload bool, addrs []btcutil.Address, ops []wire.OutPoint) error {
	if !c.IsWebSocket() {
		return nil
	}
	_, err := call(ctx, c, "loadtxfilter", func(r *rpcclient.Client) (struct{}, error) {
		return struct{}{}, r.LoadTxFilter(reload, addrs, ops)
	})
	return err
}

// String describes the configuration without its credentials, so that a
// ClientConfig printed by mistake leaks no password.
func (c ClientConfig) String() string {
	urls := make([]string, len(c.URLs))
	for i, u := range c.URLs {
		urls[i] = chains.RedactNodeURL(u)
	}
	return fmt.Sprintf("bitcoin node %s (user %q)", strings.Join(urls, ", "), c.User)
}
