package demo

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/wire"

	"github.com/keywatch/keywatch/config"
	"github.com/keywatch/keywatch/internal/regtest"
)

// hydraMarket is on OFAC's SDN list (Hydra Market, SDN 36216, CYBER2; list
// of 2025-11-19) as a mainnet address. On the demo's regtest chain the
// same output script is paid; the sanctions list matches it by script.
const hydraMarket = "123WBUDmSJv4GctdVEz6Qq6z8nXSKrJ4KX"

// bitcoinPolicies are the policies of demo.yaml the Bitcoin payment
// raises: the sanctioned script first.
var bitcoinPolicies = []string{"sanctioned-counterparty", "unapproved-outflow", "big-outflow"}

// bitcoinLeg is the demo's Bitcoin network and the hot wallet's key.
type bitcoinLeg struct {
	node   *regtest.Node
	hot    *regtest.Key
	coin   regtest.Coin
	funded string
}

// startBitcoin starts btcd in regtest mode, funds the demo's hot wallet and
// points the btc chain of cfg at the node. When btcd is not installed it
// returns no leg and says why in skip.
func startBitcoin(ctx context.Context, cfg *config.Config, dir string) (leg *bitcoinLeg, skip string, err error) {
	var ch *config.Chain
	for i := range cfg.Chains {
		if cfg.Chains[i].Kind == "bitcoin" {
			ch = &cfg.Chains[i]
		}
	}
	if ch == nil {
		return nil, "demo.yaml has no bitcoin chain", nil
	}
	bin, err := regtest.FindBinary()
	if err != nil {
		return nil, err.Error(), nil
	}
	hot, err := regtest.NewKey("demo btc-treasury-hot", regtest.P2WPKH)
	if err != nil {
		return nil, "", err
	}
	if w, ok := walletOn(cfg, ch.Name); !ok || w.Address != hot.Address {
		return nil, "", fmt.Errorf("demo.yaml watches %q on %s, but the demo's hot wallet key pays %s", w.Address, ch.Name, hot.Address)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, "", err
	}
	node, err := regtest.Start(ctx, regtest.Options{Bin: bin, Dir: dir, Password: ch.RPCPassword().Reveal()})
	if err != nil {
		return nil, "", fmt.Errorf("start btcd: %w", err)
	}
	coin, _, err := node.Fund(ctx, hot, btcutil.Amount(regtest.Amount(3)))
	if err == nil {
		_, err = node.Generate(ctx, 1)
	}
	if err != nil {
		node.Stop()
		return nil, "", fmt.Errorf("fund the demo's bitcoin hot wallet: %w", err)
	}
	ch.RPC = []string{node.WSURL}
	ch.RPCCert = node.CertPath
	return &bitcoinLeg{node: node, hot: hot, coin: coin, funded: "3"}, "", nil
}

func walletOn(cfg *config.Config, chain string) (config.Wallet, bool) {
	for _, w := range cfg.Wallets {
		if w.Chain == chain {
			return w, true
		}
	}
	return config.Wallet{}, false
}

// dropChain removes a chain and its wallets from the configuration.
func dropChain(cfg *config.Config, name string) {
	var chains []config.Chain
	for _, ch := range cfg.Chains {
		if ch.Name != name {
			chains = append(chains, ch)
		}
	}
	var wallets []config.Wallet
	for _, w := range cfg.Wallets {
		if w.Chain != name {
			wallets = append(wallets, w)
		}
	}
	cfg.Chains, cfg.Wallets = chains, wallets
}

// bitcoinScene: the hot wallet pays a sanctioned address's script; keywatch
// catches it in the mempool, before any block, and again at depth.
func (s *story) bitcoinScene(n int) error {
	if err := s.waitWatching("btc"); err != nil {
		return err
	}
	s.scene(n, "The Bitcoin hot wallet pays 2 BTC (120,000 USD) to a Hydra Market address on the OFAC SDN list.")
	s.out.printf("   The list holds the mainnet address %s; on this regtest chain the same output script is paid.\n", hydraMarket)
	script, err := regtest.ScriptOf(hydraMarket)
	if err != nil {
		return err
	}
	tx, err := regtest.Pay([]regtest.Coin{s.btc.coin}, []regtest.Output{{Script: script, Value: regtest.Amount(2)}}, s.btc.hot.Script, 2000)
	if err != nil {
		return err
	}
	sent := time.Now()
	if _, err := s.btc.node.Send(s.ctx, tx); err != nil {
		return err
	}
	id := tx.TxHash().String()
	s.out.printf("   tx %s broadcast; it waits in the mempool, no block mined yet\n", id)
	if err := s.expectTx(id, "sanctioned-counterparty", "pending"); err != nil {
		return err
	}
	caught := time.Since(sent)
	for _, policy := range bitcoinPolicies[1:] {
		if err := s.expectTx(id, policy, "pending"); err != nil {
			return err
		}
	}
	s.out.printf("   caught in the mempool %s after broadcast, before any block\n", caught.Round(time.Millisecond))
	s.out.printf("   two blocks are mined: the payment reaches the confirmation depth\n")
	if _, err := s.btc.node.Generate(s.ctx, 2); err != nil {
		return err
	}
	for _, policy := range bitcoinPolicies {
		if err := s.expectTx(id, policy, "confirmed"); err != nil {
			return err
		}
	}
	s.btc.coin = regtest.Coin{OutPoint: wire.OutPoint{Hash: tx.TxHash(), Index: 1}, Value: tx.TxOut[1].Value, Key: s.btc.hot}
	return nil
}

// waitWatching waits until the chain's watcher has started (it starts at
// the node's head), so the scene's payment comes after it.
func (s *story) waitWatching(chain string) error {
	deadline := time.Now().Add(s.wait)
	for {
		if _, err := s.d.Store.Get(s.ctx, "watch:"+chain+":checkpoint"); err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the %s watcher did not start within %s", chain, s.wait)
		}
		select {
		case <-s.ctx.Done():
			return s.ctx.Err()
		case <-time.After(50 * time.Millisecond): // poll interval
		}
	}
}
