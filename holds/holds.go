// Package holds stops money until people release it. A hold comes from an
// alert whose policy has the hold action (funds already moved: the wallet
// involved and its owner's other keys are frozen) or from the screening API
// (a withdrawal asked for and not yet signed: the request waits). A hold is
// released by a quorum of distinct approvers, none of them the requester or
// the owner of a key involved; one rejection ends it; nobody deciding in time
// expires it, which never releases anything.
//
// Every change to a hold is one atomic read-modify-write of its record in
// the store (store.Update), so concurrent approvals on several instances
// count exactly once each.
package holds

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/keywatch/keywatch/alertmodel"
	"github.com/keywatch/keywatch/audit"
	"github.com/keywatch/keywatch/chains"
	"github.com/keywatch/keywatch/config"
	"github.com/keywatch/keywatch/intents"
	"github.com/keywatch/keywatch/store"
)

// Status of a hold.
type Status string

const (
	Held     Status = "held"     // waiting for approvals
	Approved Status = "approved" // released by a quorum
	Rejected Status = "rejected" // ended by one rejection
	Expired  Status = "expired"  // nobody decided in time; nothing was released
)

// Source says what made a hold.
type Source string

const (
	FromAlert  Source = "alert"  // an outflow seen on chain, by a policy with the hold action
	FromScreen Source = "screen" // a withdrawal screened before signing
)

// Approval is one approver's decision.
type Approval struct {
	By      string    `json:"by"`
	At      time.Time `json:"at"`
	Comment string    `json:"comment,omitempty"`
}

// Request is the withdrawal a screening hold is about.
type Request struct {
	Chain  string        `json:"chain"`
	Wallet string        `json:"wallet"`
	To     string        `json:"to"`
	Asset  string        `json:"asset"`
	Amount chains.Amount `json:"amount"`
	USD    float64       `json:"usd"`
}

// Hold is one hold with its evidence, as GET /v1/holds/{id} returns it.
type Hold struct {
	ID     string `json:"id"`
	Status Status `json:"status"`
	Source Source `json:"source"`
	Chain  string `json:"chain"`
	Wallet string `json:"wallet"`
	// Wallets are the keys the hold freezes: the wallet involved and its
	// owner's other keys (alert holds); a screening hold freezes none.
	Wallets     []string `json:"wallets"`
	Owners      []string `json:"owners,omitempty"` // owners of the keys involved: they may not approve
	EventID     string   `json:"event_id,omitempty"`
	RequestID   string   `json:"request_id,omitempty"`
	RequestedBy string   `json:"requested_by,omitempty"`
	Request     *Request `json:"request,omitempty"`
	Reasons     []string `json:"reasons"`
	// Alerts are the alerts behind the hold (latest state of each), with
	// their events.
	Alerts []alertmodel.Alert `json:"alerts"`
	// Labels says which lists an address of the evidence is on.
	Labels map[string][]string `json:"labels,omitempty"`
	// Links maps a transaction hash to its block explorer page.
	Links             map[string]string `json:"links,omitempty"`
	Approvals         []Approval        `json:"approvals"`
	ApprovalsRequired int               `json:"approvals_required"`
	Rejection         *Approval         `json:"rejection,omitempty"`
	CreatedAt         time.Time         `json:"created_at"`
	ExpiresAt         time.Time         `json:"expires_at"`
	DecidedAt         *time.Time        `json:"decided_at,omitempty"`
	EscalatedAt       *time.Time        `json:"escalated_at,omitempty"`
}

// Freezes reports whether the hold keeps its wallets frozen: an alert hold
// does until a quorum approves it. A rejected hold confirms the movement was
// not authorised and an expired one was never released, so both keep the
// freeze (fail closed).
func (h *Hold) Freezes() bool { return h.Source == FromAlert && h.Status != Approved }

// ApprovedBy lists the approvers so far.
func (h *Hold) ApprovedBy() []string {
	out := make([]string, len(h.Approvals))
	for i, a := range h.Approvals {
		out[i] = a.By
	}
	return out
}

// Recorder appends to the audit log.
type Recorder interface {
	Record(ctx context.Context, action, actor string, details any) error
}

// NotifyFunc publishes alerts (the outbox).
type NotifyFunc func(ctx context.Context, as ...alertmodel.Alert) error

// Labeler says which lists an address is on, as "list: label" strings.
type Labeler func(chain, address string) []string

// Options are the manager's dependencies.
type Options struct {
	Store   store.Store
	Config  *config.Config // wallets (owners), chains (explorer links), holds (quorum, expiry)
	Intents *intents.Registry
	Audit   Recorder
	// Notify publishes the escalation and expiry alerts.
	Notify  NotifyFunc
	Labeler Labeler // may be nil
	Now     func() time.Time
	Logger  *slog.Logger
	// Registerer takes the holds metrics; may be nil.
	Registerer prometheus.Registerer
	// SweepEvery is how often Run looks for holds to escalate or expire
	// (default 5s).
	SweepEvery time.Duration
}

