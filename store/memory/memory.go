// Package memory is the single-process store.Store: one map behind one mutex.
// It is for development, the demo and tests; state is lost when the process
// exits and is not shared between instances.
//
// It follows Redis semantics closely so the two backends are interchangeable:
// one keyspace holding strings, hashes, sorted sets and lists; using a key as
// the wrong kind is an error; emptied hashes, sets and lists disappear; TTLs
// apply to whole keys, are set only by Set and SetNX, and are kept by Update.
// Expired keys are dropped lazily, when touched, against an injectable clock.
package memory

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"sync"
	"time"

	"github.com/keywatch/keywatch/store"
)

// ErrClosed is returned by every method after Close.
var ErrClosed = errors.New("memory store: closed")

// ErrWrongType is returned when a key holding one kind of value is used as
// another (a hash read with Get, say), as Redis's WRONGTYPE error.
var ErrWrongType = errors.New("memory store: operation against a key holding the wrong kind of value")

type kind int

const (
	kindString kind = iota + 1
	kindHash
	kindZSet
	kindList
)

func (k kind) String() string {
	switch k {
	case kindString:
		return "string"
	case kindHash:
		return "hash"
	case kindZSet:
		return "sorted set"
	case kindList:
		return "list"
	}
	return "unknown"
}

type entry struct {
	kind     kind
	str      []byte
	hash     map[string][]byte
	zset     map[string]float64
	list     [][]byte
	expireAt time.Time // zero: no expiry
}

// Option configures a Store.
type Option func(*Store)

// WithClock sets the clock TTLs are measured against (time.Now by default).
// Tests pass a fake clock to expire keys without waiting.
func WithClock(now func() time.Time) Option {
	return func(s *Store) {
		if now != nil {
			s.now = now
		}
	}
}

// Store is an in-memory store.Store. The zero value is not usable; call New.
type Store struct {
	now func() time.Time

	mu     sync.Mutex
	data   map[string]*entry
	closed bool
}

var _ store.Store = (*Store)(nil)

// New returns an empty store.
func New(opts ...Option) *Store {
	s := &Store{now: time.Now, data: make(map[string]*entry)}
	for _, opt := range opts {
		opt(s)
	}
	return s
}

func clone(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return append([]byte(nil), b...)
}

// begin locks the store and checks it is open and ctx is live. On success
// the caller must unlock.
func (s *Store) begin(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	return nil
}

// lookup returns the live entry at key, dropping it first if it expired.
// s.mu must be held.
func (s *Store) lookup(key string) *entry {
	e, ok := s.data[key]
	if !ok {
		return nil
	}
	if !e.expireAt.IsZero() && !s.now().Before(e.expireAt) {
		delete(s.data, key)
		return nil
	}
	return e
}

// lookupKind is lookup that fails when the key holds another kind.
func (s *Store) lookupKind(key string, k kind) (*entry, error) {
	e := s.lookup(key)
	if e != nil && e.kind != k {
		return nil, fmt.Errorf("%w: key %q holds a %s, not a %s", ErrWrongType, key, e.kind, k)
	}
	return e, nil
}

func (s *Store) expiry(ttl time.Duration) time.Time {
	if ttl <= 0 {
		return time.Time{}
	}
	return s.now().Add(ttl)
}

// Get implements store.Store.
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	if err := s.begin(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	e, err := s.lookupKind(key, kindString)
	if err != nil {
		return nil, err
	}
	if e == nil {
		return nil, store.ErrNotFound
	}
	return clone(e.str), nil
}

// Set implements store.Store. A ttl of zero or less means no expiry.
func (s *Store) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := s.begin(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	s.data[key] = &entry{kind: kindString, str: clone(value), expireAt: s.expiry(ttl)}
	return nil
}

// SetNX implements store.Store.
func (s *Store) SetNX(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	if err := s.begin(ctx); err != nil {
		return false, err
	}
	defer s.mu.Unlock()
	if s.lookup(key) != nil {
		return false, nil
	}
	s.data[key] = &entry{kind: kindString, str: clone(value), expireAt: s.expiry(ttl)}
	return true, nil
}

