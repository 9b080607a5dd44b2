package testenv

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// redisDo sends one inline command and returns the first reply line.
func redisDo(addr, cmd string) (string, error) {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := fmt.Fprintf(conn, "%s\r\n", cmd); err != nil {
		return "", err
	}
	buf := make([]byte, 512)
	n, err := conn.Read(buf)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(buf[:n])), nil
}

func TestRedisStopStart(t *testing.T) {
	start := time.Now()
	srv := StartRedis(t)
	t.Logf("redis-server ready in %s at %s", time.Since(start).Round(time.Millisecond), srv.URL)
	if !strings.HasPrefix(srv.URL, "redis://127.0.0.1:") || !strings.HasSuffix(srv.URL, "/0") {
		t.Fatalf("URL = %q", srv.URL)
	}
	if got, err := redisDo(srv.Addr, "SET k v"); err != nil || got != "+OK" {
		t.Fatalf("SET = %q, %v", got, err)
	}

	srv.Stop()
	if _, err := redisDo(srv.Addr, "PING"); err == nil {
		t.Fatal("server still answers after Stop")
	}
	srv.Stop() // stopping twice is fine

	start = time.Now()
	srv.Start()
	t.Logf("redis-server restarted in %s", time.Since(start).Round(time.Millisecond))
	if got, err := redisDo(srv.Addr, "PING"); err != nil || got != "+PONG" {
		t.Fatalf("PING after Start = %q, %v", got, err)
	}
	// Without persistence the restarted server is empty.
	if got, err := redisDo(srv.Addr, "GET k"); err != nil || got != "$-1" {
		t.Fatalf("GET k after restart = %q, %v; want nil", got, err)
	}
	srv.Start() // starting a running server is fine
}

func TestRedisPersistent(t *testing.T) {
	srv := StartRedis(t, RedisPersistent())
	if got, err := redisDo(srv.Addr, "SET k kept"); err != nil || got != "+OK" {
		t.Fatalf("SET = %q, %v", got, err)
	}
	srv.Stop()
	srv.Start()
	if got, err := redisDo(srv.Addr, "GET k"); err != nil || got != "$4\r\nkept" {
		t.Fatalf("GET k after restart = %q, %v; want kept", got, err)
	}
}

func TestRedisURLHelper(t *testing.T) {
	url := Redis(t)
	addr := strings.TrimSuffix(strings.TrimPrefix(url, "redis://"), "/0")
	if got, err := redisDo(addr, "PING"); err != nil || got != "+PONG" {
		t.Fatalf("PING = %q, %v", got, err)
	}
}

func TestNATSRestart(t *testing.T) {
	start := time.Now()
	srv := NATS(t)
	t.Logf("nats-server ready in %s at %s", time.Since(start).Round(time.Millisecond), srv.URL())
	url := srv.URL()

	disconnected := make(chan struct{}, 1)
	reconnected := make(chan struct{}, 1)
	nc, err := nats.Connect(url,
		nats.MaxReconnects(-1),
		nats.ReconnectWait(50*time.Millisecond),
		nats.DisconnectErrHandler(func(*nats.Conn, error) {
			select {
			case disconnected <- struct{}{}:
			default:
			}
		}),
		nats.ReconnectHandler(func(*nats.Conn) {
			select {
			case reconnected <- struct{}{}:
			default:
			}
		}),
	)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer nc.Close()

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:     "ALERTS",
		Subjects: []string{"alerts.>"},
		Storage:  jetstream.FileStorage,
	}); err != nil {
		t.Fatalf("create stream: %v", err)
	}
	if _, err := js.Publish(ctx, "alerts.test", []byte("before"), jetstream.WithMsgID("a-1")); err != nil {
		t.Fatalf("publish: %v", err)
	}

	srv.Shutdown()
	select {
	case <-disconnected:
	case <-ctx.Done():
		t.Fatal("client did not notice the shutdown")
	}
	if srv.Server() != nil {
		t.Fatal("Server() is not nil while shut down")
	}

	start = time.Now()
	srv.Restart()
	t.Logf("nats-server restarted in %s", time.Since(start).Round(time.Millisecond))
	if srv.URL() != url {
		t.Fatalf("URL changed across restart: %s, then %s", url, srv.URL())
	}
	select {
	case <-reconnected:
	case <-ctx.Done():
		t.Fatal("client did not reconnect after the restart")
	}
	// The stream and its message survived on disk; publishing works again.
	var info *jetstream.StreamInfo
	WaitFor(t, 10*time.Second, func() bool {
		s, err := js.Stream(ctx, "ALERTS")
		if err != nil {
			return false
		}
		info, err = s.Info(ctx)
		return err == nil
	}, "the stream back after restart")
	if info.State.Msgs != 1 {
		t.Fatalf("stream has %d messages after restart, want 1", info.State.Msgs)
	}
	if _, err := js.Publish(ctx, "alerts.test", []byte("after"), jetstream.WithMsgID("a-2")); err != nil {
		t.Fatalf("publish after restart: %v", err)
	}
}

