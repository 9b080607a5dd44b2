package config_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/keywatch/keywatch/config"
)

// noEnv is a lookupEnv with nothing set.
func noEnv(string) (string, bool) { return "", false }

// envOf is a lookupEnv over a fixed map.
func envOf(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

// errorLines returns each reported problem as the user reads it.
func errorLines(t *testing.T, err error) []string {
	t.Helper()
	if err == nil {
		return nil
	}
	var es config.Errors
	if !errors.As(err, &es) {
		t.Fatalf("error is %T, not config.Errors: %v", err, err)
	}
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.Error()
	}
	return out
}

func checkErrors(t *testing.T, err error, want []string) {
	t.Helper()
	got := errorLines(t, err)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("errors:\n got: %s\nwant: %s", strings.Join(got, "\n      "), strings.Join(want, "\n      "))
	}
}

func TestLoadFullConfig(t *testing.T) {
	cfg, err := config.Load("testdata/full.yaml")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if got := cfg.File(); got != "testdata/full.yaml" {
		t.Errorf("File() = %q", got)
	}
	if cfg.Instance != "keywatch-test" {
		t.Errorf("instance = %q", cfg.Instance)
	}
	if got := cfg.Store.RedisURL().Reveal(); got != "redis://127.0.0.1:6379/0" {
		t.Errorf("redis URL = %q", got)
	}
	if cfg.Store.Prefix != "keywatch:" {
		t.Errorf("store prefix = %q, want the default keywatch:", cfg.Store.Prefix)
	}
	if cfg.NATS.SubjectPrefix != "kw" {
		t.Errorf("subject prefix = %q, want kw as written", cfg.NATS.SubjectPrefix)
	}
	if cfg.NATS.DuplicateWindow.D() != 24*time.Hour || cfg.NATS.MaxAge.D() != 720*time.Hour {
		t.Errorf("nats windows = %v, %v; want the defaults 24h, 720h", cfg.NATS.DuplicateWindow, cfg.NATS.MaxAge)
	}
	if cfg.Holds.ApprovalsRequired != 2 {
		t.Errorf("approvals_required = %d, want the default 2", cfg.Holds.ApprovalsRequired)
	}
	if cfg.Holds.ExpireAfter.D() != 12*time.Hour {
		t.Errorf("expire_after = %v, want 12h as written", cfg.Holds.ExpireAfter)
	}
	if len(cfg.API.Tokens) != 2 || cfg.API.Tokens[0].Roles[0] != "approver" {
		t.Errorf("tokens = %+v", cfg.API.Tokens)
	}

	eth, ok := cfg.Chain("eth")
	if !ok {
		t.Fatal(`Chain("eth") not found`)
	}
	devnet, ok := cfg.Chain("devnet")
	if !ok {
		t.Fatal(`Chain("devnet") not found`)
	}
	if _, ok := cfg.Chain("btc"); ok {
		t.Error(`Chain("btc") found in a file without it`)
	}
	chainTests := []struct {
		name      string
		got, want any
	}{
		{"eth confirmations (absent: default 12)", eth.Confirmations, uint64(12)},
		{"eth reorg_depth (confirmations+64)", eth.ReorgDepth, uint64(76)},
		{"eth poll_interval (default 2s)", eth.PollInterval.D(), 2 * time.Second},
		{"eth native symbol (default ETH)", eth.NativeSymbol, "ETH"},
		{"eth native_usd", eth.NativeUSD, 3000.0},
		{"eth chain_id", eth.ChainID, uint64(1)},
		{"eth rpc", strings.Join(eth.RPC, " "), "ws://127.0.0.1:8546 https://eth-backup.example.net"},
		{"USDC decimals (as written)", eth.Tokens[0].Decimals, 6},
		{"WETH decimals (absent: default 18)", eth.Tokens[1].Decimals, 18},
		{"devnet confirmations (explicit 0 stays 0)", devnet.Confirmations, uint64(0)},
		{"devnet reorg_depth (0+64)", devnet.ReorgDepth, uint64(64)},
		{"devnet poll_interval (as written)", devnet.PollInterval.D(), 250 * time.Millisecond},
	}
	for _, tc := range chainTests {
		if tc.got != tc.want {
			t.Errorf("%s = %v, want %v", tc.name, tc.got, tc.want)
		}
	}

	if len(cfg.Wallets) != 5 || cfg.Wallets[1].Hours != "09:00-18:00 America/New_York" || cfg.Wallets[1].Owner != "kim@firm.example" {
		t.Errorf("wallets = %+v", cfg.Wallets)
	}
	if got := strings.Join(cfg.Lists["mixers"], ","); got != "lists/mixers.csv" {
		t.Errorf("lists.mixers = %q", got)
	}
	if len(cfg.Policies) != 4 || cfg.Policies[2].USDOver == nil || *cfg.Policies[2].USDOver != 100000 {
		t.Errorf("policies = %+v", cfg.Policies)
	}
	if len(cfg.Alerts.Sinks) != 1 || cfg.Alerts.Sinks[0].Kind != "log" {
		t.Errorf("sinks = %+v", cfg.Alerts.Sinks)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := config.Load("testdata/no-such-file.yaml")
	got := errorLines(t, err)
	if len(got) != 1 || !strings.HasPrefix(got[0], "testdata/no-such-file.yaml: cannot read configuration: ") {
		t.Errorf("errors = %q", got)
	}
}

// base is a small valid configuration; cases below change one thing in it.
const base = `store:
  memory: true
nats:
  embedded: true
  data_dir: /var/lib/keywatch
chains:
  - name: eth
    kind: ethereum
    rpc: [ws://127.0.0.1:8546]
    tokens:
      - symbol: USDC
        address: "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"
        decimals: 6
wallets:
  - name: hot
    chain: eth
    address: "0x1111111111111111111111111111111111111111"
    role: hot
policies:
  - name: big
    detector: threshold
    usd_over: 100
    severity: high
`

func TestBaseIsValid(t *testing.T) {
	if _, err := config.Parse("kw.yaml", []byte(base), noEnv); err != nil {
		t.Fatalf("base configuration does not load: %v", err)
	}
}

// insertAfter puts text after the first line of doc that equals line.
func insertAfter(t *testing.T, doc, line, text string) string {
	t.Helper()
	i := strings.Index(doc, line+"\n")
	if i < 0 {
		t.Fatalf("line %q not in document", line)
	}
	i += len(line) + 1
	return doc[:i] + text + doc[i:]
}

func TestStrictness(t *testing.T) {
	tests := []struct {
		name string
		doc  func(t *testing.T) string
		want []string
	}{
		{
			name: "unknown top-level key, close to a known one",
			doc:  func(t *testing.T) string { return "polices: []\n" + base },
			want: []string{`kw.yaml:1:1: polices: unknown key "polices" (did you mean "policies"?)`},
		},
		{
			name: "unknown top-level key, nothing close",
			doc:  func(t *testing.T) string { return "colour: blue\n" + base },
			want: []string{`kw.yaml:1:1: colour: unknown key "colour"`},
		},
		{
			name: "unknown key in store",
			doc:  func(t *testing.T) string { return insertAfter(t, base, "  memory: true", "  memroy: false\n") },
			want: []string{`kw.yaml:3:3: store.memroy: unknown key "memroy" (did you mean "memory"?)`},
		},
		{
			name: "unknown key in chains[i]",
			doc:  func(t *testing.T) string { return insertAfter(t, base, "    kind: ethereum", "    confirmation: 3\n") },
			want: []string{`kw.yaml:9:5: chains[0].confirmation: unknown key "confirmation" (did you mean "confirmations"?)`},
		},
		{
			name: "unknown key in tokens[j]",
			doc:  func(t *testing.T) string { return insertAfter(t, base, "        decimals: 6", "        decimal: 6\n") },
			want: []string{`kw.yaml:14:9: chains[0].tokens[0].decimal: unknown key "decimal" (did you mean "decimals"?)`},
		},
		{
			name: "unknown key in wallets[i]",
			doc:  func(t *testing.T) string { return insertAfter(t, base, "    chain: eth", "    adress: \"0x1\"\n") },
			want: []string{`kw.yaml:17:5: wallets[0].adress: unknown key "adress" (did you mean "address"?)`},
		},
		{
			name: "unknown key in policies[i]",
			doc:  func(t *testing.T) string { return insertAfter(t, base, "    usd_over: 100", "    severty: low\n") },
			want: []string{`kw.yaml:23:5: policies[0].severty: unknown key "severty" (did you mean "severity"?)`},
		},
		{
			name: "duplicate key",
			doc:  func(t *testing.T) string { return insertAfter(t, base, "    usd_over: 100", "    usd_over: 200\n") },
			want: []string{`kw.yaml:23:5: policies[0].usd_over: key appears twice`},
		},
		{
			name: "duplicate list name",
			doc:  func(t *testing.T) string { return base + "lists:\n  mixers: [a.csv]\n  mixers: [b.csv]\n" },
			want: []string{`kw.yaml:26:3: lists.mixers: key appears twice`},
		},
		{
			name: "string where a number is expected",
			doc: func(t *testing.T) string {
				return insertAfter(t, base, "    kind: ethereum", "    confirmations: twelve\n")
			},
			want: []string{`kw.yaml:9:20: chains[0].confirmations: want a non-negative whole number, got "twelve"`},
		},
		{
			name: "list where a number is expected",
			doc: func(t *testing.T) string {
				return insertAfter(t, base, "    kind: ethereum", "    native_usd: [3000]\n")
			},
			want: []string{`kw.yaml:9:17: chains[0].native_usd: want a number, got a list`},
		},
		{
			name: "not a number where a number is expected",
			doc:  func(t *testing.T) string { return strings.Replace(base, "usd_over: 100", "usd_over: NaN", 1) },
			want: []string{`kw.yaml:22:15: policies[0].usd_over: want a number, got "NaN"`},
		},
		{
			name: "infinity where a number is expected",
			doc:  func(t *testing.T) string { return insertAfter(t, base, "    kind: ethereum", "    native_usd: inf\n") },
			want: []string{`kw.yaml:9:17: chains[0].native_usd: want a number, got "inf"`},
		},
		{
			name: "list where a string is expected",
			doc:  func(t *testing.T) string { return insertAfter(t, base, "    chain: eth", "    owner: [kim, lee]\n") },
			want: []string{`kw.yaml:17:12: wallets[0].owner: want a string, got a list`},
		},
		{
			name: "word where true or false is expected",
			doc:  func(t *testing.T) string { return strings.Replace(base, "memory: true", "memory: sure", 1) },
			want: []string{
				`kw.yaml:2:11: store.memory: want true or false, got "sure"`,
				// memory stays false, so there is no store either.
				"kw.yaml:2:3: store: no store: set redis (or redis_env) for shared state, or memory: true to run a single process whose state is lost on exit",
			},
		},
		{
			name: "scalar where a mapping is expected",
			doc:  func(t *testing.T) string { return "api: 127.0.0.1:8080\n" + base },
			want: []string{`kw.yaml:1:6: api: want a mapping of keys, got "127.0.0.1:8080"`},
		},
		{
			name: "bad duration",
			doc: func(t *testing.T) string {
				return insertAfter(t, base, "    kind: ethereum", "    poll_interval: 2 seconds\n")
			},
			want: []string{`kw.yaml:9:20: chains[0].poll_interval: "2 seconds" is not a duration (use a form such as 30s, 15m or 72h)`},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := config.Parse("kw.yaml", []byte(tc.doc(t)), noEnv)
			checkErrors(t, err, tc.want)
		})
	}
}