// Delete implements store.Store.
func (s *Store) Delete(ctx context.Context, keys ...string) error {
	if err := s.begin(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	for _, k := range keys {
		delete(s.data, k)
	}
	return nil
}

// Update implements store.Store. fn runs exactly once, under the store's
// lock, so it must not call back into the store. The key's TTL, if any, is
// kept.
func (s *Store) Update(ctx context.Context, key string, fn func(old []byte, found bool) ([]byte, error)) error {
	if err := s.begin(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	e, err := s.lookupKind(key, kindString)
	if err != nil {
		return err
	}
	var old []byte
	if e != nil {
		old = clone(e.str)
	}
	next, err := fn(old, e != nil)
	if err != nil {
		return err
	}
	switch {
	case next == nil:
		delete(s.data, key)
	case e == nil:
		s.data[key] = &entry{kind: kindString, str: clone(next)}
	default:
		e.str = clone(next)
	}
	return nil
}

// HSet implements store.Store.
func (s *Store) HSet(ctx context.Context, key, field string, value []byte) error {
	if err := s.begin(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	e, err := s.lookupKind(key, kindHash)
	if err != nil {
		return err
	}
	if e == nil {
		e = &entry{kind: kindHash, hash: make(map[string][]byte)}
		s.data[key] = e
	}
	e.hash[field] = clone(value)
	return nil
}

// HGet implements store.Store.
func (s *Store) HGet(ctx context.Context, key, field string) ([]byte, error) {
	if err := s.begin(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	e, err := s.lookupKind(key, kindHash)
	if err != nil {
		return nil, err
	}
	if e == nil {
		return nil, store.ErrNotFound
	}
	v, ok := e.hash[field]
	if !ok {
		return nil, store.ErrNotFound
	}
	return clone(v), nil
}

// HGetAll implements store.Store.
func (s *Store) HGetAll(ctx context.Context, key string) (map[string][]byte, error) {
	if err := s.begin(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	e, err := s.lookupKind(key, kindHash)
	if err != nil {
		return nil, err
	}
	out := make(map[string][]byte)
	if e != nil {
		for f, v := range e.hash {
			out[f] = clone(v)
		}
	}
	return out, nil
}

// HDel implements store.Store.
func (s *Store) HDel(ctx context.Context, key string, fields ...string) error {
	if err := s.begin(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	e, err := s.lookupKind(key, kindHash)
	if err != nil || e == nil {
		return err
	}
	for _, f := range fields {
		delete(e.hash, f)
	}
	if len(e.hash) == 0 {
		delete(s.data, key)
	}
	return nil
}

// ZAdd implements store.Store. A NaN score is an error.
func (s *Store) ZAdd(ctx context.Context, key string, score float64, member string) error {
	if math.IsNaN(score) {
		return fmt.Errorf("memory store: zadd %q: score is NaN", key)
	}
	if err := s.begin(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	e, err := s.lookupKind(key, kindZSet)
	if err != nil {
		return err
	}
	if e == nil {
		e = &entry{kind: kindZSet, zset: make(map[string]float64)}
		s.data[key] = e
	}
	e.zset[member] = score
	return nil
}

func checkRange(op, key string, min, max float64) error {
	if math.IsNaN(min) || math.IsNaN(max) {
		return fmt.Errorf("memory store: %s %q: range bound is NaN", op, key)
	}
	return nil
}

// ZRangeByScore implements store.Store. Members with equal scores come in
// lexicographic order, as in Redis.
func (s *Store) ZRangeByScore(ctx context.Context, key string, min, max float64) ([]store.ZEntry, error) {
	if err := checkRange("zrangebyscore", key, min, max); err != nil {
		return nil, err
	}
	if err := s.begin(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	e, err := s.lookupKind(key, kindZSet)
	if err != nil {
		return nil, err
	}
	out := []store.ZEntry{}
	if e == nil {
		return out, nil
	}
	for m, sc := range e.zset {
		if sc >= min && sc <= max {
			out = append(out, store.ZEntry{Member: m, Score: sc})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Score != out[j].Score {
			return out[i].Score < out[j].Score
		}
		return out[i].Member < out[j].Member
	})
	return out, nil
}

// ZRem implements store.Store.
func (s *Store) ZRem(ctx context.Context, key string, members ...string) error {
	if err := s.begin(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	e, err := s.lookupKind(key, kindZSet)
	if err != nil || e == nil {
		return err
	}
	for _, m := range members {
		delete(e.zset, m)
	}
	if len(e.zset) == 0 {
		delete(s.data, key)
	}
	return nil
}

// ZRemRangeByScore implements store.Store.
func (s *Store) ZRemRangeByScore(ctx context.Context, key string, min, max float64) (int64, error) {
	if err := checkRange("zremrangebyscore", key, min, max); err != nil {
		return 0, err
	}
	if err := s.begin(ctx); err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	e, err := s.lookupKind(key, kindZSet)
	if err != nil || e == nil {
		return 0, err
	}
	var n int64
	for m, sc := range e.zset {
		if sc >= min && sc <= max {
			delete(e.zset, m)
			n++
		}
	}
	if len(e.zset) == 0 {
		delete(s.data, key)
	}
	return n, nil
}

// RPush implements store.Store.
func (s *Store) RPush(ctx context.Context, key string, values ...[]byte) (int64, error) {
	if err := s.begin(ctx); err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	e, err := s.lookupKind(key, kindList)
	if err != nil {
		return 0, err
	}
	if len(values) == 0 {
		if e == nil {
			return 0, nil
		}
		return int64(len(e.list)), nil
	}
	if e == nil {
		e = &entry{kind: kindList}
		s.data[key] = e
	}
	for _, v := range values {
		e.list = append(e.list, clone(v))
	}
	return int64(len(e.list)), nil
}

// LRange implements store.Store with Redis's index rules: negative indexes
// count from the end, and out-of-range indexes are clamped.
func (s *Store) LRange(ctx context.Context, key string, start, stop int64) ([][]byte, error) {
	if err := s.begin(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	e, err := s.lookupKind(key, kindList)
	if err != nil {
		return nil, err
	}
	out := [][]byte{}
	if e == nil {
		return out, nil
	}
	n := int64(len(e.list))
	if start < 0 {
		start += n
	}
	if stop < 0 {
		stop += n
	}
	if start < 0 {
		start = 0
	}
	if stop >= n {
		stop = n - 1
	}
	for i := start; i <= stop; i++ {
		out = append(out, clone(e.list[i]))
	}
	return out, nil
}

// LLen implements store.Store.
func (s *Store) LLen(ctx context.Context, key string) (int64, error) {
	if err := s.begin(ctx); err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	e, err := s.lookupKind(key, kindList)
	if err != nil || e == nil {
		return 0, err
	}
	return int64(len(e.list)), nil
}

// Ping implements store.Store: it fails only once the store is closed.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.begin(ctx); err != nil {
		return err
	}
	s.mu.Unlock()
	return nil
}

// Close implements store.Store. It drops the data; later calls fail with
// ErrClosed. Closing twice is not an error.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	s.data = nil
	return nil
}