func TestGeth(t *testing.T) {
	g := Geth(t)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()

	if g.DevAccount == (common.Address{}) {
		t.Fatal("no developer account")
	}
	if !strings.HasPrefix(g.WSURL, "ws://127.0.0.1:") {
		t.Fatalf("WSURL = %q", g.WSURL)
	}
	var chainID string
	if err := g.Call(ctx, &chainID, "eth_chainId"); err != nil || chainID != "0x539" {
		t.Fatalf("eth_chainId = %q, %v; want 0x539 (1337)", chainID, err)
	}

	// With a 1s period the chain advances by itself.
	head, err := g.BlockNumber(ctx)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := g.WaitForBlock(ctx, head+2); err != nil {
		t.Fatal(err)
	}
	t.Logf("2 blocks in %s", time.Since(start).Round(time.Millisecond))

	// Fund two fresh keys at once: distinct nonces, both mined.
	var addrs [2]common.Address
	for i := range addrs {
		if _, err := rand.Read(addrs[i][:]); err != nil {
			t.Fatal(err)
		}
	}
	amounts := [2]*big.Int{big.NewInt(1e18), new(big.Int).Mul(big.NewInt(5), big.NewInt(1e17))}
	errs := make(chan error, 2)
	start = time.Now()
	for i := range addrs {
		go func() { errs <- g.Fund(ctx, addrs[i], amounts[i]) }()
	}
	for range addrs {
		if err := <-errs; err != nil {
			t.Fatalf("Fund: %v", err)
		}
	}
	t.Logf("two Funds mined in %s", time.Since(start).Round(time.Millisecond))
	for i, a := range addrs {
		bal, err := g.Balance(ctx, a)
		if err != nil {
			t.Fatal(err)
		}
		if bal.Cmp(amounts[i]) != 0 {
			t.Fatalf("balance of %s = %s, want %s", a, bal, amounts[i])
		}
	}

	// Stop takes the node away; Start brings the same chain back.
	start = time.Now()
	g.Stop()
	t.Logf("geth stopped in %s", time.Since(start).Round(time.Millisecond))
	if _, err := g.BlockNumber(ctx); err == nil {
		t.Fatal("node answers after Stop")
	}
	start = time.Now()
	g.Start()
	t.Logf("geth restarted in %s", time.Since(start).Round(time.Millisecond))
	bal, err := g.Balance(ctx, addrs[0])
	if err != nil {
		t.Fatal(err)
	}
	if bal.Cmp(amounts[0]) != 0 {
		t.Fatalf("balance after restart = %s, want %s", bal, amounts[0])
	}
	if err := g.Fund(ctx, addrs[0], big.NewInt(1)); err != nil {
		t.Fatalf("Fund after restart: %v", err)
	}
}

