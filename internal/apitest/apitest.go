// Package apitest holds what the API tests of holds, screening and the
// console share: a configuration with wallets, lists, policies and one token
// per role, a clock tests move by hand, and a JSON client.
package apitest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keywatch/keywatch/api"
	"github.com/keywatch/keywatch/config"
	"github.com/keywatch/keywatch/internal/testenv"
)

// Tokens maps each test principal to its bearer token. kim owns the
// employee keys dev-deployer and kim-laptop; requests are made by rita.
var Tokens = map[string]string{
	"alice": "tok-alice-approver",
	"bob":   "tok-bob-approver",
	"carol": "tok-carol-approver",
	"kim":   "tok-kim-approver",
	"rita":  "tok-rita-approver",
	"vic":   "tok-vic-viewer",
	"olga":  "tok-olga-operator",
	"root":  "tok-root-admin",
	"svc":   "tok-svc-service",
}

var roles = map[string]string{
	"alice": "approver", "bob": "approver", "carol": "approver", "kim": "approver", "rita": "approver",
	"vic": "viewer", "olga": "operator", "root": "admin", "svc": "service",
}

// Addresses of the test wallets.
const (
	TreasuryHot = "0x1111111111111111111111111111111111111111"
	DevDeployer = "0x2222222222222222222222222222222222222222"
	KimLaptop   = "0x3333333333333333333333333333333333333333"
	USDC        = "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48"
	Mixer       = "0x47ce0c6ed5b0ce3d3a51fdb1c52dc66a7c3c2936" // Tornado Cash 1 ETH pool
	Sanctioned  = "0x08723392ed15743cc38513c4925f5e6be5c17243" // Lazarus Group, OFAC SDN
	Vendor      = "0xb374907d35f61de043bedb18ee35f7228c83c3e4" // Acme Hosting, address book
	Fresh       = "0x9999999999999999999999999999999999999999"
	// BTCHot is a regtest address of the Bitcoin hot wallet btc-hot.
	BTCHot = "bcrt1qfxc4qxuv58zl8edesv4tr2m0pzuv5t7x3f4h20"
	// BTCSanctioned is the regtest form of 123WBUDmSJv4GctdVEz6Qq6z8nXSKrJ4KX
	// (Hydra Market, OFAC SDN): the same output script.
	BTCSanctioned = "mgZTUXJkFLMK3jNFCoxUEkKJzn89ARD6AJ"
)

// Config writes and loads a configuration over the store given as YAML
// (for example "redis: redis://…" or "memory: true"). extra is appended.
func Config(t testing.TB, storeYAML, extra string) *config.Config {
	t.Helper()
	root := testenv.RepoRoot(t)
	dir := t.TempDir()
	passwordFile := filepath.Join(dir, "btc.password") // a node that is never dialled
	if err := os.WriteFile(passwordFile, []byte("not-a-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var toks strings.Builder
	for name, tok := range Tokens {
		fmt.Fprintf(&toks, "    - {name: %s, sha256: %q, roles: [%s]}\n", name, api.HashToken(tok), roles[name])
	}
	yaml := fmt.Sprintf(`store: {%s}
nats: {url: "nats://127.0.0.1:4222"}
api:
  listen: 127.0.0.1:0
  tokens:
%sholds: {approvals_required: 2, expire_after: 1h, escalate_before: 10m}
chains:
  - name: eth
    kind: ethereum
    rpc: [http://127.0.0.1:8545]
    native_usd: 3000
    explorer: https://etherscan.io/tx/{tx}
    tokens:
      - {symbol: USDC, address: %q, decimals: 6, usd: 1}
  - name: btc
    kind: bitcoin
    network: regtest
    rpc: [wss://127.0.0.1:18334]
    rpc_user: keywatch
    rpc_password_file: %s
    native_usd: 60000
wallets:
  - {name: treasury-hot, chain: eth, address: %q, role: hot}
  - {name: dev-deployer, chain: eth, address: %q, role: employee-key, owner: kim@firm.example}
  - {name: kim-laptop, chain: eth, address: %q, role: employee-key, owner: kim@firm.example}
  - {name: btc-hot, chain: btc, address: %s, role: hot}
lists:
  sanctioned: [%s]
  mixers: [%s]
  address_book: [%s]
policies:
  - {name: sanctioned-counterparty, detector: list-match, lists: [sanctioned], severity: critical, actions: [page, hold]}
  - {name: mixer-counterparty, detector: list-match, lists: [mixers], severity: critical, actions: [page, hold]}
  - {name: big-outflow, detector: threshold, usd_over: 100000, severity: high, actions: [page]}
  - {name: huge-outflow, detector: threshold, usd_over: 1000000, severity: critical, actions: [page, hold]}
%s`, storeYAML, toks.String(), USDC, passwordFile, TreasuryHot, DevDeployer, KimLaptop, BTCHot,
		filepath.Join(root, "configs/lists/sanctioned.csv"), filepath.Join(root, "configs/lists/mixers.csv"),
		filepath.Join(root, "configs/lists/address-book.csv"), extra)
	path := filepath.Join(dir, "keywatch.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatalf("test configuration: %v", err)
	}
	return cfg
}

// Clock is a time tests move by hand.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock starts at a fixed time.
func NewClock() *Clock { return &Clock{t: time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)} }

// Now is the current time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Add moves the clock forward.
func (c *Clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// Response is an API answer.
type Response struct {
	Code int
	Body []byte
}

// JSON decodes the body into v.
func (r Response) JSON(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("answer %d is not the expected JSON (%v): %s", r.Code, err, r.Body)
	}
}

// Map decodes the body as a JSON object.
func (r Response) Map(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	r.JSON(t, &m)
	return m
}

func (r Response) String() string { return fmt.Sprintf("%d %s", r.Code, bytes.TrimSpace(r.Body)) }

// Do calls base+path as who (a key of Tokens, or "" for no token) with an
// optional body: a string is sent as is, anything else as JSON.
func Do(t testing.TB, base, method, path, who string, body any) Response {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if who != "" {
		tok, ok := Tokens[who]
		if !ok {
			tok = who // an unknown token, as given
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return Response{Code: resp.StatusCode, Body: data}
}
