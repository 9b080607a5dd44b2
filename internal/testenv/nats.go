package testenv

import (
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

const natsReadyTimeout = 10 * time.Second

// NATSServer is a real nats-server with JetStream running inside the test
// process. Shutdown and Restart take it away and bring it back on the same
// port and JetStream store folder, so streams and messages survive.
type NATSServer struct {
	t        testing.TB
	storeDir string

	mu   sync.Mutex
	port int
	srv  *server.Server
}

// NATS starts an in-process nats-server with JetStream on a free loopback
// port, its store in a temporary folder, and shuts it down when the test
// ends.
func NATS(t testing.TB) *NATSServer {
	t.Helper()
	n := &NATSServer{t: t, storeDir: t.TempDir(), port: -1}
	t.Cleanup(n.shutdown)
	if err := n.start(); err != nil {
		t.Fatalf("start nats-server: %v", err)
	}
	return n
}

// URL is nats://127.0.0.1:<port>; it stays the same across restarts.
func (n *NATSServer) URL() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return fmt.Sprintf("nats://127.0.0.1:%d", n.port)
}

// JetStream connects a client that reconnects when the server comes back,
// closed when the test ends.
func (n *NATSServer) JetStream(t testing.TB) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(n.URL(), nats.Name(t.Name()), nats.MaxReconnects(-1), nats.RetryOnFailedConnect(true), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

// StoreDir is the JetStream store folder.
func (n *NATSServer) StoreDir() string { return n.storeDir }

// Server returns the running server (nil while shut down), for tests that
// inspect its state.
func (n *NATSServer) Server() *server.Server {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.srv
}

// Shutdown stops the server and waits until it has. Shutting down a stopped
// server does nothing.
func (n *NATSServer) Shutdown() { n.shutdown() }

// Restart shuts the server down if it runs, then starts a new one on the
// same port and store folder and waits until it accepts connections.
func (n *NATSServer) Restart() {
	n.t.Helper()
	n.shutdown()
	if err := n.start(); err != nil {
		n.t.Fatalf("restart nats-server: %v", err)
	}
}

func (n *NATSServer) shutdown() {
	n.mu.Lock()
	srv := n.srv
	n.srv = nil
	n.mu.Unlock()
	if srv != nil {
		srv.Shutdown()
		srv.WaitForShutdown()
	}
}

func (n *NATSServer) start() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.srv != nil {
		return nil
	}
	srv, err := server.NewServer(&server.Options{
		ServerName: "keywatch-test",
		Host:       "127.0.0.1",
		Port:       n.port,
		JetStream:  true,
		StoreDir:   n.storeDir,
		NoSigs:     true,
		NoLog:      true,
	})
	if err != nil {
		return fmt.Errorf("new server: %w", err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(natsReadyTimeout) {
		srv.Shutdown()
		return fmt.Errorf("not ready for connections within %s on port %d", natsReadyTimeout, n.port)
	}
	addr, ok := srv.Addr().(*net.TCPAddr)
	if !ok {
		srv.Shutdown()
		return fmt.Errorf("unexpected listen address %v", srv.Addr())
	}
	n.port = addr.Port
	n.srv = srv
	return nil
}
