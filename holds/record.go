// A hold's record in the store: its keys, its id, reading it and changing
// it atomically.

package holds

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

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

// Get reads a hold.
func (m *Manager) Get(ctx context.Context, id string) (Hold, error) {
	b, err := m.o.Store.Get(ctx, recordKey(id))
	if errors.Is(err, store.ErrNotFound) {
		return Hold{}, ErrNotFound
	}
	if err != nil {
		return Hold{}, fmt.Errorf("read hold %s: %w", id, err)
	}
	return decode(id, b)
}

func decode(id string, b []byte) (Hold, error) {
	var h Hold
	if err := json.Unmarshal(b, &h); err != nil {
		return Hold{}, fmt.Errorf("hold %s: stored record is corrupt: %w", id, err)
	}
	return h, nil
}

// mark applies change to the stored record of hold h, atomically, and
// leaves the record as stored in *h. change says whether it changed
// anything (nothing is written when not); absent reports that the record is
// gone.
func (m *Manager) mark(ctx context.Context, h *Hold, change func(*Hold) bool) (changed, absent bool, err error) {
	err = m.o.Store.Update(ctx, recordKey(h.ID), func(old []byte, found bool) ([]byte, error) {
		changed = false
		if !found {
			return nil, errAbsent
		}
		cur, err := decode(h.ID, old)
		if err != nil {
			return nil, err
		}
		*h = cur
		if changed = change(h); !changed {
			return old, nil
		}
		return json.Marshal(h)
	})
	if errors.Is(err, errAbsent) {
		return false, true, nil
	}
	return changed, false, err
}
