// A hold's record in the store: its keys, its id, reading it and changing
// it atomically.

package holds

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"

	"github.com/keywatch/keywatch/store"
)

// Store keys.
const (
	allKey  = "holds:all"  // sorted set: id by creation time
	openKey = "holds:open" // sorted set: held ids by expiry time
)

func recordKey(id string) string     { return "holds:h:" + id }
func freezeKey(wallet string) string { return "holds:freeze:" + wallet }

// auditedKey marks an alert hold whose creation is in the audit log.
func auditedKey(id string) string { return "holds:audited:" + id }

// idFor makes the hold id for an event or a screening request: the same
// event (pending, then confirmed) or the same request always maps to the
// same hold.
func idFor(source Source, key string) string {
	sum := sha256.Sum256([]byte(string(source) + ":" + key))
	return "h-" + hex.EncodeToString(sum[:8])
}

// record is the codec of hold id's record, at recordKey(id). Its errors
// name the hold: "read hold h-…: …", "hold h-… is corrupt: …".
func (m *Manager) record(id string) store.Records[Hold] {
	return store.NewRecords[Hold](m.o.Store, "hold "+id)
}

// Get reads a hold.
func (m *Manager) Get(ctx context.Context, id string) (Hold, error) {
	h, found, err := m.record(id).Get(ctx, recordKey(id))
	if err != nil {
		return Hold{}, err
	}
	if !found {
		return Hold{}, ErrNotFound
	}
	return h, nil
}

// mark applies change to the stored record of hold h, atomically, and
// leaves the record as stored in *h. change says whether it changed
// anything (nothing is written when not); absent reports that the record is
// gone.
func (m *Manager) mark(ctx context.Context, h *Hold, change func(*Hold) bool) (changed, absent bool, err error) {
	err = m.record(h.ID).Update(ctx, recordKey(h.ID), func(cur Hold, found bool) (Hold, error) {
		changed = false
		if !found {
			return Hold{}, errAbsent
		}
		*h = cur
		if changed = change(h); !changed {
			return Hold{}, store.ErrUnchanged
		}
		return *h, nil
	})
	if errors.Is(err, errAbsent) {
		return false, true, nil
	}
	return changed, false, err
}
