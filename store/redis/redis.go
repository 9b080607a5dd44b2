// Package redis is the production store.Store, shared by every keywatch
// instance. Every key is namespaced by a prefix ("keywatch:" by default), so
// several deployments or test runs can share one Redis database.
//
// Semantics match store/memory: a ttl of zero or less means no expiry, Update
// keeps the key's TTL (SET ... KEEPTTL, Redis 6.0 or later) and retries on
// concurrent writers with WATCH/MULTI/EXEC, and missing keys or fields map to
// store.ErrNotFound. Every call is bounded by its ctx: the client honours
// context deadlines.
package redis

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/keywatch/keywatch/store"
)

// DefaultPrefix namespaces keys when WithPrefix is not given.
const DefaultPrefix = "keywatch:"

const (
	defaultPingTimeout    = 5 * time.Second
	defaultUpdateAttempts = 64
	maxUpdateBackoff      = 32 * time.Millisecond
)

// Option configures Open.
type Option func(*config)

type config struct {
	prefix         string
	pingTimeout    time.Duration
	updateAttempts int
}

// WithPrefix namespaces every key with p (DefaultPrefix when not given; an
// empty p leaves keys as they are).
func WithPrefix(p string) Option {
	return func(c *config) { c.prefix = p }
}

// WithPingTimeout bounds the ping Open makes when ctx has no earlier deadline
// (5s by default).
func WithPingTimeout(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.pingTimeout = d
		}
	}
}

// WithUpdateAttempts sets how many times Update tries before it gives up with
// store.ErrConflict (64 by default).
func WithUpdateAttempts(n int) Option {
	return func(c *config) {
		if n > 0 {
			c.updateAttempts = n
		}
	}
}

// Store is a store.Store on Redis. Make one with Open.
type Store struct {
	client         *goredis.Client
	prefix         string
	url            string // redacted
	updateAttempts int
}

var _ store.Store = (*Store)(nil)

// Open connects to the Redis at url (redis://, rediss:// or unix://, as
// goredis.ParseURL reads them) and pings it. Errors name the URL with its
// credentials redacted.
func Open(ctx context.Context, url string, opts ...Option) (*Store, error) {
	cfg := config{
		prefix:         DefaultPrefix,
		pingTimeout:    defaultPingTimeout,
		updateAttempts: defaultUpdateAttempts,
	}
	for _, opt := range opts {
		opt(&cfg)
	}
	safe := Redact(url)
	ropts, err := goredis.ParseURL(url)
	if err != nil {
		// url.Parse errors quote the whole URL, password included: keep only
		// a scrubbed message, never the original error.
		return nil, fmt.Errorf("redis store: parse url %s: %s", safe, scrub(err.Error(), url, safe))
	}
	ropts.ContextTimeoutEnabled = true
	client := goredis.NewClient(ropts)

	pctx, cancel := context.WithTimeout(ctx, cfg.pingTimeout)
	defer cancel()
	if err := client.Ping(pctx).Err(); err != nil {
		_ = client.Close()
		detail := scrub(err.Error(), url, safe)
		// go-redis retries failed dials until the deadline and then reports
		// only the deadline: say why the address could not be reached.
		if errors.Is(err, context.DeadlineExceeded) && ropts.Network == "tcp" {
			if derr := probe(ropts.Addr); derr != nil {
				detail += " (" + derr.Error() + ")"
			}
		}
		return nil, &scrubbedError{msg: fmt.Sprintf("redis store: ping %s: %s", safe, detail), err: err}
	}
	return &Store{
		client:         client,
		prefix:         cfg.prefix,
		url:            safe,
		updateAttempts: cfg.updateAttempts,
	}, nil
}

// probe dials addr once, to explain a ping that timed out.
func probe(addr string) error {
	conn, err := net.DialTimeout("tcp", addr, 500*time.Millisecond)
	if err != nil {
		return err
	}
	return conn.Close()
}

// String names the store for logs: its URL without credentials and prefix.
func (s *Store) String() string {
	return fmt.Sprintf("redis %s prefix %q", s.url, s.prefix)
}

// Redact returns rawURL with any userinfo (user and password) replaced by
// "xxxxx". It works on strings that do not parse as URLs too, so it is safe
// for error messages about malformed configuration.
func Redact(rawURL string) string {
	start := 0
	if i := strings.Index(rawURL, "://"); i >= 0 {
		start = i + 3
	}
	rest := rawURL[start:]
	end := len(rest)
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		end = i
	}
	at := strings.LastIndex(rest[:end], "@")
	if at < 0 {
		return rawURL
	}
	return rawURL[:start] + "xxxxx@" + rest[at+1:]
}

