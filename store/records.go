package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// ErrCorrupt is returned when a record in the store is not the JSON of its
// type.
var ErrCorrupt = errors.New("corrupt record")

// ErrUnchanged, returned by the function given to Records.Update, leaves
// the record as it is; Update then returns nil.
var ErrUnchanged = errors.New("record unchanged")

// Records reads and writes values of type T as JSON at keys of a Store: the
// one codec between keywatch's records (checkpoints, holds, intents,
// incidents...) and the store's bytes. Its errors name the record, so a
// failure says which state could not be read ("read checkpoint of chain
// eth: ...", "checkpoint of chain eth is corrupt: ...").
type Records[T any] struct {
	st   Store
	name string
}

// NewRecords returns the codec of records called name (for errors) in s.
func NewRecords[T any](s Store, name string) Records[T] {
	return Records[T]{st: s, name: name}
}

// Store is the store the records are kept in.
func (r Records[T]) Store() Store { return r.st }

// Get reads the record at key; found is false (and the error nil) when there
// is none.
func (r Records[T]) Get(ctx context.Context, key string) (v T, found bool, err error) {
	b, err := r.st.Get(ctx, key)
	if errors.Is(err, ErrNotFound) {
		return v, false, nil
	}
	if err != nil {
		return v, false, fmt.Errorf("read %s: %w", r.name, err)
	}
	v, err = r.decode(b)
	return v, err == nil, err
}

// Put writes v at key; ttl 0 keeps it until deleted.
func (r Records[T]) Put(ctx context.Context, key string, v T, ttl time.Duration) error {
	b, err := r.encode(v)
	if err != nil {
		return err
	}
	if err := r.st.Set(ctx, key, b, ttl); err != nil {
		return fmt.Errorf("write %s: %w", r.name, err)
	}
	return nil
}

// PutNew writes v at key only when there is no record there, and reports
// whether it did.
func (r Records[T]) PutNew(ctx context.Context, key string, v T, ttl time.Duration) (bool, error) {
	b, err := r.encode(v)
	if err != nil {
		return false, err
	}
	ok, err := r.st.SetNX(ctx, key, b, ttl)
	if err != nil {
		return false, fmt.Errorf("write %s: %w", r.name, err)
	}
	return ok, nil
}

// Update atomically replaces the record at key with fn's result. fn gets the
// current record (the zero value and false when there is none) and may run
// more than once (see Store.Update): it must have no side effects. When fn
// returns ErrUnchanged nothing is written and Update returns nil; any other
// error is returned as it is. A corrupt record is an error wrapping
// ErrCorrupt, and fn is not called.
func (r Records[T]) Update(ctx context.Context, key string, fn func(cur T, found bool) (T, error)) error {
	err := r.st.Update(ctx, key, func(old []byte, found bool) ([]byte, error) {
		var cur T
		if found {
			var err error
			if cur, err = r.decode(old); err != nil {
				return nil, err
			}
		}
		next, err := fn(cur, found)
		if err != nil {
			return nil, err
		}
		return r.encode(next)
	})
	if errors.Is(err, ErrUnchanged) {
		return nil
	}
	return err
}

// HGet reads the record in field of the hash at key; found is false when
// there is none.
func (r Records[T]) HGet(ctx context.Context, key, field string) (v T, found bool, err error) {
	b, err := r.st.HGet(ctx, key, field)
	if errors.Is(err, ErrNotFound) {
		return v, false, nil
	}
	if err != nil {
		return v, false, fmt.Errorf("read %s: %w", r.name, err)
	}
	v, err = r.decode(b)
	return v, err == nil, err
}

// HPut writes v in field of the hash at key.
func (r Records[T]) HPut(ctx context.Context, key, field string, v T) error {
	b, err := r.encode(v)
	if err != nil {
		return err
	}
	if err := r.st.HSet(ctx, key, field, b); err != nil {
		return fmt.Errorf("write %s: %w", r.name, err)
	}
	return nil
}

// HGetAll reads every record of the hash at key, by field. A corrupt field
// fails the whole read: nothing is judged from half a state.
func (r Records[T]) HGetAll(ctx context.Context, key string) (map[string]T, error) {
	raw, err := r.st.HGetAll(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", r.name, err)
	}
	out := make(map[string]T, len(raw))
	for f, b := range raw {
		v, err := r.decode(b)
		if err != nil {
			return nil, fmt.Errorf("field %s: %w", f, err)
		}
		out[f] = v
	}
	return out, nil
}

// Push appends vs to the list at key and returns its new length.
func (r Records[T]) Push(ctx context.Context, key string, vs ...T) (int64, error) {
	bs := make([][]byte, len(vs))
	for i, v := range vs {
		b, err := r.encode(v)
		if err != nil {
			return 0, err
		}
		bs[i] = b
	}
	n, err := r.st.RPush(ctx, key, bs...)
	if err != nil {
		return 0, fmt.Errorf("write %s: %w", r.name, err)
	}
	return n, nil
}

// Range reads list elements start..stop inclusive (negative indexes count
// from the end, as in Redis).
func (r Records[T]) Range(ctx context.Context, key string, start, stop int64) ([]T, error) {
	raw, err := r.st.LRange(ctx, key, start, stop)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", r.name, err)
	}
	out := make([]T, len(raw))
	for i, b := range raw {
		if out[i], err = r.decode(b); err != nil {
			return nil, fmt.Errorf("element %d: %w", start+int64(i), err)
		}
	}
	return out, nil
}

// Decode reads one record's bytes (from a store method Records does not
// wrap), with the same error as Get.
func (r Records[T]) Decode(b []byte) (T, error) { return r.decode(b) }

// Encode writes one record's bytes.
func (r Records[T]) Encode(v T) ([]byte, error) { return r.encode(v) }

func (r Records[T]) decode(b []byte) (T, error) {
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		return v, &corruptError{name: r.name, err: err}
	}
	return v, nil
}

// corruptError says which record could not be read and why; it is
// ErrCorrupt for errors.Is.
type corruptError struct {
	name string
	err  error
}

func (e *corruptError) Error() string   { return e.name + " is corrupt: " + e.err.Error() }
func (e *corruptError) Unwrap() []error { return []error{ErrCorrupt, e.err} }

func (r Records[T]) encode(v T) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", r.name, err)
	}
	return b, nil
}
