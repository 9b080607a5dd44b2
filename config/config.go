// Package config reads keywatch's YAML configuration strictly: unknown keys
// are errors, every problem is reported (not only the first) with file, line
// and field, and secrets come from the environment and are never printed.
//
// The config package checks what it can see on its own (required fields,
// addresses, chain references). Packages that build from the configuration
// (policies, alerts) check their own parts and report through Config.Errorf,
// so their messages carry the same file and line.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Config is the whole configuration file.
type Config struct {
	// Instance names this process in heartbeats and logs (default: host name).
	Instance string   `yaml:"instance"`
	Store    Store    `yaml:"store"`
	NATS     NATS     `yaml:"nats"`
	API      API      `yaml:"api"`
	Holds    Holds    `yaml:"holds"`
	Chains   []Chain  `yaml:"chains"`
	Wallets  []Wallet `yaml:"wallets"`
	// Lists maps a list name to its files (plain or CSV). Relative paths are
	// resolved against the configuration file's folder.
	Lists map[string][]string `yaml:"lists"`
	// ListRefresh says how list files are watched for changes and for age.
	ListRefresh ListRefresh `yaml:"list_refresh"`
	// Intents names CSV files of approved withdrawals, registered at start
	// and on reload (see package intents).
	Intents  []string `yaml:"intents"`
	Policies []Policy `yaml:"policies"`
	Alerts   Alerts   `yaml:"alerts"`

	file string
	dir  string
	pos  map[string]yaml.Node
}

// Store selects where shared state lives.
type Store struct {
	Redis    string `yaml:"redis"`     // redis:// URL (no password in the file: use redis_env)
	RedisEnv string `yaml:"redis_env"` // environment variable holding the URL (may carry a password)
	Memory   bool   `yaml:"memory"`    // explicit opt-in to single-process memory state
	Prefix   string `yaml:"prefix"`    // key namespace, default "keywatch:"

	redisURL Secret
}

// RedisURL returns the Redis URL from the file or the environment.
func (s Store) RedisURL() Secret { return s.redisURL }

// NATS says where alerts are published.
type NATS struct {
	URL           string `yaml:"url"`
	Embedded      bool   `yaml:"embedded"`
	DataDir       string `yaml:"data_dir"`
	SubjectPrefix string `yaml:"subject_prefix"`
	// CredsFile is a NATS credentials file (JWT + nkey seed), when the server
	// requires one.
	CredsFile string `yaml:"creds_file"`
	// DuplicateWindow is how long JetStream remembers message ids (default 24h).
	DuplicateWindow Duration `yaml:"duplicate_window"`
	// MaxAge bounds how long alerts are kept in the stream (default 720h).
	MaxAge Duration `yaml:"max_age"`
}

// API is the HTTP listener: screening, holds, alerts, audit, the operator
// console, metrics and health.
type API struct {
	Listen string  `yaml:"listen"`
	Tokens []Token `yaml:"tokens"`
}

// Token is an API bearer token, stored as the sha256 hex of the token.
type Token struct {
	Name   string   `yaml:"name"`
	SHA256 string   `yaml:"sha256"`
	Roles  []string `yaml:"roles"`
}

// Holds configures the quorum for releasing holds and the screening API's
// decisions.
type Holds struct {
	ApprovalsRequired int      `yaml:"approvals_required"`
	ExpireAfter       Duration `yaml:"expire_after"`
	// EscalateBefore is how long before a hold expires an alert says that
	// it is about to (default 1h, or a quarter of expire_after when shorter).
	EscalateBefore Duration `yaml:"escalate_before"`
	// DenyLists names the lists whose addresses screening refuses outright
	// (deny, not hold) when a critical policy fires on them (default
	// [sanctioned] when such a list is configured).
	DenyLists []string `yaml:"deny_lists"`
}