// Manager creates, decides and expires holds.
type Manager struct {
	o   Options
	log *slog.Logger

	created *prometheus.CounterVec
	decided *prometheus.CounterVec
}

// New makes a manager.
func New(o Options) *Manager {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.SweepEvery <= 0 {
		o.SweepEvery = 5 * time.Second
	}
	if o.Notify == nil {
		o.Notify = func(context.Context, ...alertmodel.Alert) error { return nil }
	}
	m := &Manager{o: o, log: o.Logger,
		created: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "keywatch_holds_created_total", Help: "Holds created, by source (alert, screen)."}, []string{"source"}),
		decided: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "keywatch_holds_decided_total", Help: "Holds that left the held state, by outcome."}, []string{"status"}),
	}
	if o.Registerer != nil {
		o.Registerer.MustRegister(m.created, m.decided)
	}
	return m
}

// Errors the API maps to status codes.
var (
	ErrNotFound = errors.New("no such hold")
	// errAbsent aborts an Update that found no record to change.
	errAbsent = errors.New("absent")
)

// ForbiddenError is an approval the rules refuse (403).
type ForbiddenError struct{ Reason string }

func (e *ForbiddenError) Error() string { return e.Reason }

// ClosedError is a decision on a hold that is no longer held (409).
type ClosedError struct {
	ID     string
	Status Status
}

func (e *ClosedError) Error() string {
	return fmt.Sprintf("hold %s is %s: it takes no more decisions", e.ID, e.Status)
}

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

// Filter narrows List.
type Filter struct {
	Status Status // "" for all
	Wallet string // "" for all
	Limit  int    // default 100
}

// List returns holds, newest first.
func (m *Manager) List(ctx context.Context, f Filter) ([]Hold, error) {
	if f.Limit <= 0 {
		f.Limit = 100
	}
	if f.Status == Held {
		return m.listHeld(ctx, f)
	}
	ids, err := m.o.Store.ZRangeByScore(ctx, allKey, math.Inf(-1), math.Inf(1))
	if err != nil {
		return nil, fmt.Errorf("list holds: %w", err)
	}
	out := []Hold{}
	for i := len(ids) - 1; i >= 0 && len(out) < f.Limit; i-- {
		h, err := m.Get(ctx, ids[i].Member)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if f.matches(&h) {
			out = append(out, h)
		}
	}
	return out, nil
}

// listHeld lists the held holds from the open index, which holds every held
// hold (the sweep expires them from it), rather than reading every hold ever
// made: the queue operators watch, polled by the console every few seconds.
func (m *Manager) listHeld(ctx context.Context, f Filter) ([]Hold, error) {
	ids, err := m.o.Store.ZRangeByScore(ctx, openKey, math.Inf(-1), math.Inf(1))
	if err != nil {
		return nil, fmt.Errorf("list holds: %w", err)
	}
	out := []Hold{}
	for _, z := range ids {
		h, err := m.Get(ctx, z.Member)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if f.matches(&h) {
			out = append(out, h)
		}
	}
	// Newest first, in the order of the listing index (creation time to the
	// millisecond, then id).
	slices.SortFunc(out, func(a, b Hold) int {
		if c := cmp.Compare(b.CreatedAt.UnixMilli(), a.CreatedAt.UnixMilli()); c != 0 {
			return c
		}
		return strings.Compare(b.ID, a.ID)
	})
	return out[:min(len(out), f.Limit)], nil
}

func (f *Filter) matches(h *Hold) bool {
	return (f.Status == "" || h.Status == f.Status) && (f.Wallet == "" || h.Wallet == f.Wallet || slices.Contains(h.Wallets, f.Wallet))
}

// WalletStatus is what the withdrawal system checks before signing.
type WalletStatus struct {
	Wallet string    `json:"wallet"`
	Frozen bool      `json:"frozen"`
	Holds  []Summary `json:"holds"`
}