func TestSyntaxErrors(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want []string
	}{
		{"empty file", "", []string{"kw.yaml: configuration is empty"}},
		{"only comments", "# nothing yet\n\n# still nothing\n", []string{"kw.yaml: configuration is empty"}},
		{
			"unclosed flow sequence",
			"store:\n  memory: true\nnats:\n  url: [nats://127.0.0.1:4222\napi: {}\n",
			[]string{"kw.yaml:4: YAML syntax: did not find expected ',' or ']'"},
		},
		{
			"bad indentation",
			"store:\n  memory: true\nnats:\n  url: nats://127.0.0.1:4222\n embedded: true\n",
			[]string{"kw.yaml:5: YAML syntax: did not find expected key"},
		},
		{
			"tab indentation",
			"store:\n  memory: true\nnats:\n  url: nats://127.0.0.1:4222\n\tembedded: true\n",
			[]string{"kw.yaml:4: YAML syntax: found a tab character that violates indentation"},
		},
		{
			"character that cannot start a token",
			"store:\n  memory: true\nnats:\n  url: @nats\n",
			[]string{"kw.yaml:4: YAML syntax: found character that cannot start any token"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := config.Parse("kw.yaml", []byte(tc.doc), noEnv)
			checkErrors(t, err, tc.want)
		})
	}
}

