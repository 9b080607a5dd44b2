// Package audit keeps keywatch's tamper-evident record of decisions: every
// screening decision, hold, approval, rejection, expiry, silence and
// configuration reload is appended to a hash chain in the store. Each entry
// carries the hash of the entry before it, so changing or removing any entry
// breaks the chain from that point on, and Verify names the first entry that
// no longer fits.
//
// Entries live under audit:e:<seq>, one key each, written with SetNX: two
// instances appending at once cannot both take a sequence number, so the
// chain never forks. audit:head remembers the newest entry, so removing
// entries from the end is noticed too.
package audit

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/keywatch/keywatch/store"
)

// Genesis is the prev hash of the first entry.
const Genesis = "0000000000000000000000000000000000000000000000000000000000000000"

// Actions recorded by keywatch itself. Other packages may record their own
// (silence.add, say); an action is a short dotted name.
const (
	ActionScreen       = "screen.decision"
	ActionHoldCreate   = "hold.create"
	ActionHoldApprove  = "hold.approve"
	ActionHoldReject   = "hold.reject"
	ActionHoldEscalate = "hold.escalate"
	ActionHoldExpire   = "hold.expire"
	ActionAlertResolve = "alert.resolve"
	ActionConfigReload = "config.reload"
)

// Entry is one record of the log.
type Entry struct {
	Seq     int64           `json:"seq"`
	At      time.Time       `json:"at"`
	Action  string          `json:"action"`
	Actor   string          `json:"actor"`
	Details json.RawMessage `json:"details,omitempty"`
	Prev    string          `json:"prev"` // hash of entry seq-1 (Genesis for the first)
	Hash    string          `json:"hash"` // ComputeHash of this entry
}

// ComputeHash is the sha256 (hex) over the entry's fields and the previous
// hash, each length-prefixed so that no two different entries hash alike.
// Anyone can recompute it: the fields, in this order, each written as its
// length in bytes, ":", the bytes and a newline: "keywatch-audit-v1", seq
// (decimal), at (RFC 3339 with nanoseconds, UTC), action, actor, details
// (compact JSON), prev.
func (e Entry) ComputeHash() string {
	h := sha256.New()
	field := func(s string) {
		h.Write([]byte(strconv.Itoa(len(s))))
		h.Write([]byte{':'})
		h.Write([]byte(s))
		h.Write([]byte{'\n'})
	}
	field("keywatch-audit-v1")
	field(strconv.FormatInt(e.Seq, 10))
	field(e.At.UTC().Format(time.RFC3339Nano))
	field(e.Action)
	field(e.Actor)
	// Details are hashed in compact form, so that an entry re-indented on
	// its way through the API still verifies.
	var details bytes.Buffer
	if err := json.Compact(&details, e.Details); err != nil {
		details.Reset()
		details.Write(e.Details)
	}
	field(details.String())
	field(e.Prev)
	return hex.EncodeToString(h.Sum(nil))
}

// Head is the newest entry's sequence number and hash.
type Head struct {
	Seq  int64  `json:"seq"`
	Hash string `json:"hash"`
}

const headKey = "audit:head"

func entryKey(seq int64) string { return "audit:e:" + strconv.FormatInt(seq, 10) }

// entry is the codec of entry seq, named for its errors ("audit entry 5 is
// corrupt: ...").
func (l *Log) entry(seq int64) store.Records[Entry] {
	return store.NewRecords[Entry](l.st, "audit entry "+strconv.FormatInt(seq, 10))
}

// Options are the log's dependencies.
type Options struct {
	Now        func() time.Time
	Logger     *slog.Logger
	Registerer prometheus.Registerer // may be nil
	// Anchors, when set, reads the heads anchored outside the store, which
	// GET /v1/audit?verify=1 checks the chain against.
	Anchors func(ctx context.Context) ([]Anchor, error)
}

// Log appends to and reads the audit chain in a store.
type Log struct {
	st   store.Store
	head store.Records[Head] // at headKey
	now  func() time.Time
	log  *slog.Logger

	mu  sync.Mutex // serialises this process's appends
	tip *Head      // the newest entry this process knows of; nil: look it up

	anchors func(ctx context.Context) ([]Anchor, error)

	appended prometheus.Counter
	failures prometheus.Counter
}

// New makes a log over st.
func New(st store.Store, o Options) *Log {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	l := &Log{st: st, head: store.NewRecords[Head](st, "audit head"), now: o.Now, log: o.Logger, anchors: o.Anchors,
		appended: prometheus.NewCounter(prometheus.CounterOpts{Name: "keywatch_audit_entries_appended_total", Help: "Entries appended to the audit log."}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{Name: "keywatch_audit_append_failures_total", Help: "Audit entries that could not be written."}),
	}
	if o.Registerer != nil {
		o.Registerer.MustRegister(l.appended, l.failures)
	}
	return l
}

