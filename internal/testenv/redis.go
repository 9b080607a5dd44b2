package testenv

import (
	"bufio"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// RedisServerEnv names the variable that points at a redis-server binary.
const RedisServerEnv = "KEYWATCH_REDIS_SERVER"

const redisReadyTimeout = 15 * time.Second

// RedisServer is a redis-server child process on a loopback port. Stop and
// Start take it away and bring it back on the same port, to test how callers
// behave while Redis is gone.
type RedisServer struct {
	// URL is redis://127.0.0.1:<port>/0; it stays the same across restarts.
	URL string
	// Addr is 127.0.0.1:<port>.
	Addr string
	// Dir is the server's working folder (its log is redis.log there).
	Dir string

	t       testing.TB
	bin     string
	persist bool

	mu   sync.Mutex
	proc *process
}

// RedisOption configures StartRedis.
type RedisOption func(*RedisServer)

// RedisPersistent keeps data across Stop and Start (append-only file,
// fsync on every write). Without it a restarted server is empty, like a
// Redis that lost its memory.
func RedisPersistent() RedisOption {
	return func(r *RedisServer) { r.persist = true }
}

// Redis starts a fresh redis-server for t and returns its URL. The server
// stops when the test ends.
func Redis(t testing.TB) string {
	t.Helper()
	return StartRedis(t).URL
}

// StartRedis starts redis-server (KEYWATCH_REDIS_SERVER, PATH or BinDir) on
// a free loopback port with no persistence unless asked, waits until it
// answers PING and stops it when the test ends.
func StartRedis(t testing.TB, opts ...RedisOption) *RedisServer {
	t.Helper()
	bin := findBinary(t, "redis-server", RedisServerEnv)
	if bin == "" {
		return nil
	}
	dir := t.TempDir()
	port := FreePort(t)
	r := &RedisServer{
		URL:  fmt.Sprintf("redis://127.0.0.1:%d/0", port),
		Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		Dir:  dir,
		t:    t,
		bin:  bin,
	}
	for _, opt := range opts {
		opt(r)
	}
	logOnFailure(t, "redis-server", r.logPath())
	t.Cleanup(func() {
		if err := r.stop(); err != nil {
			t.Errorf("stop redis-server: %v", err)
		}
	})
	if err := r.start(); err != nil {
		t.Fatalf("start redis-server: %v", err)
	}
	return r
}

func (r *RedisServer) logPath() string { return filepath.Join(r.Dir, "redis.log") }

func (r *RedisServer) args() []string {
	_, port, _ := net.SplitHostPort(r.Addr)
	args := []string{
		"--port", port,
		"--bind", "127.0.0.1",
		"--dir", r.Dir,
		"--save", "",
		"--daemonize", "no",
		"--loglevel", "notice",
	}
	if r.persist {
		return append(args, "--appendonly", "yes", "--appendfsync", "always")
	}
	return append(args, "--appendonly", "no")
}

// Start brings a stopped server back on the same port and waits until it
// answers PING. Starting a running server does nothing.
func (r *RedisServer) Start() {
	r.t.Helper()
	if err := r.start(); err != nil {
		r.t.Fatalf("restart redis-server: %v", err)
	}
}

// Stop shuts the server down (SIGTERM, then SIGKILL after 5s) and waits for
// it to exit. Stopping a stopped server does nothing.
func (r *RedisServer) Stop() {
	r.t.Helper()
	if err := r.stop(); err != nil {
		r.t.Fatalf("stop redis-server: %v", err)
	}
}

func (r *RedisServer) start() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.proc != nil {
		if done, _ := r.proc.exited(); !done {
			return nil
		}
	}
	p, err := startProcess(r.bin, r.args(), r.logPath())
	if err != nil {
		return err
	}
	r.proc = p
	deadline := time.Now().Add(redisReadyTimeout)
	for {
		if done, exitErr := p.exited(); done {
			return fmt.Errorf("redis-server on %s exited while starting (%v); log:\n%s",
				r.Addr, exitErr, logTail(r.logPath(), 4<<10))
		}
		perr := redisPing(r.Addr)
		if perr == nil {
			return nil
		}
		if time.Now().After(deadline) {
			_ = p.stop(syscall.SIGKILL, time.Second)
			return fmt.Errorf("redis-server on %s did not answer PING within %s: %v", r.Addr, redisReadyTimeout, perr)
		}
		time.Sleep(20 * time.Millisecond) // poll interval
	}
}

func (r *RedisServer) stop() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.proc == nil {
		return nil
	}
	return r.proc.stop(syscall.SIGTERM, 5*time.Second)
}

// redisPing sends one inline PING and expects +PONG.
func redisPing(addr string) error {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(time.Second)); err != nil {
		return err
	}
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	if strings.TrimSpace(line) != "+PONG" {
		return fmt.Errorf("PING answered %q", strings.TrimSpace(line))
	}
	return nil
}
