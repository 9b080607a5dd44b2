package alerts

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync/atomic"
	"time"

	"github.com/keywatch/keywatch/alertmodel"
	"github.com/keywatch/keywatch/store"
)

// Outbox keeps alerts in the store until NATS has acknowledged them, so a
// NATS outage or a crash loses none. Each message is published once: its
// JetStream message id is remembered after the acknowledgement and a later
// enqueue of the same id is dropped.
type Outbox struct {
	st       store.Store
	remember time.Duration
	seq      atomic.Int64
	wake     chan struct{}
}

const (
	outboxKey  = "alerts:outbox"
	sentPrefix = "alerts:sent:"
)

// NewOutbox makes an outbox; sent ids are remembered for remember (default
// 30 days).
func NewOutbox(st store.Store, remember time.Duration) *Outbox {
	if remember <= 0 {
		remember = 30 * 24 * time.Hour
	}
	return &Outbox{st: st, remember: remember, wake: make(chan struct{}, 1)}
}

// Queued is an alert waiting in the outbox.
type Queued struct {
	Seq   int64            `json:"seq"`
	Alert alertmodel.Alert `json:"alert"`
}

// entryRecord is the codec of the outbox entry of message id, a field of
// the hash at outboxKey: "write outbox entry <id>: ...", "outbox entry <id>
// is corrupt: ...".
func entryRecord(st store.Store, id string) store.Records[Queued] {
	return store.NewRecords[Queued](st, "outbox entry "+id)
}

// Enqueue stores alerts for publication. It is idempotent per message id.
func (o *Outbox) Enqueue(ctx context.Context, as ...alertmodel.Alert) error {
	for i := range as {
		a := &as[i]
		id := a.MsgID()
		if _, err := o.st.Get(ctx, sentPrefix+id); err == nil {
			continue // published before (a replay after a restart)
		} else if !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("outbox: %w", err)
		}
		seq := time.Now().UnixNano() + o.seq.Add(1)
		// Keep the first queued copy: a replay must not reorder it.
		if _, err := o.st.HGet(ctx, outboxKey, id); err == nil {
			continue
		}
		if err := entryRecord(o.st, id).HPut(ctx, outboxKey, id, Queued{Seq: seq, Alert: *a}); err != nil {
			return err
		}
	}
	select {
	case o.wake <- struct{}{}:
	default:
	}
	return nil
}

// Pending lists queued alerts, oldest first.
func (o *Outbox) Pending(ctx context.Context) ([]Queued, error) {
	m, err := o.st.HGetAll(ctx, outboxKey)
	if err != nil {
		return nil, fmt.Errorf("outbox: %w", err)
	}
	out := make([]Queued, 0, len(m))
	for id, b := range m {
		q, err := entryRecord(o.st, id).Decode(b)
		if err != nil {
			return nil, err
		}
		out = append(out, q)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Seq < out[j].Seq })
	return out, nil
}

// Done records that the message was acknowledged and removes it.
func (o *Outbox) Done(ctx context.Context, a *alertmodel.Alert) error {
	id := a.MsgID()
	if err := o.st.Set(ctx, sentPrefix+id, []byte("1"), o.remember); err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	if err := o.st.HDel(ctx, outboxKey, id); err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	return nil
}

// Wake is signalled when alerts are enqueued.
func (o *Outbox) Wake() <-chan struct{} { return o.wake }
