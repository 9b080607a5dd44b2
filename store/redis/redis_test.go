package redis_test

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/keywatch/keywatch/internal/testenv"
	"github.com/keywatch/keywatch/store"
	"github.com/keywatch/keywatch/store/redis"
	"github.com/keywatch/keywatch/store/storetest"
)

func open(t *testing.T, url string, opts ...redis.Option) *redis.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	s, err := redis.Open(ctx, url, opts...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func rawClient(t *testing.T, url string) *goredis.Client {
	t.Helper()
	o, err := goredis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	c := goredis.NewClient(o)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestConformance(t *testing.T) {
	url := testenv.Redis(t)
	storetest.Run(t, storetest.Harness{
		// Every subtest gets its own prefix on the one server, so they run
		// in parallel without seeing each other's keys.
		New: func(t *testing.T) store.Store {
			return open(t, url, redis.WithPrefix("test:"+t.Name()+":"))
		},
		NewNamespaced: func(t *testing.T, ns string) store.Store {
			return open(t, url, redis.WithPrefix("test:"+t.Name()+":"+ns+":"))
		},
	})
}

func TestKeysArePrefixed(t *testing.T) {
	url := testenv.Redis(t)
	ctx := t.Context()
	raw := rawClient(t, url)
	tests := []struct {
		name string
		opts []redis.Option
		want string
	}{
		{"default", nil, "keywatch:checkpoint"},
		{"custom", []redis.Option{redis.WithPrefix("prod-eu:")}, "prod-eu:checkpoint"},
		{"none", []redis.Option{redis.WithPrefix("")}, "checkpoint"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t, url, tc.opts...)
			if err := s.Set(ctx, "checkpoint", []byte(tc.name), 0); err != nil {
				t.Fatal(err)
			}
			got, err := raw.Get(ctx, tc.want).Result()
			if err != nil || got != tc.name {
				t.Fatalf("raw GET %s = %q, %v; want %q", tc.want, got, err, tc.name)
			}
		})
	}
}

