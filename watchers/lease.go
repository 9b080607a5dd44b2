package watchers

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/keywatch/keywatch/store"
)

// A chain is followed by one instance at a time. Instances that share a
// store would otherwise all write the chain's checkpoint, and one whose node
// is a block behind another's would take the other's newest block for a
// reorg and retract its events, resolving alerts that should still page. The
// instance holding a chain's lease follows it; the others stand by and claim
// the lease when it is released (a clean stop) or runs out (a crash, a lost
// store connection).

// LeaseOptions make a Follower share its chain with other instances.
type LeaseOptions struct {
	Instance string        // this process's name, as in its heartbeats
	TTL      time.Duration // how long a lease outlives its last renewal (default 15s)
	// Now is the wall clock the lease is kept by (default time.Now). The
	// instances' clocks must agree to well within TTL.
	Now func() time.Time
}

// lease is the record at watch:<chain>:lease.
type lease struct {
	Holder string    `json:"holder"`
	Until  time.Time `json:"until"`
}

// leases is the codec of the chain's lease record. The lease is read and
// written in raw store updates (see claim and release), which decode with it:
// a lease record that does not parse names no live holder, so it is taken
// over rather than failing the claim.
func leases(st store.Store, chain string) store.Records[lease] {
	return store.NewRecords[lease](st, "lease of chain "+chain)
}

var (
	errLeaseHeld = errors.New("lease held by another instance")
	// ErrLeaseLost is returned by a step that found this instance no longer
	// holds the chain's lease: another instance may be following it.
	ErrLeaseLost = errors.New("this instance no longer holds the chain's lease")
)

func (f *Follower) leaseKey() string { return "watch:" + f.opts.Chain + ":lease" }

// claim takes or renews the chain's lease. It returns the holder: this
// instance, or the one that holds an unexpired lease.
func (f *Follower) claim(ctx context.Context) (string, error) {
	l := f.opts.Lease
	now := l.Now()
	var held lease
	err := f.opts.Store.Update(ctx, f.leaseKey(), func(old []byte, found bool) ([]byte, error) {
		if found {
			// A record that does not parse is taken over: it cannot name a
			// live holder.
			if cur, err := f.leases.Decode(old); err == nil && cur.Holder != l.Instance && now.Before(cur.Until) {
				held = cur
				return nil, errLeaseHeld
			}
		}
		return f.leases.Encode(lease{Holder: l.Instance, Until: now.Add(l.TTL)})
	})
	if errors.Is(err, errLeaseHeld) {
		return held.Holder, nil
	}
	if err != nil {
		return "", fmt.Errorf("claim the lease of chain %s: %w", f.opts.Chain, err)
	}
	// Counted from before the write, so this instance stops trusting its
	// lease no later than the others start ignoring it.
	f.mu.Lock()
	f.until = now.Add(l.TTL)
	f.mu.Unlock()
	return l.Instance, nil
}

// release gives the lease up if this instance holds it, so another instance
// takes over at once.
func (f *Follower) release(ctx context.Context) {
	f.mu.Lock()
	f.until = time.Time{}
	f.mu.Unlock()
	err := f.opts.Store.Update(ctx, f.leaseKey(), func(old []byte, found bool) ([]byte, error) {
		if !found {
			return nil, errLeaseHeld
		}
		if cur, err := f.leases.Decode(old); err != nil || cur.Holder != f.opts.Lease.Instance {
			return nil, errLeaseHeld
		}
		return nil, nil // delete
	})
	if err != nil && !errors.Is(err, errLeaseHeld) {
		f.log.Warn("cannot release the chain's lease; another instance takes over when it runs out", "err", err, "ttl", f.opts.Lease.TTL)
	}
}

// owned reports whether this instance may still act on the chain: it follows
// without a lease, or its lease has not run out since the last renewal.
func (f *Follower) owned() bool {
	if f.opts.Lease == nil {
		return true
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.opts.Lease.Now().Before(f.until)
}

// runLeased stands by until this instance holds the chain's lease, follows
// the chain while it keeps the lease, and releases it when ctx ends.
func (f *Follower) runLeased(ctx context.Context) error {
	l := f.opts.Lease
	// The holder renews every third of the lease; a standby asks at least
	// every second, so a released lease is taken over at once.
	every := l.TTL / 3
	poll := min(every, time.Second)
	standingBy, failing := "", false
	for {
		holder, err := f.claim(ctx)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			f.opts.Metrics.error(f.opts.Chain)
			if !failing {
				f.log.Warn("cannot claim the chain's lease; retrying", "err", err, "retry_in", poll)
			}
			failing = true
		case holder != l.Instance:
			failing = false
			f.opts.Metrics.standby(f.opts.Chain, holder)
			if holder != standingBy {
				f.log.Info("standing by: another instance follows this chain", "holder", holder)
				standingBy = holder
			}
		default:
			failing, standingBy = false, ""
			f.lead(ctx, every)
			f.opts.Metrics.stopped(f.opts.Chain)
			f.mu.Lock()
			f.until = time.Time{} // whatever the record says, act on it no more until claimed again
			f.mu.Unlock()
			if ctx.Err() != nil {
				rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
				f.release(rctx)
				cancel()
				return nil
			}
			continue // lost it: see who holds it now
		}
		timer := time.NewTimer(poll)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case <-timer.C:
		}
	}
}

// lead follows the chain and renews the lease every interval; it returns
// when ctx ends or the lease is lost (taken by another instance, or not
// renewed before it ran out).
func (f *Follower) lead(ctx context.Context, every time.Duration) {
	f.log.Info("following: this instance holds the chain's lease")
	f.opts.Metrics.lead(f.opts.Chain)
	if r, ok := f.src.(Resetter); ok {
		r.Reset()
	}
	fctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.follow(fctx)
	}()
	defer func() {
		cancel()
		<-done
	}()
	ticker := time.NewTicker(every)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		holder, err := f.claim(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case err == nil && holder != f.opts.Lease.Instance:
			f.log.Warn("another instance took the chain's lease over; standing by", "holder", holder)
			return
		case err != nil && !f.owned():
			f.log.Error("the chain's lease ran out before it could be renewed; stopping until it can be claimed again", "err", err)
			return
		case err != nil:
			f.log.Warn("cannot renew the chain's lease; retrying", "err", err)
		}
	}
}