// maxAppendAttempts bounds how often an append retries when other writers
// keep taking the next sequence number.
const maxAppendAttempts = 64

// Record appends an entry at the end of the chain: what happened (action),
// who did it (actor: a token name, or "keywatch" for the system) and
// details (any JSON value).
func (l *Log) Record(ctx context.Context, action, actor string, details any) error {
	if action == "" {
		return errors.New("audit: action is required")
	}
	var raw json.RawMessage
	if details != nil {
		b, err := json.Marshal(details)
		if err != nil {
			return fmt.Errorf("audit %s: details: %w", action, err)
		}
		raw = b
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.append(ctx, action, actor, raw); err != nil {
		l.failures.Inc()
		l.tip = nil // look the tip up again next time
		return fmt.Errorf("audit %s: %w", action, err)
	}
	l.appended.Inc()
	return nil
}

func (l *Log) append(ctx context.Context, action, actor string, details json.RawMessage) error {
	if l.tip == nil {
		tip, err := l.findTip(ctx)
		if err != nil {
			return err
		}
		l.tip = &tip
	}
	for range maxAppendAttempts {
		e := Entry{Seq: l.tip.Seq + 1, At: l.now().UTC(), Action: action, Actor: actor, Details: details, Prev: l.tip.Hash}
		e.Hash = e.ComputeHash()
		ok, err := l.entry(e.Seq).PutNew(ctx, entryKey(e.Seq), e, 0)
		if err != nil {
			return err
		}
		if ok {
			l.tip = &Head{Seq: e.Seq, Hash: e.Hash}
			if err := l.advanceHead(ctx, *l.tip); err != nil {
				return err
			}
			return nil
		}
		// Another writer took this number: catch up with the end.
		tip, err := l.walk(ctx, *l.tip)
		if err != nil {
			return err
		}
		l.tip = &tip
	}
	return fmt.Errorf("gave up after %d attempts: other writers keep appending", maxAppendAttempts)
}

// advanceHead moves audit:head forward to h (never back). An unreadable
// head is overwritten with h rather than failing the append.
func (l *Log) advanceHead(ctx context.Context, h Head) error {
	return l.st.Update(ctx, headKey, func(old []byte, found bool) ([]byte, error) {
		if found {
			if cur, err := l.head.Decode(old); err == nil && cur.Seq >= h.Seq {
				return old, nil
			}
		}
		return l.head.Encode(h)
	})
}

// readHead returns audit:head (zero when the log is empty).
func (l *Log) readHead(ctx context.Context) (Head, error) {
	h, found, err := l.head.Get(ctx, headKey)
	if err == nil && !found {
		return Head{Hash: Genesis}, nil
	}
	return h, err
}

// findTip starts at audit:head and walks forward over entries appended after
// it was last moved (a writer that stopped between the two writes).
func (l *Log) findTip(ctx context.Context) (Head, error) {
	tip, err := l.readHead(ctx)
	if err != nil {
		return Head{}, err
	}
	return l.walk(ctx, tip)
}

// walk follows entries after tip to the last one.
func (l *Log) walk(ctx context.Context, tip Head) (Head, error) {
	for {
		e, found, err := l.get(ctx, tip.Seq+1)
		if err != nil {
			return Head{}, err
		}
		if !found {
			return tip, nil
		}
		tip = Head{Seq: e.Seq, Hash: e.Hash}
	}
}

// get reads entry seq; found is false when there is none. An entry that is
// not the JSON of one is an error wrapping store.ErrCorrupt.
func (l *Log) get(ctx context.Context, seq int64) (e Entry, found bool, err error) {
	return l.entry(seq).Get(ctx, entryKey(seq))
}

// Page is a run of consecutive entries and the log's head.
type Page struct {
	Entries []Entry `json:"entries"`
	Head    Head    `json:"head"`
	// Next is the value of after for the following page; 0 when this page
	// reached the head.
	Next int64 `json:"next,omitempty"`
	// Missing lists sequence numbers in the page's range that have no entry
	// (removed): Verify says more.
	Missing []int64 `json:"missing,omitempty"`
}

// Read returns up to limit entries with seq > after, oldest first.
func (l *Log) Read(ctx context.Context, after int64, limit int) (Page, error) {
	if limit <= 0 {
		limit = 100
	}
	head, err := l.readHead(ctx)
	if err != nil {
		return Page{}, fmt.Errorf("audit: %w", err)
	}
	p := Page{Head: head, Entries: []Entry{}}
	seq := after + 1
	for ; len(p.Entries) < limit; seq++ {
		e, found, err := l.get(ctx, seq)
		switch {
		case errors.Is(err, store.ErrCorrupt):
			e = Entry{Seq: seq, Hash: "unreadable"} // Check names it
		case err != nil:
			return Page{}, fmt.Errorf("audit: %w", err)
		case !found:
			if seq > head.Seq {
				return p, nil // the end
			}
			p.Missing = append(p.Missing, seq)
			continue
		}
		p.Entries = append(p.Entries, e)
	}
	if len(p.Entries) == limit {
		p.Next = seq - 1
	}
	return p, nil
}

// Verify reads the whole chain and checks it.
func (l *Log) Verify(ctx context.Context) (Report, error) {
	return l.VerifyAnchored(ctx, nil)
}

// VerifyAnchored reads the whole chain and checks it, and against the heads
// anchored outside the store (see CheckAnchored).
func (l *Log) VerifyAnchored(ctx context.Context, anchors []Anchor) (Report, error) {
	entries, head, err := l.readAll(ctx)
	if err != nil {
		return Report{}, err
	}
	return CheckAnchored(entries, head, anchors), nil
}

// VerifyWithAnchors verifies the chain against the anchors Options.Anchors
// reads. When they cannot be read, the chain is checked alone and the
// report says why in Unanchored.
func (l *Log) VerifyWithAnchors(ctx context.Context) (Report, error) {
	if l.anchors == nil {
		return l.Verify(ctx)
	}
	as, aerr := l.anchors(ctx)
	entries, head, err := l.readAll(ctx)
	if err != nil {
		return Report{}, err
	}
	return CheckAgainst(entries, head, as, aerr), nil
}

// CheckAgainst is CheckAnchored for anchors that were read with error
// anchorsErr: when they could not be read, or none exist for a log that has
// entries, the chain is checked alone and Unanchored says so.
func CheckAgainst(entries []Entry, head Head, anchors []Anchor, anchorsErr error) Report {
	if anchorsErr != nil {
		anchors = nil
	}
	r := CheckAnchored(entries, head, anchors)
	switch {
	case !r.OK:
	case anchorsErr != nil:
		r.Unanchored = anchorsErr.Error()
	case len(anchors) == 0 && r.Entries > 0:
		r.Unanchored = "no head has been anchored yet"
	}
	return r
}

// readAll reads every entry, with gaps and placeholders where entries are
// missing or unreadable (for Check to name), and the recorded head.
func (l *Log) readAll(ctx context.Context) ([]Entry, Head, error) {
	head, err := l.readHead(ctx)
	if err != nil {
		return nil, Head{}, fmt.Errorf("audit: %w", err)
	}
	var entries []Entry
	for seq := int64(1); ; seq++ {
		e, found, err := l.get(ctx, seq)
		switch {
		case errors.Is(err, store.ErrCorrupt):
			entries = append(entries, Entry{Seq: seq, Hash: "unreadable"})
			continue
		case err != nil:
			return nil, Head{}, fmt.Errorf("audit: %w", err)
		case !found:
			if seq > head.Seq {
				return entries, head, nil
			}
			continue // a gap: Check names it
		}
		if e.Seq != seq {
			e = Entry{Seq: seq, Hash: "moved"} // an entry copied under another number
		}
		entries = append(entries, e)
	}
}

// Head returns the newest entry as the store records it (zero when the log
// is empty).
func (l *Log) Head(ctx context.Context) (Head, error) {
	return l.readHead(ctx)
}

// ErrNoAnchors says that no head was ever anchored, or the anchors are gone.
var ErrNoAnchors = errors.New("no audit anchors")

// Anchor is a head of the chain recorded outside the store, where whoever
// can rewrite the store cannot rewrite it too (package audit/anchor keeps
// them in JetStream).
type Anchor struct {
	Seq  int64     `json:"seq"`
	Hash string    `json:"hash"`
	At   time.Time `json:"at"` // when it was anchored
	By   string    `json:"by"` // the instance that anchored it
}

// Report is the outcome of a verification.
type Report struct {
	OK      bool `json:"ok"`
	Entries int  `json:"entries"` // entries read
	Head    Head `json:"head"`
	// FirstBad is the sequence number of the first entry that was altered
	// or removed (0 when OK).
	FirstBad int64  `json:"first_bad,omitempty"`
	Problem  string `json:"problem,omitempty"`
	// Anchors is how many anchored heads the chain was checked against,
	// the newest anchored at AnchoredAt.
	Anchors    int        `json:"anchors,omitempty"`
	AnchoredAt *time.Time `json:"anchored_at,omitempty"`
	// Unanchored says why the chain was not checked against anchors.
	Unanchored string `json:"unanchored,omitempty"`
}

func (r Report) String() string {
	if r.OK && r.Anchors > 0 {
		return fmt.Sprintf("audit log OK: %d entries, head %d %s; matches %d anchored heads, the newest anchored at %s",
			r.Entries, r.Head.Seq, r.Head.Hash, r.Anchors, r.AnchoredAt.UTC().Format(time.RFC3339))
	}
	if r.OK && r.Unanchored != "" {
		return fmt.Sprintf("audit log OK: %d entries, head %d %s; NOT checked against anchored heads: %s", r.Entries, r.Head.Seq, r.Head.Hash, r.Unanchored)
	}
	if r.OK {
		return fmt.Sprintf("audit log OK: %d entries, head %d %s", r.Entries, r.Head.Seq, r.Head.Hash)
	}
	return fmt.Sprintf("audit log BROKEN at entry %d: %s", r.FirstBad, r.Problem)
}

// CheckAnchored is Check, then a comparison with heads anchored outside the
// store. A chain rewritten consistently from some entry on (every hash
// recomputed, the head moved) passes Check but no longer holds the hash an
// anchor recorded for an entry after the rewrite began; a chain cut short
// no longer reaches the newest anchor. FirstBad is then the first entry
// after the last anchor that still matches: the rewrite began there or
// later.
func CheckAnchored(entries []Entry, head Head, anchors []Anchor) Report {
	r := Check(entries, head)
	if !r.OK || len(anchors) == 0 {
		return r
	}
	hashes := make(map[int64]string, len(entries))
	for _, e := range entries {
		hashes[e.Seq] = e.Hash
	}
	sorted := append([]Anchor(nil), anchors...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Seq < sorted[j].Seq })
	good := int64(0)
	for _, a := range sorted {
		h, ok := hashes[a.Seq]
		switch {
		case !ok:
			r.OK, r.FirstBad = false, good+1
			r.Problem = fmt.Sprintf("the log ends at entry %d, but %s anchored entry %d (%s) at %s: entries from %d on were rewritten or removed",
				head.Seq, a.By, a.Seq, short(a.Hash), a.At.UTC().Format(time.RFC3339), good+1)
			return r
		case h != a.Hash:
			r.OK, r.FirstBad = false, good+1
			r.Problem = fmt.Sprintf("the chain was rewritten: %s anchored entry %d as %s at %s, it is now %s; the rewrite begins between entries %d and %d",
				a.By, a.Seq, short(a.Hash), a.At.UTC().Format(time.RFC3339), short(h), good+1, a.Seq)
			return r
		}
		good = a.Seq
	}
	newest := sorted[0].At
	for _, a := range sorted {
		if a.At.After(newest) {
			newest = a.At
		}
	}
	r.Anchors, r.AnchoredAt = len(sorted), &newest
	return r
}

