package ethereum

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/ethclient"
)

// Pool is a Client over one or more node endpoints. It connects lazily,
// bounds every call with a timeout, and moves to the next endpoint when one
// fails, so a node that disappears costs a retry, not a crash.
type Pool struct {
	urls    []string
	timeout time.Duration
	log     *slog.Logger

	mu     sync.Mutex
	cur    int
	client *ethclient.Client
}

// NewPool makes a pool over urls (http(s) or ws(s)). timeout bounds each
// call (default 20s).
func NewPool(urls []string, timeout time.Duration, log *slog.Logger) *Pool {
	if timeout <= 0 {
		timeout = 20 * time.Second
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Pool{urls: urls, timeout: timeout, log: log}
}

// Redact hides credentials and API-key paths of a node URL for logs: only
// scheme and host remain.
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "(unparseable URL)"
	}
	return u.Scheme + "://" + u.Host
}

func (p *Pool) get(ctx context.Context) (*ethclient.Client, int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.client != nil {
		return p.client, p.cur, nil
	}
	var errs []error
	for range p.urls {
		u := p.urls[p.cur]
		dctx, cancel := context.WithTimeout(ctx, p.timeout)
		c, err := ethclient.DialContext(dctx, u)
		cancel()
		if err == nil {
			p.client = c
			p.log.Info("connected to node", "node", Redact(u))
			return c, p.cur, nil
		}
		errs = append(errs, fmt.Errorf("%s: %s", Redact(u), scrub(err, u)))
		p.cur = (p.cur + 1) % len(p.urls)
	}
	return nil, 0, fmt.Errorf("no node reachable: %w", errors.Join(errs...))
}

// fail drops the connection to endpoint idx so the next call tries the next.
func (p *Pool) fail(idx int, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.client == nil || idx != p.cur {
		return
	}
	p.log.Warn("node call failed; switching endpoint", "node", Redact(p.urls[idx]), "err", scrub(err, p.urls[idx]))
	p.client.Close()
	p.client = nil
	p.cur = (p.cur + 1) % len(p.urls)
}

// Close drops the current connection.
func (p *Pool) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.client != nil {
		p.client.Close()
		p.client = nil
	}
}

// IsWebSocket reports whether the endpoint in use pushes heads.
func (p *Pool) IsWebSocket() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.HasPrefix(p.urls[p.cur], "ws")
}

// scrub removes the endpoint URL (which may carry an API key) from an error.
func scrub(err error, u string) string {
	if err == nil {
		return ""
	}
	return strings.ReplaceAll(err.Error(), u, Redact(u))
}

func call[T any](ctx context.Context, p *Pool, f func(ctx context.Context, c *ethclient.Client) (T, error)) (T, error) {
	var zero T
	c, idx, err := p.get(ctx)
	if err != nil {
		return zero, err
	}
	cctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	v, err := f(cctx, c)
	if err != nil && ctx.Err() == nil && !errors.Is(err, ethereum.NotFound) {
		p.fail(idx, err)
		return zero, errors.New(scrub(err, p.urls[idx]))
	}
	return v, err
}

func (p *Pool) ChainID(ctx context.Context) (*big.Int, error) {
	return call(ctx, p, func(ctx context.Context, c *ethclient.Client) (*big.Int, error) { return c.ChainID(ctx) })
}

func (p *Pool) BlockNumber(ctx context.Context) (uint64, error) {
	return call(ctx, p, func(ctx context.Context, c *ethclient.Client) (uint64, error) { return c.BlockNumber(ctx) })
}

func (p *Pool) HeaderByNumber(ctx context.Context, n *big.Int) (*types.Header, error) {
	return call(ctx, p, func(ctx context.Context, c *ethclient.Client) (*types.Header, error) { return c.HeaderByNumber(ctx, n) })
}

func (p *Pool) BlockByHash(ctx context.Context, h common.Hash) (*types.Block, error) {
	return call(ctx, p, func(ctx context.Context, c *ethclient.Client) (*types.Block, error) { return c.BlockByHash(ctx, h) })
}

func (p *Pool) FilterLogs(ctx context.Context, q ethereum.FilterQuery) ([]types.Log, error) {
	return call(ctx, p, func(ctx context.Context, c *ethclient.Client) ([]types.Log, error) { return c.FilterLogs(ctx, q) })
}

func (p *Pool) TransactionReceipt(ctx context.Context, h common.Hash) (*types.Receipt, error) {
	return call(ctx, p, func(ctx context.Context, c *ethclient.Client) (*types.Receipt, error) {
		return c.TransactionReceipt(ctx, h)
	})
}

func (p *Pool) TransactionSender(ctx context.Context, tx *types.Transaction, block common.Hash, index uint) (common.Address, error) {
	return call(ctx, p, func(ctx context.Context, c *ethclient.Client) (common.Address, error) {
		return c.TransactionSender(ctx, tx, block, index)
	})
}

func (p *Pool) BalanceAt(ctx context.Context, a common.Address, block *big.Int) (*big.Int, error) {
	return call(ctx, p, func(ctx context.Context, c *ethclient.Client) (*big.Int, error) { return c.BalanceAt(ctx, a, block) })
}

func (p *Pool) CallContract(ctx context.Context, msg ethereum.CallMsg, block *big.Int) ([]byte, error) {
	return call(ctx, p, func(ctx context.Context, c *ethclient.Client) ([]byte, error) { return c.CallContract(ctx, msg, block) })
}

// SubscribeNewHead subscribes on a WebSocket endpoint; on http(s) it returns
// an error and the watcher polls.
func (p *Pool) SubscribeNewHead(ctx context.Context, ch chan<- *types.Header) (ethereum.Subscription, error) {
	if !p.IsWebSocket() {
		return nil, errNoPush
	}
	c, idx, err := p.get(ctx)
	if err != nil {
		return nil, err
	}
	sub, err := c.SubscribeNewHead(ctx, ch)
	if err != nil {
		p.fail(idx, err)
		return nil, errors.New(scrub(err, p.urls[idx]))
	}
	return sub, nil
}

var errNoPush = errors.New("endpoint is http(s): heads are polled")
