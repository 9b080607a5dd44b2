// Package silences lets operators mute alerts for a while: a silence matches
// alerts by chain, wallet, wallet role and policy, always ends (a bounded
// duration), records who made and who expired it, and is announced as an
// alert of its own while it is in force, so muting is never silent.
// Silences mute notifications only: policies still fire and holds still
// freeze wallets.
package silences

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/keywatch/keywatch/alertmodel"
	"github.com/keywatch/keywatch/store"
)

// Matchers select alerts; every matcher given must equal the alert's value.
type Matchers struct {
	Chain  string `json:"chain,omitempty"`
	Wallet string `json:"wallet,omitempty"`
	Role   string `json:"role,omitempty"` // the wallet's role
	Policy string `json:"policy,omitempty"`
}

func (m Matchers) empty() bool { return m == Matchers{} }

// String lists the matchers as name=value pairs.
func (m Matchers) String() string {
	var parts []string
	for _, kv := range [][2]string{{"chain", m.Chain}, {"wallet", m.Wallet}, {"role", m.Role}, {"policy", m.Policy}} {
		if kv[1] != "" {
			parts = append(parts, kv[0]+"="+kv[1])
		}
	}
	return strings.Join(parts, " ")
}

// Matches reports whether the matchers select alert a.
func (m Matchers) Matches(a *alertmodel.Alert) bool {
	return (m.Chain == "" || m.Chain == a.Chain) &&
		(m.Wallet == "" || m.Wallet == a.Wallet) &&
		(m.Role == "" || m.Role == a.Event.WalletRole) &&
		(m.Policy == "" || m.Policy == a.Policy)
}

// Silence mutes the alerts its matchers select until EndsAt.
type Silence struct {
	ID        string     `json:"id"`
	Matchers  Matchers   `json:"matchers"`
	Comment   string     `json:"comment"`
	CreatedBy string     `json:"created_by"`
	CreatedAt time.Time  `json:"created_at"`
	EndsAt    time.Time  `json:"ends_at"`
	ExpiredBy string     `json:"expired_by,omitempty"`
	ExpiredAt *time.Time `json:"expired_at,omitempty"`
	// State is active or expired at the time it was read.
	State string `json:"state"`
	// EndAnnounced says the end of the silence was announced.
	EndAnnounced bool `json:"end_announced,omitempty"`
}

// Active reports whether the silence is in force at now.
func (s *Silence) Active(now time.Time) bool {
	return s.ExpiredAt == nil && now.Before(s.EndsAt)
}

// Auditor records who did what. The audit log implements it; nil records
// nothing.
type Auditor interface {
	Record(ctx context.Context, action, actor string, details any) error
}

// Known names what matchers may name; an empty list accepts any value.
type Known struct {
	Chains, Wallets, Roles, Policies []string
}

// Options configure Silences.
type Options struct {
	Store       store.Store
	Now         func() time.Time
	MaxDuration time.Duration // longest silence accepted (default 7 days)
	Auditor     Auditor
	// Announce publishes the alert that says a silence is in force, and its
	// resolution when the silence ends (the outbox's Enqueue).
	Announce func(ctx context.Context, as ...alertmodel.Alert) error
	Known    Known
	Logger   *slog.Logger
}

// Silences keeps the silences in the shared store.
type Silences struct {
	o Options

	mu       sync.Mutex
	cache    []Silence
	cachedAt time.Time // real time
}

