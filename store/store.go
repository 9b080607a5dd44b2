// Package store defines the shared state keywatch keeps between restarts and
// across instances: checkpoints, alert outboxes, windows, intents, holds and
// the audit log. Two backends implement it: store/redis (production, shared by
// every instance) and store/memory (a single process, for development and the
// demo). Domain packages build their records on these few primitives, so the
// two backends behave the same by construction.
package store

import (
	"context"
	"errors"
	"time"
)

// ErrNotFound is returned by Get and HGet when the key or field is absent.
var ErrNotFound = errors.New("store: not found")

// ErrConflict is returned by Update when the key kept changing under it and
// the retry budget ran out.
var ErrConflict = errors.New("store: update conflict")

// ZEntry is one member of a sorted set with its score.
type ZEntry struct {
	Member string
	Score  float64
}

// Store is the key-value contract both backends satisfy. Keys are plain
// strings; the backend adds its own namespace prefix. Every method is safe
// for concurrent use.
type Store interface {
	// Get returns the value at key, or ErrNotFound.
	Get(ctx context.Context, key string) ([]byte, error)
	// Set stores value at key; ttl 0 means no expiry.
	Set(ctx context.Context, key string, value []byte, ttl time.Duration) error
	// SetNX stores value only if key is absent and reports whether it did.
	SetNX(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error)
	// Delete removes keys; absent keys are not an error.
	Delete(ctx context.Context, keys ...string) error
	// Update atomically replaces the value at key with fn(old). fn receives
	// found=false when the key is absent. If fn returns an error, nothing is
	// written and Update returns that error. fn may run more than once when
	// another writer changes the key concurrently; it must have no side
	// effects. A nil result from fn deletes the key.
	Update(ctx context.Context, key string, fn func(old []byte, found bool) ([]byte, error)) error

	// HSet sets field in the hash at key.
	HSet(ctx context.Context, key, field string, value []byte) error
	// HGet returns a field of the hash at key, or ErrNotFound.
	HGet(ctx context.Context, key, field string) ([]byte, error)
	// HGetAll returns every field of the hash at key (empty when absent).
	HGetAll(ctx context.Context, key string) (map[string][]byte, error)
	// HDel removes fields from the hash at key.
	HDel(ctx context.Context, key string, fields ...string) error

	// ZAdd adds or updates member with score in the sorted set at key.
	ZAdd(ctx context.Context, key string, score float64, member string) error
	// ZRangeByScore returns members with min <= score <= max, lowest first.
	ZRangeByScore(ctx context.Context, key string, min, max float64) ([]ZEntry, error)
	// ZRem removes members from the sorted set at key.
	ZRem(ctx context.Context, key string, members ...string) error
	// ZRemRangeByScore removes members with min <= score <= max and returns
	// how many were removed.
	ZRemRangeByScore(ctx context.Context, key string, min, max float64) (int64, error)

	// RPush appends values to the list at key and returns its new length.
	RPush(ctx context.Context, key string, values ...[]byte) (int64, error)
	// LRange returns list elements start..stop inclusive; negative indexes
	// count from the end, as in Redis.
	LRange(ctx context.Context, key string, start, stop int64) ([][]byte, error)
	// LLen returns the length of the list at key (0 when absent).
	LLen(ctx context.Context, key string) (int64, error)

	// Ping reports whether the backend can be reached.
	Ping(ctx context.Context) error
	// Close releases the backend's connections.
	Close() error
}
