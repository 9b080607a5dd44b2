package config

import (
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // owners' time zones resolve on machines without tzdata

	"github.com/ethereum/go-ethereum/common"
	"github.com/keywatch/keywatch/alertmodel"
	"gopkg.in/yaml.v3"
)

// Secret holds a credential read from the environment. It prints as
// [redacted] through fmt (every verb), slog and JSON; Reveal returns the
// value. The value sits behind a pointer so that printing a struct that holds
// a Secret in an unexported field (fmt does not call methods there) shows an
// address, not the credential.
type Secret struct{ v *string }

// NewSecret wraps a credential.
func NewSecret(v string) Secret {
	if v == "" {
		return Secret{}
	}
	return Secret{&v}
}

// Reveal returns the credential itself: pass it to the client that needs it,
// never to a logger.
func (s Secret) Reveal() string {
	if s.v == nil {
		return ""
	}
	return *s.v
}

// IsZero reports whether no credential is set.
func (s Secret) IsZero() bool { return s.Reveal() == "" }

func (s Secret) String() string {
	if s.IsZero() {
		return ""
	}
	return "[redacted]"
}

// Format prints the redacted form whatever the verb (%#v, %x and %d
// included).
func (s Secret) Format(f fmt.State, verb rune) {
	switch verb {
	case 'v', 's', 'q', 'x', 'X':
		fmt.Fprintf(f, fmt.FormatString(f, verb), s.String())
	default:
		fmt.Fprintf(f, "%%!%c(config.Secret=%s)", verb, s.String())
	}
}

// LogValue redacts the secret in structured logs.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalJSON redacts the secret in JSON.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(strconv.Quote(s.String())), nil }

var (
	nameRe      = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)
	subjectRe   = regexp.MustCompile(`^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$`)
	hexAddrRe   = regexp.MustCompile(`^0x[0-9a-fA-F]{40}$`)
	sha256Re    = regexp.MustCompile(`^[0-9a-f]{64}$`)
	hoursRe     = regexp.MustCompile(`^(?:(\S+)\s+)?(\d{2}):(\d{2})-(\d{2}):(\d{2})\s+(\S+)$`)
	walletRoles = []string{"hot", "warm", "cold", "employee-key", "contract", "honeytoken"}
	// bitcoinNetworks and bitcoinScripts are what chains/bitcoin knows; it
	// checks addresses and keys against the network (see daemon.CheckBitcoin).
	bitcoinNetworks = []string{"mainnet", "testnet", "regtest", "signet", "simnet"}
	bitcoinScripts  = []string{"p2pkh", "p2sh-p2wpkh", "p2wpkh", "p2tr"}
	tokenRoles      = []string{"viewer", "operator", "approver", "admin", "service"}
)

// WalletRoles lists the roles a wallet may have.
func WalletRoles() []string { return append([]string(nil), walletRoles...) }

func reflectValue(c *Config) reflect.Value { return reflect.ValueOf(c).Elem() }

// maxGapLimit bounds an xpub wallet's gap limit: each unused address costs a
// derivation and a slot in the node's transaction filter.
const maxGapLimit = 1000

var yamlLineRe = regexp.MustCompile(`line (\d+): (.*)`)

// yamlParserProblems are the problems yaml.v3's parser (as opposed to its
// scanner) reports; it gives their line counting from 0, not from 1.
var yamlParserProblems = []string{"did not find expected ", "found duplicate %", "found incompatible YAML document", "found undefined tag handle"}

func yamlSyntaxError(file string, err error) *Error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if m := yamlLineRe.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		for _, p := range yamlParserProblems {
			if strings.HasPrefix(m[2], p) {
				line++
				break
			}
		}
		return &Error{File: file, Line: line, Msg: "YAML syntax: " + m[2]}
	}
	return &Error{File: file, Msg: "YAML syntax: " + msg}
}

// isSet reports whether the field at path was written with a value (a key
// left empty, or ~, counts as absent and takes the default).
func (c *Config) isSet(path string) bool {
	n, ok := c.pos[path]
	return ok && !(n.Kind == yaml.ScalarNode && n.Tag == "!!null")
}

