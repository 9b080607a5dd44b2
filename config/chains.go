package config

import (
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"
)

// bitcoinNetworks are the networks chains/bitcoin knows; it checks addresses
// and keys against the network (see daemon.CheckBitcoin).
var bitcoinNetworks = []string{"mainnet", "testnet", "regtest", "signet", "simnet"}

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
	// Traces is how an EVM chain's internal value movements are read:
	// auto (default: debug_traceBlockByHash with callTracer, else
	// trace_block, else balance), debug, parity, balance (each watched
	// contract's balance at every block; an unexplained fall is an
	// outflow to "unknown") or off.
	Traces string `yaml:"traces"`
	// SafeTxService is the base URL of a Safe Transaction Service (its
	// public REST API) whose queue of each watched Safe is judged before
	// execution.
	SafeTxService string `yaml:"safe_tx_service"`
	// SafeTxServiceKeyEnv names an environment variable holding the
	// service's API key, sent as a bearer token (the hosted service asks
	// for one).
	SafeTxServiceKeyEnv string `yaml:"safe_tx_service_key_env"`

	rpcPassword Secret
	cookiePath  string
	rpcFromEnv  []string

	safeTxServiceKey Secret // read from safe_tx_service_key_env
}

// RPCPassword returns the RPC password read from rpc_password_env or
// rpc_password_file.
func (c Chain) RPCPassword() Secret { return c.rpcPassword }

// SafeTxServiceKey returns the API key read from safe_tx_service_key_env.
func (c Chain) SafeTxServiceKey() Secret { return c.safeTxServiceKey }

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

// validateChains fills in each chain's defaults and checks it; a chain's name
// must be unique.
func validateChains(v *checker, chains []Chain) {
	kinds := map[string]string{} // name -> kind of the chains seen so far
	for i := range chains {
		ch := &chains[i]
		p := fmt.Sprintf("chains[%d]", i)
		ch.setDefaults(v, p)
		v.name(p+".name", "chain", ch.Name, "it becomes part of NATS subjects", kinds[ch.Name] != "")
		if ch.Name != "" {
			kinds[ch.Name] = ch.Kind
		}
		ch.check(v, p)
	}
}

