package config_test

import (
	"testing"

	"github.com/keywatch/keywatch/config"
)

// TestSmartAccountSettings: traces, safe_tx_service and wallets' account,
// their defaults, and the errors a user sees for bad values.
func TestSmartAccountSettings(t *testing.T) {
	cfg, err := config.Parse("kw.yaml", []byte(base), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Chains[0].Traces != config.TracesAuto {
		t.Errorf("traces default %q, want auto", cfg.Chains[0].Traces)
	}
	ok := insertAfter(t, base, "    kind: ethereum", "    traces: balance\n    safe_tx_service: https://safe-transaction-mainnet.safe.global\n")
	ok = insertAfter(t, ok, "    chain: eth", "    account: safe\n")
	cfg, err = config.Parse("kw.yaml", []byte(ok), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Chains[0].Traces != "balance" || cfg.Chains[0].SafeTxService == "" || !cfg.Wallets[0].IsSafe() {
		t.Errorf("parsed traces %q, safe_tx_service %q, safe %v", cfg.Chains[0].Traces, cfg.Chains[0].SafeTxService, cfg.Wallets[0].IsSafe())
	}

	tests := []struct {
		name string
		doc  func(t *testing.T) string
		want []string
	}{
		{
			name: "unknown traces",
			doc:  func(t *testing.T) string { return insertAfter(t, base, "    kind: ethereum", "    traces: geth\n") },
			want: []string{`kw.yaml:9:13: chains[0].traces: unknown traces "geth" (want one of auto, debug, parity, balance, off)`},
		},
		{
			name: "safe_tx_service not a URL",
			doc: func(t *testing.T) string {
				return insertAfter(t, base, "    kind: ethereum", "    safe_tx_service: safe.global\n")
			},
			want: []string{`kw.yaml:9:22: chains[0].safe_tx_service: want the http(s):// base URL of a Safe Transaction Service`},
		},
		{
			name: "unknown account",
			doc:  func(t *testing.T) string { return insertAfter(t, base, "    chain: eth", "    account: argent\n") },
			want: []string{`kw.yaml:17:14: wallets[0].account: unknown account "argent" (want safe, or leave it out)`},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := config.Parse("kw.yaml", []byte(tc.doc(t)), noEnv)
			checkErrors(t, err, tc.want)
		})
	}
}