func (c *Config) applyDefaults() {
	if c.Store.Prefix == "" {
		c.Store.Prefix = "keywatch:"
	}
	if c.NATS.SubjectPrefix == "" {
		c.NATS.SubjectPrefix = "keywatch"
	}
	if c.NATS.URL == "" && c.NATS.Embedded {
		c.NATS.URL = "nats://127.0.0.1:4222"
	}
	if c.NATS.DuplicateWindow == 0 {
		c.NATS.DuplicateWindow = Duration(24 * time.Hour)
	}
	if c.NATS.MaxAge == 0 {
		c.NATS.MaxAge = Duration(30 * 24 * time.Hour)
	}
	if c.API.Listen == "" {
		c.API.Listen = "127.0.0.1:8080"
	}
	if !c.isSet("holds.approvals_required") {
		c.Holds.ApprovalsRequired = 2
	}
	if c.Holds.ExpireAfter == 0 {
		c.Holds.ExpireAfter = Duration(24 * time.Hour)
	}
	if c.Holds.EscalateBefore == 0 && c.Holds.ExpireAfter > 0 {
		c.Holds.EscalateBefore = min(Duration(time.Hour), c.Holds.ExpireAfter/4)
	}
	if !c.isSet("holds.deny_lists") {
		if _, ok := c.Lists["sanctioned"]; ok {
			c.Holds.DenyLists = []string{"sanctioned"}
		}
	}
	c.walletDefaults()
	hb := &c.Alerts.Heartbeat
	if hb.Interval == 0 {
		hb.Interval = Duration(5 * time.Second)
	}
	if hb.Timeout == 0 {
		hb.Timeout = Duration(30 * time.Second)
	}
	if c.Alerts.Silences.MaxDuration == 0 {
		c.Alerts.Silences.MaxDuration = Duration(7 * 24 * time.Hour)
	}
	for i := range c.Alerts.Sinks {
		s := &c.Alerts.Sinks[i]
		if !c.isSet(fmt.Sprintf("alerts.sinks[%d].group_window", i)) {
			s.GroupWindow = Duration(time.Minute)
		}
		if s.Timeout == 0 {
			s.Timeout = Duration(10 * time.Second)
		}
		if s.MaxDeliver == 0 {
			s.MaxDeliver = 10
		}
	}
	if !c.isSet("list_refresh.interval") {
		c.ListRefresh.Interval = Duration(time.Minute)
	}
	for i := range c.Chains {
		ch := &c.Chains[i]
		p := fmt.Sprintf("chains[%d]", i)
		switch ch.Kind {
		case "ethereum":
			if !c.isSet(p + ".confirmations") {
				ch.Confirmations = 12
			}
			if ch.NativeSymbol == "" {
				ch.NativeSymbol = "ETH"
			}
		case "bitcoin":
			if !c.isSet(p + ".confirmations") {
				ch.Confirmations = 2
			}
			if ch.NativeSymbol == "" {
				ch.NativeSymbol = "BTC"
			}
		}
		if ch.StaleAfter == 0 {
			ch.StaleAfter = Duration(5 * time.Minute)
			if ch.Kind == "bitcoin" {
				ch.StaleAfter = Duration(2 * time.Hour)
			}
		}
		if ch.UnreachableAfter == 0 {
			ch.UnreachableAfter = Duration(2 * time.Minute)
		}
		if ch.PollInterval == 0 {
			ch.PollInterval = Duration(2 * time.Second)
		}
		if ch.ReorgDepth == 0 {
			ch.ReorgDepth = ch.Confirmations + 64
		}
		for j := range ch.Tokens {
			if !c.isSet(fmt.Sprintf("%s.tokens[%d].decimals", p, j)) {
				ch.Tokens[j].Decimals = 18
			}
		}
	}
}

func (c *Config) walletDefaults() {
	for i := range c.Wallets {
		w := &c.Wallets[i]
		if w.XPub != "" && !c.isSet(fmt.Sprintf("wallets[%d].gap_limit", i)) {
			w.GapLimit = 20
		}
	}
}