// Summary is a short view of a hold.
type Summary struct {
	ID        string    `json:"id"`
	Status    Status    `json:"status"`
	Reasons   []string  `json:"reasons"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

// Status says whether a wallet is frozen and by which holds.
func (m *Manager) Status(ctx context.Context, wallet string) (WalletStatus, error) {
	ws := WalletStatus{Wallet: wallet, Holds: []Summary{}}
	ids, err := m.o.Store.ZRangeByScore(ctx, freezeKey(wallet), math.Inf(-1), math.Inf(1))
	if err != nil {
		return ws, fmt.Errorf("wallet %s status: %w", wallet, err)
	}
	for _, z := range ids {
		h, err := m.Get(ctx, z.Member)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return ws, err
		}
		if !h.Freezes() {
			// Released: drop it from the wallet's index (best effort).
			if err := m.o.Store.ZRem(ctx, freezeKey(wallet), h.ID); err != nil {
				m.log.Warn("cannot drop a released hold from a wallet's index", "hold", h.ID, "wallet", wallet, "err", err)
			}
			continue
		}
		ws.Frozen = true
		ws.Holds = append(ws.Holds, Summary{ID: h.ID, Status: h.Status, Reasons: h.Reasons, CreatedAt: h.CreatedAt, ExpiresAt: h.ExpiresAt})
	}
	return ws, nil
}

// index records a held hold in the listing, expiry and freeze indexes. The
// indexes are hints: readers check the record itself.
func (m *Manager) index(ctx context.Context, h *Hold) error {
	if err := m.o.Store.ZAdd(ctx, allKey, float64(h.CreatedAt.UnixMilli()), h.ID); err != nil {
		return fmt.Errorf("index hold %s: %w", h.ID, err)
	}
	if h.Status != Held {
		return nil
	}
	if err := m.o.Store.ZAdd(ctx, openKey, float64(h.ExpiresAt.Unix()), h.ID); err != nil {
		return fmt.Errorf("index hold %s: %w", h.ID, err)
	}
	if h.Freezes() {
		for _, w := range h.Wallets {
			if err := m.o.Store.ZAdd(ctx, freezeKey(w), float64(h.CreatedAt.UnixMilli()), h.ID); err != nil {
				return fmt.Errorf("freeze wallet %s: %w", w, err)
			}
		}
	}
	return nil
}

// Apply creates or updates the holds that alerts with the hold action ask
// for, one per event, and sets their HoldID. It is called before the alerts
// are published, so that they carry it. The same event seen again (pending,
// then confirmed) updates the hold's evidence and creates nothing. A
// resolved alert (a retracted event) updates the evidence of an existing
// hold and never creates one.
func (m *Manager) Apply(ctx context.Context, as []alertmodel.Alert) error {
	byEvent := map[string][]int{}
	var order []string
	for i := range as {
		a := &as[i]
		if !a.Has(alertmodel.ActionHold) || a.Event.Kind == chains.KindSystem || a.Event.ID == "" {
			continue
		}
		if _, ok := byEvent[a.Event.ID]; !ok {
			order = append(order, a.Event.ID)
		}
		byEvent[a.Event.ID] = append(byEvent[a.Event.ID], i)
	}
	for _, evID := range order {
		idx := byEvent[evID]
		group := make([]alertmodel.Alert, len(idx))
		for j, i := range idx {
			group[j] = as[i]
		}
		id, err := m.holdForAlerts(ctx, evID, group)
		if err != nil {
			return err
		}
		for _, i := range idx {
			as[i].HoldID = id
		}
	}
	return nil
}

func (m *Manager) holdForAlerts(ctx context.Context, eventID string, group []alertmodel.Alert) (string, error) {
	id := idFor(FromAlert, eventID)
	firing := false
	for _, a := range group {
		if a.Status == alertmodel.Firing && a.Event.Status != chains.StatusRetracted {
			firing = true
		}
	}
	now := m.o.Now().UTC()
	var h Hold
	created := false
	err := m.o.Store.Update(ctx, recordKey(id), func(old []byte, found bool) ([]byte, error) {
		created = false
		if found {
			var err error
			if h, err = decode(id, old); err != nil {
				return nil, err
			}
		} else {
			if !firing {
				return nil, errAbsent
			}
			h = m.newAlertHold(id, group[0], now)
			created = true
		}
		for _, a := range group {
			m.addEvidence(&h, a)
		}
		return json.Marshal(h)
	})
	if errors.Is(err, errAbsent) {
		return "", nil // a resolution for an event that never held anything
	}
	if err != nil {
		return "", fmt.Errorf("hold for event %s: %w", eventID, err)
	}
	if err := m.index(ctx, &h); err != nil {
		return "", err
	}
	if created {
		m.created.WithLabelValues(string(FromAlert)).Inc()
		m.log.Warn("hold created: wallets frozen", "hold", id, "wallets", strings.Join(h.Wallets, ","), "event", eventID)
	}
	if err := m.auditCreation(ctx, &h, created); err != nil {
		return "", err
	}
	return id, nil
}

// auditCreation records an alert hold's creation in the audit log. A marker
// written after the entry says it is there: when indexing or recording
// failed after the hold's record was written, the event comes again (the
// watcher retries it) and finds the hold made but not recorded, and records
// it then.
func (m *Manager) auditCreation(ctx context.Context, h *Hold, created bool) error {
	if m.o.Audit == nil {
		return nil
	}
	if !created {
		_, err := m.o.Store.Get(ctx, auditedKey(h.ID))
		if err == nil {
			return nil
		}
		if !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("hold %s: %w", h.ID, err)
		}
	}
	if err := m.audit(ctx, audit.ActionHoldCreate, "keywatch", map[string]any{
		"hold": h.ID, "source": h.Source, "event": h.EventID, "wallets": h.Wallets, "reasons": h.Reasons, "expires_at": h.ExpiresAt,
	}); err != nil {
		return err
	}
	if err := m.o.Store.Set(ctx, auditedKey(h.ID), []byte(h.CreatedAt.Format(time.RFC3339Nano)), 0); err != nil {
		return fmt.Errorf("hold %s: mark its creation recorded: %w", h.ID, err)
	}
	return nil
}

func (m *Manager) newAlertHold(id string, a alertmodel.Alert, now time.Time) Hold {
	wallets, owners := m.involved(a.Wallet)
	return Hold{
		ID: id, Status: Held, Source: FromAlert,
		Chain: a.Chain, Wallet: a.Wallet, Wallets: wallets, Owners: owners,
		EventID:           a.Event.ID,
		Approvals:         []Approval{},
		ApprovalsRequired: m.o.Config.Holds.ApprovalsRequired,
		CreatedAt:         now,
		ExpiresAt:         now.Add(m.o.Config.Holds.ExpireAfter.D()),
	}
}

// involved returns the wallet and its owner's other keys, and the owner.
func (m *Manager) involved(wallet string) (wallets, owners []string) {
	wallets = []string{wallet}
	involved, _ := m.o.Config.Wallet(wallet)
	owner := involved.Owner
	if owner == "" {
		return wallets, nil
	}
	for _, w := range m.o.Config.Wallets {
		if w.Owner == owner && w.Name != wallet {
			wallets = append(wallets, w.Name)
		}
	}
	return wallets, []string{owner}
}

// addEvidence merges an alert (its latest state replaces an earlier one),
// its reasons, the lists its addresses are on and its explorer link.
func (m *Manager) addEvidence(h *Hold, a alertmodel.Alert) {
	a.HoldID = h.ID
	replaced := false
	for i := range h.Alerts {
		if h.Alerts[i].ID == a.ID {
			h.Alerts[i], replaced = a, true
		}
	}
	if !replaced {
		h.Alerts = append(h.Alerts, a)
	}
	for _, r := range a.Reasons {
		line := a.Policy + ": " + r
		if !slices.Contains(h.Reasons, line) {
			h.Reasons = append(h.Reasons, line)
		}
	}
	m.label(h, a.Chain, a.Event.Counterparty, a.Event.From, a.Event.To)
	if a.Event.Tx != "" {
		if link := m.explorer(a.Event.Chain, a.Event.Tx); link != "" {
			if h.Links == nil {
				h.Links = map[string]string{}
			}
			h.Links[a.Event.Tx] = link
		}
	}
}

func (m *Manager) label(h *Hold, chain string, addrs ...string) {
	if m.o.Labeler == nil {
		return
	}
	for _, addr := range addrs {
		if addr == "" {
			continue
		}
		if ls := m.o.Labeler(chain, addr); len(ls) > 0 {
			if h.Labels == nil {
				h.Labels = map[string][]string{}
			}
			h.Labels[strings.ToLower(addr)] = ls
		}
	}
}

func (m *Manager) explorer(chain, tx string) string {
	ch, ok := m.o.Config.Chain(chain)
	if !ok || ch.Explorer == "" {
		return ""
	}
	return strings.ReplaceAll(ch.Explorer, "{tx}", tx)
}

// ScreenHold describes a withdrawal the screening API held.
type ScreenHold struct {
	RequestID   string
	RequestedBy string
	Request     Request
	Reasons     []string
	Alerts      []alertmodel.Alert
}

// OpenScreen creates the hold for a screened withdrawal, or returns the one
// the same request id made before (created false).
func (m *Manager) OpenScreen(ctx context.Context, s ScreenHold) (Hold, bool, error) {
	id := idFor(FromScreen, s.RequestID)
	now := m.o.Now().UTC()
	var h Hold
	created := false
	err := m.o.Store.Update(ctx, recordKey(id), func(old []byte, found bool) ([]byte, error) {
		if found {
			var err error
			h, err = decode(id, old)
			created = false
			return old, err
		}
		created = true
		_, owners := m.involved(s.Request.Wallet)
		req := s.Request
		h = Hold{
			ID: id, Status: Held, Source: FromScreen,
			Chain: req.Chain, Wallet: req.Wallet, Wallets: []string{}, Owners: owners,
			RequestID: s.RequestID, RequestedBy: s.RequestedBy, Request: &req,
			Reasons:           append([]string(nil), s.Reasons...),
			Approvals:         []Approval{},
			ApprovalsRequired: m.o.Config.Holds.ApprovalsRequired,
			CreatedAt:         now,
			ExpiresAt:         now.Add(m.o.Config.Holds.ExpireAfter.D()),
		}
		for _, a := range s.Alerts {
			a.HoldID = id
			h.Alerts = append(h.Alerts, a)
		}
		m.label(&h, req.Chain, req.To)
		return json.Marshal(h)
	})
	if err != nil {
		return Hold{}, false, fmt.Errorf("hold for request %s: %w", s.RequestID, err)
	}
	if err := m.index(ctx, &h); err != nil {
		return Hold{}, false, err
	}
	if created {
		m.created.WithLabelValues(string(FromScreen)).Inc()
	}
	return h, created, nil
}

// Outcome says what an approval did.
type Outcome struct {
	Counted  bool `json:"counted"`  // false: this approver had approved already
	Released bool `json:"released"` // this approval completed the quorum
}

// Approve records by's approval of hold id. The requester and the owners
// of the keys involved may not approve (ForbiddenError); approving twice
// counts once; the approval that completes the quorum releases the hold,
// and an approved screening hold registers its withdrawal as an approved
// intent.
func (m *Manager) Approve(ctx context.Context, id, by, comment string) (Hold, Outcome, error) {
	now := m.o.Now().UTC()
	var h Hold
	var out Outcome
	err := m.o.Store.Update(ctx, recordKey(id), func(old []byte, found bool) ([]byte, error) {
		out = Outcome{}
		if !found {
			return nil, ErrNotFound
		}
		var err error
		if h, err = decode(id, old); err != nil {
			return nil, err
		}
		if err := mayApprove(&h, by); err != nil {
			return nil, err
		}
		for _, a := range h.Approvals {
			if samePrincipal(a.By, by) {
				return old, nil // counts once
			}
		}
		if h.Status != Held {
			return nil, &ClosedError{ID: id, Status: h.Status}
		}
		if !now.Before(h.ExpiresAt) {
			return nil, &ClosedError{ID: id, Status: Expired}
		}
		h.Approvals = append(h.Approvals, Approval{By: by, At: now, Comment: comment})
		out.Counted = true
		if len(h.Approvals) >= h.ApprovalsRequired {
			h.Status, h.DecidedAt = Approved, &now
			out.Released = true
		}
		return json.Marshal(h)
	})
	if err != nil {
		return Hold{}, Outcome{}, m.decisionError(id, err)
	}
	// Recorded once per approver; a repeated approval records one that a
	// store failure kept out of the log the first time.
	if err := m.auditApproval(ctx, &h, by); err != nil {
		m.resweep(ctx, &h)
		return h, out, err
	}
	if out.Released {
		m.decided.WithLabelValues(string(Approved)).Inc()
		m.log.Info("hold approved", "hold", id, "approved_by", strings.Join(h.ApprovedBy(), ","))
	}
	if h.Status == Approved {
		// Again on a repeated approval, so that a failure here is repaired
		// by retrying.
		if err := m.release(ctx, &h); err != nil {
			m.resweep(ctx, &h)
			return h, out, err
		}
	}
	return h, out, nil
}

// auditApproval records by's approval of h in the audit log unless it is
// there already.
func (m *Manager) auditApproval(ctx context.Context, h *Hold, by string) error {
	for i, a := range h.Approvals {
		if !samePrincipal(a.By, by) {
			continue
		}
		status := Held
		if i+1 >= h.ApprovalsRequired {
			status = Approved
		}
		return m.auditOnce(ctx, h.ID, audit.ActionHoldApprove, a.By, map[string]any{
			"hold": h.ID, "comment": a.Comment, "approvals": i + 1, "approvals_required": h.ApprovalsRequired, "status": status, "at": a.At,
		})
	}
	return nil
}

// auditDecisions records what was decided about h and is not in the audit
// log yet: every approval, the rejection, the escalation, the expiry. The
// sweep calls it for a decided hold that is still open, which is one whose
// decision failed half way.
func (m *Manager) auditDecisions(ctx context.Context, h *Hold) error {
	for _, a := range h.Approvals {
		if err := m.auditApproval(ctx, h, a.By); err != nil {
			return err
		}
	}
	if r := h.Rejection; r != nil {
		if err := m.auditRejection(ctx, h); err != nil {
			return err
		}
	}
	if h.EscalatedAt != nil {
		if err := m.auditEscalation(ctx, h); err != nil {
			return err
		}
	}
	if h.Status == Expired {
		return m.auditExpiry(ctx, h)
	}
	return nil
}

func (m *Manager) auditRejection(ctx context.Context, h *Hold) error {
	r := h.Rejection
	return m.auditOnce(ctx, h.ID, audit.ActionHoldReject, r.By, map[string]any{"hold": h.ID, "comment": r.Comment, "wallets": h.Wallets, "at": r.At})
}

func (m *Manager) auditEscalation(ctx context.Context, h *Hold) error {
	return m.auditOnce(ctx, h.ID, audit.ActionHoldEscalate, "keywatch", map[string]any{"hold": h.ID, "expires_at": h.ExpiresAt, "approvals": len(h.Approvals), "at": h.EscalatedAt})
}

func (m *Manager) auditExpiry(ctx context.Context, h *Hold) error {
	return m.auditOnce(ctx, h.ID, audit.ActionHoldExpire, "keywatch", map[string]any{"hold": h.ID, "approvals": len(h.Approvals), "wallets": h.Wallets, "at": h.DecidedAt})
}

// auditOnce appends an entry about hold id unless a marker says it was
// appended already, and writes the marker after it. A failure between the
// two can record the entry twice, never lose it.
func (m *Manager) auditOnce(ctx context.Context, id, action, actor string, details map[string]any) error {
	if m.o.Audit == nil {
		return nil
	}
	marker := auditedKey(id) + ":" + action + ":" + strings.ToLower(actor)
	_, err := m.o.Store.Get(ctx, marker)
	if err == nil {
		return nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("hold %s: %w", id, err)
	}
	if err := m.audit(ctx, action, actor, details); err != nil {
		return err
	}
	if err := m.o.Store.Set(ctx, marker, []byte(m.o.Now().UTC().Format(time.RFC3339Nano)), 0); err != nil {
		return fmt.Errorf("hold %s: mark its %s recorded: %w", id, action, err)
	}
	return nil
}

// resweep puts a decided hold whose decision failed half way (its audit
// entry, its release, its closing) at the front of the open index, so the
// next sweep finishes it rather than the one near its expiry. Best effort:
// the store may be failing still, and then the sweep finds it later.
func (m *Manager) resweep(ctx context.Context, h *Hold) {
	if h.Status == Held {
		return
	}
	if err := m.o.Store.ZAdd(ctx, openKey, 0, h.ID); err != nil {
		m.log.Warn("cannot queue a half-decided hold for the next sweep; it is finished near its expiry", "hold", h.ID, "err", err)
	}
}

// release registers an approved screening hold's withdrawal as an approved
// intent and drops the hold from the open and freeze indexes.
func (m *Manager) release(ctx context.Context, h *Hold) error {
	if h.Source == FromScreen && h.Request != nil && m.o.Intents != nil {
		r := h.Request
		err := m.o.Intents.Register(ctx, intents.Intent{
			ID: h.RequestID, Chain: r.Chain, Wallet: r.Wallet, To: r.To, Asset: r.Asset, Amount: r.Amount,
			RequestedBy: h.RequestedBy, ApprovedBy: h.ApprovedBy(), Source: "hold",
		})
		if err != nil {
			return fmt.Errorf("register the approved withdrawal of hold %s: %w", h.ID, err)
		}
	}
	return m.close(ctx, h)
}

// close drops a decided hold from the open index and, once it no longer
// freezes them, from its wallets' freeze indexes. A hold that was escalated
// has its hold-expiring alert resolved first: the hold no longer waits for
// anyone. Until close succeeds the hold stays in the open index, where the
// sweep finds it and closes it again.
func (m *Manager) close(ctx context.Context, h *Hold) error {
	if h.EscalatedAt != nil {
		if err := m.o.Notify(ctx, m.escalationResolved(h)); err != nil {
			return fmt.Errorf("close hold %s: resolve its escalation: %w", h.ID, err)
		}
	}
	if err := m.o.Store.ZRem(ctx, openKey, h.ID); err != nil {
		return fmt.Errorf("close hold %s: %w", h.ID, err)
	}
	if !h.Freezes() {
		for _, w := range h.Wallets {
			if err := m.o.Store.ZRem(ctx, freezeKey(w), h.ID); err != nil {
				return fmt.Errorf("unfreeze wallet %s: %w", w, err)
			}
		}
	}
	return nil
}

// escalationResolved is the resolution of a decided hold's hold-expiring
// alert, saying how it was decided.
func (m *Manager) escalationResolved(h *Hold) alertmodel.Alert {
	why := fmt.Sprintf("hold %s is %s", h.ID, h.Status)
	switch {
	case h.Status == Approved:
		why = fmt.Sprintf("hold %s was approved by %s", h.ID, strings.Join(h.ApprovedBy(), ", "))
	case h.Status == Rejected && h.Rejection != nil:
		why = fmt.Sprintf("hold %s was rejected by %s", h.ID, h.Rejection.By)
	case h.Status == Expired:
		why = fmt.Sprintf("hold %s expired unreleased (see its hold-expired alert)", h.ID)
	}
	return alertmodel.System(alertmodel.KindHoldExpiring, h.ID, alertmodel.High, h.Chain, nil, *h.EscalatedAt).Resolved(why, m.o.Now())
}

// Reject ends hold id: one rejection is enough. Nothing is released: the
// wallets of an alert hold stay frozen.
func (m *Manager) Reject(ctx context.Context, id, by, comment string) (Hold, error) {
	now := m.o.Now().UTC()
	var h Hold
	err := m.o.Store.Update(ctx, recordKey(id), func(old []byte, found bool) ([]byte, error) {
		if !found {
			return nil, ErrNotFound
		}
		var err error
		if h, err = decode(id, old); err != nil {
			return nil, err
		}
		if h.Status != Held {
			return nil, &ClosedError{ID: id, Status: h.Status}
		}
		h.Status, h.DecidedAt = Rejected, &now
		h.Rejection = &Approval{By: by, At: now, Comment: comment}
		return json.Marshal(h)
	})
	if err != nil {
		return Hold{}, m.decisionError(id, err)
	}
	m.decided.WithLabelValues(string(Rejected)).Inc()
	m.log.Info("hold rejected", "hold", id, "rejected_by", by)
	if err := m.auditRejection(ctx, &h); err != nil {
		m.resweep(ctx, &h)
		return h, err
	}
	if err := m.close(ctx, &h); err != nil {
		m.resweep(ctx, &h)
		return h, err
	}
	return h, nil
}

func (m *Manager) decisionError(id string, err error) error {
	var fe *ForbiddenError
	var ce *ClosedError
	if errors.Is(err, ErrNotFound) || errors.As(err, &fe) || errors.As(err, &ce) {
		return err
	}
	return fmt.Errorf("decide hold %s: %w", id, err)
}

// mayApprove applies the separation of duties: not the requester, not an
// owner of a key involved.
func mayApprove(h *Hold, by string) error {
	if h.RequestedBy != "" && samePrincipal(h.RequestedBy, by) {
		return &ForbiddenError{Reason: fmt.Sprintf("%s requested this withdrawal: the requester may not approve it", by)}
	}
	for _, o := range h.Owners {
		if samePrincipal(o, by) {
			return &ForbiddenError{Reason: fmt.Sprintf("%s owns a key this hold involves (%s): an owner may not approve it", by, strings.Join(h.involvedKeys(), ", "))}
		}
	}
	return nil
}

func (h *Hold) involvedKeys() []string {
	if len(h.Wallets) > 0 {
		return h.Wallets
	}
	return []string{h.Wallet}
}

// samePrincipal compares people named in different places: a token name
// ("kim"), an owner ("kim@firm.example"), a requester. Case is ignored, and
// a name without a domain matches the local part of an address.
func samePrincipal(a, b string) bool {
	a, b = strings.ToLower(strings.TrimSpace(a)), strings.ToLower(strings.TrimSpace(b))
	if a == "" || b == "" {
		return false
	}
	if a == b {
		return true
	}
	la, _, _ := strings.Cut(a, "@")
	lb, _, _ := strings.Cut(b, "@")
	return la == lb
}

func (m *Manager) audit(ctx context.Context, action, actor string, details any) error {
	if m.o.Audit == nil {
		return nil
	}
	if err := m.o.Audit.Record(ctx, action, actor, details); err != nil {
		return fmt.Errorf("audit %s: %w", action, err)
	}
	return nil
}

// Run escalates and expires holds until ctx ends.
func (m *Manager) Run(ctx context.Context) error {
	t := time.NewTicker(m.o.SweepEvery)
	defer t.Stop()
	for {
		if err := m.Sweep(ctx); err != nil && ctx.Err() == nil {
			m.log.Error("holds sweep failed; retrying", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Sweep raises the escalation alert for holds about to expire (once each)
// and expires the holds whose time is up.
func (m *Manager) Sweep(ctx context.Context) error {
	now := m.o.Now().UTC()
	soon := now.Add(m.o.Config.Holds.EscalateBefore.D())
	due, err := m.o.Store.ZRangeByScore(ctx, openKey, math.Inf(-1), float64(soon.Unix()))
	if err != nil {
		return fmt.Errorf("sweep holds: %w", err)
	}
	var errs []error
	for _, z := range due {
		if err := m.sweepOne(ctx, z.Member, now); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (m *Manager) sweepOne(ctx context.Context, id string, now time.Time) error {
	h, err := m.Get(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return m.o.Store.ZRem(ctx, openKey, id)
	}
	if err != nil {
		return err
	}
	switch {
	case h.Status == Held && !now.Before(h.ExpiresAt):
		return m.expire(ctx, &h, now)
	case h.Status == Expired:
		// Expired by an earlier sweep that could not record it, say so or
		// close it.
		if err := m.auditDecisions(ctx, &h); err != nil {
			return err
		}
		return m.announceExpiry(ctx, &h, now)
	case h.Status != Held:
		return m.finish(ctx, &h)
	case h.EscalatedAt != nil:
		return nil
	}
	return m.escalate(ctx, &h, now)
}

// escalate raises the hold-expiring alert, then marks the hold escalated.
// When the hold was decided meanwhile, it is closed at once, which resolves
// the alert just raised.
func (m *Manager) escalate(ctx context.Context, h *Hold, now time.Time) error {
	left := h.ExpiresAt.Sub(now).Round(time.Second)
	reasons := append([]string{fmt.Sprintf("hold %s on %s expires in %s with %d of %d approvals: it will stay unreleased (%s)",
		h.ID, h.Wallet, left, len(h.Approvals), h.ApprovalsRequired, freezeNote(h))}, h.Reasons...)
	if err := m.o.Notify(ctx, alertmodel.System(alertmodel.KindHoldExpiring, h.ID, alertmodel.High, h.Chain, reasons, now)); err != nil {
		return fmt.Errorf("escalate hold %s: %w", h.ID, err)
	}
	marked, absent, err := m.mark(ctx, h, func(h *Hold) bool {
		if h.EscalatedAt != nil {
			return false
		}
		h.EscalatedAt = &now
		return true
	})
	if absent {
		return m.o.Store.ZRem(ctx, openKey, h.ID)
	}
	if err != nil {
		return fmt.Errorf("escalate hold %s: %w", h.ID, err)
	}
	if marked {
		m.log.Warn("hold about to expire: escalated", "hold", h.ID, "expires_at", h.ExpiresAt)
	}
	if err := m.auditEscalation(ctx, h); err != nil {
		return err
	}
	if h.Status != Held {
		return m.finish(ctx, h)
	}
	return nil
}

// finish completes a decision that failed half way: it records what the
// audit log lacks, registers an approved withdrawal and closes the hold.
func (m *Manager) finish(ctx context.Context, h *Hold) error {
	if err := m.auditDecisions(ctx, h); err != nil {
		return err
	}
	if h.Status == Approved {
		return m.release(ctx, h)
	}
	return m.close(ctx, h)
}

func freezeNote(h *Hold) string {
	if h.Freezes() {
		return "wallets " + strings.Join(h.Wallets, ", ") + " stay frozen"
	}
	return "the withdrawal will not be allowed"
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

// expire records that a held hold expired, then says so. The state changes
// first, so that the hold-expired alert goes out only for a hold that did
// expire, never for one a concurrent rejection or approval ended.
func (m *Manager) expire(ctx context.Context, h *Hold, now time.Time) error {
	changed, absent, err := m.mark(ctx, h, func(h *Hold) bool {
		if h.Status != Held {
			return false
		}
		h.Status, h.DecidedAt = Expired, &now
		return true
	})
	if absent {
		return m.o.Store.ZRem(ctx, openKey, h.ID)
	}
	if err != nil {
		return fmt.Errorf("expire hold %s: %w", h.ID, err)
	}
	if changed {
		m.decided.WithLabelValues(string(Expired)).Inc()
		m.log.Warn("hold expired unreleased", "hold", h.ID)
	}
	if h.Status != Expired {
		return m.finish(ctx, h) // decided meanwhile
	}
	if err := m.auditExpiry(ctx, h); err != nil {
		return err
	}
	return m.announceExpiry(ctx, h, now)
}

// announceExpiry raises the hold-expired alert of an expired hold and
// closes it. Until both are done the hold stays in the open index, so the
// next sweep tries again (the alert's id makes a repeat a duplicate).
func (m *Manager) announceExpiry(ctx context.Context, h *Hold, now time.Time) error {
	reasons := append([]string{fmt.Sprintf("hold %s on %s expired unreleased with %d of %d approvals (%s)",
		h.ID, h.Wallet, len(h.Approvals), h.ApprovalsRequired, freezeNote(h))}, h.Reasons...)
	if err := m.o.Notify(ctx, alertmodel.System(alertmodel.KindHoldExpired, h.ID, alertmodel.High, h.Chain, reasons, now)); err != nil {
		return fmt.Errorf("expire hold %s: %w", h.ID, err)
	}
	return m.close(ctx, h)
}