// New makes the silence keeper.
func New(o Options) *Silences {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MaxDuration <= 0 {
		o.MaxDuration = 7 * 24 * time.Hour
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Silences{o: o}
}

const hashKey = "alerts:silences"

// keepExpired is how long ended silences stay listed.
const keepExpired = 30 * 24 * time.Hour

// cacheFor bounds how stale a silence check may be on another instance.
const cacheFor = time.Second

// ErrNotFound is returned for an unknown silence id.
var ErrNotFound = errors.New("no such silence")

// ErrEnded is returned when expiring a silence that is no longer in force.
var ErrEnded = errors.New("silence is no longer in force")

// ErrAudit is returned when a silence cannot be recorded in the audit log;
// it is then not created.
var ErrAudit = errors.New("cannot record the silence in the audit log")

// Request asks for a silence: matchers, and either a duration or an end.
type Request struct {
	Matchers Matchers   `json:"matchers"`
	Duration string     `json:"duration,omitempty"` // Go duration: 90m, 2h
	EndsAt   *time.Time `json:"ends_at,omitempty"`
	Comment  string     `json:"comment"`
}

// FieldError is a request field at fault.
type FieldError struct {
	Field, Msg string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

// Add creates a silence made by actor.
func (s *Silences) Add(ctx context.Context, actor string, req Request) (Silence, error) {
	now := s.o.Now().UTC()
	if err := s.check(req.Matchers); err != nil {
		return Silence{}, err
	}
	if strings.TrimSpace(req.Comment) == "" {
		return Silence{}, &FieldError{"comment", "required: say why these alerts may be muted"}
	}
	var ends time.Time
	switch {
	case req.Duration != "" && req.EndsAt != nil:
		return Silence{}, &FieldError{"duration", "give duration or ends_at, not both"}
	case req.Duration != "":
		d, err := time.ParseDuration(req.Duration)
		if err != nil || d <= 0 {
			return Silence{}, &FieldError{"duration", fmt.Sprintf("%q is not a positive duration such as 30m or 2h", req.Duration)}
		}
		ends = now.Add(d)
	case req.EndsAt != nil:
		ends = req.EndsAt.UTC()
		if !ends.After(now) {
			return Silence{}, &FieldError{"ends_at", "is in the past"}
		}
	default:
		return Silence{}, &FieldError{"duration", "required (or ends_at): every silence ends"}
	}
	if ends.Sub(now) > s.o.MaxDuration {
		f := "duration"
		if req.EndsAt != nil {
			f = "ends_at"
		}
		return Silence{}, &FieldError{f, fmt.Sprintf("a silence lasts at most %s (alerts.silences.max_duration)", s.o.MaxDuration)}
	}
	sil := Silence{ID: newID(), Matchers: req.Matchers, Comment: strings.TrimSpace(req.Comment),
		CreatedBy: actor, CreatedAt: now, EndsAt: ends}
	if err := s.put(ctx, sil); err != nil {
		return Silence{}, err
	}
	if s.o.Auditor != nil {
		if err := s.o.Auditor.Record(ctx, "silence.create", actor, sil); err != nil {
			if derr := s.o.Store.HDel(ctx, hashKey, sil.ID); derr != nil {
				s.o.Logger.Error("silence not audited and not removed", "silence", sil.ID, "err", derr)
			}
			s.invalidate()
			return Silence{}, fmt.Errorf("%w: %v", ErrAudit, err)
		}
	}
	s.o.Logger.Info("silence created", "silence", sil.ID, "matchers", sil.Matchers.String(), "by", actor, "ends_at", ends)
	if s.o.Announce != nil {
		if err := s.o.Announce(ctx, announcement(sil)); err != nil {
			s.o.Logger.Error("cannot announce the silence", "silence", sil.ID, "err", err)
		}
	}
	sil.State = "active"
	return sil, nil
}

func (s *Silences) check(m Matchers) error {
	if m.empty() {
		return &FieldError{"matchers", "name at least one of chain, wallet, role, policy: a silence of everything is refused"}
	}
	k := s.o.Known
	for _, c := range []struct {
		field, v string
		known    []string
	}{{"matchers.chain", m.Chain, k.Chains}, {"matchers.wallet", m.Wallet, k.Wallets}, {"matchers.role", m.Role, k.Roles}, {"matchers.policy", m.Policy, k.Policies}} {
		if c.v != "" && len(c.known) > 0 && !slices.Contains(c.known, c.v) {
			return &FieldError{c.field, fmt.Sprintf("%q is not known (one of %s)", c.v, strings.Join(c.known, ", "))}
		}
	}
	if m.Policy == alertmodel.KindSilenceCreated {
		return &FieldError{"matchers.policy", "the announcements of silences cannot be silenced"}
	}
	return nil
}

func newID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "sil-" + hex.EncodeToString(b[:])
}

// record is the codec of silence id, a field of the hash at hashKey; its
// errors name the silence: "read silence <id>: ...", "write silence <id>:
// ...", "silence <id> is corrupt: ...".
func (s *Silences) record(id string) store.Records[Silence] {
	return store.NewRecords[Silence](s.o.Store, "silence "+id)
}

func (s *Silences) put(ctx context.Context, sil Silence) error {
	sil.State = ""
	if err := s.record(sil.ID).HPut(ctx, hashKey, sil.ID, sil); err != nil {
		return err
	}
	s.invalidate()
	return nil
}

func (s *Silences) invalidate() {
	s.mu.Lock()
	s.cache, s.cachedAt = nil, time.Time{}
	s.mu.Unlock()
}

// all reads every stored silence, with its state at now.
func (s *Silences) all(ctx context.Context) ([]Silence, error) {
	m, err := s.o.Store.HGetAll(ctx, hashKey)
	if err != nil {
		return nil, fmt.Errorf("silences: %w", err)
	}
	now := s.o.Now()
	out := make([]Silence, 0, len(m))
	for id, b := range m {
		sil, err := s.record(id).Decode(b)
		if err != nil {
			return nil, err
		}
		out = append(out, withState(sil, now))
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].CreatedAt.Before(out[j].CreatedAt)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// withState is a stored silence with its state at now.
func withState(sil Silence, now time.Time) Silence {
	sil.State = "expired"
	if sil.Active(now) {
		sil.State = "active"
	}
	return sil
}

// List returns the silences in force, or every silence kept when all is
// true, oldest first.
func (s *Silences) List(ctx context.Context, all bool) ([]Silence, error) {
	sils, err := s.all(ctx)
	if err != nil {
		return nil, err
	}
	out := sils[:0]
	for _, sil := range sils {
		if all || sil.State == "active" {
			out = append(out, sil)
		}
	}
	return out, nil
}

// Get returns one silence.
func (s *Silences) Get(ctx context.Context, id string) (Silence, error) {
	sil, found, err := s.record(id).HGet(ctx, hashKey, id)
	if err != nil {
		return Silence{}, err
	}
	if !found {
		return Silence{}, ErrNotFound
	}
	return withState(sil, s.o.Now()), nil
}

// Expire ends a silence now, recording who did.
func (s *Silences) Expire(ctx context.Context, actor, id string) (Silence, error) {
	sil, err := s.Get(ctx, id)
	if err != nil {
		return Silence{}, err
	}
	now := s.o.Now().UTC()
	if !sil.Active(now) {
		return sil, ErrEnded
	}
	sil.ExpiredBy, sil.ExpiredAt = actor, &now
	if err := s.put(ctx, sil); err != nil {
		return Silence{}, err
	}
	if s.o.Auditor != nil {
		if err := s.o.Auditor.Record(ctx, "silence.expire", actor, sil); err != nil {
			// Expiring is the safe direction (alerts flow again): keep it.
			s.o.Logger.Error("silence expired but not recorded in the audit log", "silence", id, "by", actor, "err", err)
		}
	}
	s.o.Logger.Info("silence expired", "silence", id, "by", actor)
	s.announceEnds(ctx)
	sil.State = "expired"
	return sil, nil
}

// Silencing returns the id of an active silence that mutes a, or "".
// Announcements of silences are never muted.
func (s *Silences) Silencing(ctx context.Context, a *alertmodel.Alert) (string, error) {
	if a.Policy == alertmodel.KindSilenceCreated {
		return "", nil
	}
	s.mu.Lock()
	sils, fresh := s.cache, time.Since(s.cachedAt) < cacheFor
	s.mu.Unlock()
	if !fresh {
		var err error
		if sils, err = s.all(ctx); err != nil {
			return "", err
		}
		s.mu.Lock()
		s.cache, s.cachedAt = sils, time.Now()
		s.mu.Unlock()
	}
	now := s.o.Now()
	for i := range sils {
		if sils[i].Active(now) && sils[i].Matchers.Matches(a) {
			return sils[i].ID, nil
		}
	}
	return "", nil
}

// Run announces the end of silences as they end, and forgets silences
// ended long ago, until ctx ends.
func (s *Silences) Run(ctx context.Context, every time.Duration) error {
	if every <= 0 {
		every = 10 * time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		s.announceEnds(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// announceEnds resolves the announcement of every silence that ended.
func (s *Silences) announceEnds(ctx context.Context) {
	sils, err := s.all(ctx)
	if err != nil {
		s.o.Logger.Warn("cannot read silences", "err", err)
		return
	}
	now := s.o.Now()
	for _, sil := range sils {
		if sil.Active(now) {
			continue
		}
		if !sil.EndAnnounced && s.o.Announce != nil {
			a := announcement(sil)
			why := "silence ended"
			if sil.ExpiredAt != nil {
				why = "silence expired early by " + sil.ExpiredBy
			}
			if err := s.o.Announce(ctx, a.Resolved(why, now)); err != nil {
				s.o.Logger.Warn("cannot announce the end of a silence", "silence", sil.ID, "err", err)
				continue
			}
			sil.EndAnnounced = true
			if err := s.put(ctx, sil); err != nil {
				s.o.Logger.Warn("cannot record a silence's end", "silence", sil.ID, "err", err)
			}
		}
		if now.Sub(sil.EndsAt) > keepExpired && (sil.ExpiredAt == nil || now.Sub(*sil.ExpiredAt) > keepExpired) {
			if err := s.o.Store.HDel(ctx, hashKey, sil.ID); err != nil {
				s.o.Logger.Warn("cannot forget a silence ended long ago", "silence", sil.ID, "err", err)
			}
			s.invalidate()
		}
	}
}

// announcement is the alert that says a silence is in force: medium, for
// every sink that takes it, never a page.
func announcement(sil Silence) alertmodel.Alert {
	reason := fmt.Sprintf("%s silenced alerts matching %s until %s: %s",
		sil.CreatedBy, sil.Matchers, sil.EndsAt.UTC().Format("2006-01-02 15:04 UTC"), sil.Comment)
	a := alertmodel.System(alertmodel.KindSilenceCreated, sil.ID, alertmodel.Medium, sil.Matchers.Chain, []string{reason}, sil.CreatedAt)
	a.Actions = []alertmodel.Action{alertmodel.ActionAlert}
	return a
}