// Chain is one chain to watch.
type Chain struct {
	Name           string   `yaml:"name"`
	Kind           string   `yaml:"kind"` // ethereum (any EVM chain) | bitcoin
	Network        string   `yaml:"network"`
	RPC            []string `yaml:"rpc"`
	RPCCert        string   `yaml:"rpc_cert"`
	RPCUser        string   `yaml:"rpc_user"`
	RPCPasswordEnv string   `yaml:"rpc_password_env"`
	// RPCEnv names an environment variable holding more node URLs
	// (comma-separated), for URLs that carry an API key or credentials.
	RPCEnv string `yaml:"rpc_env"`
	// RPCPasswordFile is a file holding the RPC password (instead of
	// rpc_password_env).
	RPCPasswordFile string `yaml:"rpc_password_file"`
	// RPCCookieFile is Bitcoin Core's cookie file (user:password, rewritten
	// at each start of the node), instead of rpc_user and a password.
	RPCCookieFile string   `yaml:"rpc_cookie_file"`
	ChainID       uint64   `yaml:"chain_id"` // when set, the node must report this chain id
	Confirmations uint64   `yaml:"confirmations"`
	NativeSymbol  string   `yaml:"native_symbol"` // default ETH / BTC
	NativeUSD     float64  `yaml:"native_usd"`
	Tokens        []Tokens `yaml:"tokens"`
	// PollInterval is how often an http(s) node is asked for its head
	// (default 2s); WebSocket nodes push heads and are polled only as a backstop.
	PollInterval Duration `yaml:"poll_interval"`
	// StartBlock is where a chain with no checkpoint starts (default: the
	// node's head at first start).
	StartBlock *uint64 `yaml:"start_block"`
	// ReorgDepth is how many processed blocks are remembered to detect and
	// undo reorgs (default: confirmations + 64).
	ReorgDepth uint64 `yaml:"reorg_depth"`
	// Explorer is a transaction link template with {tx}, e.g.
	// https://etherscan.io/tx/{tx}
	Explorer string `yaml:"explorer"`
	// StaleAfter: a head that has not advanced for this long pages
	// (default 5m for ethereum, 2h for bitcoin).
	StaleAfter Duration `yaml:"stale_after"`
	// UnreachableAfter: a node that has not answered for this long pages
	// (default 2m).
	UnreachableAfter Duration `yaml:"unreachable_after"`

	rpcPassword Secret
	cookiePath  string
	rpcFromEnv  []string
}

// RPCPassword returns the RPC password read from rpc_password_env or
// rpc_password_file.
func (c Chain) RPCPassword() Secret { return c.rpcPassword }

// RPCCookiePath is rpc_cookie_file resolved against the configuration's
// folder ("" when unset).
func (c Chain) RPCCookiePath() string { return c.cookiePath }

// Endpoints returns the node URLs to try, in order: those of rpc, then those
// of the rpc_env variable. Pass them to a client, never to a logger.
func (c Chain) Endpoints() []string {
	return append(append([]string(nil), c.RPC...), c.rpcFromEnv...)
}

// Tokens is a token contract to follow on an EVM chain.
type Tokens struct {
	Symbol   string  `yaml:"symbol"`
	Address  string  `yaml:"address"`
	Decimals int     `yaml:"decimals"`
	USD      float64 `yaml:"usd"`
}

// Wallet is a watched address, extended public key or contract.
type Wallet struct {
	Name     string `yaml:"name"`
	Chain    string `yaml:"chain"`
	Address  string `yaml:"address"`
	XPub     string `yaml:"xpub"`
	GapLimit int    `yaml:"gap_limit"`
	Birthday uint64 `yaml:"birthday"`
	Script   string `yaml:"script"`
	Role     string `yaml:"role"`
	Owner    string `yaml:"owner"`
	Hours    string `yaml:"hours"`
}

// Policy is one rule. Detector parameters sit on the policy; each detector
// documents the ones it reads and their defaults.
type Policy struct {
	Name     string   `yaml:"name"`
	Detector string   `yaml:"detector"`
	When     string   `yaml:"when"`
	Severity string   `yaml:"severity"`
	Actions  []string `yaml:"actions"`
	Lists    []string `yaml:"lists"`
	// Direction limits the policy to out, in or any movements (detector default).
	Direction string `yaml:"direction"`
	// Chains limits the policy to these chains (default: all).
	Chains []string `yaml:"chains"`
	// Roles limits the policy to wallets with these roles (default: all).
	Roles []string `yaml:"roles"`

	// threshold, velocity and structuring
	USDOver    *float64 `yaml:"usd_over"`
	AmountOver string   `yaml:"amount_over"`
	Asset      string   `yaml:"asset"`
	// velocity and structuring: what is summed or counted together
	// (wallet, owner, chain or all).
	Scope string `yaml:"scope"`
	// Window: velocity's sliding window, structuring's, forwarding's
	// following time, unapproved-outflow's intent lifetime.
	Window Duration `yaml:"window"`
	// unapproved-outflow: accepted relative difference between an intent's
	// amount and the outflow's (0.01 = 1%).
	Tolerance *float64 `yaml:"tolerance"`
	// drain: share of the wallet's balance, in percent, over which one
	// outflow fires.
	PercentOver *float64 `yaml:"percent_over"`
	// structuring: how many outflows just under the threshold fire, and how
	// far under counts as "just" (0.1 = within 10% of it).
	Count  int      `yaml:"count"`
	Margin *float64 `yaml:"margin"`
	// forwarding: how many movements from the watched wallet are followed.
	Hops int `yaml:"hops"`
	// off-hours: working hours for keys whose wallet sets none.
	Hours string `yaml:"hours"`
}