func TestEveryErrorReportedInLineOrder(t *testing.T) {
	_, err := config.Load("testdata/six-mistakes.yaml")
	checkErrors(t, err, []string{
		`testdata/six-mistakes.yaml:3:3: store.memroy: unknown key "memroy" (did you mean "memory"?)`,
		`testdata/six-mistakes.yaml:11:20: chains[0].confirmations: want a non-negative whole number, got "twelve"`,
		`testdata/six-mistakes.yaml:13:33: chains[0].tokens[0].address: "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB4" is not an address (want 0x and 40 hex digits)`,
		`testdata/six-mistakes.yaml:16:39: wallets[1].address: same address as wallet "hot"`,
		`testdata/six-mistakes.yaml:17:103: wallets[2].hours: "9-5 EST": want [DAYS] HH:MM-HH:MM and a time zone, e.g. 09:00-18:00 America/New_York or Mon-Fri 09:00-18:00 America/New_York`,
		`testdata/six-mistakes.yaml:19:69: policies[0].colour: unknown key "colour"`,
	})
}

func TestStore(t *testing.T) {
	const rest = "nats:\n  embedded: true\n  data_dir: /var/lib/keywatch\n"
	tests := []struct {
		name      string
		store     string
		env       map[string]string
		want      []string
		wantURL   string
		notInText string
	}{
		{
			name:  "neither redis nor memory",
			store: "store:\n  prefix: \"kw:\"\n",
			want:  []string{"kw.yaml:2:3: store: no store: set redis (or redis_env) for shared state, or memory: true to run a single process whose state is lost on exit"},
		},
		{
			name:  "no store section at all",
			store: "instance: a\n",
			want:  []string{"kw.yaml: store: no store: set redis (or redis_env) for shared state, or memory: true to run a single process whose state is lost on exit"},
		},
		{
			name:  "both redis and memory",
			store: "store:\n  redis: redis://127.0.0.1:6379/0\n  memory: true\n",
			want:  []string{"kw.yaml:2:3: store: choose one store: redis for shared state, or memory: true for a single process, not both"},
		},
		{
			name:    "redis URL without password",
			store:   "store:\n  redis: redis://127.0.0.1:6379/0\n",
			wantURL: "redis://127.0.0.1:6379/0",
		},
		{
			name:      "redis URL with a password in the file",
			store:     "store:\n  redis: redis://default:hunter2@127.0.0.1:6379/0\n",
			want:      []string{"kw.yaml:2:10: store.redis: the URL carries a password: put the whole URL in an environment variable and name it with redis_env"},
			notInText: "hunter2",
		},
		{
			name:  "not a redis URL",
			store: "store:\n  redis: http://127.0.0.1:6379\n",
			want:  []string{"kw.yaml:2:10: store.redis: want a redis:// or rediss:// URL"},
		},
		{
			name:    "redis_env resolved through lookupEnv",
			store:   "store:\n  redis_env: KW_REDIS\n",
			env:     map[string]string{"KW_REDIS": "rediss://default:hunter2@redis.internal:6380/1"},
			wantURL: "rediss://default:hunter2@redis.internal:6380/1",
		},
		{
			name:  "redis_env unset",
			store: "store:\n  redis_env: KW_REDIS\n",
			want:  []string{"kw.yaml:2:14: store.redis_env: environment variable KW_REDIS is not set"},
		},
		{
			name:      "redis_env holding something else",
			store:     "store:\n  redis_env: KW_REDIS\n",
			env:       map[string]string{"KW_REDIS": "hunter2"},
			want:      []string{"kw.yaml:2:14: store.redis_env: environment variable KW_REDIS does not hold a redis:// or rediss:// URL"},
			notInText: "hunter2",
		},
		{
			name:  "redis and redis_env",
			store: "store:\n  redis: redis://127.0.0.1:6379/0\n  redis_env: KW_REDIS\n",
			env:   map[string]string{"KW_REDIS": "redis://127.0.0.1:6379/1"},
			want:  []string{"kw.yaml:3:14: store.redis_env: set redis or redis_env, not both"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := config.Parse("kw.yaml", []byte(tc.store+rest), envOf(tc.env))
			checkErrors(t, err, tc.want)
			if tc.notInText != "" && err != nil && strings.Contains(err.Error(), tc.notInText) {
				t.Errorf("error text reveals the secret %q: %v", tc.notInText, err)
			}
			if tc.wantURL != "" {
				if got := cfg.Store.RedisURL().Reveal(); got != tc.wantURL {
					t.Errorf("RedisURL().Reveal() = %q, want %q", got, tc.wantURL)
				}
			}
		})
	}
}

