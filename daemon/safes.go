package daemon

import (
	"context"
	"errors"
	"fmt"
	"time"

	gethcommon "github.com/ethereum/go-ethereum/common"

	"github.com/keywatch/keywatch/chains/ethereum"
	"github.com/keywatch/keywatch/config"
	"github.com/keywatch/keywatch/internal/backoff"
)

// checkSafes refuses to watch a chain when a wallet marked account: safe
// is not a Safe keywatch reads (no code, VERSION() or getOwners() fails, or
// an unsupported version): its executions and owner changes would go
// unseen. It waits (with backoff) for a node that does not answer.
func (d *Daemon) checkSafes(ctx context.Context, ch config.Chain, client ethereum.Client) error {
	for _, w := range d.cfg.Wallets {
		if w.Chain != ch.Name || !w.IsSafe() {
			continue
		}
		addr := gethcommon.HexToAddress(w.Address)
		info, err := backoff.Retry(ctx, backoff.New(time.Second, 30*time.Second), func(ctx context.Context) (ethereum.SafeInfo, error) {
			info, err := ethereum.CheckSafe(ctx, client, addr)
			if errors.Is(err, ethereum.ErrNotSafe) {
				return info, backoff.Permanent(err)
			}
			return info, err
		}, func(err error, wait time.Duration) {
			d.log.Warn("cannot check a Safe; retrying", "chain", ch.Name, "wallet", w.Name, "err", err, "retry_in", wait)
		})
		switch {
		case ctx.Err() != nil:
			return nil // shutting down
		case err != nil:
			return fmt.Errorf("chain %s: wallet %s is marked account: safe, but %s is %w: refusing to watch it blind", ch.Name, w.Name, w.Address, err)
		}
		d.log.Info("watching Safe", "chain", ch.Name, "wallet", w.Name, "version", info.Version, "owners", len(info.Owners))
	}
	return nil
}