func (c *Config) validate(lookupEnv func(string) (string, bool)) Errors {
	var errs Errors
	add := func(path, format string, args ...any) { errs = append(errs, c.Errorf(path, format, args...)) }
	env := func(path, name string) Secret {
		if name == "" {
			return Secret{}
		}
		v, ok := lookupEnv(name)
		if !ok || v == "" {
			add(path, "environment variable %s is not set", name)
		}
		return NewSecret(v)
	}

	// store
	s := &c.Store
	switch {
	case s.Memory && (s.Redis != "" || s.RedisEnv != ""):
		add("store", "choose one store: redis for shared state, or memory: true for a single process, not both")
	case s.Redis != "" && s.RedisEnv != "":
		add("store.redis_env", "set redis or redis_env, not both")
	case s.Redis != "":
		s.redisURL = NewSecret(s.Redis)
		if u, err := url.Parse(s.Redis); err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") {
			add("store.redis", "want a redis:// or rediss:// URL")
		} else if _, has := u.User.Password(); has {
			add("store.redis", "the URL carries a password: put the whole URL in an environment variable and name it with redis_env")
		}
	case s.RedisEnv != "":
		s.redisURL = env("store.redis_env", s.RedisEnv)
		if v := s.redisURL.Reveal(); v != "" {
			if u, err := url.Parse(v); err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") {
				add("store.redis_env", "environment variable %s does not hold a redis:// or rediss:// URL", s.RedisEnv)
			}
		}
	case !s.Memory:
		add("store", "no store: set redis (or redis_env) for shared state, or memory: true to run a single process whose state is lost on exit")
	}

	// nats
	n := &c.NATS
	if !n.Embedded && n.URL == "" {
		add("nats.url", "required (or embedded: true to run NATS in-process)")
	}
	if n.URL != "" {
		if u, err := url.Parse(n.URL); err != nil || (u.Scheme != "nats" && u.Scheme != "tls") || u.Host == "" {
			add("nats.url", "want a nats:// or tls:// URL with a host")
		} else if _, has := u.User.Password(); has {
			add("nats.url", "the URL carries a password: use creds_file instead")
		}
	}
	if n.Embedded && n.DataDir == "" {
		add("nats.data_dir", "required with embedded: true (JetStream keeps alerts on disk there)")
	}
	if !subjectRe.MatchString(n.SubjectPrefix) {
		add("nats.subject_prefix", "%q is not a NATS subject prefix (letters, digits, - and _, separated by dots)", n.SubjectPrefix)
	}

	// api
	if _, _, err := splitHostPort(c.API.Listen); err != nil {
		add("api.listen", "want host:port, got %q", c.API.Listen)
	}
	tokNames := map[string]bool{}
	for i, t := range c.API.Tokens {
		p := fmt.Sprintf("api.tokens[%d]", i)
		if t.Name == "" {
			add(p+".name", "required")
		} else if tokNames[t.Name] {
			add(p+".name", "token %q is defined twice", t.Name)
		}
		tokNames[t.Name] = true
		if !sha256Re.MatchString(t.SHA256) {
			add(p+".sha256", "want the sha256 of the token as 64 lowercase hex digits (never the token itself)")
		}
		if len(t.Roles) == 0 {
			add(p+".roles", "required: one or more of %s", strings.Join(tokenRoles, ", "))
		}
		for j, r := range t.Roles {
			if !slices.Contains(tokenRoles, r) {
				add(fmt.Sprintf("%s.roles[%d]", p, j), "unknown role %q (want one of %s)", r, strings.Join(tokenRoles, ", "))
			}
		}
	}

	// holds
	if c.Holds.ApprovalsRequired < 1 {
		add("holds.approvals_required", "must be at least 1")
	}
	if c.Holds.ExpireAfter < 0 {
		add("holds.expire_after", "must be positive")
	}
	if c.Holds.EscalateBefore < 0 || (c.Holds.ExpireAfter > 0 && c.Holds.EscalateBefore >= c.Holds.ExpireAfter) {
		add("holds.escalate_before", "must be positive and shorter than expire_after (%s)", c.Holds.ExpireAfter)
	}
	for i, name := range c.Holds.DenyLists {
		if _, ok := c.Lists[name]; !ok {
			add(fmt.Sprintf("holds.deny_lists[%d]", i), "no list named %q under lists:", name)
		}
	}

	// chains
	chainKinds := map[string]string{}
	for i := range c.Chains {
		ch := &c.Chains[i]
		p := fmt.Sprintf("chains[%d]", i)
		switch {
		case ch.Name == "":
			add(p+".name", "required")
		case !nameRe.MatchString(ch.Name):
			add(p+".name", "%q: use lowercase letters, digits, - and _ (it becomes part of NATS subjects)", ch.Name)
		case chainKinds[ch.Name] != "":
			add(p+".name", "chain %q is defined twice", ch.Name)
		}
		if ch.Name != "" {
			chainKinds[ch.Name] = ch.Kind
		}
		switch ch.Kind {
		case "ethereum":
			if ch.Network != "" {
				add(p+".network", "only for bitcoin chains (an EVM chain is identified by chain_id)")
			}
			if ch.RPCCert != "" || ch.RPCUser != "" || ch.RPCPasswordFile != "" || ch.RPCCookieFile != "" {
				add(p, "rpc_cert, rpc_user, rpc_password_file and rpc_cookie_file are for bitcoin chains (put EVM node credentials in a URL held by the environment variable named by rpc_env)")
			}
			for j, tk := range ch.Tokens {
				tp := fmt.Sprintf("%s.tokens[%d]", p, j)
				if tk.Symbol == "" {
					add(tp+".symbol", "required")
				}
				if err := CheckEVMAddress(tk.Address); err != nil {
					add(tp+".address", "%v", err)
				}
				if tk.Decimals < 0 || tk.Decimals > 77 {
					add(tp+".decimals", "must be between 0 and 77")
				}
				if tk.USD < 0 {
					add(tp+".usd", "must not be negative")
				}
			}
		case "bitcoin":
			switch {
			case ch.Network == "":
				add(p+".network", "required: one of %s", strings.Join(bitcoinNetworks, ", "))
			case !slices.Contains(bitcoinNetworks, ch.Network):
				add(p+".network", "unknown network %q (want one of %s)", ch.Network, strings.Join(bitcoinNetworks, ", "))
			}
			if len(ch.Tokens) > 0 {
				add(p+".tokens", "only for EVM chains (a bitcoin chain moves BTC only)")
			}
			if ch.ChainID != 0 {
				add(p+".chain_id", "only for EVM chains (a bitcoin chain is identified by network)")
			}
			if ch.RPCCookieFile != "" {
				if ch.RPCUser != "" || ch.RPCPasswordEnv != "" || ch.RPCPasswordFile != "" {
					add(p+".rpc_cookie_file", "set rpc_cookie_file or rpc_user with a password, not both")
				}
				ch.cookiePath = c.Path(ch.RPCCookieFile)
			} else {
				if ch.RPCUser == "" {
					add(p+".rpc_user", "required: btcd and Bitcoin Core need RPC credentials (or rpc_cookie_file, Bitcoin Core's cookie)")
				}
				switch {
				case ch.RPCPasswordEnv == "" && ch.RPCPasswordFile == "":
					add(p+".rpc_password_env", "required: the environment variable holding the RPC password (or rpc_password_file)")
				case ch.RPCPasswordEnv != "" && ch.RPCPasswordFile != "":
					add(p+".rpc_password_file", "set rpc_password_env or rpc_password_file, not both")
				}
			}
			if ch.RPCCert != "" {
				for j, r := range ch.RPC {
					if strings.HasPrefix(r, "http://") || strings.HasPrefix(r, "ws://") {
						add(fmt.Sprintf("%s.rpc[%d]", p, j), "rpc_cert is set, but this URL does not use TLS (want https:// or wss://)")
					}
				}
			}
		case "":
			add(p+".kind", "required: ethereum (any EVM chain) or bitcoin")
		default:
			add(p+".kind", "unknown kind %q (want ethereum or bitcoin)", ch.Kind)
		}
		if len(ch.RPC) == 0 && ch.RPCEnv == "" {
			add(p+".rpc", "required: one or more node URLs (or rpc_env naming an environment variable that holds them)")
		}
		nodeURL := func(r string) (ok bool, password bool) {
			u, err := url.Parse(r)
			if err != nil || u.Host == "" || !slices.Contains([]string{"http", "https", "ws", "wss"}, u.Scheme) {
				return false, false
			}
			_, password = u.User.Password()
			return true, password
		}
		for j, r := range ch.RPC {
			switch ok, password := nodeURL(r); {
			case !ok:
				add(fmt.Sprintf("%s.rpc[%d]", p, j), "want an http(s):// or ws(s):// URL")
			case password:
				add(fmt.Sprintf("%s.rpc[%d]", p, j), "the URL carries a password: put it in an environment variable and name it with rpc_env")
			}
		}
		if ch.RPCEnv != "" {
			v := env(p+".rpc_env", ch.RPCEnv).Reveal()
			for j, r := range strings.Split(v, ",") {
				if r = strings.TrimSpace(r); r == "" {
					continue
				}
				if ok, _ := nodeURL(r); !ok {
					// The value may hold a key: name the variable, never the value.
					add(p+".rpc_env", "URL %d of environment variable %s is not an http(s):// or ws(s):// URL", j+1, ch.RPCEnv)
					continue
				}
				ch.rpcFromEnv = append(ch.rpcFromEnv, r)
			}
		}
		if ch.NativeUSD < 0 {
			add(p+".native_usd", "must not be negative")
		}
		if ch.ReorgDepth < ch.Confirmations {
			add(p+".reorg_depth", "must be at least confirmations (%d)", ch.Confirmations)
		}
		ch.rpcPassword = env(p+".rpc_password_env", ch.RPCPasswordEnv)
		if ch.RPCPasswordFile != "" && ch.RPCPasswordEnv == "" {
			b, err := os.ReadFile(c.Path(ch.RPCPasswordFile))
			switch {
			case err != nil:
				add(p+".rpc_password_file", "cannot read the password file: %v", err)
			case strings.TrimSpace(string(b)) == "":
				add(p+".rpc_password_file", "the password file %s is empty", ch.RPCPasswordFile)
			default:
				ch.rpcPassword = NewSecret(strings.TrimSpace(string(b)))
			}
		}
		if ch.Explorer != "" && !strings.Contains(ch.Explorer, "{tx}") {
			add(p+".explorer", "must contain {tx}, e.g. https://etherscan.io/tx/{tx}")
		} else if u, err := url.Parse(strings.ReplaceAll(ch.Explorer, "{tx}", "x")); ch.Explorer != "" && (err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "") {
			add(p+".explorer", "want an http(s):// URL template with {tx}")
		}
		if ch.StaleAfter < Duration(time.Second) {
			add(p+".stale_after", "must be at least 1s")
		}
		if ch.UnreachableAfter < Duration(time.Second) {
			add(p+".unreachable_after", "must be at least 1s")
		}
	}

	// wallets
	walletNames := map[string]bool{}
	type chainAddr struct{ chain, addr string }
	addrs := map[chainAddr]string{}
	for i, w := range c.Wallets {
		p := fmt.Sprintf("wallets[%d]", i)
		switch {
		case w.Name == "":
			add(p+".name", "required")
		case walletNames[w.Name]:
			add(p+".name", "wallet %q is defined twice", w.Name)
		}
		walletNames[w.Name] = true
		kind, ok := chainKinds[w.Chain]
		switch {
		case w.Chain == "":
			add(p+".chain", "required")
		case !ok:
			add(p+".chain", "no chain named %q (chains: %s)", w.Chain, strings.Join(c.chainNames(), ", "))
		}
		if w.Role == "" {
			add(p+".role", "required: one of %s", strings.Join(walletRoles, ", "))
		} else if !slices.Contains(walletRoles, w.Role) {
			add(p+".role", "unknown role %q (want one of %s)", w.Role, strings.Join(walletRoles, ", "))
		}
		if kind == "ethereum" {
			if w.XPub != "" || w.GapLimit != 0 || w.Birthday != 0 || w.Script != "" {
				add(p, "xpub, gap_limit, birthday and script are for bitcoin wallets")
			}
			if err := CheckEVMAddress(w.Address); err != nil {
				add(p+".address", "%v", err)
			} else {
				k := chainAddr{w.Chain, strings.ToLower(w.Address)}
				if other, dup := addrs[k]; dup {
					add(p+".address", "same address as wallet %q", other)
				}
				addrs[k] = w.Name
			}
		}
		if kind == "bitcoin" {
			switch {
			case w.Address == "" && w.XPub == "":
				add(p, "set address (one address) or xpub (an account-level extended public key)")
			case w.Address != "" && w.XPub != "":
				add(p+".xpub", "set address or xpub, not both")
			case w.Address != "":
				if w.GapLimit != 0 || w.Script != "" {
					add(p, "gap_limit and script are for xpub wallets")
				}
				k := chainAddr{w.Chain, w.Address}
				if other, dup := addrs[k]; dup {
					add(p+".address", "same address as wallet %q", other)
				}
				addrs[k] = w.Name
			default:
				if w.GapLimit < 1 || w.GapLimit > maxGapLimit {
					add(p+".gap_limit", "must be between 1 and %d", maxGapLimit)
				}
				if w.Script != "" && !slices.Contains(bitcoinScripts, w.Script) {
					add(p+".script", "unknown script %q (want one of %s)", w.Script, strings.Join(bitcoinScripts, ", "))
				}
				k := chainAddr{w.Chain, w.XPub}
				if other, dup := addrs[k]; dup {
					add(p+".xpub", "same key as wallet %q", other)
				}
				addrs[k] = w.Name
			}
		}
		if w.Hours != "" {
			if _, err := ParseHours(w.Hours); err != nil {
				add(p+".hours", "%v", err)
			}
		}
	}

	// lists
	for name, files := range c.Lists {
		p := "lists." + name
		if !nameRe.MatchString(name) {
			add(p, "list name %q: use lowercase letters, digits, - and _", name)
		}
		if len(files) == 0 {
			add(p, "names no files")
		}
	}
	lr := c.ListRefresh
	if lr.Interval < 0 {
		add("list_refresh.interval", "must not be negative")
	} else if lr.Interval > 0 && lr.Interval.D() < 100*time.Millisecond {
		add("list_refresh.interval", "%s is too short: at least 100ms (0s checks only on SIGHUP)", lr.Interval)
	}
	if lr.MaxAge < 0 {
		add("list_refresh.max_age", "must not be negative")
	}
	for name, d := range lr.MaxAgePerList {
		p := "list_refresh.max_age_per_list." + name
		if _, ok := c.Lists[name]; !ok {
			add(p, "no list named %q under lists:%s", name, suggestList(name, c.Lists))
		}
		if d < 0 {
			add(p, "must not be negative")
		}
	}

	// policies: names here; detectors, lists and expressions are checked by
	// the policy engine when it builds them.
	polNames := map[string]bool{}
	for i, pol := range c.Policies {
		p := fmt.Sprintf("policies[%d]", i)
		switch {
		case pol.Name == "":
			add(p+".name", "required")
		case !nameRe.MatchString(pol.Name):
			add(p+".name", "%q: use lowercase letters, digits, - and _ (it becomes part of alert ids)", pol.Name)
		case polNames[pol.Name]:
			add(p+".name", "policy %q is defined twice", pol.Name)
		}
		polNames[pol.Name] = true
		for j, ch := range pol.Chains {
			if _, ok := chainKinds[ch]; !ok {
				add(fmt.Sprintf("%s.chains[%d]", p, j), "no chain named %q", ch)
			}
		}
		for j, r := range pol.Roles {
			if !slices.Contains(walletRoles, r) {
				add(fmt.Sprintf("%s.roles[%d]", p, j), "unknown role %q (want one of %s)", r, strings.Join(walletRoles, ", "))
			}
		}
	}

	// sinks: names, secrets and routing here; what each kind requires is
	// checked by the package of that kind when the daemon builds it.
	hb := c.Alerts.Heartbeat
	if hb.Interval < Duration(100*time.Millisecond) {
		add("alerts.heartbeat.interval", "must be at least 100ms")
	}
	if hb.Timeout < 2*hb.Interval {
		add("alerts.heartbeat.timeout", "must be at least twice the interval (%s), or every missed beat pages", hb.Interval)
	}
	for i, name := range hb.Expect {
		if !nameRe.MatchString(name) {
			add(fmt.Sprintf("alerts.heartbeat.expect[%d]", i), "%q is not an instance name (lowercase letters, digits, - and _)", name)
		}
	}
	if c.Alerts.Silences.MaxDuration < 0 {
		add("alerts.silences.max_duration", "must be positive")
	}
	sinkNames := map[string]bool{}
	for i := range c.Alerts.Sinks {
		s := &c.Alerts.Sinks[i]
		p := fmt.Sprintf("alerts.sinks[%d]", i)
		who := fmt.Sprintf("sink %q: ", s.Name)
		if s.Name == "" {
			who = ""
		}
		switch {
		case s.Name == "":
			add(p+".name", "required")
		case !nameRe.MatchString(s.Name):
			add(p+".name", "%q: use lowercase letters, digits, - and _ (it names a durable consumer)", s.Name)
		case sinkNames[s.Name]:
			add(p+".name", "sink %q is defined twice", s.Name)
		}
		sinkNames[s.Name] = true
		secret := func(field, name string) Secret {
			if name == "" {
				return Secret{}
			}
			v, ok := lookupEnv(name)
			if !ok || v == "" {
				add(p+"."+field, "%senvironment variable %s is not set", who, name)
			}
			return NewSecret(v)
		}
		s.routingKey = secret("routing_key_env", s.RoutingKeyEnv)
		s.webhookURL = secret("webhook_url_env", s.WebhookURLEnv)
		s.secret = secret("secret_env", s.SecretEnv)
		switch {
		case s.URL != "" && s.URLEnv != "":
			add(p+".url_env", "%sset url or url_env, not both", who)
		case s.URLEnv != "":
			s.url = secret("url_env", s.URLEnv)
		case s.URL != "":
			s.url = NewSecret(s.URL)
		}
		for _, d := range []struct {
			field string
			v     Duration
		}{{"group_wait", s.GroupWait}, {"group_window", s.GroupWindow}, {"repeat_interval", s.RepeatInterval}, {"timeout", s.Timeout}} {
			if d.v < 0 {
				add(p+"."+d.field, "%smust not be negative", who)
			}
		}
		if s.Timeout > Duration(5*time.Minute) {
			add(p+".timeout", "%sat most 5m: a sink that hangs longer holds up its own alerts", who)
		}
		if s.MaxDeliver < 1 {
			add(p+".max_deliver", "%smust be at least 1", who)
		}
		if s.RepeatInterval > 0 && s.RepeatInterval < Duration(time.Minute) {
			add(p+".repeat_interval", "%sat least 1m (or 0 for never)", who)
		}
		m := s.Match
		for j, ch := range m.Chains {
			if _, ok := chainKinds[ch]; !ok {
				add(fmt.Sprintf("%s.match.chains[%d]", p, j), "%sno chain named %q", who, ch)
			}
		}
		for j, w := range m.Wallets {
			if !walletNames[w] {
				add(fmt.Sprintf("%s.match.wallets[%d]", p, j), "%sno wallet named %q", who, w)
			}
		}
		for j, r := range m.Roles {
			if !slices.Contains(walletRoles, r) {
				add(fmt.Sprintf("%s.match.roles[%d]", p, j), "%sunknown role %q (want one of %s)", who, r, strings.Join(walletRoles, ", "))
			}
		}
		for j, pol := range m.Policies {
			if !polNames[pol] && !slices.Contains(alertmodel.SystemKinds(), pol) {
				add(fmt.Sprintf("%s.match.policies[%d]", p, j), "%sno policy named %q (policies, or keywatch's own: %s)", who, pol, strings.Join(alertmodel.SystemKinds(), ", "))
			}
		}
	}
	sortErrors(errs)
	return errs
}