func TestSecretNeverPrinted(t *testing.T) {
	const pw = "s3cr3t-pa55"
	s := config.NewSecret(pw)
	if s.Reveal() != pw {
		t.Fatalf("Reveal() = %q", s.Reveal())
	}
	if s.IsZero() || !config.NewSecret("").IsZero() {
		t.Errorf("IsZero wrong")
	}

	// A configuration whose chain and store carry secrets from the environment.
	doc := `store:
  redis_env: KW_REDIS
nats:
  embedded: true
  data_dir: /var/lib/keywatch
chains:
  - name: eth
    kind: ethereum
    rpc: [https://node.example.net]
    rpc_password_env: KW_RPC_PASSWORD
`
	cfg, err := config.Parse("kw.yaml", []byte(doc), envOf(map[string]string{
		"KW_REDIS":        "redis://default:" + pw + "@redis.internal:6379/0",
		"KW_RPC_PASSWORD": pw,
	}))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Chains[0].RPCPassword().Reveal(); got != pw {
		t.Errorf("RPCPassword().Reveal() = %q, want %q", got, pw)
	}

	type wrapper struct {
		Name   string
		Secret config.Secret
	}
	jsonOf := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("json.Marshal: %v", err)
		}
		return string(b)
	}
	slogJSON := func(args ...any) string {
		var buf bytes.Buffer
		slog.New(slog.NewJSONHandler(&buf, nil)).Info("loaded", args...)
		return buf.String()
	}
	slogText := func(args ...any) string {
		var buf bytes.Buffer
		slog.New(slog.NewTextHandler(&buf, nil)).Info("loaded", args...)
		return buf.String()
	}
	outputs := []struct {
		name, got, wantIn string
	}{
		{"%v", fmt.Sprintf("%v", s), "[redacted]"},
		{"%s", fmt.Sprintf("%s", s), "[redacted]"},
		{"%+v", fmt.Sprintf("%+v", s), "[redacted]"},
		{"%#v", fmt.Sprintf("%#v", s), "[redacted]"},
		{"%q", fmt.Sprintf("%q", s), `"[redacted]"`},
		{"fmt of a pointer", fmt.Sprintf("%v", &s), "[redacted]"},
		{"fmt in a struct", fmt.Sprintf("%+v", wrapper{"x", s}), "[redacted]"},
		{"fmt of the store", fmt.Sprintf("%+v", cfg.Store), ""},
		{"fmt of a chain", fmt.Sprintf("%+v", cfg.Chains[0]), ""},
		{"fmt of the whole config", fmt.Sprintf("%+v", *cfg), ""},
		{"json", jsonOf(s), `"[redacted]"`},
		{"json in a struct", jsonOf(wrapper{"x", s}), `{"Name":"x","Secret":"[redacted]"}`},
		{"json of the config", jsonOf(cfg), ""},
		{"slog JSON", slogJSON("password", s), `"password":"[redacted]"`},
		{"slog JSON of the store", slogJSON("store", cfg.Store), ""},
		{"slog JSON of the config", slogJSON("config", cfg), `"config":{"file":"kw.yaml","chains":1,"wallets":0,"policies":0}`},
		{"slog text", slogText("password", s), "password=[redacted]"},
		{"slog text of the store", slogText("store", cfg.Store), ""},
		{"slog text of a chain", slogText("chain", cfg.Chains[0]), ""},
	}
	// Verbs that do not print strings must not reveal the value either.
	for _, verb := range []string{"%x", "%X", "%d", "%t", "%10.3f"} {
		outputs = append(outputs, struct{ name, got, wantIn string }{verb, fmt.Sprintf(verb, s), ""})
	}
	for _, o := range outputs {
		if strings.Contains(o.got, pw) {
			t.Errorf("%s reveals the secret: %s", o.name, o.got)
		}
		if !strings.Contains(o.got, o.wantIn) {
			t.Errorf("%s = %s, want it to contain %s", o.name, o.got, o.wantIn)
		}
	}
}