// scrub removes the raw URL and its userinfo from msg.
func scrub(msg, raw, safe string) string {
	if raw == safe {
		return msg
	}
	msg = strings.ReplaceAll(msg, raw, safe)
	start := 0
	if i := strings.Index(raw, "://"); i >= 0 {
		start = i + 3
	}
	rest := raw[start:]
	if end := strings.IndexAny(rest, "/?#"); end >= 0 {
		rest = rest[:end]
	}
	if at := strings.LastIndex(rest, "@"); at > 0 {
		userinfo := rest[:at]
		msg = strings.ReplaceAll(msg, userinfo, "xxxxx")
		if _, pass, ok := strings.Cut(userinfo, ":"); ok && pass != "" {
			msg = strings.ReplaceAll(msg, pass, "xxxxx")
		}
	}
	return msg
}

// scrubbedError carries a message with credentials removed while keeping
// the cause for errors.Is (context.DeadlineExceeded, say).
type scrubbedError struct {
	msg string
	err error
}

func (e *scrubbedError) Error() string { return e.msg }
func (e *scrubbedError) Unwrap() error { return e.err }

func (s *Store) key(k string) string { return s.prefix + k }

func (s *Store) keys(ks []string) []string {
	out := make([]string, len(ks))
	for i, k := range ks {
		out[i] = s.key(k)
	}
	return out
}

// ttlArg maps the contract's "zero or less is no expiry" to go-redis, where
// -1 would mean KEEPTTL, and rounds sub-millisecond TTLs up to Redis's 1ms.
func ttlArg(ttl time.Duration) time.Duration {
	if ttl <= 0 {
		return 0
	}
	if ttl < time.Millisecond {
		return time.Millisecond
	}
	return ttl
}

// score formats a range bound as Redis reads it.
func score(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "+inf"
	case math.IsInf(f, -1):
		return "-inf"
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

func checkRange(op, key string, min, max float64) error {
	if math.IsNaN(min) || math.IsNaN(max) {
		return fmt.Errorf("redis store: %s %q: range bound is NaN", op, key)
	}
	return nil
}

func wrap(op, key string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, goredis.Nil) {
		return store.ErrNotFound
	}
	return fmt.Errorf("redis store: %s %q: %w", op, key, err)
}

// Get implements store.Store.
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	b, err := s.client.Get(ctx, s.key(key)).Bytes()
	if err != nil {
		return nil, wrap("get", key, err)
	}
	return b, nil
}

// Set implements store.Store.
func (s *Store) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	return wrap("set", key, s.client.Set(ctx, s.key(key), value, ttlArg(ttl)).Err())
}

// SetNX implements store.Store.
func (s *Store) SetNX(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	ok, err := s.client.SetNX(ctx, s.key(key), value, ttlArg(ttl)).Result()
	if err != nil {
		return false, wrap("setnx", key, err)
	}
	return ok, nil
}

// Delete implements store.Store.
func (s *Store) Delete(ctx context.Context, keys ...string) error {
	if len(keys) == 0 {
		return nil
	}
	if err := s.client.Del(ctx, s.keys(keys)...).Err(); err != nil {
		return fmt.Errorf("redis store: delete %q: %w", keys, err)
	}
	return nil
}

// fnError marks an error returned by Update's fn, so it reaches the caller
// unchanged and is never retried.
type fnError struct{ err error }

func (e fnError) Error() string { return e.err.Error() }

// Update implements store.Store with optimistic locking: WATCH the key, GET
// it, run fn, then SET (keeping the TTL) or DEL inside MULTI/EXEC. When
// another writer changes the key first, EXEC fails and Update tries again
// after a short random pause, up to the attempt budget; then it returns an
// error wrapping store.ErrConflict.
func (s *Store) Update(ctx context.Context, key string, fn func(old []byte, found bool) ([]byte, error)) error {
	k := s.key(key)
	txf := func(tx *goredis.Tx) error {
		old, err := tx.Get(ctx, k).Bytes()
		found := true
		switch {
		case errors.Is(err, goredis.Nil):
			old, found = nil, false
		case err != nil:
			return err
		}
		next, err := fn(old, found)
		if err != nil {
			return fnError{err}
		}
		_, err = tx.TxPipelined(ctx, func(p goredis.Pipeliner) error {
			if next == nil {
				p.Del(ctx, k)
			} else {
				p.Set(ctx, k, next, goredis.KeepTTL)
			}
			return nil
		})
		return err
	}
	for attempt := range s.updateAttempts {
		err := s.client.Watch(ctx, txf, k)
		if err == nil {
			return nil
		}
		var fe fnError
		if errors.As(err, &fe) {
			return fe.err
		}
		if !errors.Is(err, goredis.TxFailedErr) {
			return wrap("update", key, err)
		}
		if attempt == s.updateAttempts-1 {
			break
		}
		limit := min(time.Duration(1<<min(attempt, 10))*time.Millisecond/4, maxUpdateBackoff)
		pause := time.NewTimer(rand.N(limit) + time.Microsecond)
		select {
		case <-ctx.Done():
			pause.Stop()
			return wrap("update", key, ctx.Err())
		case <-pause.C:
		}
	}
	return fmt.Errorf("redis store: update %q after %d attempts: %w", key, s.updateAttempts, store.ErrConflict)
}

