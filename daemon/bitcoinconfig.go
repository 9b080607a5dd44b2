package daemon

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"

	"github.com/keywatch/keywatch/chains/bitcoin"
	"github.com/keywatch/keywatch/chains/bitcoin/btcaddr"
	"github.com/keywatch/keywatch/config"
)

// CheckBitcoin checks the bitcoin parts the config package cannot judge on
// its own: each wallet's address or extended key against its chain's
// network (a malformed one, one of another network, a private key), scripts
// watched by two wallets, and the chains' rpc_cert files. Every problem is
// reported with the file, line and field.
func CheckBitcoin(cfg *config.Config) config.Errors {
	var errs config.Errors
	for i, ch := range cfg.Chains {
		if ch.Kind != "bitcoin" {
			continue
		}
		net, err := btcaddr.Network(ch.Network)
		if err != nil {
			continue // the config package reported it
		}
		if ch.RPCCert != "" {
			if _, err := readCert(cfg.Path(ch.RPCCert)); err != nil {
				errs = append(errs, cfg.Errorf(fmt.Sprintf("chains[%d].rpc_cert", i), "%v", err))
			}
		}
		var ws []bitcoin.Wallet
		var index []int // ws[k] is cfg.Wallets[index[k]]
		for j, w := range cfg.Wallets {
			if w.Chain != ch.Name || (w.Address == "") == (w.XPub == "") {
				continue
			}
			ws = append(ws, bitcoinWallet(w))
			index = append(index, j)
		}
		bad := bitcoin.CheckWallets(net, ws)
		for k, j := range index {
			err, ok := bad[k]
			if !ok {
				continue
			}
			w := cfg.Wallets[j]
			field := fmt.Sprintf("wallets[%d].address", j)
			if w.XPub != "" {
				field = fmt.Sprintf("wallets[%d].xpub", j)
			}
			errs = append(errs, cfg.Errorf(field, "%s", trimWalletPrefix(err.Error(), w.Name)))
		}
	}
	return errs
}

// bitcoinWallet converts a configured wallet.
func bitcoinWallet(w config.Wallet) bitcoin.Wallet {
	return bitcoin.Wallet{Name: w.Name, Role: w.Role, Owner: w.Owner, Address: w.Address, XPub: w.XPub, Script: w.Script, GapLimit: w.GapLimit, Birthday: w.Birthday}
}

// trimWalletPrefix drops "wallet NAME: address: " from an error that the
// configuration error already places on the wallet's field.
func trimWalletPrefix(msg, name string) string {
	for _, p := range []string{"wallet " + name + ": address: ", "wallet " + name + ": xpub: ", "wallet " + name + ": "} {
		if len(msg) > len(p) && msg[:len(p)] == p {
			return msg[len(p):]
		}
	}
	return msg
}

// BitcoinNode builds the node client configuration and the watch options of
// a bitcoin chain. The Store, Logger and clock of the options are the
// caller's to set.
func BitcoinNode(cfg *config.Config, ch config.Chain) (bitcoin.ClientConfig, bitcoin.Options, error) {
	opts, err := BitcoinWatch(cfg, ch)
	if err != nil {
		return bitcoin.ClientConfig{}, bitcoin.Options{}, err
	}
	cc := bitcoin.ClientConfig{URLs: ch.Endpoints(), User: ch.RPCUser, Password: ch.RPCPassword().Reveal(), CookiePath: ch.RPCCookiePath()}
	if ch.RPCCert != "" {
		if cc.Cert, err = readCert(cfg.Path(ch.RPCCert)); err != nil {
			return bitcoin.ClientConfig{}, bitcoin.Options{}, fmt.Errorf("chain %s: rpc_cert: %w", ch.Name, err)
		}
	}
	return cc, opts, nil
}

// BitcoinWatch builds the watch options of a bitcoin chain alone, without
// what reaching its node needs (a replay of recorded blocks).
func BitcoinWatch(cfg *config.Config, ch config.Chain) (bitcoin.Options, error) {
	net, err := btcaddr.Network(ch.Network)
	if err != nil {
		return bitcoin.Options{}, fmt.Errorf("chain %s: %w", ch.Name, err)
	}
	opts := bitcoin.Options{Chain: ch.Name, Network: net, NativeSymbol: ch.NativeSymbol, NativeUSD: ch.NativeUSD, ReorgDepth: ch.ReorgDepth}
	for _, w := range cfg.Wallets {
		if w.Chain == ch.Name {
			opts.Wallets = append(opts.Wallets, bitcoinWallet(w))
		}
	}
	return opts, nil
}

// readCert reads a PEM certificate file (btcd's rpc.cert).
func readCert(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read the node's certificate: %v", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("%s is not a PEM certificate", path)
	}
	if _, err := x509.ParseCertificate(blk.Bytes); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	return b, nil
}
