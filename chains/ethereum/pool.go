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
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/keywatch/keywatch/chains"
)

// Pool is a Client over one or more node endpoints. It connects lazily,
// bounds every call with a timeout, and moves to the next endpoint when one
// fails (no answer, a transport or HTTP error; not an error the node
// answered), so a node that disappears costs a retry, not a crash.
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
			p.log.Info("connected to node", "node", chains.RedactNodeURL(u))
			return c, p.cur, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", chains.RedactNodeURL(u), scrub(err, u)))
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
	p.log.Warn("node call failed; switching endpoint", "node", chains.RedactNodeURL(p.urls[idx]), "err", err)
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

// isWebSocket reports whether the endpoint in use pushes heads.
func (p *Pool) isWebSocket() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.HasPrefix(p.urls[p.cur], "ws")
}

// scrub keeps the endpoint URL, which may carry credentials or an API key,
// out of an error: the URL as the HTTP client prints it (normalised, the
// password masked but the path kept) and as configured become scheme and
// host, and what is left of its credentials, path and query is masked. The
// result still matches the original error with errors.Is and errors.As.
func scrub(err error, raw string) error {
	if err == nil {
		return nil
	}
	safe := chains.RedactNodeURL(raw)
	msg := err.Error()
	var ue *url.Error
	if errors.As(err, &ue) && ue.URL != "" {
		msg = strings.ReplaceAll(msg, ue.URL, safe)
	}
	msg = strings.ReplaceAll(msg, raw, safe)
	if u, perr := url.Parse(raw); perr == nil {
		parts := []string{u.RawQuery, strings.Trim(u.EscapedPath(), "/"), u.User.Username()}
		if pw, ok := u.User.Password(); ok {
			parts = append(parts, pw)
		}
		for _, s := range parts {
			if len(s) >= 4 { // shorter is no secret, and would mask common words
				msg = strings.ReplaceAll(msg, s, "[redacted]")
			}
		}
	}
	return &scrubbed{msg: msg, err: err}
}

// scrubbed is an error whose text was cleared of the endpoint's secrets.
type scrubbed struct {
	msg string
	err error
}

func (e *scrubbed) Error() string { return e.msg }
func (e *scrubbed) Unwrap() error { return e.err }

func call[T any](ctx context.Context, p *Pool, f func(ctx context.Context, c *ethclient.Client) (T, error)) (T, error) {
	var zero T
	c, idx, err := p.get(ctx)
	if err != nil {
		return zero, err
	}
	cctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	v, err := f(cctx, c)
	if err == nil || errors.Is(err, ethereum.NotFound) {
		return v, err
	}
	err = scrub(err, p.urls[idx])
	// An error the node answered (a reverted call, state it no longer
	// keeps) says nothing about the endpoint: only a failure to get an
	// answer moves the pool on.
	var answered rpc.Error
	if ctx.Err() == nil && !errors.As(err, &answered) {
		p.fail(idx, err)
	}
	return zero, err
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
	if !p.isWebSocket() {
		return nil, errNoPush
	}
	c, idx, err := p.get(ctx)
	if err != nil {
		return nil, err
	}
	sub, err := c.SubscribeNewHead(ctx, ch)
	if err != nil {
		err = scrub(err, p.urls[idx])
		p.fail(idx, err)
		return nil, err
	}
	return sub, nil
}

var errNoPush = errors.New("endpoint is http(s): heads are polled")
