package main

import (
	"strings"
	"testing"

	"github.com/keywatch/keywatch/internal/apitest"
	"github.com/keywatch/keywatch/internal/testenv"
)

func TestIntentsCommand(t *testing.T) {
	cfg := apitest.Config(t, "redis: "+testenv.Redis(t), "")
	path := cfg.File()
	cases := []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{"an EVM withdrawal", []string{"-id", "w-1", "-wallet", "treasury-hot", "-to", "0x" + strings.ToUpper(apitest.Vendor[2:]), "-asset", "USDC", "-amount", "25000"},
			0, "registered intent w-1: treasury-hot pays 25000 USDC to " + apitest.Vendor + "\n", ""},
		{"a Bitcoin withdrawal", []string{"-id", "w-2", "-wallet", "btc-hot", "-to", apitest.BTCSanctioned, "-asset", "BTC", "-amount", "0.5"},
			0, "registered intent w-2: btc-hot pays 0.5 BTC to " + apitest.BTCSanctioned + "\n", ""},
		{"a Bitcoin address for an EVM wallet", []string{"-id", "w-3", "-wallet", "treasury-hot", "-to", apitest.BTCSanctioned, "-asset", "USDC", "-amount", "1"},
			2, "", "keywatch intents add: -to: "},
		{"an EVM address for a Bitcoin wallet", []string{"-id", "w-4", "-wallet", "btc-hot", "-to", apitest.Vendor, "-asset", "BTC", "-amount", "1"},
			2, "", `keywatch intents add: -to: "` + apitest.Vendor + `" is not a Bitcoin address`},
		{"another network's Bitcoin address", []string{"-id", "w-6", "-wallet", "btc-hot", "-to", "123WBUDmSJv4GctdVEz6Qq6z8nXSKrJ4KX", "-asset", "BTC", "-amount", "1"},
			2, "", `keywatch intents add: -to: "123WBUDmSJv4GctdVEz6Qq6z8nXSKrJ4KX" is a mainnet address, but the chain's network is regtest`},
		{"an unknown wallet", []string{"-id", "w-5", "-wallet", "nope", "-to", apitest.Vendor, "-asset", "USDC", "-amount", "1"},
			2, "", `keywatch intents add: -wallet: no wallet named "nope"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, out, errs := runCmd(t, append([]string{"intents", "add", "-config", path}, c.args...)...)
			if code != c.code || out != c.stdout || !strings.Contains(errs, c.stderr) {
				t.Fatalf("exit %d, %q, %q; want %d, %q, %q", code, out, errs, c.code, c.stdout, c.stderr)
			}
		})
	}
	code, out, errs := runCmd(t, "intents", "list", "-config", path, "-wallet", "btc-hot")
	if code != 0 || strings.Count(out, "\n") != 1 || !strings.Contains(out, `"id":"w-2"`) || !strings.Contains(out, apitest.BTCSanctioned) {
		t.Fatalf("list: exit %d, %q, %q", code, out, errs)
	}
}
