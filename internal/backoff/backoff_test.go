package backoff_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/keywatch/keywatch/internal/backoff"
)

func TestExponentialDoublesToItsCapAndResets(t *testing.T) {
	b := backoff.New(time.Second, 5*time.Second)
	var got []time.Duration
	for range 5 {
		got = append(got, b.Next())
	}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second, 5 * time.Second}
	if !slices.Equal(got, want) {
		t.Fatalf("waits %v, want %v", got, want)
	}
	b.Reset()
	if d := b.Next(); d != time.Second {
		t.Fatalf("after a reset the wait is %s, want 1s", d)
	}
}

func TestRetryTriesUntilSuccess(t *testing.T) {
	b := backoff.New(time.Millisecond, 4*time.Millisecond)
	calls := 0
	var waits []time.Duration
	v, err := backoff.Retry(t.Context(), b, func(context.Context) (string, error) {
		calls++
		if calls < 4 {
			return "", errors.New("node down")
		}
		return "mainnet", nil
	}, func(err error, wait time.Duration) { waits = append(waits, wait) })
	if err != nil || v != "mainnet" {
		t.Fatalf("Retry = %q, %v; want mainnet, nil", v, err)
	}
	if want := []time.Duration{time.Millisecond, 2 * time.Millisecond, 4 * time.Millisecond}; !slices.Equal(waits, want) {
		t.Fatalf("waited %v, want %v", waits, want)
	}
	if d := b.Next(); d != time.Millisecond {
		t.Fatalf("a success leaves the next wait at %s, want it reset to 1ms", d)
	}
}

func TestRetryStopsWithItsContext(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	calls := 0
	_, err := backoff.Retry(ctx, backoff.New(time.Hour, time.Hour), func(context.Context) (int, error) {
		calls++
		return 0, errors.New("refused")
	}, func(error, time.Duration) { cancel() })
	if !errors.Is(err, context.Canceled) || calls != 1 {
		t.Fatalf("Retry = %v after %d calls; want context.Canceled after 1 (it must not sit out the hour)", err, calls)
	}
}

func TestRetryStopsAtAPermanentError(t *testing.T) {
	wrong := errors.New("node on the wrong network")
	calls := 0
	_, err := backoff.Retry(t.Context(), backoff.New(time.Hour, time.Hour), func(context.Context) (int, error) {
		calls++
		return 0, backoff.Permanent(wrong)
	}, func(error, time.Duration) { t.Error("a permanent error was retried") })
	if err != wrong || calls != 1 {
		t.Fatalf("Retry = %v after %d calls; want the permanent error itself after 1", err, calls)
	}
}
