package bitcoin

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"

	"github.com/keywatch/keywatch/config"
)

// CheckConfig checks the bitcoin parts the config package cannot judge on
// its own: each wallet's address or extended key against its chain's
// network (a malformed one, one of another network, a private key), scripts
// watched by two wallets, and the chains' rpc_cert files. Every problem is
// reported with the file, line and field.
func CheckConfig(cfg *config.Config) config.Errors {
	var errs config.Errors
	for i, ch := range cfg.Chains {
		if ch.Kind != "bitcoin" {
			continue
		}
		net, err := Network(ch.Network)
		if err != nil {
			continue // the config package reported it
		}
		if ch.RPCCert != "" {
			if _, err := readCert(cfg.Path(ch.RPCCert)); err != nil {
				errs = append(errs, cfg.Errorf(fmt.Sprintf("chains[%d].rpc_cert", i), "%v", err))
			}
		}
		ws := &watchSet{net: net, scripts: map[string]holder{}, byName: map[string]*wallet{}}
		for j, w := range cfg.Wallets {
			if w.Chain != ch.Name || (w.Address == "") == (w.XPub == "") {
				continue
			}
			field := fmt.Sprintf("wallets[%d].address", j)
			if w.XPub != "" {
				field = fmt.Sprintf("wallets[%d].xpub", j)
			}
			if err := ws.add(walletOf(w)); err != nil {
				errs = append(errs, cfg.Errorf(field, "%s", trimWalletPrefix(err.Error(), w.Name)))
			}
		}
	}
	return errs
}

// walletOf converts a configured wallet.
func walletOf(w config.Wallet) Wallet {
	return Wallet{Name: w.Name, Role: w.Role, Owner: w.Owner, Address: w.Address, XPub: w.XPub, Script: w.Script, GapLimit: w.GapLimit, Birthday: w.Birthday}
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

// FromConfig builds the node client configuration and the watch options of
// a bitcoin chain. The Store, Logger and clock of the options are the
// caller's to set.
func FromConfig(cfg *config.Config, ch config.Chain) (ClientConfig, Options, error) {
	opts, err := WatchOptions(cfg, ch)
	if err != nil {
		return ClientConfig{}, Options{}, err
	}
	cc := ClientConfig{URLs: ch.Endpoints(), User: ch.RPCUser, Password: ch.RPCPassword(), CookiePath: ch.RPCCookiePath()}
	if ch.RPCCert != "" {
		if cc.Cert, err = readCert(cfg.Path(ch.RPCCert)); err != nil {
			return ClientConfig{}, Options{}, fmt.Errorf("chain %s: rpc_cert: %w", ch.Name, err)
		}
	}
	return cc, opts, nil
}

// WatchOptions builds the watch options of a bitcoin chain alone, without
// what reaching its node needs (a replay of recorded blocks).
func WatchOptions(cfg *config.Config, ch config.Chain) (Options, error) {
	net, err := Network(ch.Network)
	if err != nil {
		return Options{}, fmt.Errorf("chain %s: %w", ch.Name, err)
	}
	opts := Options{Chain: ch.Name, Network: net, NativeSymbol: ch.NativeSymbol, NativeUSD: ch.NativeUSD, ReorgDepth: ch.ReorgDepth}
	for _, w := range cfg.Wallets {
		if w.Chain == ch.Name {
			opts.Wallets = append(opts.Wallets, walletOf(w))
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
