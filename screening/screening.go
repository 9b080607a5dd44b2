// Package screening answers the withdrawal system before it signs: POST
// /v1/screen runs the intended withdrawal through the same policies as an
// outflow seen on chain (as a pending outflow event) and answers allow, hold
// or deny with reasons.
//
// The decision, in order:
//
//   - deny: a critical policy fired and the destination is on one of
//     holds.deny_lists (default: the list named sanctioned). Paying a
//     sanctioned address is refused outright; no quorum can release it.
//   - hold: a policy with the hold action fired, or the wallet is frozen by
//     a hold, or keywatch cannot read or write its state (fail closed). A
//     hold is created (except when the store is down); approvers release it
//     with a quorum.
//   - allow: anything else; other alerts' reasons are given as information.
//
// An allow, and a hold once approved, registers the withdrawal as an
// approved intent, which the unapproved-outflow detector reconciles the
// on-chain outflow against. Answers are idempotent per request_id: asking
// again returns the same decision, or the outcome of its hold (allow once
// approved, deny once rejected or expired), and never creates a second hold
// or intent.
package screening

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/keywatch/keywatch/alertmodel"
	"github.com/keywatch/keywatch/api"
	"github.com/keywatch/keywatch/audit"
	"github.com/keywatch/keywatch/chains"
	"github.com/keywatch/keywatch/config"
	"github.com/keywatch/keywatch/holds"
	"github.com/keywatch/keywatch/intents"
	"github.com/keywatch/keywatch/policies"
	"github.com/keywatch/keywatch/policies/lists"
	"github.com/keywatch/keywatch/store"
)

// Decision is the answer to a screening request.
type Decision string

const (
	Allow Decision = "allow"
	Hold  Decision = "hold"
	Deny  Decision = "deny"
)

// Evaluator judges an event through the policies (*policies.Engine).
type Evaluator interface {
	Evaluate(ctx context.Context, ev *chains.Event) ([]alertmodel.Alert, error)
}

// Recorder appends to the audit log.
type Recorder interface {
	Record(ctx context.Context, action, actor string, details any) error
}

// Options are the screener's dependencies.
type Options struct {
	Config  *config.Config
	Engine  Evaluator
	Lists   func() *lists.Set // the lists in force, for holds.deny_lists
	Holds   *holds.Manager
	Intents *intents.Registry
	Audit   Recorder
	Store   store.Store // decision records, for idempotency
	Now     func() time.Time
	Logger  *slog.Logger
	// Registerer takes the screening metrics; may be nil.
	Registerer prometheus.Registerer
	// Timeout bounds one decision; past it the answer is hold (default 5s).
	Timeout time.Duration
	// Remember is how long a request id keeps its decision (default 30 days).
	Remember time.Duration
}

// Screener decides screening requests.
type Screener struct {
	o   Options
	log *slog.Logger

	decisions  *prometheus.CounterVec
	failClosed prometheus.Counter
	duration   prometheus.Histogram
}

// New makes a screener.
func New(o Options) *Screener {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
	if o.Remember <= 0 {
		o.Remember = 30 * 24 * time.Hour
	}
	s := &Screener{o: o, log: o.Logger,
		decisions:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: "keywatch_screening_decisions_total", Help: "Screening answers, by decision."}, []string{"decision"}),
		failClosed: prometheus.NewCounter(prometheus.CounterOpts{Name: "keywatch_screening_fail_closed_total", Help: "Screening requests held because keywatch could not read or write its state."}),
		duration:   prometheus.NewHistogram(prometheus.HistogramOpts{Name: "keywatch_screening_duration_seconds", Help: "Time to answer a screening request.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}),
	}
	if o.Registerer != nil {
		o.Registerer.MustRegister(s.decisions, s.failClosed, s.duration)
	}
	return s
}

// Request is the body of POST /v1/screen.
type Request struct {
	RequestID   string          `json:"request_id"`
	Chain       string          `json:"chain"`
	Wallet      string          `json:"wallet"`
	To          string          `json:"to"`
	Asset       string          `json:"asset"`
	Amount      json.RawMessage `json:"amount"`
	RequestedBy string          `json:"requested_by"`
}