func (c *Config) chainNames() []string {
	var names []string
	for _, ch := range c.Chains {
		names = append(names, ch.Name)
	}
	return names
}

// CheckEVMAddress accepts 0x-prefixed 20-byte hex; mixed-case input must
// carry a valid EIP-55 checksum (a wrong one is usually a typo).
func CheckEVMAddress(s string) error {
	if s == "" {
		return fmt.Errorf("required")
	}
	if !hexAddrRe.MatchString(s) {
		return fmt.Errorf("%q is not an address (want 0x and 40 hex digits)", s)
	}
	body := s[2:]
	if body != strings.ToLower(body) && body != strings.ToUpper(body) {
		if common.HexToAddress(s).Hex() != s {
			return fmt.Errorf("%q has a bad EIP-55 checksum (a typo?); write it in lowercase to skip the check", s)
		}
	}
	return nil
}

// Hours is an owner's working time: a span of the day on some days of the
// week, in their time zone.
type Hours struct {
	Start, End time.Duration // offsets from local midnight
	Loc        *time.Location
	// Days are the working days; a span past midnight belongs to the day
	// it starts on. All seven when the hours name none.
	Days [7]bool // indexed by time.Weekday
}

var weekdays = map[string]time.Weekday{
	"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday,
	"thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday,
}

