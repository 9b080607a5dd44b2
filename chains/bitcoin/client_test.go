package bitcoin

import "testing"

// TestParseNodeURL: TLS only for wss and https, WebSocket only for ws and
// wss; other schemes and URLs without a host are refused.
func TestParseNodeURL(t *testing.T) {
	for _, c := range []struct {
		url     string
		host    string
		ws, tls bool
		bad     bool
	}{
		{url: "ws://127.0.0.1:18334", host: "127.0.0.1:18334", ws: true},
		{url: "wss://127.0.0.1:18334", host: "127.0.0.1:18334", ws: true, tls: true},
		{url: "http://127.0.0.1:8332", host: "127.0.0.1:8332"},
		{url: "https://node.example:8332", host: "node.example:8332", tls: true},
		{url: "WS://127.0.0.1:18334", host: "127.0.0.1:18334", ws: true},
		{url: "HTTPS://127.0.0.1:8332", host: "127.0.0.1:8332", tls: true},
		{url: "http://user:pass@127.0.0.1:8332", host: "127.0.0.1:8332"},
		{url: "tcp://127.0.0.1:8332", bad: true},
		{url: "wsss://127.0.0.1:18334", bad: true},
		{url: "s://127.0.0.1:18334", bad: true},
		{url: "ftps://127.0.0.1:21", bad: true},
		{url: "127.0.0.1:8332", bad: true},
		{url: "ws://", bad: true},
		{url: "", bad: true},
		{url: "http://[::1", bad: true},
	} {
		host, ws, tls, err := parseNodeURL(c.url)
		if c.bad {
			if err == nil {
				t.Errorf("%q: accepted (host %q ws %v tls %v), want an error", c.url, host, ws, tls)
			}
			if ws || tls || host != "" {
				t.Errorf("%q: refused but returned host %q ws %v tls %v", c.url, host, ws, tls)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", c.url, err)
			continue
		}
		if host != c.host || ws != c.ws || tls != c.tls {
			t.Errorf("%q: host %q ws %v tls %v, want host %q ws %v tls %v", c.url, host, ws, tls, c.host, c.ws, c.tls)
		}
	}
}