// ListRefresh configures how `keywatch run` keeps its lists current: it
// checks the list files' modification times every Interval and reloads the
// lists and policies when one changed, and it raises a system alert when a
// list file is older than its maximum age. A file's age is measured from its
// "# published: DATE" comment line when it has one (keywatch lists import
// -stamp writes it), else from its modification time.
type ListRefresh struct {
	// Interval between checks of the list files (default 1m; 0s: only on SIGHUP).
	Interval Duration `yaml:"interval"`
	// MaxAge is the age beyond which a list file raises an alert (default:
	// no limit).
	MaxAge Duration `yaml:"max_age"`
	// MaxAgePerList overrides MaxAge for the named lists (0s: no limit).
	MaxAgePerList map[string]Duration `yaml:"max_age_per_list"`
}

// MaxAgeOf is the maximum age of the named list (0: no limit).
func (r ListRefresh) MaxAgeOf(list string) time.Duration {
	if d, ok := r.MaxAgePerList[list]; ok {
		return d.D()
	}
	return r.MaxAge.D()
}

// Alerts configures where alerts go after NATS, and how keywatch watches
// itself.
type Alerts struct {
	Sinks     []Sink    `yaml:"sinks"`
	Heartbeat Heartbeat `yaml:"heartbeat"`
	Silences  Silences  `yaml:"silences"`
}

// Heartbeat configures the dead man's switch: every instance publishes a
// heartbeat on <prefix>.heartbeat.<instance>; every other instance, and
// `keywatch watchdog`, pages when one stops.
type Heartbeat struct {
	// Interval between heartbeats (default 5s).
	Interval Duration `yaml:"interval"`
	// Timeout after which a silent instance pages (default 30s).
	Timeout Duration `yaml:"timeout"`
	// Expect names instances that must be heard from: one that never
	// published a heartbeat pages too (default: only instances seen once).
	Expect []string `yaml:"expect"`
}

// Silences bounds the silences operators may create.
type Silences struct {
	// MaxDuration is the longest silence accepted (default 168h).
	MaxDuration Duration `yaml:"max_duration"`
}

// Sink is one consumer of the alert stream.
type Sink struct {
	Name        string `yaml:"name"`
	Kind        string `yaml:"kind"` // log | pagerduty | slack | webhook
	MinSeverity string `yaml:"min_severity"`
	// URL is the endpoint: the webhook's address, or PagerDuty's Events v2
	// endpoint when it must be overridden. A URL that carries a credential
	// belongs in url_env (webhook) or webhook_url_env (Slack).
	URL           string `yaml:"url"`
	URLEnv        string `yaml:"url_env"`
	RoutingKeyEnv string `yaml:"routing_key_env"`
	WebhookURLEnv string `yaml:"webhook_url_env"`
	SecretEnv     string `yaml:"secret_env"`
	// Match narrows the sink to some chains, wallets, roles or policies
	// (each a list; an alert must match every list given).
	Match SinkMatch `yaml:"match"`
	// Paging sinks receive only alerts whose policy asks to page (actions:
	// [page]); default true for pagerduty, false for the others.
	Paging *bool `yaml:"paging"`
	// GroupWait is how long the first notification of an incident waits for
	// more alerts of the same policy and wallet (default 0s: at once).
	GroupWait Duration `yaml:"group_wait"`
	// GroupWindow is how long after its first alert an incident takes in
	// more alerts of the same policy and wallet; they go out together in one
	// update at the window's end (default 1m).
	GroupWindow Duration `yaml:"group_window"`
	// RepeatInterval sends an incident again while it still fires (default
	// 0: never).
	RepeatInterval Duration `yaml:"repeat_interval"`
	// Timeout bounds one delivery attempt (default 10s).
	Timeout Duration `yaml:"timeout"`
	// MaxDeliver bounds delivery attempts before an alert is dead-lettered
	// (default 10).
	MaxDeliver int `yaml:"max_deliver"`

	routingKey Secret
	webhookURL Secret
	url        Secret
	secret     Secret
}