const hoursForm = "want [DAYS] HH:MM-HH:MM and a time zone, e.g. 09:00-18:00 America/New_York or Mon-Fri 09:00-18:00 America/New_York"

// ParseHours reads "09:00-18:00 America/New_York", optionally preceded by
// the working days: "Mon-Fri 09:00-18:00 Europe/Berlin",
// "Sun-Thu 08:00-17:00 Asia/Jerusalem", "Mon,Wed,Fri 10:00-14:00 UTC".
func ParseHours(s string) (Hours, error) {
	m := hoursRe.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return Hours{}, fmt.Errorf("%q: %s", s, hoursForm)
	}
	num := func(i int) int { v, _ := strconv.Atoi(m[i]); return v }
	if num(2) > 23 || num(4) > 24 || num(3) > 59 || num(5) > 59 || (num(4) == 24 && num(5) != 0) {
		return Hours{}, fmt.Errorf("%q: hours run 00:00 to 24:00", s)
	}
	loc, err := time.LoadLocation(m[6])
	if err != nil {
		return Hours{}, fmt.Errorf("%q: unknown time zone %q", s, m[6])
	}
	h := Hours{
		Start: time.Duration(num(2))*time.Hour + time.Duration(num(3))*time.Minute,
		End:   time.Duration(num(4))*time.Hour + time.Duration(num(5))*time.Minute,
		Loc:   loc,
	}
	if h.Start == h.End {
		return Hours{}, fmt.Errorf("%q: start and end are the same", s)
	}
	if m[1] == "" {
		h.Days = [7]bool{true, true, true, true, true, true, true}
		return h, nil
	}
	for _, part := range strings.Split(m[1], ",") {
		from, to, isRange := strings.Cut(part, "-")
		a, ok := weekdays[strings.ToLower(from)]
		b := a
		if ok && isRange {
			b, ok = weekdays[strings.ToLower(to)]
		}
		if !ok {
			return Hours{}, fmt.Errorf("%q: %q is not a day or a range of days (Mon, Tue, Wed, Thu, Fri, Sat, Sun; Mon-Fri)", s, part)
		}
		for d := a; ; d = (d + 1) % 7 { // a range may wrap: Fri-Mon
			h.Days[d] = true
			if d == b {
				break
			}
		}
	}
	return h, nil
}

