package ethereum_test

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	kwe "github.com/keywatch/keywatch/chains/ethereum"
)

// closedPort returns a loopback port nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	l.Close()
	return port
}

// TestPoolKeepsNodeSecretsOutOfErrorsAndLogs: node URLs often carry an API
// key in the path or query, or credentials. When the node cannot be reached,
// the error the caller logs and the pool's own log name the host only.
func TestPoolKeepsNodeSecretsOutOfErrorsAndLogs(t *testing.T) {
	port := closedPort(t)
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name string
		url  string
		ctx  context.Context
	}{
		{"key in the path", "http://127.0.0.1:" + port + "/v3/SECRETKEY", context.Background()},
		{"credentials and a key in the path", "http://ops:SECRETPW@127.0.0.1:" + port + "/v2/SECRETKEY", context.Background()},
		{"upper-case scheme", "HTTP://127.0.0.1:" + port + "/v3/SECRETKEY", context.Background()},
		{"key in the query", "https://127.0.0.1:" + port + "/rpc?apikey=SECRETKEY", context.Background()},
		{"WebSocket with credentials", "ws://ops:SECRETPW@127.0.0.1:" + port + "/ws/SECRETKEY", context.Background()},
		{"call cancelled", "http://127.0.0.1:" + port + "/v3/SECRETKEY", cancelled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			p := kwe.NewPool([]string{tt.url}, 2*time.Second, slog.New(slog.NewTextHandler(&logs, nil)))
			defer p.Close()
			_, err := p.BlockNumber(tt.ctx)
			if err == nil {
				t.Fatal("BlockNumber succeeded against a closed port")
			}
			for what, text := range map[string]string{"error": err.Error(), "log": logs.String()} {
				if strings.Contains(text, "SECRET") {
					t.Errorf("the %s shows a secret of the node URL: %s", what, text)
				}
			}
			if !strings.Contains(err.Error(), "127.0.0.1:"+port) {
				t.Errorf("the error does not name the node: %v", err)
			}
		})
	}
}
