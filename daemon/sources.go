package daemon

import (
	gethcommon "github.com/ethereum/go-ethereum/common"

	"github.com/keywatch/keywatch/chains/ethereum"
	"github.com/keywatch/keywatch/config"
)

// EthereumSource is the block decoder of one configured EVM chain: its
// wallets and tokens, and the addresses forwarding follows, over a node
// client. The watcher and backtests both decode blocks through it; each
// sets what only it has (the daemon's alerts and log) with tune.
func EthereumSource(cfg *config.Config, ch config.Chain, client ethereum.Client, followed ethereum.Followed, tune ...func(*ethereum.Options)) *ethereum.Source {
	opts := ethereum.Options{Chain: ch.Name, NativeSymbol: ch.NativeSymbol, NativeUSD: ch.NativeUSD, Tokens: EthereumTokens(ch), Followed: followed, Traces: ch.Traces}
	for _, w := range cfg.Wallets {
		if w.Chain == ch.Name {
			opts.Wallets = append(opts.Wallets, ethereum.Wallet{Name: w.Name, Address: gethcommon.HexToAddress(w.Address), Role: w.Role, Owner: w.Owner, Safe: w.IsSafe()})
		}
	}
	for _, f := range tune {
		f(&opts)
	}
	return ethereum.NewSource(client, opts)
}

// EthereumTokens are the configured token contracts of an EVM chain.
func EthereumTokens(ch config.Chain) []ethereum.Token {
	var out []ethereum.Token
	for _, t := range ch.Tokens {
		out = append(out, ethereum.Token{Symbol: t.Symbol, Address: gethcommon.HexToAddress(t.Address), Decimals: t.Decimals, USD: t.USD})
	}
	return out
}