// String writes the hours as ParseHours reads them.
func (h Hours) String() string {
	hm := func(d time.Duration) string { return fmt.Sprintf("%02d:%02d", int(d.Hours()), int(d.Minutes())%60) }
	out := hm(h.Start) + "-" + hm(h.End) + " " + h.Loc.String()
	if days := h.days(); days != "" {
		out = days + " " + out
	}
	return out
}

// days writes the working days ("Mon-Fri", "Mon,Wed,Fri"), or "" for all
// seven.
func (h Hours) days() string {
	all := true
	for _, on := range h.Days {
		all = all && on
	}
	if all {
		return ""
	}
	// Runs of consecutive days, read from Monday, or from the start of a
	// run that goes through Sunday into Monday (Sun-Thu, Fri-Mon).
	first := time.Monday
	for i := 0; i < 6 && h.Days[(first+6)%7]; i++ {
		first = (first + 6) % 7
	}
	day := func(k int) time.Weekday { return (first + time.Weekday(k)) % 7 }
	name := func(k int) string { return day(k).String()[:3] }
	var parts []string
	for i := 0; i < 7; {
		if !h.Days[day(i)] {
			i++
			continue
		}
		j := i
		for j+1 < 7 && h.Days[day(j+1)] {
			j++
		}
		switch {
		case j == i:
			parts = append(parts, name(i))
		case j == i+1:
			parts = append(parts, name(i), name(j))
		default:
			parts = append(parts, name(i)+"-"+name(j))
		}
		i = j + 1
	}
	return strings.Join(parts, ",")
}

