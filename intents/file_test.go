package intents_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keywatch/keywatch/config"
	"github.com/keywatch/keywatch/intents"
)

// loadFile reads one intents file (named intents.csv in messages) beside a
// configuration with an EVM hot wallet and two Bitcoin wallets, one an
// address and one an xpub.
func loadFile(t *testing.T, csv string) ([]intents.Intent, []string) {
	t.Helper()
	dir := t.TempDir()
	cfgText := `store: {memory: true}
nats: {embedded: true, data_dir: nats}
chains:
  - {name: eth, kind: ethereum, rpc: ["http://127.0.0.1:8545"]}
  - {name: btc, kind: bitcoin, network: mainnet, rpc: ["http://127.0.0.1:8334"], rpc_user: kw, rpc_password_env: BTC_PASSWORD}
wallets:
  - {name: treasury-hot, chain: eth, address: "0xe78fb7ab2018c13deefbb58e4c822b1062755b96", role: hot}
  - {name: btc-hot, chain: btc, address: 1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2, role: hot}
  - {name: btc-treasury, chain: btc, xpub: zpub6rFR7y4Q2AijBEqTUquhVz398htDFrtymD9xYYfG1m4wAcvPhXNfE3EfH1r1ADqtfSdVCToUG868RvUUkgDKf31mGDtKsAYz2oz2AGutZYs, role: hot}
intents: [intents.csv]
`
	for name, content := range map[string]string{"keywatch.yaml": cfgText, "intents.csv": csv} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	env := func(name string) (string, bool) { return "secret", name == "BTC_PASSWORD" }
	cfg, err := config.Parse(filepath.Join(dir, "keywatch.yaml"), []byte(cfgText), env)
	if err != nil {
		t.Fatal(err)
	}
	ins, err := intents.Load(cfg)
	if err == nil {
		return ins, nil
	}
	var es config.Errors
	if !errors.As(err, &es) {
		t.Fatalf("error is %T, not config.Errors: %v", err, err)
	}
	var lines []string
	for _, e := range es {
		lines = append(lines, strings.ReplaceAll(e.Error(), dir+string(filepath.Separator), ""))
	}
	return nil, lines
}

func TestLoadFile(t *testing.T) {
	const header = "id,wallet,to,asset,amount\n"
	tests := []struct {
		name string
		csv  string
		want []string // "id to"
		errs []string
	}{
		{name: "EVM and Bitcoin destinations, an xpub wallet's included",
			csv: header +
				"w-1,treasury-hot,0xB374907D35f61DE043bedb18eE35f7228C83C3E4,USDC,25000\n" +
				"w-2,btc-hot,BC1QCR8TE4KR609GCAWUTMRZA0J4XV80JY8Z306FYU,BTC,0.5\n" +
				"w-3,btc-treasury,1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa,BTC,1.25\n",
			// Bitcoin destinations in the form the watcher gives outputs.
			want: []string{"w-1 0xB374907D35f61DE043bedb18eE35f7228C83C3E4", "w-2 bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu", "w-3 1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa"}},
		{name: "a destination that is not an address of the wallet's chain",
			csv: header +
				"w-1,treasury-hot,bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu,ETH,1\n" +
				"w-2,btc-hot,0xB374907D35f61DE043bedb18eE35f7228C83C3E4,BTC,0.5\n" +
				"w-3,btc-treasury,not-an-address,BTC,1\n" +
				"w-4,btc-treasury,tb1qcr8te4kr609gcawutmrza0j4xv80jy8zmfp6l0,BTC,1\n",
			errs: []string{
				`intents.csv:2: to: "bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu" is not an address (want 0x and 40 hex digits)`,
				`intents.csv:3: to: "0xB374907D35f61DE043bedb18eE35f7228C83C3E4" is not a Bitcoin address: decoded address is of unknown format`,
				`intents.csv:4: to: "not-an-address" is not a Bitcoin address: decoded address is of unknown format`,
				`intents.csv:5: to: "tb1qcr8te4kr609gcawutmrza0j4xv80jy8zmfp6l0" is a testnet address, but the chain's network is mainnet`,
			}},
		{name: "an id the registry cannot store is reported by the check, not at start",
			csv:  header + "pay:1,treasury-hot,0xB374907D35f61DE043bedb18eE35f7228C83C3E4,ETH,1\n",
			errs: []string{`intents.csv:2: id: "pay:1" may not contain ':' or a line break`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ins, errs := loadFile(t, tt.csv)
			if strings.Join(errs, "\n") != strings.Join(tt.errs, "\n") {
				t.Errorf("errors:\n got: %s\nwant: %s", strings.Join(errs, "\n      "), strings.Join(tt.errs, "\n      "))
			}
			var got []string
			for _, in := range ins {
				got = append(got, in.ID+" "+in.To)
			}
			if strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Errorf("intents %q, want %q", got, tt.want)
			}
		})
	}
}