// Check verifies a chain: entries in ascending seq order as read from the
// store (gaps where entries are missing) and the recorded head. It names the
// first entry that was altered or removed.
func Check(entries []Entry, head Head) Report {
	r := Report{Entries: len(entries), Head: head}
	bad := func(seq int64, format string, args ...any) Report {
		r.FirstBad, r.Problem = seq, fmt.Sprintf(format, args...)
		return r
	}
	prev, want := Genesis, int64(1)
	for _, e := range entries {
		switch {
		case e.Seq > want && e.Seq == want+1:
			return bad(want, "entry %d was removed", want)
		case e.Seq > want:
			return bad(want, "entries %d to %d were removed", want, e.Seq-1)
		case e.Seq < want:
			return bad(want, "entry %d was altered: it holds a copy of entry %d", want, e.Seq)
		case e.Hash == "unreadable" || e.Hash == "moved":
			return bad(e.Seq, "entry %d was altered: it is not a readable entry %d", e.Seq, e.Seq)
		case e.ComputeHash() != e.Hash:
			return bad(e.Seq, "entry %d was altered: its content no longer matches its hash", e.Seq)
		case e.Prev != prev && e.Seq > 1:
			return bad(e.Seq-1, "entry %d was altered or replaced: entry %d records its hash as %s, it is now %s", e.Seq-1, e.Seq, short(e.Prev), short(prev))
		case e.Prev != prev:
			return bad(e.Seq, "entry %d was altered: the first entry must follow the genesis hash", e.Seq)
		}
		prev, want = e.Hash, e.Seq+1
	}
	switch {
	case head.Seq >= want && head.Seq == want:
		return bad(want, "entry %d, the last, was removed (the head records %d entries)", want, head.Seq)
	case head.Seq >= want:
		return bad(want, "entries %d to %d were removed from the end (the head records %d entries)", want, head.Seq, head.Seq)
	case head.Seq == want-1 && head.Seq > 0 && head.Hash != prev:
		return bad(head.Seq, "entry %d, the last, was altered or replaced: the head records its hash as %s, it is now %s", head.Seq, short(head.Hash), short(prev))
	}
	r.OK = true
	return r
}

func short(h string) string {
	if len(h) > 16 {
		return h[:16] + "…"
	}
	return h
}
