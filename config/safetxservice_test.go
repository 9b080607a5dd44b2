package config_test

import (
	"testing"

	"github.com/keywatch/keywatch/config"
)

// TestSafeTxServiceKey: safe_tx_service_key_env reads the service's API key
// from the environment, and says what is wrong when it cannot.
func TestSafeTxServiceKey(t *testing.T) {
	doc := insertAfter(t, base, "    kind: ethereum", "    safe_tx_service: https://safe-transaction-mainnet.safe.global\n    safe_tx_service_key_env: SAFE_API_KEY\n")
	env := func(name string) (string, bool) {
		if name == "SAFE_API_KEY" {
			return "key-123", true
		}
		return "", false
	}
	cfg, err := config.Parse("kw.yaml", []byte(doc), env)
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Chains[0].SafeTxServiceKey().Reveal(); got != "key-123" {
		t.Errorf("key %q", got)
	}
	tests := []struct {
		name string
		doc  string
		want []string
	}{
		{name: "variable not set", doc: doc, want: []string{`kw.yaml:10:30: chains[0].safe_tx_service_key_env: environment variable SAFE_API_KEY is not set`}},
		{
			name: "a key without a service",
			doc:  insertAfter(t, base, "    kind: ethereum", "    safe_tx_service_key_env: SAFE_API_KEY\n"),
			want: []string{`kw.yaml:9:30: chains[0].safe_tx_service_key_env: only with safe_tx_service`, `kw.yaml:9:30: chains[0].safe_tx_service_key_env: environment variable SAFE_API_KEY is not set`},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := config.Parse("kw.yaml", []byte(tc.doc), noEnv)
			checkErrors(t, err, tc.want)
		})
	}
}
