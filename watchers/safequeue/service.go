package safequeue

// The Safe Transaction Service client: the two v1 endpoints the poller reads,
// as the service serves them (Django REST framework, camelCase JSON,
// limit/offset pagination), each response checked field by field before
// anything is judged from it.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/keywatch/keywatch/chains/ethereum/safe"
)

// ErrMalformed is wrapped by the errors of a response that is not what the
// service's API documents: bad JSON, a field of the wrong type, a result for
// another Safe, a next link that leaves the service. Nothing is judged from
// such a response.
var ErrMalformed = errors.New("malformed Safe Transaction Service response")

// Defaults of ServiceOptions.
const (
	// DefaultPageLimit is the page size asked for (the service's default; its
	// maximum is 200).
	DefaultPageLimit = 100
	// DefaultMaxPages bounds the pages one listing follows.
	DefaultMaxPages = 50
	// DefaultTimeout bounds one request.
	DefaultTimeout = 30 * time.Second
	// maxBody bounds one response body.
	maxBody = 16 << 20
)

// ServiceOptions configure a Service.
type ServiceOptions struct {
	// HTTP is the client requests go through (default: one with
	// DefaultTimeout).
	HTTP *http.Client
	// APIKey, when set, is sent as a bearer token (the hosted service asks
	// for one). It is never logged.
	APIKey    string
	PageLimit int // results per page (default DefaultPageLimit)
	MaxPages  int // pages one listing follows at most (default DefaultMaxPages)
}

// Service is a client of a Safe Transaction Service's public REST API.
type Service struct {
	base *url.URL
	opts ServiceOptions
}

// NewService makes a client of the service at baseURL (for example
// https://safe-transaction-mainnet.safe.global).
func NewService(baseURL string, opts ServiceOptions) (*Service, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, errors.New("safe transaction service: want an http(s):// base URL")
	}
	if u.User != nil {
		return nil, errors.New("safe transaction service: the URL must not carry credentials")
	}
	u.RawQuery, u.Fragment = "", ""
	u.Path = strings.TrimSuffix(u.Path, "/")
	if opts.HTTP == nil {
		opts.HTTP = &http.Client{Timeout: DefaultTimeout}
	}
	if opts.PageLimit <= 0 {
		opts.PageLimit = DefaultPageLimit
	}
	if opts.MaxPages <= 0 {
		opts.MaxPages = DefaultMaxPages
	}
	return &Service{base: u, opts: opts}, nil
}

// Tx is one multisig transaction of a Safe as the service serves it, its
// fields checked.
type Tx struct {
	Safe     common.Address
	Payload  safe.Tx // to, value, data, operation, gas fields and nonce
	Nonce    uint64
	Hash     common.Hash // safeTxHash as the service shows it
	Executed bool        // isExecuted
	// TxHash and Block are the execution's transaction and block, when the
	// service says it was executed.
	TxHash        *common.Hash
	Block         *uint64
	Confirmations []Confirmation
	Required      uint64          // confirmationsRequired (0 when the service does not know)
	Proposer      *common.Address // nil when the service names none
	Method        string          // dataDecoded.method, "" when none
}

// Confirmation is one owner's confirmation of a transaction.
type Confirmation struct {
	Owner common.Address
	// Signature is the owner's signature; nil for a confirmation the service
	// took from the chain (an approveHash transaction).
	Signature []byte
	Type      string // signatureType: EOA, ETH_SIGN, APPROVED_HASH, CONTRACT_SIGNATURE
}

// Info is what the service knows of a Safe (GET /api/v1/safes/{address}/).
type Info struct {
	Address   common.Address
	Nonce     uint64
	Threshold uint64
	Owners    []common.Address
	Version   string // "" when the service does not know it
}

// Queue lists the multisig transactions of the Safe whose nonce is
// fromNonce or more, lowest nonce first, following the pages' next links.
// Untrusted transactions (proposed without a signature yet) are listed too:
// the service hides them by default. Executed ones are listed as well:
// which nonces are still open is for the chain to say, not the service.
func (s *Service) Queue(ctx context.Context, addr common.Address, fromNonce uint64) ([]Tx, error) {
	return s.list(ctx, addr, "nonce__gte", fromNonce)
}

// AtNonce lists the multisig transactions of the Safe of one nonce, as
// Queue does: the one that used it and those it replaced.
func (s *Service) AtNonce(ctx context.Context, addr common.Address, nonce uint64) ([]Tx, error) {
	return s.list(ctx, addr, "nonce", nonce)
}