func TestCheckEVMAddress(t *testing.T) {
	tests := []struct {
		addr    string
		wantErr string
	}{
		{"0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed", ""},                    // lowercase: no checksum to check
		{"0x5AAEB6053F3E94C9B9A09F33669435E7EF1BEAED", ""},                    // uppercase: no checksum either
		{"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", ""},                    // EIP-55 test vector
		{"0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359", ""},                    // EIP-55 test vector
		{"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD", "bad EIP-55 checksum"}, // last letter's case flipped
		{"0x5aaeb6053f3e94c9b9a09f33669435e7ef1bea", "is not an address"},     // 19 bytes
		{"0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed00", "is not an address"},
		{"5aaeb6053f3e94c9b9a09f33669435e7ef1beaed", "is not an address"},   // no 0x
		{"0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaeg", "is not an address"}, // g is not hex
		{"", "required"},
	}
	for _, tc := range tests {
		t.Run(tc.addr, func(t *testing.T) {
			err := config.CheckEVMAddress(tc.addr)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("CheckEVMAddress(%q) = %v, want nil", tc.addr, err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("CheckEVMAddress(%q) = %v, want an error containing %q", tc.addr, err, tc.wantErr)
			}
		})
	}
}

func TestWalletAddresses(t *testing.T) {
	const head = `store: {memory: true}
nats: {embedded: true, data_dir: /var/lib/keywatch}
chains:
  - {name: eth, kind: ethereum, rpc: [ws://127.0.0.1:8546]}
  - {name: base, kind: ethereum, rpc: [ws://127.0.0.1:9546]}
wallets:
`
	tests := []struct {
		name    string
		wallets string
		want    []string
	}{
		{
			name:    "checksummed and lowercase",
			wallets: "  - {name: a, chain: eth, address: \"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed\", role: hot}\n  - {name: b, chain: eth, address: \"0xfb6916095ca1df60bb79ce92ce3ea74c37c5d359\", role: hot}\n",
		},
		{
			name:    "bad checksum",
			wallets: "  - {name: a, chain: eth, address: \"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD\", role: hot}\n",
			want:    []string{`kw.yaml:7:36: wallets[0].address: "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD" has a bad EIP-55 checksum (a typo?); write it in lowercase to skip the check`},
		},
		{
			name:    "wrong length",
			wallets: "  - {name: a, chain: eth, address: \"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeA\", role: hot}\n",
			want:    []string{`kw.yaml:7:36: wallets[0].address: "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeA" is not an address (want 0x and 40 hex digits)`},
		},
		{
			name:    "missing address",
			wallets: "  - {name: a, chain: eth, role: hot}\n",
			want:    []string{`kw.yaml:7:5: wallets[0].address: required`},
		},
		{
			name: "same address on the same chain, written in different cases",
			wallets: "  - {name: a, chain: eth, address: \"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed\", role: hot}\n" +
				"  - {name: b, chain: eth, address: \"0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed\", role: cold}\n",
			want: []string{`kw.yaml:8:36: wallets[1].address: same address as wallet "a"`},
		},
		{
			name: "same address on two chains",
			wallets: "  - {name: a, chain: eth, address: \"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed\", role: hot}\n" +
				"  - {name: b, chain: base, address: \"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed\", role: hot}\n",
		},
		{
			name:    "unknown chain",
			wallets: "  - {name: a, chain: btc, address: \"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed\", role: hot}\n",
			want:    []string{`kw.yaml:7:22: wallets[0].chain: no chain named "btc" (chains: eth, base)`},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := config.Parse("kw.yaml", []byte(head+tc.wallets), noEnv)
			checkErrors(t, err, tc.want)
		})
	}
}