// setDefaults fills in what the kind implies (confirmations, native symbol,
// how long a head may stall) and the polling and reorg defaults; p is the
// chain's path.
func (ch *Chain) setDefaults(v *checker, p string) {
	switch ch.Kind {
	case "ethereum":
		if !v.isSet(p + ".confirmations") {
			ch.Confirmations = 12
		}
		if ch.NativeSymbol == "" {
			ch.NativeSymbol = "ETH"
		}
	case "bitcoin":
		if !v.isSet(p + ".confirmations") {
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
		if !v.isSet(fmt.Sprintf("%s.tokens[%d].decimals", p, j)) {
			ch.Tokens[j].Decimals = 18
		}
	}
	if ch.Kind == "ethereum" && ch.Traces == "" {
		ch.Traces = TracesAuto
	}
}

// The ways of reading an EVM chain's internal value movements (traces).
const (
	TracesAuto    = "auto"
	TracesDebug   = "debug"
	TracesParity  = "parity"
	TracesBalance = "balance"
	TracesOff     = "off"
)

var tracesModes = []string{TracesAuto, TracesDebug, TracesParity, TracesBalance, TracesOff}

// check checks the chain's kind and what belongs to it, its nodes and
// credentials, and reads the secrets: node URLs from rpc_env, the password
// from rpc_password_env or rpc_password_file. p is the chain's path.
func (ch *Chain) check(v *checker, p string) {
	switch ch.Kind {
	case "ethereum":
		ch.checkEthereum(v, p)
	case "bitcoin":
		ch.checkBitcoin(v, p)
	case "":
		v.add(p+".kind", "required: ethereum (any EVM chain) or bitcoin")
	default:
		v.add(p+".kind", "unknown kind %q (want ethereum or bitcoin)", ch.Kind)
	}
	ch.checkNodes(v, p)
	if ch.NativeUSD < 0 {
		v.add(p+".native_usd", "must not be negative")
	}
	if ch.ReorgDepth < ch.Confirmations {
		v.add(p+".reorg_depth", "must be at least confirmations (%d)", ch.Confirmations)
	}
	ch.rpcPassword = v.env(p+".rpc_password_env", "", ch.RPCPasswordEnv)
	if ch.RPCPasswordFile != "" && ch.RPCPasswordEnv == "" {
		b, err := os.ReadFile(v.cfg.Path(ch.RPCPasswordFile))
		switch {
		case err != nil:
			v.add(p+".rpc_password_file", "cannot read the password file: %v", err)
		case strings.TrimSpace(string(b)) == "":
			v.add(p+".rpc_password_file", "the password file %s is empty", ch.RPCPasswordFile)
		default:
			ch.rpcPassword = NewSecret(strings.TrimSpace(string(b)))
		}
	}
	if ch.Explorer != "" && !strings.Contains(ch.Explorer, "{tx}") {
		v.add(p+".explorer", "must contain {tx}, e.g. https://etherscan.io/tx/{tx}")
	} else if u, err := url.Parse(strings.ReplaceAll(ch.Explorer, "{tx}", "x")); ch.Explorer != "" && (err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "") {
		v.add(p+".explorer", "want an http(s):// URL template with {tx}")
	}
	if ch.StaleAfter < Duration(time.Second) {
		v.add(p+".stale_after", "must be at least 1s")
	}
	if ch.UnreachableAfter < Duration(time.Second) {
		v.add(p+".unreachable_after", "must be at least 1s")
	}
}

// checkEthereum checks what an EVM chain may have: no Bitcoin settings, and
// well-formed tokens.
func (ch *Chain) checkEthereum(v *checker, p string) {
	if ch.Network != "" {
		v.add(p+".network", "only for bitcoin chains (an EVM chain is identified by chain_id)")
	}
	if ch.RPCCert != "" || ch.RPCUser != "" || ch.RPCPasswordFile != "" || ch.RPCCookieFile != "" {
		v.add(p, "rpc_cert, rpc_user, rpc_password_file and rpc_cookie_file are for bitcoin chains (put EVM node credentials in a URL held by the environment variable named by rpc_env)")
	}
	for j, tk := range ch.Tokens {
		tk.check(v, fmt.Sprintf("%s.tokens[%d]", p, j))
	}
	if !slices.Contains(tracesModes, ch.Traces) {
		v.add(p+".traces", "unknown traces %q (want one of %s)", ch.Traces, strings.Join(tracesModes, ", "))
	}
	if ch.SafeTxService != "" {
		if u, err := url.Parse(ch.SafeTxService); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			v.add(p+".safe_tx_service", "want the http(s):// base URL of a Safe Transaction Service")
		} else if u.User != nil {
			v.add(p+".safe_tx_service", "must not carry credentials (name the API key's variable in safe_tx_service_key_env)")
		}
	}
	if ch.SafeTxServiceKeyEnv != "" && ch.SafeTxService == "" {
		v.add(p+".safe_tx_service_key_env", "only with safe_tx_service")
	}
	ch.safeTxServiceKey = v.env(p+".safe_tx_service_key_env", "", ch.SafeTxServiceKeyEnv)
}

