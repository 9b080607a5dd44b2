package daemon

import (
	"context"
	"fmt"
	"time"

	gethcommon "github.com/ethereum/go-ethereum/common"

	"github.com/keywatch/keywatch/alertmodel"
	"github.com/keywatch/keywatch/chains/ethereum"
	"github.com/keywatch/keywatch/config"
	"github.com/keywatch/keywatch/watchers"
	"github.com/keywatch/keywatch/watchers/safequeue"
)

// safeQueue builds the Safe queue poller of an EVM chain that sets
// safe_tx_service (nil when it sets none, or watches no Safe). Its events go
// to the policy engine as the follower's do; it polls while this instance
// holds the chain's lease.
func (d *Daemon) safeQueue(ch config.Chain, client ethereum.Client, m *watchers.Metrics) (*safequeue.Poller, error) {
	if ch.SafeTxService == "" {
		return nil, nil
	}
	var safes []safequeue.Safe
	var keys []safequeue.Key
	for _, w := range d.cfg.Wallets {
		if w.Chain != ch.Name {
			continue
		}
		addr := gethcommon.HexToAddress(w.Address)
		if w.IsSafe() {
			safes = append(safes, safequeue.Safe{Name: w.Name, Address: addr, Role: w.Role, Owner: w.Owner})
		}
		if w.Role == "employee-key" {
			keys = append(keys, safequeue.Key{Name: w.Name, Address: addr, Owner: w.Owner})
		}
	}
	if len(safes) == 0 {
		d.log.Warn("safe_tx_service is set but no wallet of the chain is a Safe (account: safe): no queue to poll", "chain", ch.Name)
		return nil, nil
	}
	node, ok := client.(safequeue.Node)
	if !ok {
		return nil, fmt.Errorf("chain %s: safe_tx_service needs a node client that can call contracts", ch.Name)
	}
	svc, err := safequeue.NewService(ch.SafeTxService, safequeue.ServiceOptions{APIKey: ch.SafeTxServiceKey().Reveal()})
	if err != nil {
		return nil, fmt.Errorf("chain %s: %w", ch.Name, err)
	}
	return safequeue.New(svc, node, safequeue.Options{
		Chain: ch.Name, Safes: safes, Keys: keys,
		NativeSymbol: ch.NativeSymbol, NativeUSD: ch.NativeUSD, Confirmations: ch.Confirmations,
		Interval: d.opts.SafeQueueInterval,
		Store:    d.Store, Deliver: d.Engine.Process, Failing: d.safeQueueFailing(ch.Name),
		Active: func() bool { return !standby(m, ch.Name) },
		Logger: d.log, Now: d.opts.Now,
	})
}

// standby says whether another instance follows the chain.
func standby(m *watchers.Metrics, chain string) bool {
	for _, s := range m.Status() {
		if s.Chain == chain {
			return s.Standby
		}
	}
	return false
}

// safeQueueFailing raises a safe-queue-failing system alert when a Safe's
// queue has been unreadable for a while, and resolves it when it can be
// read again.
func (d *Daemon) safeQueueFailing(chain string) func(context.Context, safequeue.Failure) error {
	return func(ctx context.Context, f safequeue.Failure) error {
		subject := fmt.Sprintf("%s:%s:%d", chain, f.Safe, f.Since.Unix())
		now := d.opts.Now()
		a := alertmodel.System(alertmodel.KindSafeQueueFailing, subject, alertmodel.High, chain, []string{fmt.Sprintf(
			"the Safe queue of %s (%s) has not been readable since %s: %s; its queued transactions are not judged before execution (executions on chain still are)",
			f.Safe, f.Address.Hex(), f.Since.UTC().Format(time.RFC3339), f.Err)}, now)
		a.Wallet = f.Safe
		if f.Over {
			a = a.Resolved("the Safe queue can be read again", now)
		}
		return d.publish(ctx, a)
	}
}
