package btcaddr

import (
	"fmt"
	"strings"

	"github.com/btcsuite/btcd/chaincfg"
)

// Networks lists the network names a bitcoin chain may be configured with.
func Networks() []string {
	return []string{"mainnet", "regtest", "signet", "simnet", "testnet"}
}

// Network returns the parameters of a network by its configuration name.
func Network(name string) (*chaincfg.Params, error) {
	var p *chaincfg.Params
	switch name {
	case "mainnet":
		p = &chaincfg.MainNetParams
	case "testnet":
		p = &chaincfg.TestNet3Params
	case "regtest":
		p = &chaincfg.RegressionNetParams
	case "simnet":
		p = &chaincfg.SimNetParams
	case "signet":
		p = &chaincfg.SigNetParams
	}
	if p == nil {
		return nil, fmt.Errorf("unknown network %q (want one of %s)", name, strings.Join(Networks(), ", "))
	}
	return p, nil
}

// IsTestNetwork reports whether addresses and keys of the network use the
// test prefixes (tpub, tb1, m/n/2).
func IsTestNetwork(p *chaincfg.Params) bool { return p.Net != chaincfg.MainNetParams.Net }