// checkBitcoin checks what a Bitcoin chain needs: a known network, RPC
// credentials (a cookie file, or a user with one password), and TLS on every
// node when rpc_cert is set. It resolves the cookie file's path.
func (ch *Chain) checkBitcoin(v *checker, p string) {
	switch {
	case ch.Network == "":
		v.add(p+".network", "required: one of %s", strings.Join(bitcoinNetworks, ", "))
	case !slices.Contains(bitcoinNetworks, ch.Network):
		v.add(p+".network", "unknown network %q (want one of %s)", ch.Network, strings.Join(bitcoinNetworks, ", "))
	}
	if ch.Traces != "" || ch.SafeTxService != "" || ch.SafeTxServiceKeyEnv != "" {
		v.add(p, "traces and safe_tx_service are for EVM chains")
	}
	if len(ch.Tokens) > 0 {
		v.add(p+".tokens", "only for EVM chains (a bitcoin chain moves BTC only)")
	}
	if ch.ChainID != 0 {
		v.add(p+".chain_id", "only for EVM chains (a bitcoin chain is identified by network)")
	}
	if ch.RPCCookieFile != "" {
		if ch.RPCUser != "" || ch.RPCPasswordEnv != "" || ch.RPCPasswordFile != "" {
			v.add(p+".rpc_cookie_file", "set rpc_cookie_file or rpc_user with a password, not both")
		}
		ch.cookiePath = v.cfg.Path(ch.RPCCookieFile)
	} else {
		if ch.RPCUser == "" {
			v.add(p+".rpc_user", "required: btcd and Bitcoin Core need RPC credentials (or rpc_cookie_file, Bitcoin Core's cookie)")
		}
		switch {
		case ch.RPCPasswordEnv == "" && ch.RPCPasswordFile == "":
			v.add(p+".rpc_password_env", "required: the environment variable holding the RPC password (or rpc_password_file)")
		case ch.RPCPasswordEnv != "" && ch.RPCPasswordFile != "":
			v.add(p+".rpc_password_file", "set rpc_password_env or rpc_password_file, not both")
		}
	}
	if ch.RPCCert != "" {
		for j, r := range ch.RPC {
			if strings.HasPrefix(r, "http://") || strings.HasPrefix(r, "ws://") {
				v.add(fmt.Sprintf("%s.rpc[%d]", p, j), "rpc_cert is set, but this URL does not use TLS (want https:// or wss://)")
			}
		}
	}
}

// checkNodes checks the node URLs of rpc and reads those of rpc_env. A URL
// from the environment may hold a key: its problems name the variable and
// the URL's position, never the value.
func (ch *Chain) checkNodes(v *checker, p string) {
	if len(ch.RPC) == 0 && ch.RPCEnv == "" {
		v.add(p+".rpc", "required: one or more node URLs (or rpc_env naming an environment variable that holds them)")
	}
	for j, r := range ch.RPC {
		switch ok, password := nodeURL(r); {
		case !ok:
			v.add(fmt.Sprintf("%s.rpc[%d]", p, j), "want an http(s):// or ws(s):// URL")
		case password:
			v.add(fmt.Sprintf("%s.rpc[%d]", p, j), "the URL carries a password: put it in an environment variable and name it with rpc_env")
		}
	}
	if ch.RPCEnv != "" {
		val := v.env(p+".rpc_env", "", ch.RPCEnv).Reveal()
		for j, r := range strings.Split(val, ",") {
			if r = strings.TrimSpace(r); r == "" {
				continue
			}
			if ok, _ := nodeURL(r); !ok {
				v.add(p+".rpc_env", "URL %d of environment variable %s is not an http(s):// or ws(s):// URL", j+1, ch.RPCEnv)
				continue
			}
			ch.rpcFromEnv = append(ch.rpcFromEnv, r)
		}
	}
}

// nodeURL reports whether r is an http(s) or ws(s) URL with a host, and
// whether it carries a password.
func nodeURL(r string) (ok bool, password bool) {
	u, err := url.Parse(r)
	if err != nil || u.Host == "" || !slices.Contains([]string{"http", "https", "ws", "wss"}, u.Scheme) {
		return false, false
	}
	_, password = u.User.Password()
	return true, password
}

// check checks a token contract of an EVM chain; p is its path.
func (tk Tokens) check(v *checker, p string) {
	if tk.Symbol == "" {
		v.add(p+".symbol", "required")
	}
	if err := CheckEVMAddress(tk.Address); err != nil {
		v.add(p+".address", "%v", err)
	}
	if tk.Decimals < 0 || tk.Decimals > 77 {
		v.add(p+".decimals", "must be between 0 and 77")
	}
	if tk.USD < 0 {
		v.add(p+".usd", "must not be negative")
	}
}
