package config_test

import (
	"testing"

	"github.com/keywatch/keywatch/config"
)

func TestBitcoinChainsAndWallets(t *testing.T) {
	const head = "store: {memory: true}\nnats: {embedded: true, data_dir: /var/lib/keywatch}\n"
	env := envOf(map[string]string{"BTC_RPC_PASSWORD": "s3cret"})
	const zpub = "zpub6rFR7y4Q2AijBEqTUquhVz398htDFrtymD9xYYfG1m4wAcvPhXNfE3EfH1r1ADqtfSdVCToUG868RvUUkgDKf31mGDtKsAYz2oz2AGutZYs"
	tests := []struct {
		name string
		doc  string
		want []string
	}{
		{
			name: "the specification's example",
			doc: head + `chains:
  - {name: btc, kind: bitcoin, network: mainnet, rpc: [wss://127.0.0.1:8334], rpc_user: keywatch, rpc_password_env: BTC_RPC_PASSWORD, confirmations: 2, native_usd: 60000}
wallets:
  - {name: btc-ops, chain: btc, xpub: "` + zpub + `", gap_limit: 20, birthday: 850000, role: hot}
  - {name: btc-cold, chain: btc, address: bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu, role: cold}
`,
		},
		{
			name: "network missing, unknown, tokens and chain_id",
			doc: head + `chains:
  - {name: btc, kind: bitcoin, rpc: [wss://127.0.0.1:8334], rpc_user: u, rpc_password_env: BTC_RPC_PASSWORD}
  - name: btc2
    kind: bitcoin
    network: testnet4
    chain_id: 1
    rpc: [wss://127.0.0.1:8334]
    rpc_user: u
    rpc_password_env: BTC_RPC_PASSWORD
    tokens: [{symbol: USDT, address: "0xdAC17F958D2ee523a2206206994597C13D831ec7"}]
`,
			want: []string{
				`kw.yaml:4:5: chains[0].network: required: one of mainnet, testnet, regtest, signet, simnet`,
				`kw.yaml:7:14: chains[1].network: unknown network "testnet4" (want one of mainnet, testnet, regtest, signet, simnet)`,
				`kw.yaml:8:15: chains[1].chain_id: only for EVM chains (a bitcoin chain is identified by network)`,
				`kw.yaml:12:13: chains[1].tokens: only for EVM chains (a bitcoin chain moves BTC only)`,
			},
		},
		{
			name: "credentials missing, certificate over plain http",
			doc: head + `chains:
  - {name: btc, kind: bitcoin, network: regtest, rpc: [http://127.0.0.1:18334], rpc_cert: rpc.cert}
`,
			want: []string{
				`kw.yaml:4:5: chains[0].rpc_user: required: btcd and Bitcoin Core need RPC credentials (or rpc_cookie_file, Bitcoin Core's cookie)`,
				`kw.yaml:4:5: chains[0].rpc_password_env: required: the environment variable holding the RPC password (or rpc_password_file)`,
				`kw.yaml:4:56: chains[0].rpc[0]: rpc_cert is set, but this URL does not use TLS (want https:// or wss://)`,
			},
		},
		{
			name: "wallet shapes",
			doc: head + `chains:
  - {name: btc, kind: bitcoin, network: mainnet, rpc: [wss://127.0.0.1:8334], rpc_user: u, rpc_password_env: BTC_RPC_PASSWORD}
wallets:
  - {name: a, chain: btc, role: hot}
  - {name: b, chain: btc, role: hot, address: bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu, xpub: "` + zpub + `"}
  - {name: c, chain: btc, role: hot, address: bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu, gap_limit: 5}
  - {name: d, chain: btc, role: hot, xpub: "` + zpub + `", gap_limit: 0, script: p2wsh}
  - {name: e, chain: btc, role: hot, xpub: "` + zpub + `"}
`,
			want: []string{
				`kw.yaml:6:5: wallets[0]: set address (one address) or xpub (an account-level extended public key)`,
				`kw.yaml:7:97: wallets[1].xpub: set address or xpub, not both`,
				`kw.yaml:8:5: wallets[2]: gap_limit and script are for xpub wallets`,
				`kw.yaml:9:170: wallets[3].gap_limit: must be between 1 and 1000`,
				`kw.yaml:9:181: wallets[3].script: unknown script "p2wsh" (want one of p2pkh, p2sh-p2wpkh, p2wpkh, p2tr)`,
				`kw.yaml:10:44: wallets[4].xpub: same key as wallet "d"`,
			},
		},
		{
			name: "bitcoin fields on an EVM chain",
			doc: head + `chains:
  - {name: eth, kind: ethereum, rpc: [ws://127.0.0.1:8546], rpc_user: u, rpc_cert: c.pem}
`,
			want: []string{`kw.yaml:4:5: chains[0]: rpc_cert, rpc_user, rpc_password_file and rpc_cookie_file are for bitcoin chains (put EVM node credentials in a URL held by the environment variable named by rpc_env)`},
		},
		{
			name: "Bitcoin Core's cookie instead of a user and password",
			doc: head + `chains:
  - {name: btc, kind: bitcoin, network: mainnet, rpc: [http://127.0.0.1:8332], rpc_cookie_file: /var/lib/bitcoind/.cookie}
  - {name: btc2, kind: bitcoin, network: regtest, rpc: [http://127.0.0.1:18443], rpc_cookie_file: .cookie, rpc_user: u}
`,
			want: []string{`kw.yaml:5:99: chains[1].rpc_cookie_file: set rpc_cookie_file or rpc_user with a password, not both`},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := config.Parse("kw.yaml", []byte(tc.doc), env)
			checkErrors(t, err, tc.want)
		})
	}
}