func TestTTLOnServer(t *testing.T) {
	url := testenv.Redis(t)
	ctx := t.Context()
	raw := rawClient(t, url)
	s := open(t, url, redis.WithPrefix("p:"))

	pttl := func(key string) time.Duration {
		t.Helper()
		d, err := raw.PTTL(ctx, "p:"+key).Result()
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	if err := s.Set(ctx, "k", []byte("v"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if d := pttl("k"); d <= 50*time.Second || d > time.Minute {
		t.Fatalf("PTTL after Set with a minute = %s", d)
	}
	if err := s.Update(ctx, "k", func(old []byte, _ bool) ([]byte, error) { return append(old, '!'), nil }); err != nil {
		t.Fatal(err)
	}
	if d := pttl("k"); d <= 50*time.Second {
		t.Fatalf("PTTL after Update = %s, want the minute kept", d)
	}
	for _, ttl := range []time.Duration{0, -1, -time.Second} {
		if err := s.Set(ctx, "k", []byte("v"), ttl); err != nil {
			t.Fatal(err)
		}
		if d := pttl("k"); d != -1 { // go-redis reports "no expiry" as -1
			t.Fatalf("PTTL after Set with ttl %s = %s, want no expiry", ttl, d)
		}
	}
	if ok, err := s.SetNX(ctx, "nx", []byte("v"), 500*time.Microsecond); err != nil || !ok {
		t.Fatalf("SetNX with a sub-millisecond ttl = %v, %v", ok, err)
	}
}

func TestUpdateGivesUpWithErrConflict(t *testing.T) {
	url := testenv.Redis(t)
	ctx := t.Context()
	raw := rawClient(t, url)
	s := open(t, url, redis.WithPrefix("c:"), redis.WithUpdateAttempts(3))

	var calls atomic.Int32
	err := s.Update(ctx, "hot", func(old []byte, found bool) ([]byte, error) {
		// Another writer changes the key after every read.
		n := calls.Add(1)
		if err := raw.Set(ctx, "c:hot", n, 0).Err(); err != nil {
			return nil, err
		}
		return []byte("mine"), nil
	})
	if !errors.Is(err, store.ErrConflict) {
		t.Fatalf("Update under constant interference: %v, want ErrConflict", err)
	}
	if calls.Load() != 3 {
		t.Fatalf("fn ran %d times, want 3 (the attempt budget)", calls.Load())
	}
	got, _ := raw.Get(ctx, "c:hot").Result()
	if got != "3" {
		t.Fatalf("key = %q: Update wrote although it gave up", got)
	}
}

// TestFailsClosedWhileRedisIsDown checks that a store whose Redis went away
// reports errors (never ErrNotFound, which callers would read as "absent"),
// and works again once Redis is back.
func TestFailsClosedWhileRedisIsDown(t *testing.T) {
	srv := testenv.StartRedis(t)
	s := open(t, srv.URL)
	ctx := t.Context()
	if err := s.Set(ctx, "hold", []byte("on"), 0); err != nil {
		t.Fatal(err)
	}

	srv.Stop()
	short, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if _, err := s.Get(short, "hold"); err == nil || errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get while Redis is down: %v, want a connection error", err)
	}
	if err := s.Ping(short); err == nil {
		t.Fatal("Ping while Redis is down succeeded")
	}
	if err := s.Update(short, "hold", func([]byte, bool) ([]byte, error) { return []byte("x"), nil }); err == nil {
		t.Fatal("Update while Redis is down succeeded")
	}

	srv.Start()
	testenv.WaitFor(t, 10*time.Second, func() bool { return s.Ping(ctx) == nil }, "the store to reconnect once Redis is back")
	// This server keeps nothing across restarts.
	if _, err := s.Get(ctx, "hold"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get after restart: %v, want ErrNotFound", err)
	}
	if err := s.Set(ctx, "hold", []byte("again"), 0); err != nil {
		t.Fatalf("Set after restart: %v", err)
	}
}

func TestOpenErrorsHideThePassword(t *testing.T) {
	const secret = "s3cret-pw"
	closed := "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t)) // nothing listens there
	tests := []struct {
		name string
		url  string
	}{
		{"unreachable", "redis://app:" + secret + "@" + closed + "/0"},
		{"password only", "redis://:" + secret + "@" + closed + "/0"},
		{"bad port", "redis://app:" + secret + "@127.0.0.1:notaport/0"},
		{"bad db", "redis://app:" + secret + "@" + closed + "/x"},
		{"bad scheme", "http://app:" + secret + "@" + closed + "/0"},
		{"control character", "redis://app:" + secret + "@127.0.0.1\x7f/0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			s, err := redis.Open(ctx, tc.url, redis.WithPingTimeout(time.Second))
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			if strings.Contains(err.Error(), secret) {
				t.Fatalf("error shows the password: %v", err)
			}
			if !strings.Contains(err.Error(), "xxxxx@") {
				t.Fatalf("error does not name the redacted URL: %v", err)
			}
			t.Logf("error: %v", err)
		})
	}
}

// TestPasswordNeverShown runs against a server that requires a password:
// the store works with the right one, names itself without it, and the
// error for a wrong one does not show what was tried.
func TestPasswordNeverShown(t *testing.T) {
	const good, bad = "right-horse-battery", "wrong-staple-guess"
	srv := testenv.StartRedis(t)
	ctx := t.Context()
	if err := rawClient(t, srv.URL).ConfigSet(ctx, "requirepass", good).Err(); err != nil {
		t.Fatal(err)
	}
	s := open(t, "redis://:"+good+"@"+srv.Addr+"/0")
	if err := s.Set(ctx, "k", []byte("v"), 0); err != nil {
		t.Fatalf("Set with the right password: %v", err)
	}
	if str := s.String(); strings.Contains(str, good) || !strings.Contains(str, srv.Addr) {
		t.Fatalf("String() = %q", str)
	}
	short, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err := redis.Open(short, "redis://default:"+bad+"@"+srv.Addr+"/0")
	if err == nil {
		t.Fatal("Open with a wrong password succeeded")
	}
	if strings.Contains(err.Error(), bad) {
		t.Fatalf("error shows the password: %v", err)
	}
	t.Logf("wrong password: %v", err)
}

// TestOpenPingIsBounded opens against a listener that accepts connections
// but never answers: Open must give up at its ping timeout.
func TestOpenPingIsBounded(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	start := time.Now()
	_, err = redis.Open(t.Context(), "redis://"+l.Addr().String()+"/0", redis.WithPingTimeout(300*time.Millisecond))
	if err == nil {
		t.Fatal("Open against a silent server succeeded")
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("Open took %s with a 300ms ping timeout", took)
	}
	if !errors.Is(err, context.DeadlineExceeded) && !isTimeout(err) {
		t.Logf("error (not a deadline, still a failure): %v", err)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func TestRedact(t *testing.T) {
	tests := []struct{ in, want string }{
		{"redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"},
		{"redis://:pw@host:6379/0", "redis://xxxxx@host:6379/0"},
		{"rediss://user:pw@host:6380/1?dial_timeout=3", "rediss://xxxxx@host:6380/1?dial_timeout=3"},
		{"redis://user:p@ss@host/0", "redis://xxxxx@host/0"},
		{"redis://host/0?next=a@b", "redis://host/0?next=a@b"},
		{"user:pw@host:6379", "xxxxx@host:6379"},
		{"", ""},
	}
	for _, tc := range tests {
		if got := redis.Redact(tc.in); got != tc.want {
			t.Errorf("Redact(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
