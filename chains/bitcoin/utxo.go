package bitcoin

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/btcsuite/btcd/wire"

	"github.com/keywatch/keywatch/chains"
)

// utxo is an unspent output that belongs to a watched wallet, or (Followed)
// one paid to an address forwarding follows, whose Wallet is then that
// address.
type utxo struct {
	Wallet   string `json:"wallet"`
	Script   []byte `json:"script"`
	Value    int64  `json:"value"`
	Followed bool   `json:"followed,omitempty"`
}

// spent is a watched output a block spent, kept to undo the block.
type spent struct {
	utxo
	By string `json:"by"` // the spending transaction
}

// applied is what one block changed in the set: enough to undo it after a
// reorg, and the events it produced, to hand them out again after a crash
// between applying the block and the watcher's checkpoint.
type applied struct {
	Height  uint64
	Hash    string
	Parent  string
	Spent   map[wire.OutPoint]spent
	Created []wire.OutPoint
	Events  []chains.Event
	// Candidates are outputs the block's outflows (of watched wallets and
	// followed addresses) paid to scripts nobody followed yet, and that the
	// block did not spend again: those whose address forwarding then
	// follows become followed outputs (created in this block, for undo).
	Candidates map[wire.OutPoint]utxo
}

// utxoSet is the watched wallets' unspent outputs as of block Hash at
// Height, with undo data for the last blocks. It lives in the store so that
// a restart knows every coin it knew.
type utxoSet struct {
	Height uint64
	Hash   string // "" before the first block was applied
	UTXOs  map[wire.OutPoint]utxo
	// Journal holds the last blocks applied, oldest first.
	Journal []applied
	// Used is, per xpub wallet and branch, the first index after the last
	// used address.
	Used map[string][2]uint32
	// Wallets are the wallets whose coins the set holds, with the
	// fingerprint of what they watch.
	Wallets map[string]string
	// ScanUntil is the last block of the first start's search for existing
	// coins (blocks up to it only count wallets born by then).
	ScanUntil uint64
}

func newUTXOSet() *utxoSet {
	return &utxoSet{UTXOs: map[wire.OutPoint]utxo{}, Used: map[string][2]uint32{}, Wallets: map[string]string{}}
}

// apply starts the journal entry of a block.
func (s *utxoSet) begin(height uint64, hash, parent string) *applied {
	return &applied{Height: height, Hash: hash, Parent: parent, Spent: map[wire.OutPoint]spent{}}
}

// spend removes a watched output, recording it in the block's entry.
func (s *utxoSet) spend(a *applied, op wire.OutPoint, by string) {
	u, ok := s.UTXOs[op]
	if !ok {
		return
	}
	delete(s.UTXOs, op)
	if a != nil {
		a.Spent[op] = spent{utxo: u, By: by}
	}
}

// create adds a watched output, recording it in the block's entry.
func (s *utxoSet) create(a *applied, op wire.OutPoint, u utxo) {
	s.UTXOs[op] = u
	if a != nil {
		a.Created = append(a.Created, op)
	}
}

// commit moves the tip to the block and keeps its entry (the last keep
// entries are kept).
func (s *utxoSet) commit(a *applied, keep int) {
	s.Height, s.Hash = a.Height, a.Hash
	s.Journal = append(s.Journal, *a)
	if over := len(s.Journal) - keep; over > 0 {
		s.Journal = append([]applied(nil), s.Journal[over:]...)
	}
}

// undo reverts the tip block. Spent outputs come back first, then created
// ones go, so an output created and spent in the same block is gone.
func (s *utxoSet) undo() bool {
	if len(s.Journal) == 0 {
		return false
	}
	a := s.Journal[len(s.Journal)-1]
	s.revert(&a)
	s.Journal = s.Journal[:len(s.Journal)-1]
	s.Height, s.Hash = a.Height-1, a.Parent
	return true
}

// revert undoes an entry's changes without moving the tip.
func (s *utxoSet) revert(a *applied) {
	for op, sp := range a.Spent {
		s.UTXOs[op] = sp.utxo
	}
	for _, op := range a.Created {
		delete(s.UTXOs, op)
	}
}

// tipEvents returns the events of the tip block, if the journal has it.
func (s *utxoSet) tipEvents(hash string) ([]chains.Event, bool) {
	if n := len(s.Journal); n > 0 && s.Journal[n-1].Hash == hash {
		return s.Journal[n-1].Events, true
	}
	return nil, false
}

// spender finds the transaction of a processed block that spent op.
func (s *utxoSet) spender(op wire.OutPoint) (tx string, height uint64, ok bool) {
	for i := len(s.Journal) - 1; i >= 0; i-- {
		if sp, found := s.Journal[i].Spent[op]; found {
			return sp.By, s.Journal[i].Height, true
		}
	}
	return "", 0, false
}

func (s *Source) lookup(op wire.OutPoint) (utxo, bool) {
	u, ok := s.set.UTXOs[op]
	return u, ok
}