func TestBitcoinDefaults(t *testing.T) {
	doc := "store: {memory: true}\nnats: {embedded: true, data_dir: /d}\n" + `chains:
  - {name: btc, kind: bitcoin, network: regtest, rpc: [ws://127.0.0.1:18334], rpc_user: u, rpc_password_env: P}
wallets:
  - {name: w, chain: btc, role: hot, xpub: "vpub5Y6cjg78GGuNLsaPhmYsiw4gYX3HoQiRBiSwDaBXKUafCt9bNwWQiitDk5VZ5BVxYnQdwoTyXSs2JHRPAgjAvtbBrf8ZhDYe2jWAqvZVnsc"}
`
	cfg, err := config.Parse("kw.yaml", []byte(doc), envOf(map[string]string{"P": "x"}))
	if err != nil {
		t.Fatal(err)
	}
	ch := cfg.Chains[0]
	if ch.Confirmations != 2 || ch.NativeSymbol != "BTC" || ch.ReorgDepth != 66 {
		t.Errorf("defaults: confirmations %d, native_symbol %s, reorg_depth %d; want 2, BTC, 66", ch.Confirmations, ch.NativeSymbol, ch.ReorgDepth)
	}
	if ch.RPCPassword().Reveal() != "x" {
		t.Error("rpc password not read from P")
	}
	if cfg.Wallets[0].GapLimit != 20 {
		t.Errorf("gap_limit %d, want the default 20", cfg.Wallets[0].GapLimit)
	}
}

func TestBitcoinCookiePath(t *testing.T) {
	doc := "store: {memory: true}\nnats: {embedded: true, data_dir: /d}\n" + `chains:
  - {name: btc, kind: bitcoin, network: regtest, rpc: [http://127.0.0.1:18443], rpc_cookie_file: node/.cookie}
`
	cfg, err := config.Parse("/etc/keywatch/kw.yaml", []byte(doc), envOf(nil))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Chains[0].RPCCookiePath(); got != "/etc/keywatch/node/.cookie" {
		t.Errorf("cookie path %q, want it next to the configuration", got)
	}
}
