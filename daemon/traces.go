package daemon

import (
	"context"
	"fmt"
	"time"

	"github.com/keywatch/keywatch/alertmodel"
	"github.com/keywatch/keywatch/chains"
	"github.com/keywatch/keywatch/chains/ethereum"
	"github.com/keywatch/keywatch/config"
)

// traceOptions gives an EVM chain's source the daemon's log and its
// trace-fallback alert.
func (d *Daemon) traceOptions(ch config.Chain) func(*ethereum.Options) {
	return func(o *ethereum.Options) {
		o.Logger = d.log.With("part", "watcher")
		o.OnTraceFallback = func(ctx context.Context, b chains.Block, err error) error {
			return d.publish(ctx, traceFallbackAlert(ch.Name, b, err, d.opts.Now()))
		}
	}
}

// traceFallbackAlert is the system alert saying that the node's tracer
// failed on a block, after retries, so the block's internal value movements
// were not read: its watched contracts were checked by balance instead. One
// alert per block (its id names the block's number and hash).
func traceFallbackAlert(chain string, b chains.Block, cause error, now time.Time) alertmodel.Alert {
	subject := fmt.Sprintf("%s:%d:%s", chain, b.Number, b.Hash)
	reasons := []string{
		fmt.Sprintf("chain %s: the node could not trace block %d (%s): %v", chain, b.Number, b.Hash, cause),
		"the block's internal value movements were not read: its watched contracts were checked by balance instead " +
			"(a fall nothing seen explains is an outflow to unknown); internal inflows, and hops of followed addresses made by internal calls, in this block are not seen",
	}
	a := alertmodel.System(alertmodel.KindTraceFallback, subject, alertmodel.High, chain, reasons, now)
	a.Event.Block, a.Event.BlockHash = b.Number, b.Hash
	return a
}