func TestNullMeansAbsent(t *testing.T) {
	doc := `store: {memory: true}
nats: {embedded: true, data_dir: /var/lib/keywatch}
holds:
  approvals_required:
chains:
  - name: eth
    kind: ethereum
    rpc: [ws://127.0.0.1:8546]
    confirmations:
    tokens:
      - {symbol: DAI, address: "0x6b175474e89094c44da98b954eedeac495271d0f", decimals: ~}
`
	cfg, err := config.Parse("kw.yaml", []byte(doc), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Chains[0].Confirmations; got != 12 {
		t.Errorf("confirmations left empty = %d, want the default 12", got)
	}
	if got := cfg.Chains[0].Tokens[0].Decimals; got != 18 {
		t.Errorf("decimals: ~ = %d, want the default 18", got)
	}
	if got := cfg.Holds.ApprovalsRequired; got != 2 {
		t.Errorf("approvals_required left empty = %d, want the default 2", got)
	}
}

func TestErrorfPointsAtField(t *testing.T) {
	cfg, err := config.Load("testdata/full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path, want string
	}{
		// The value of a field that was written.
		{"policies[1].lists[0]", "testdata/full.yaml:43:62: policies[1].lists[0]: no such list"},
		// A field that was not written: its nearest written parent.
		{"policies[1].when", "testdata/full.yaml:43:5: policies[1].when: no such list"},
		{"lists.mixers[0]", "testdata/full.yaml:39:12: lists.mixers[0]: no such list"},
		// Nothing written at all: the file alone.
		{"nowhere", "testdata/full.yaml: nowhere: no such list"},
	}
	for _, tc := range tests {
		if got := cfg.Errorf(tc.path, "no such list").Error(); got != tc.want {
			t.Errorf("Errorf(%q) = %s, want %s", tc.path, got, tc.want)
		}
	}
}

func TestParseHours(t *testing.T) {
	tests := []struct {
		in         string
		start, end time.Duration
		zone       string
		days       string // as String writes them; "" for every day
		wantErr    string
	}{
		{in: "09:00-18:00 America/New_York", start: 9 * time.Hour, end: 18 * time.Hour, zone: "America/New_York"},
		{in: "22:00-06:00 UTC", start: 22 * time.Hour, end: 6 * time.Hour, zone: "UTC"},
		{in: "  08:30-17:45   Europe/Berlin ", start: 8*time.Hour + 30*time.Minute, end: 17*time.Hour + 45*time.Minute, zone: "Europe/Berlin"},
		{in: "00:00-24:00 UTC", start: 0, end: 24 * time.Hour, zone: "UTC"},
		{in: "09:00-18:00", wantErr: `"09:00-18:00": want [DAYS] HH:MM-HH:MM and a time zone, e.g. 09:00-18:00 America/New_York`},
		{in: "9:00-18:00 UTC", wantErr: `"9:00-18:00 UTC": want [DAYS] HH:MM-HH:MM and a time zone`},
		{in: "09:00 to 18:00 UTC", wantErr: `want [DAYS] HH:MM-HH:MM and a time zone`},
		{in: "", wantErr: `want [DAYS] HH:MM-HH:MM and a time zone`},
		{in: "25:00-18:00 UTC", wantErr: `"25:00-18:00 UTC": hours run 00:00 to 24:00`},
		{in: "09:60-18:00 UTC", wantErr: `hours run 00:00 to 24:00`},
		{in: "09:00-24:01 UTC", wantErr: `hours run 00:00 to 24:00`},
		{in: "09:00-09:00 UTC", wantErr: `"09:00-09:00 UTC": start and end are the same`},
		{in: "09:00-18:00 Mars/Olympus_Mons", wantErr: `"09:00-18:00 Mars/Olympus_Mons": unknown time zone "Mars/Olympus_Mons"`},
		{in: "09:00-18:00 EST5", wantErr: `unknown time zone "EST5"`},
		{in: "Mon-Fri 09:00-18:00 Europe/Berlin", start: 9 * time.Hour, end: 18 * time.Hour, zone: "Europe/Berlin", days: "Mon-Fri"},
		{in: "sun-thu 08:00-17:00 Asia/Jerusalem", start: 8 * time.Hour, end: 17 * time.Hour, zone: "Asia/Jerusalem", days: "Sun-Thu"},
		{in: "Fri-Mon 22:00-06:00 UTC", start: 22 * time.Hour, end: 6 * time.Hour, zone: "UTC", days: "Fri-Mon"},
		{in: "Mon,Wed,Fri 10:00-14:00 UTC", start: 10 * time.Hour, end: 14 * time.Hour, zone: "UTC", days: "Mon,Wed,Fri"},
		{in: "Mon,Tue 10:00-14:00 UTC", start: 10 * time.Hour, end: 14 * time.Hour, zone: "UTC", days: "Mon,Tue"},
		{in: "Mon-Sun 10:00-14:00 UTC", start: 10 * time.Hour, end: 14 * time.Hour, zone: "UTC"},
		{in: "Mon-Fry 09:00-18:00 UTC", wantErr: `"Mon-Fry 09:00-18:00 UTC": "Mon-Fry" is not a day or a range of days (Mon, Tue, Wed, Thu, Fri, Sat, Sun; Mon-Fri)`},
		{in: "weekdays 09:00-18:00 UTC", wantErr: `"weekdays" is not a day or a range of days`},
		{in: "Mon-Fri 9-5 UTC", wantErr: `want [DAYS] HH:MM-HH:MM and a time zone`},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			h, err := config.ParseHours(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ParseHours(%q) = %+v, %v; want an error containing %s", tc.in, h, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseHours(%q): %v", tc.in, err)
			}
			if h.Start != tc.start || h.End != tc.end || h.Loc.String() != tc.zone {
				t.Errorf("ParseHours(%q) = %v-%v %v, want %v-%v %s", tc.in, h.Start, h.End, h.Loc, tc.start, tc.end, tc.zone)
			}
			want := strings.Join(strings.Fields(tc.in), " ")
			if tc.days != "" || !strings.Contains(strings.Fields(tc.in)[0], ":") {
				want = strings.TrimSpace(tc.days + " " + strings.Join(strings.Fields(tc.in)[1:], " "))
			}
			if got := h.String(); got != want {
				t.Errorf("ParseHours(%q).String() = %q, want %q", tc.in, got, want)
			}
			if again, err := config.ParseHours(h.String()); err != nil || again.String() != h.String() || again.Days != h.Days {
				t.Errorf("ParseHours(%q) does not read back: %+v, %v", h.String(), again, err)
			}
		})
	}
}