// SinkMatch narrows a sink to some alerts. Alerts about keywatch itself
// (heartbeats, stale chains, dead letters) are not filtered by chains,
// wallets or roles: a team's sink never misses that keywatch went blind.
type SinkMatch struct {
	Chains   []string `yaml:"chains"`
	Wallets  []string `yaml:"wallets"`
	Roles    []string `yaml:"roles"`
	Policies []string `yaml:"policies"`
}

// RoutingKey is the PagerDuty integration key read from routing_key_env.
func (s Sink) RoutingKey() Secret { return s.routingKey }

// WebhookURL is the Slack incoming webhook URL read from webhook_url_env.
func (s Sink) WebhookURL() Secret { return s.webhookURL }

// Endpoint is the sink's URL: url, or the value of url_env. It is a Secret
// because a URL may carry a credential.
func (s Sink) Endpoint() Secret { return s.url }

// Secret is the HMAC secret read from secret_env.
func (s Sink) Secret() Secret { return s.secret }

// IsPaging reports whether the sink takes only alerts that ask to page.
func (s Sink) IsPaging() bool {
	if s.Paging != nil {
		return *s.Paging
	}
	return s.Kind == "pagerduty"
}

// Load reads and checks a configuration file. On failure the error is an
// Errors value listing every problem found.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, Errors{{File: path, Msg: fmt.Sprintf("cannot read configuration: %v", err)}}
	}
	return Parse(path, data, os.LookupEnv)
}

// Parse reads a configuration from data; file names it in errors, and
// lookupEnv resolves *_env secrets.
func Parse(file string, data []byte, lookupEnv func(string) (string, bool)) (*Config, error) {
	c := &Config{file: file, dir: filepath.Dir(file)}
	d := &decoder{file: file, pos: map[string]yaml.Node{}}
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, Errors{{File: file, Msg: "configuration is empty"}}
		}
		return nil, Errors{yamlSyntaxError(file, err)}
	}
	d.decode(&root, reflectValue(c), "")
	c.pos = d.pos
	c.applyDefaults()
	errs := d.errs
	errs = append(errs, c.validate(lookupEnv)...)
	sortErrors(errs) // decoding and validation errors interleave by line
	if len(errs) > 0 {
		return c, errs
	}
	return c, nil
}

// File is the path the configuration was read from.
func (c *Config) File() string { return c.file }

// Path resolves a path named in the configuration against its folder.
// Absolute paths are kept; a relative path that exists relative to the
// working directory but not to the configuration's folder is taken from the
// working directory.
func (c *Config) Path(p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	rel := filepath.Join(c.dir, p)
	if _, err := os.Stat(rel); err == nil {
		return rel
	}
	if _, err := os.Stat(p); err == nil {
		return p
	}
	return rel
}

// Errorf makes an Error for the field at path (as in "policies[2].lists[0]"),
// with the line and column where that field was written.
func (c *Config) Errorf(path, format string, args ...any) *Error {
	e := &Error{File: c.file, Field: path, Msg: fmt.Sprintf(format, args...)}
	e.Line, e.Column = c.Position(path)
	return e
}

// Position is the line and column where the field at path (or, when it was
// not written, its nearest written parent) is in the file; 0, 0 when none is.
func (c *Config) Position(path string) (line, column int) {
	for p := path; p != ""; p = parent(p) {
		if n, ok := c.pos[p]; ok {
			return n.Line, n.Column
		}
	}
	return 0, 0
}

func parent(p string) string {
	if i := strings.LastIndexAny(p, ".["); i > 0 {
		return p[:i]
	}
	return ""
}

// Chain returns the chain named name.
func (c *Config) Chain(name string) (Chain, bool) {
	for _, ch := range c.Chains {
		if ch.Name == name {
			return ch, true
		}
	}
	return Chain{}, false
}

// Wallet returns the wallet named name.
func (c *Config) Wallet(name string) (Wallet, bool) {
	for _, w := range c.Wallets {
		if w.Name == name {
			return w, true
		}
	}
	return Wallet{}, false
}

// Explorers maps each chain with an explorer template to it.
func (c *Config) Explorers() map[string]string {
	m := map[string]string{}
	for _, ch := range c.Chains {
		if ch.Explorer != "" {
			m[ch.Name] = ch.Explorer
		}
	}
	return m
}

// LogValue keeps secrets out of logs should a Config ever be logged.
func (c *Config) LogValue() slog.Value {
	return slog.GroupValue(slog.String("file", c.file), slog.Int("chains", len(c.Chains)),
		slog.Int("wallets", len(c.Wallets)), slog.Int("policies", len(c.Policies)))
}