// Contains reports whether t falls inside the working hours. A span may run
// past midnight (22:00-06:00); its hours after midnight belong to the day it
// started on.
func (h Hours) Contains(t time.Time) bool {
	lt := t.In(h.Loc)
	since := time.Duration(lt.Hour())*time.Hour + time.Duration(lt.Minute())*time.Minute + time.Duration(lt.Second())*time.Second
	today, yesterday := h.Days[lt.Weekday()], h.Days[(lt.Weekday()+6)%7]
	if h.Start < h.End {
		return today && since >= h.Start && since < h.End
	}
	return (today && since >= h.Start) || (yesterday && since < h.End)
}

func splitHostPort(s string) (string, int, error) {
	i := strings.LastIndex(s, ":")
	if i < 0 {
		return "", 0, fmt.Errorf("no port")
	}
	port, err := strconv.Atoi(s[i+1:])
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("bad port")
	}
	return s[:i], port, nil
}

// sortErrors orders errors by line so the report reads top to bottom.
func sortErrors(errs Errors) {
	sort.SliceStable(errs, func(i, j int) bool { return errs[i].Line < errs[j].Line })
}

// suggestList names a configured list close to an unknown name.
func suggestList(name string, lists map[string][]string) string {
	m := make(map[string]int, len(lists))
	for n := range lists {
		m[n] = 0
	}
	return suggest(name, m)
}