// Answer is the response.
type Answer struct {
	RequestID string   `json:"request_id"`
	Decision  Decision `json:"decision"`
	HoldID    string   `json:"hold_id"`
	Reasons   []string `json:"reasons"`
	// Policies that fired on the request.
	Policies []string `json:"policies,omitempty"`
}

// withdrawal is a validated request.
type withdrawal struct {
	RequestID   string        `json:"request_id"`
	Chain       string        `json:"chain"`
	Wallet      string        `json:"wallet"`
	To          string        `json:"to"`
	Asset       string        `json:"asset"`
	Amount      chains.Amount `json:"amount"`
	RequestedBy string        `json:"requested_by"`

	token string
	usd   float64
	role  string
	owner string
	from  string
}

func (w *withdrawal) same(o *withdrawal) bool {
	return w.Chain == o.Chain && w.Wallet == o.Wallet && w.To == o.To && strings.EqualFold(w.Asset, o.Asset) && w.Amount.Cmp(o.Amount) == 0
}

// record is what the store keeps per request id.
type record struct {
	Withdrawal withdrawal `json:"withdrawal"`
	Answer     Answer     `json:"answer"`
	By         string     `json:"by"`
	At         time.Time  `json:"at"`
}

func recordKey(requestID string) string { return "screen:req:" + requestID }

// decisionRecord is the codec of the decision record of requestID, named for its
// errors ("decision record of r1 is corrupt: ...").
func (s *Screener) decisionRecord(requestID string) store.Records[record] {
	return store.NewRecords[record](s.o.Store, "decision record of "+requestID)
}