// list reads the multisig-transactions listing of the Safe filtered on its
// nonce (filter nonce or nonce__gte).
func (s *Service) list(ctx context.Context, addr common.Address, filter string, nonce uint64) ([]Tx, error) {
	endpoint := "/api/v1/safes/" + addr.Hex() + "/multisig-transactions/"
	where := s.where(endpoint)
	q := url.Values{}
	q.Set(filter, strconv.FormatUint(nonce, 10))
	q.Set("ordering", "nonce")
	q.Set("trusted", "false")
	q.Set("limit", strconv.Itoa(s.opts.PageLimit))
	next := s.endpoint(endpoint)
	next.RawQuery = q.Encode()
	seen := map[string]bool{}
	var out []Tx
	for n := 0; ; n++ {
		if n == s.opts.MaxPages {
			return nil, fmt.Errorf("%w: %s: the listing runs past %d pages", ErrMalformed, where, s.opts.MaxPages)
		}
		seen[next.String()] = true
		body, err := s.get(ctx, next, where)
		if err != nil {
			return nil, err
		}
		p, err := decodePage(body)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: page %d: %v", ErrMalformed, where, n+1, err)
		}
		for i, raw := range p.results {
			tx, err := decodeTx(fmt.Sprintf("results[%d]", i), raw)
			if err != nil {
				return nil, fmt.Errorf("%w: %s: page %d: %v", ErrMalformed, where, n+1, err)
			}
			if tx.Safe != addr {
				return nil, fmt.Errorf("%w: %s: page %d: results[%d] is a transaction of Safe %s, not of %s", ErrMalformed, where, n+1, i, tx.Safe.Hex(), addr.Hex())
			}
			out = append(out, tx)
		}
		if p.next == "" {
			return out, nil
		}
		if next, err = s.follow(p.next, next.Path); err != nil {
			return nil, fmt.Errorf("%w: %s: page %d: next: %v", ErrMalformed, where, n+1, err)
		}
		if seen[next.String()] {
			return nil, fmt.Errorf("%w: %s: page %d: next links back to a page already read", ErrMalformed, where, n+1)
		}
	}
}

// Info reads what the service knows of the Safe.
func (s *Service) Info(ctx context.Context, addr common.Address) (Info, error) {
	endpoint := "/api/v1/safes/" + addr.Hex() + "/"
	where := s.where(endpoint)
	body, err := s.get(ctx, s.endpoint(endpoint), where)
	if err != nil {
		return Info{}, err
	}
	info, err := decodeInfo(body)
	if err != nil {
		return Info{}, fmt.Errorf("%w: %s: %v", ErrMalformed, where, err)
	}
	if info.Address != addr {
		return Info{}, fmt.Errorf("%w: %s: describes Safe %s, not %s", ErrMalformed, where, info.Address.Hex(), addr.Hex())
	}
	return info, nil
}

// endpoint is the URL of an endpoint of the API (its path after the base).
func (s *Service) endpoint(path string) *url.URL {
	return &url.URL{Scheme: s.base.Scheme, Host: s.base.Host, Path: s.base.Path + path}
}

// where is an endpoint's URL as logs and errors show it: scheme, host and
// the endpoint, without the query and without the base URL's own path (which
// may hold a key).
func (s *Service) where(path string) string {
	if s.base.Path != "" {
		return redactHost(s.base) + "/…" + path
	}
	return redactHost(s.base) + path
}

// String is the service's redacted address, for logs.
func (s *Service) String() string { return s.where("") }

// follow checks a next link: it must stay on the service's scheme, host and
// endpoint (only the page's query may change).
func (s *Service) follow(raw, path string) (*url.URL, error) {
	n, err := url.Parse(raw)
	if err != nil {
		return nil, errors.New("not a URL")
	}
	switch {
	case n.User != nil:
		return nil, errors.New("carries credentials")
	case n.Scheme != s.base.Scheme || !strings.EqualFold(n.Host, s.base.Host):
		return nil, fmt.Errorf("leads to %s, away from the service at %s", redactHost(n), redactHost(s.base))
	case n.Path != path:
		return nil, errors.New("leads to another endpoint")
	}
	n.Fragment = ""
	return n, nil
}

// StatusError is an answer other than 200 OK.
type StatusError struct {
	URL    string // redacted
	Status int
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%s answered %d %s", e.URL, e.Status, http.StatusText(e.Status))
}

// get reads the body of u. Its errors name the URL as where says (never
// the query, nor the transport's own copy of the URL).
func (s *Service) get(ctx context.Context, u *url.URL, where string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("request %s: cannot build the request", where)
	}
	req.Header.Set("Accept", "application/json")
	if s.opts.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+s.opts.APIKey)
	}
	resp, err := s.opts.HTTP.Do(req)
	if err != nil {
		if ue, ok := errors.AsType[*url.Error](err); ok {
			err = ue.Err
		}
		return nil, fmt.Errorf("request %s: %w", where, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
		return nil, &StatusError{URL: where, Status: resp.StatusCode}
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", where, err)
	}
	if len(body) > maxBody {
		return nil, fmt.Errorf("%w: %s: the body is over %d bytes", ErrMalformed, where, maxBody)
	}
	return body, nil
}

func redactHost(u *url.URL) string { return u.Scheme + "://" + u.Host }
