// Package backoff is the one retry loop of keywatch: a wait that doubles
// after each failure up to a cap and starts again after a success, and Retry,
// which calls a function until it succeeds or its context ends. Loops that
// keep running after errors (following a chain, publishing the outbox,
// reading heartbeats) use Exponential directly; a call that must succeed
// before anything else can start (attaching a consumer, asking a node for
// its network) uses Retry.
package backoff

import (
	"context"
	"errors"
	"time"
)

// Exponential is a doubling wait: Initial after the first failure, twice as
// long after each further one, never more than Max. The zero value waits
// nothing; it is not safe for concurrent use.
type Exponential struct {
	Initial time.Duration
	Max     time.Duration

	next time.Duration
}

// New returns a wait that starts at initial and doubles up to max.
func New(initial, max time.Duration) *Exponential {
	return &Exponential{Initial: initial, Max: max}
}

// Next returns the wait after one more failure.
func (b *Exponential) Next() time.Duration {
	if b.next == 0 {
		b.next = b.Initial
	}
	d := b.next
	b.next = min(b.next*2, b.Max)
	return d
}

// Reset starts again from Initial, after a success.
func (b *Exponential) Reset() { b.next = 0 }

// Sleep waits d, or until ctx ends, and returns ctx's error then.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Permanent marks an error that trying again cannot cure (the node answered,
// and the answer is no): Retry returns it at once, unwrapped.
func Permanent(err error) error { return &permanentError{err} }

type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Retry calls fn until it returns no error, waiting b.Next() between tries,
// and returns its result. After each failure it calls failed (when not nil)
// with the error and the wait before the next try, for the log. It returns
// ctx's error when ctx ends first, and an error fn marked Permanent at once.
func Retry[T any](ctx context.Context, b *Exponential, fn func(context.Context) (T, error), failed func(err error, wait time.Duration)) (T, error) {
	for {
		v, err := fn(ctx)
		if err == nil {
			b.Reset()
			return v, nil
		}
		if p, ok := errors.AsType[*permanentError](err); ok {
			return v, p.err
		}
		if ctx.Err() != nil {
			var zero T
			return zero, ctx.Err()
		}
		wait := b.Next()
		if failed != nil {
			failed(err, wait)
		}
		if err := Sleep(ctx, wait); err != nil {
			var zero T
			return zero, err
		}
	}
}
