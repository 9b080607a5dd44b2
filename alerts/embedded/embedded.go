// Package embedded runs the real nats-server in-process with JetStream on
// disk, for single-node installs and the demo (nats.embedded: true).
package embedded

import (
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Start runs a NATS server listening on the host and port of natsURL, with
// JetStream storing under dataDir/jetstream. Port 0 picks a free port; the
// server's ClientURL() says which.
func Start(natsURL, dataDir string, log *slog.Logger) (*server.Server, error) {
	u, err := url.Parse(natsURL)
	if err != nil {
		return nil, fmt.Errorf("embedded NATS: bad url: %w", err)
	}
	host, portStr, err := net.SplitHostPort(u.Host)
	if err != nil {
		return nil, fmt.Errorf("embedded NATS: url %q has no port: %w", natsURL, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("embedded NATS: bad port %q", portStr)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	opts := &server.Options{
		ServerName: "keywatch-embedded",
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   filepath.Join(dataDir, "jetstream"),
		NoSigs:     true,
		NoLog:      true,
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded NATS: %w", err)
	}
	go s.Start()
	if !s.ReadyForConnections(15 * time.Second) {
		s.Shutdown()
		return nil, fmt.Errorf("embedded NATS: not ready on %s:%d after 15s (port in use?)", host, port)
	}
	if log != nil {
		log.Info("embedded NATS running", "url", s.ClientURL(), "store_dir", opts.StoreDir)
	}
	return s, nil
}