func TestHoursContains(t *testing.T) {
	mustHours := func(s string) config.Hours {
		h, err := config.ParseHours(s)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	ny := mustHours("09:00-18:00 America/New_York")
	night := mustHours("22:00-06:00 UTC")
	weekdays := mustHours("Mon-Fri 09:00-18:00 UTC")
	weeknights := mustHours("Mon-Fri 22:00-06:00 UTC")
	nyWeekdays := mustHours("Mon-Fri 09:00-18:00 America/New_York")
	aucklandWeekdays := mustHours("Mon-Fri 09:00-18:00 Pacific/Auckland")
	utc := func(s string) time.Time {
		tm, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	tests := []struct {
		name  string
		hours config.Hours
		at    string
		want  bool
	}{
		// New York in winter is UTC-5: 09:00 local is 14:00 UTC.
		{"NY winter: a second before start", ny, "2026-01-15T13:59:59Z", false},
		{"NY winter: at start (inclusive)", ny, "2026-01-15T14:00:00Z", true},
		{"NY winter: midday", ny, "2026-01-15T17:00:00Z", true},
		{"NY winter: a second before end", ny, "2026-01-15T22:59:59Z", true},
		{"NY winter: at end (exclusive)", ny, "2026-01-15T23:00:00Z", false},
		{"NY winter: a time in another zone", ny, "2026-01-15T15:00:00+01:00", true},
		// 2026-03-08 is the day New York moves to daylight time (UTC-4)
		// at 02:00: 09:00 local is then 13:00 UTC.
		{"NY DST day: 13:00 UTC is 09:00 EDT", ny, "2026-03-08T13:00:00Z", true},
		{"NY DST day: 12:59:59 UTC is 08:59:59 EDT", ny, "2026-03-08T12:59:59Z", false},
		{"NY DST day: 22:00 UTC is 18:00 EDT", ny, "2026-03-08T22:00:00Z", false},
		{"NY day before DST: 13:00 UTC is 08:00 EST", ny, "2026-03-07T13:00:00Z", false},
		{"NY DST day: 03:30 EDT right after the jump", ny, "2026-03-08T07:30:00Z", false},
		// Overnight span.
		{"night: before start", night, "2026-01-15T21:59:59Z", false},
		{"night: at start", night, "2026-01-15T22:00:00Z", true},
		{"night: midnight", night, "2026-01-16T00:00:00Z", true},
		{"night: a second before end", night, "2026-01-16T05:59:59Z", true},
		{"night: at end", night, "2026-01-16T06:00:00Z", false},
		{"night: midday", night, "2026-01-16T12:00:00Z", false},
		// Working days. 2026-01-16 is a Friday, 2026-01-17 a Saturday.
		{"weekdays: Friday midday", weekdays, "2026-01-16T12:00:00Z", true},
		{"weekdays: Saturday midday", weekdays, "2026-01-17T12:00:00Z", false},
		{"weekdays: Sunday midday", weekdays, "2026-01-18T12:00:00Z", false},
		{"weekdays: Monday at start", weekdays, "2026-01-19T09:00:00Z", true},
		// A night shift belongs to the day it starts on.
		{"weeknights: Friday night", weeknights, "2026-01-16T23:00:00Z", true},
		{"weeknights: Saturday 05:59, Friday's shift", weeknights, "2026-01-17T05:59:59Z", true},
		{"weeknights: Saturday 06:00", weeknights, "2026-01-17T06:00:00Z", false},
		{"weeknights: Saturday night", weeknights, "2026-01-17T23:00:00Z", false},
		{"weeknights: Monday 01:00, Sunday's shift", weeknights, "2026-01-19T01:00:00Z", false},
		{"weeknights: Monday night", weeknights, "2026-01-19T22:00:00Z", true},
		// Working days are the days of the owner's zone.
		// Auckland is UTC+13 in January.
		{"Auckland weekdays: Monday 09:00 local is a UTC Sunday", aucklandWeekdays, "2026-01-18T20:00:00Z", true},
		{"Auckland weekdays: Saturday 09:00 local is a UTC Friday", aucklandWeekdays, "2026-01-16T20:00:00Z", false},
		{"NY weekdays: Friday 17:00 local", nyWeekdays, "2026-01-16T22:00:00Z", true},
		{"NY weekdays: Saturday 10:00 local", nyWeekdays, "2026-01-17T15:00:00Z", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.hours.Contains(utc(tc.at)); got != tc.want {
				t.Errorf("Contains(%s) = %v, want %v", tc.at, got, tc.want)
			}
		})
	}
}

func TestNodeURLsFromTheEnvironment(t *testing.T) {
	doc := `store: {memory: true}
nats: {embedded: true, data_dir: /tmp/kw}
chains:
  - name: eth
    kind: ethereum
    rpc: [ws://127.0.0.1:8546]
    rpc_env: ETH_RPC
`
	t.Run("URLs are tried after rpc's", func(t *testing.T) {
		cfg, err := config.Parse("kw.yaml", []byte(doc), envOf(map[string]string{"ETH_RPC": "https://eth.example/v2/key123, wss://eth.example/ws/key123"}))
		if err != nil {
			t.Fatal(err)
		}
		ch, _ := cfg.Chain("eth")
		want := "ws://127.0.0.1:8546 https://eth.example/v2/key123 wss://eth.example/ws/key123"
		if got := strings.Join(ch.Endpoints(), " "); got != want {
			t.Fatalf("endpoints %q, want %q", got, want)
		}
	})
	t.Run("unset", func(t *testing.T) {
		_, err := config.Parse("kw.yaml", []byte(doc), noEnv)
		checkErrors(t, err, []string{"kw.yaml:7:14: chains[0].rpc_env: environment variable ETH_RPC is not set"})
	})
	t.Run("a bad URL is named by position, never printed", func(t *testing.T) {
		_, err := config.Parse("kw.yaml", []byte(doc), envOf(map[string]string{"ETH_RPC": "https://ok.example,eth.example/secret-key"}))
		checkErrors(t, err, []string{"kw.yaml:7:14: chains[0].rpc_env: URL 2 of environment variable ETH_RPC is not an http(s):// or ws(s):// URL"})
	})
	t.Run("a password in the file is refused", func(t *testing.T) {
		bad := strings.Replace(doc, "ws://127.0.0.1:8546", "https://user:hunter2@eth.example", 1)
		_, err := config.Parse("kw.yaml", []byte(bad), envOf(map[string]string{"ETH_RPC": "https://ok.example"}))
		got := strings.Join(errorLines(t, err), "\n")
		if !strings.Contains(got, "chains[0].rpc[0]: the URL carries a password: put it in an environment variable and name it with rpc_env") || strings.Contains(got, "hunter2") {
			t.Fatalf("errors: %s", got)
		}
	})
}
