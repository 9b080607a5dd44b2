// Package bitcoin watches Bitcoin wallets: explicit addresses and
// account-level extended public keys derived with a gap limit. It reads a
// node through btcd's rpcclient (btcd over WebSocket with notifications, or
// Bitcoin Core over HTTP, polled), keeps the unspent outputs that belong to
// watched wallets, and turns mempool transactions and blocks into keywatch
// events: an out event per output a watched wallet's spend creates that does
// not return to a watched wallet, an in event per output a watched wallet
// receives.
package bitcoin

import (
	"context"
	"errors"
	"fmt"
)

// networkOfNode maps the chain name a node reports (getblockchaininfo's
// "chain": btcd says mainnet, testnet3, regtest, simnet, signet; Bitcoin Core
// says main, test, regtest, signet) to keywatch's network name.
func networkOfNode(chain string) string {
	switch chain {
	case "main", "mainnet":
		return "mainnet"
	case "test", "testnet3":
		return "testnet"
	default:
		return chain
	}
}

// networkReader is implemented by *Client.
type networkReader interface {
	Network(ctx context.Context) (string, error)
}

// ErrWrongNetwork is returned when the node is on another network than the
// chain is configured for.
var ErrWrongNetwork = errors.New("node on the wrong network")

// CheckNetwork asks the node which network it is on and refuses another one
// than want: watching mainnet keys against a test node (or the reverse)
// would silently see nothing.
func CheckNetwork(ctx context.Context, node networkReader, want string) error {
	got, err := node.Network(ctx)
	if err != nil {
		return err
	}
	if got != want {
		return fmt.Errorf("%w: the node is on %s, the chain is configured for %s: refusing to watch", ErrWrongNetwork, got, want)
	}
	return nil
}