// HSet implements store.Store.
func (s *Store) HSet(ctx context.Context, key, field string, value []byte) error {
	return wrap("hset", key, s.client.HSet(ctx, s.key(key), field, value).Err())
}

// HGet implements store.Store.
func (s *Store) HGet(ctx context.Context, key, field string) ([]byte, error) {
	b, err := s.client.HGet(ctx, s.key(key), field).Bytes()
	if err != nil {
		return nil, wrap("hget", key, err)
	}
	return b, nil
}

// HGetAll implements store.Store.
func (s *Store) HGetAll(ctx context.Context, key string) (map[string][]byte, error) {
	m, err := s.client.HGetAll(ctx, s.key(key)).Result()
	if err != nil {
		return nil, wrap("hgetall", key, err)
	}
	out := make(map[string][]byte, len(m))
	for f, v := range m {
		out[f] = []byte(v)
	}
	return out, nil
}

// HDel implements store.Store.
func (s *Store) HDel(ctx context.Context, key string, fields ...string) error {
	if len(fields) == 0 {
		return nil
	}
	return wrap("hdel", key, s.client.HDel(ctx, s.key(key), fields...).Err())
}

// ZAdd implements store.Store. A NaN score is an error.
func (s *Store) ZAdd(ctx context.Context, key string, score float64, member string) error {
	if math.IsNaN(score) {
		return fmt.Errorf("redis store: zadd %q: score is NaN", key)
	}
	return wrap("zadd", key, s.client.ZAdd(ctx, s.key(key), goredis.Z{Score: score, Member: member}).Err())
}

// ZRangeByScore implements store.Store. Members with equal scores come in
// lexicographic order.
func (s *Store) ZRangeByScore(ctx context.Context, key string, min, max float64) ([]store.ZEntry, error) {
	if err := checkRange("zrangebyscore", key, min, max); err != nil {
		return nil, err
	}
	zs, err := s.client.ZRangeByScoreWithScores(ctx, s.key(key), &goredis.ZRangeBy{Min: score(min), Max: score(max)}).Result()
	if err != nil {
		return nil, wrap("zrangebyscore", key, err)
	}
	out := make([]store.ZEntry, len(zs))
	for i, z := range zs {
		m, _ := z.Member.(string)
		out[i] = store.ZEntry{Member: m, Score: z.Score}
	}
	return out, nil
}

// ZRem implements store.Store.
func (s *Store) ZRem(ctx context.Context, key string, members ...string) error {
	if len(members) == 0 {
		return nil
	}
	args := make([]any, len(members))
	for i, m := range members {
		args[i] = m
	}
	return wrap("zrem", key, s.client.ZRem(ctx, s.key(key), args...).Err())
}

// ZRemRangeByScore implements store.Store.
func (s *Store) ZRemRangeByScore(ctx context.Context, key string, min, max float64) (int64, error) {
	if err := checkRange("zremrangebyscore", key, min, max); err != nil {
		return 0, err
	}
	n, err := s.client.ZRemRangeByScore(ctx, s.key(key), score(min), score(max)).Result()
	if err != nil {
		return 0, wrap("zremrangebyscore", key, err)
	}
	return n, nil
}

// RPush implements store.Store. With no values it only reports the length.
func (s *Store) RPush(ctx context.Context, key string, values ...[]byte) (int64, error) {
	if len(values) == 0 {
		return s.LLen(ctx, key)
	}
	args := make([]any, len(values))
	for i, v := range values {
		args[i] = v
	}
	n, err := s.client.RPush(ctx, s.key(key), args...).Result()
	if err != nil {
		return 0, wrap("rpush", key, err)
	}
	return n, nil
}

// LRange implements store.Store.
func (s *Store) LRange(ctx context.Context, key string, start, stop int64) ([][]byte, error) {
	vs, err := s.client.LRange(ctx, s.key(key), start, stop).Result()
	if err != nil {
		return nil, wrap("lrange", key, err)
	}
	out := make([][]byte, len(vs))
	for i, v := range vs {
		out[i] = []byte(v)
	}
	return out, nil
}

// LLen implements store.Store.
func (s *Store) LLen(ctx context.Context, key string) (int64, error) {
	n, err := s.client.LLen(ctx, s.key(key)).Result()
	if err != nil {
		return 0, wrap("llen", key, err)
	}
	return n, nil
}

// Ping implements store.Store.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.client.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis store: ping %s: %w", s.url, err)
	}
	return nil
}

// Close implements store.Store.
func (s *Store) Close() error {
	if err := s.client.Close(); err != nil {
		return fmt.Errorf("redis store: close: %w", err)
	}
	return nil
}