// Screen decides a request from caller (the service token's name). A
// *api.RequestError is a bad request (400, 404, 409) and nothing was
// recorded; otherwise the answer is given, and when keywatch cannot decide
// it is hold.
func (s *Screener) Screen(ctx context.Context, caller string, req Request) (Answer, error) {
	start := time.Now()
	defer func() { s.duration.Observe(time.Since(start).Seconds()) }()
	w, err := s.validate(req)
	if err != nil {
		return Answer{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.o.Timeout)
	defer cancel()
	ans, err := s.decide(ctx, caller, w)
	var re *api.RequestError
	if errors.As(err, &re) {
		return Answer{}, err
	}
	if err != nil {
		s.failClosed.Inc()
		s.log.Error("screening cannot decide: holding (fail closed)", "request_id", w.RequestID, "wallet", w.Wallet, "err", err)
		ans = Answer{RequestID: w.RequestID, Decision: Hold, Reasons: []string{
			"keywatch cannot read or write its state right now, so it cannot decide: the withdrawal is held; ask again with the same request_id",
		}}
	}
	s.decisions.WithLabelValues(string(ans.Decision)).Inc()
	return ans, nil
}

func (s *Screener) decide(ctx context.Context, caller string, w *withdrawal) (Answer, error) {
	if rec, found, err := s.load(ctx, w.RequestID); err != nil {
		return Answer{}, err
	} else if found {
		if !rec.Withdrawal.same(w) {
			return Answer{}, &api.RequestError{Status: http.StatusConflict, Field: "request_id",
				Msg: fmt.Sprintf("request_id %s was screened before for another withdrawal (%s %s from %s to %s)",
					w.RequestID, rec.Withdrawal.Amount, rec.Withdrawal.Asset, rec.Withdrawal.Wallet, rec.Withdrawal.To)}
		}
		return s.current(ctx, rec)
	}

	ev := s.event(w)
	fired, err := s.o.Engine.Evaluate(policies.WithScreening(ctx), &ev)
	if err != nil {
		return Answer{}, fmt.Errorf("evaluate policies: %w", err)
	}
	status, err := s.o.Holds.Status(ctx, w.Wallet)
	if err != nil {
		return Answer{}, err
	}
	ans := s.judge(w, fired, status)

	switch ans.Decision {
	case Hold:
		h, _, err := s.o.Holds.OpenScreen(ctx, holds.ScreenHold{
			RequestID: w.RequestID, RequestedBy: w.RequestedBy, Reasons: ans.Reasons, Alerts: fired,
			Request: holds.Request{Chain: w.Chain, Wallet: w.Wallet, To: w.To, Asset: w.Asset, Amount: w.Amount, USD: w.usd},
		})
		if err != nil {
			return Answer{}, err
		}
		ans.HoldID = h.ID
	case Allow:
		if err := s.register(ctx, w, nil); err != nil {
			return Answer{}, err
		}
	}
	if err := s.audit(ctx, caller, w, ans); err != nil {
		return Answer{}, err
	}
	rec := record{Withdrawal: *w, Answer: ans, By: caller, At: s.o.Now().UTC()}
	ok, err := s.decisionRecord(w.RequestID).PutNew(ctx, recordKey(w.RequestID), rec, s.o.Remember)
	if err != nil {
		return Answer{}, fmt.Errorf("record decision: %w", err)
	}
	if !ok {
		// The same request id was decided concurrently: its answer stands.
		other, found, err := s.load(ctx, w.RequestID)
		if err != nil {
			return Answer{}, fmt.Errorf("record decision: %w", err)
		}
		if !found {
			return Answer{}, fmt.Errorf("record decision: the record of request %s vanished as it was written", w.RequestID)
		}
		if !other.Withdrawal.same(w) {
			return Answer{}, &api.RequestError{Status: http.StatusConflict, Field: "request_id", Msg: "request_id " + w.RequestID + " was screened concurrently for another withdrawal"}
		}
		return s.current(ctx, other)
	}
	return ans, nil
}

// judge applies the decision rules to the alerts the request raised and the
// wallet's freeze.
func (s *Screener) judge(w *withdrawal, fired []alertmodel.Alert, status holds.WalletStatus) Answer {
	ans := Answer{RequestID: w.RequestID, Decision: Allow, Reasons: []string{}}
	denied, held := false, false
	for _, a := range fired {
		ans.Policies = append(ans.Policies, a.Policy)
		for _, r := range a.Reasons {
			ans.Reasons = append(ans.Reasons, a.Policy+": "+r)
		}
		if a.Has(alertmodel.ActionHold) {
			held = true
		}
		if a.Severity == alertmodel.Critical {
			if lst, label, ok := s.onDenyList(w); ok {
				if !denied {
					ans.Reasons = append([]string{fmt.Sprintf("destination %s is on list %s (%s): payments to it are refused", w.To, lst, label)}, ans.Reasons...)
				}
				denied = true
			}
		}
	}
	if status.Frozen {
		held = true
		for _, h := range status.Holds {
			ans.Reasons = append(ans.Reasons, fmt.Sprintf("wallet %s is frozen by hold %s (%s)", w.Wallet, h.ID, h.Status))
		}
	}
	switch {
	case denied:
		ans.Decision = Deny
	case held:
		ans.Decision = Hold
	}
	if len(ans.Reasons) == 0 {
		ans.Reasons = append(ans.Reasons, "no policy objects to this withdrawal")
	}
	return ans
}

func (s *Screener) onDenyList(w *withdrawal) (list, label string, ok bool) {
	if s.o.Lists == nil {
		return "", "", false
	}
	ls := s.o.Lists()
	if ls == nil {
		return "", "", false
	}
	fam := lists.EVM
	if ch, _ := s.o.Config.Chain(w.Chain); ch.Kind == "bitcoin" {
		fam = lists.Bitcoin
	}
	for _, name := range s.o.Config.Holds.DenyLists {
		l, found := ls.Get(name)
		if !found {
			continue
		}
		if e, hit := l.Lookup(fam, w.To); hit {
			return name, e.Evidence(), true
		}
	}
	return "", "", false
}

// current is the answer for a request decided before: its decision, or the
// outcome of its hold.
func (s *Screener) current(ctx context.Context, rec record) (Answer, error) {
	ans := rec.Answer
	if ans.Decision != Hold || ans.HoldID == "" {
		return ans, nil
	}
	h, err := s.o.Holds.Get(ctx, ans.HoldID)
	if err != nil {
		return Answer{}, err
	}
	switch h.Status {
	case holds.Held:
		ans.Reasons = append(ans.Reasons, fmt.Sprintf("hold %s awaits approval: %d of %d approvals", h.ID, len(h.Approvals), h.ApprovalsRequired))
	case holds.Approved:
		// Registering again is idempotent: it repairs an approval whose
		// registration failed.
		if err := s.register(ctx, &rec.Withdrawal, h.ApprovedBy()); err != nil {
			return Answer{}, err
		}
		ans.Decision = Allow
		ans.Reasons = append(ans.Reasons, fmt.Sprintf("hold %s was approved by %s", h.ID, strings.Join(h.ApprovedBy(), ", ")))
	case holds.Rejected:
		ans.Decision = Deny
		r := fmt.Sprintf("hold %s was rejected by %s", h.ID, h.Rejection.By)
		if h.Rejection.Comment != "" {
			r += ": " + h.Rejection.Comment
		}
		ans.Reasons = append(ans.Reasons, r)
	case holds.Expired:
		ans.Decision = Deny
		ans.Reasons = append(ans.Reasons, fmt.Sprintf("hold %s expired without approval; screen a new request to try again", h.ID))
	}
	return ans, nil
}

func (s *Screener) register(ctx context.Context, w *withdrawal, approvedBy []string) error {
	source := "screen"
	if len(approvedBy) > 0 {
		source = "hold"
	}
	err := s.o.Intents.Register(ctx, intents.Intent{
		ID: w.RequestID, Chain: w.Chain, Wallet: w.Wallet, To: w.To, Asset: w.Asset, Amount: w.Amount,
		RequestedBy: w.RequestedBy, ApprovedBy: approvedBy, Source: source,
	})
	if err != nil {
		return fmt.Errorf("register approved intent: %w", err)
	}
	return nil
}

func (s *Screener) audit(ctx context.Context, caller string, w *withdrawal, ans Answer) error {
	if s.o.Audit == nil {
		return nil
	}
	return s.o.Audit.Record(ctx, audit.ActionScreen, caller, map[string]any{
		"request_id": w.RequestID, "decision": ans.Decision, "hold_id": ans.HoldID, "reasons": ans.Reasons,
		"chain": w.Chain, "wallet": w.Wallet, "to": w.To, "asset": w.Asset, "amount": w.Amount, "requested_by": w.RequestedBy,
	})
}

func (s *Screener) load(ctx context.Context, requestID string) (record, bool, error) {
	return s.decisionRecord(requestID).Get(ctx, recordKey(requestID))
}

// event is the pending outflow the policies judge.
func (s *Screener) event(w *withdrawal) chains.Event {
	return chains.Event{
		ID:           "screen:" + w.RequestID,
		Chain:        w.Chain,
		Time:         s.o.Now().UTC(),
		Status:       chains.StatusPending,
		Kind:         chains.KindTransfer,
		Direction:    chains.Out,
		Wallet:       w.Wallet,
		WalletRole:   w.role,
		Owner:        w.owner,
		From:         w.from,
		To:           w.To,
		Counterparty: w.To,
		Initiator:    w.from,
		Asset:        w.Asset,
		Token:        w.token,
		Amount:       w.Amount,
		USD:          w.usd,
		Detail:       map[string]string{"screening": "true", "request_id": w.RequestID, "requested_by": w.RequestedBy},
	}
}

// usdValue is amount × price, in float64 (an estimate for USD rules).
func usdValue(a chains.Amount, price float64) float64 {
	if price == 0 {
		return 0
	}
	v, _ := new(big.Rat).Mul(a.Rat(), new(big.Rat).SetFloat64(price)).Float64()
	return v
}
