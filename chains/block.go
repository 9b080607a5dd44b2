package chains

import (
	"errors"
	"time"
)

// Block is the part of a block header that following a chain needs.
type Block struct {
	Number uint64    `json:"number"`
	Hash   string    `json:"hash"`
	Parent string    `json:"parent"`
	Time   time.Time `json:"time"`
}

// ErrNoBlock is returned by a chain source's BlockAt when the node has no
// block at that height (its chain is shorter).
var ErrNoBlock = errors.New("no block at that height")

// PendingTx is an unconfirmed transaction that moves watched funds.
type PendingTx struct {
	Tx     string
	Events []Event
}