func TestGethPeriodZeroMinesOnTransaction(t *testing.T) {
	g := Geth(t, GethDevPeriod(0))
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if g.Period != 0 {
		t.Fatalf("Period = %s", g.Period)
	}
	before, err := g.BlockNumber(ctx)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := g.Fund(ctx, common.HexToAddress("0x00000000000000000000000000000000000000aa"), big.NewInt(7)); err != nil {
		t.Fatal(err)
	}
	t.Logf("Fund mined in %s with period 0", time.Since(start).Round(time.Millisecond))
	after, err := g.BlockNumber(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if after <= before {
		t.Fatalf("head %d after a transaction, was %d", after, before)
	}
}

func TestGethRPCError(t *testing.T) {
	g := Geth(t, GethDevPeriod(0))
	err := g.Call(t.Context(), nil, "eth_noSuchMethod")
	var rpcErr *RPCError
	if !errors.As(err, &rpcErr) || rpcErr.Code != -32601 {
		t.Fatalf("unknown method: %v, want a -32601 RPCError", err)
	}
}

// fakeTB records Skipf and Fatalf instead of ending the test.
type fakeTB struct {
	testing.TB
	skipped, fatal string
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Skipf(format string, args ...any) {
	f.skipped = fmt.Sprintf(format, args...)
}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.fatal = fmt.Sprintf(format, args...)
}

func TestData(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "eth_fixtures"), 0o755); err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(dir, "eth_fixtures", "block.json")
	if err := os.WriteFile(want, []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv(TestDataEnv, dir)

	if got := Data(t, "eth_fixtures/block.json"); got != want {
		t.Fatalf("Data = %q, want %q", got, want)
	}

	t.Setenv("CI", "")
	f := &fakeTB{TB: t}
	if got := Data(f, "eth_fixtures/missing.json"); got != "" || f.fatal != "" ||
		!strings.Contains(f.skipped, filepath.Join(dir, "eth_fixtures", "missing.json")) {
		t.Fatalf("missing file outside CI: got %q, skip %q, fatal %q", got, f.skipped, f.fatal)
	}

	t.Setenv("CI", "true")
	f = &fakeTB{TB: t}
	if got := Data(f, "missing.json"); got != "" || f.skipped != "" || !strings.Contains(f.fatal, "missing.json") {
		t.Fatalf("missing file under CI: got %q, skip %q, fatal %q", got, f.skipped, f.fatal)
	}
}

func TestDataBesideRepository(t *testing.T) {
	t.Setenv(TestDataEnv, "")
	root, err := dataRoot()
	if err != nil {
		t.Fatal(err)
	}
	// The folder holding go.mod, two levels up from internal/testenv.
	wd, _ := os.Getwd()
	wantRoot := filepath.Join(filepath.Dir(filepath.Dir(filepath.Dir(wd))), "shared", "data")
	if root != wantRoot {
		t.Fatalf("data root = %q, want %q", root, wantRoot)
	}
	if _, err := os.Stat(root); err != nil {
		t.Skipf("shared data folder not present here: %v", err)
	}
	if p := Data(t, "README.md"); p != filepath.Join(root, "README.md") {
		t.Fatalf("Data(README.md) = %q", p)
	}
}

func TestMissingBinary(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	t.Setenv(RedisServerEnv, "")

	t.Setenv("CI", "")
	f := &fakeTB{TB: t}
	if got := findBinary(f, "redis-server", RedisServerEnv); got != "" || f.fatal != "" ||
		!strings.Contains(f.skipped, "redis-server") || !strings.Contains(f.skipped, "make test") {
		t.Fatalf("missing binary outside CI: got %q, skip %q, fatal %q", got, f.skipped, f.fatal)
	}

	t.Setenv("CI", "true")
	f = &fakeTB{TB: t}
	if got := findBinary(f, "redis-server", RedisServerEnv); got != "" || f.skipped != "" || !strings.Contains(f.fatal, "redis-server") {
		t.Fatalf("missing binary under CI: got %q, skip %q, fatal %q", got, f.skipped, f.fatal)
	}

	// A binary in the cache folder is found when PATH has none.
	bin := filepath.Join(BinDir(), "redis-server")
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if got := findBinary(t, "redis-server", RedisServerEnv); got != bin {
		t.Fatalf("findBinary = %q, want the cached %q", got, bin)
	}
	// The environment variable wins over everything.
	t.Setenv(RedisServerEnv, "/bin/true")
	if got := findBinary(t, "redis-server", RedisServerEnv); got != "/bin/true" {
		t.Fatalf("findBinary = %q, want the %s value", got, RedisServerEnv)
	}
}

func TestFreePort(t *testing.T) {
	port := FreePort(t)
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatalf("port %d from FreePort is not free: %v", port, err)
	}
	l.Close()
}