// confirmedBalance is what a wallet holds in the watched outputs as applied
// so far (in a block being applied: before the transaction at hand).
func (s *Source) confirmedBalance(wallet string) int64 {
	var sum int64
	for _, u := range s.set.UTXOs {
		if u.Wallet == wallet && !u.Followed {
			sum += u.Value
		}
	}
	return sum
}

// The stored form: outpoints as "txid:vout" strings.
type storedSet struct {
	Height    uint64               `json:"height"`
	Hash      string               `json:"hash"`
	UTXOs     map[string]utxo      `json:"utxos"`
	Journal   []storedApplied      `json:"journal"`
	Used      map[string][2]uint32 `json:"used"`
	Wallets   map[string]string    `json:"wallets"`
	ScanUntil uint64               `json:"scan_until,omitempty"`
}

type storedApplied struct {
	Height     uint64           `json:"height"`
	Hash       string           `json:"hash"`
	Parent     string           `json:"parent"`
	Spent      map[string]spent `json:"spent,omitempty"`
	Created    []string         `json:"created,omitempty"`
	Events     []chains.Event   `json:"events,omitempty"`
	Candidates map[string]utxo  `json:"candidates,omitempty"`
}

func (s *utxoSet) MarshalJSON() ([]byte, error) {
	out := storedSet{Height: s.Height, Hash: s.Hash, UTXOs: make(map[string]utxo, len(s.UTXOs)), Used: s.Used, Wallets: s.Wallets, ScanUntil: s.ScanUntil}
	for op, u := range s.UTXOs {
		out.UTXOs[op.String()] = u
	}
	for _, a := range s.Journal {
		sa := storedApplied{Height: a.Height, Hash: a.Hash, Parent: a.Parent, Events: a.Events, Spent: map[string]spent{}}
		for op, sp := range a.Spent {
			sa.Spent[op.String()] = sp
		}
		for _, op := range a.Created {
			sa.Created = append(sa.Created, op.String())
		}
		if len(a.Candidates) > 0 {
			sa.Candidates = make(map[string]utxo, len(a.Candidates))
			for op, u := range a.Candidates {
				sa.Candidates[op.String()] = u
			}
		}
		out.Journal = append(out.Journal, sa)
	}
	return json.Marshal(out)
}

func (s *utxoSet) UnmarshalJSON(b []byte) error {
	var in storedSet
	if err := json.Unmarshal(b, &in); err != nil {
		return err
	}
	*s = *newUTXOSet()
	s.Height, s.Hash, s.ScanUntil = in.Height, in.Hash, in.ScanUntil
	if in.Used != nil {
		s.Used = in.Used
	}
	if in.Wallets != nil {
		s.Wallets = in.Wallets
	}
	for k, u := range in.UTXOs {
		op, err := parseOutPoint(k)
		if err != nil {
			return err
		}
		s.UTXOs[op] = u
	}
	for _, sa := range in.Journal {
		a := applied{Height: sa.Height, Hash: sa.Hash, Parent: sa.Parent, Events: sa.Events, Spent: map[wire.OutPoint]spent{}}
		for k, sp := range sa.Spent {
			op, err := parseOutPoint(k)
			if err != nil {
				return err
			}
			a.Spent[op] = sp
		}
		for _, k := range sa.Created {
			op, err := parseOutPoint(k)
			if err != nil {
				return err
			}
			a.Created = append(a.Created, op)
		}
		for k, u := range sa.Candidates {
			op, err := parseOutPoint(k)
			if err != nil {
				return err
			}
			if a.Candidates == nil {
				a.Candidates = map[wire.OutPoint]utxo{}
			}
			a.Candidates[op] = u
		}
		s.Journal = append(s.Journal, a)
	}
	return nil
}

// parseOutPoint reads "txid:vout".
func parseOutPoint(s string) (wire.OutPoint, error) {
	op, err := wire.NewOutPointFromString(s)
	if err != nil {
		return wire.OutPoint{}, fmt.Errorf("outpoint %q: %w", s, err)
	}
	return *op, nil
}

// scriptHex is a script as shown in evidence.
func scriptHex(b []byte) string { return hex.EncodeToString(b) }

// key is where the set of watched outputs is stored.
func (s *Source) key() string { return "watch:" + s.opts.Chain + ":utxo" }

// load reads the watched outputs from the store once, and brings them in
// line with the configured wallets.
func (s *Source) load(ctx context.Context) error {
	if s.set != nil {
		return nil
	}
	set, _, err := s.record.Get(ctx, s.key())
	if err != nil {
		return err
	}
	if set == nil { // none stored yet
		set = newUTXOSet()
	}
	if err := s.dec.watch.restoreUsed(set.Used); err != nil {
		return err
	}
	s.set = set
	s.dirty = true
	if set.Hash != "" {
		if err := s.reconcileWallets(ctx); err != nil {
			s.set = nil
			return err
		}
	}
	return nil
}

// save writes the watched outputs, with the xpub wallets' windows, to the
// store.
func (s *Source) save(ctx context.Context) error {
	s.set.Used = s.dec.watch.used()
	return s.record.Put(ctx, s.key(), s.set, 0)
}
