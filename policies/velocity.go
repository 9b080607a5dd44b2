package policies

import (
	"context"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/keywatch/keywatch/alertmodel"
	"github.com/keywatch/keywatch/chains"
	"github.com/keywatch/keywatch/config"
	"github.com/keywatch/keywatch/store"
)

// measure is what velocity sums and structuring compares: the USD value of
// movements (optionally of one asset), or the amount of one asset.
type measure struct {
	usd    bool
	limit  *big.Rat
	asset  string
	amount chains.Amount // the limit as written, for messages
}

func (b *builder) measure(path string, p config.Policy, detector string) measure {
	m := measure{asset: p.Asset, limit: new(big.Rat)}
	switch {
	case p.USDOver == nil && p.AmountOver == "":
		b.errorf(path, "%s needs usd_over, or amount_over with asset", detector)
	case p.USDOver != nil && p.AmountOver != "":
		b.errorf(path+".amount_over", "set usd_over or amount_over, not both")
	case p.AmountOver != "":
		a, err := chains.ParseAmount(p.AmountOver)
		if err != nil {
			b.errorf(path+".amount_over", "%v", err)
			break
		}
		m.amount, m.limit = a, a.Rat()
		if p.Asset == "" {
			b.errorf(path+".asset", "required with amount_over (amounts of different assets do not compare)")
		}
	case *p.USDOver < 0:
		b.errorf(path+".usd_over", "must not be negative")
	default:
		m.usd = true
		m.limit = decRat(*p.USDOver)
	}
	return m
}

// counts reports whether the event's asset is measured.
func (m measure) counts(ev *chains.Event) bool {
	return m.asset == "" || strings.EqualFold(ev.Asset, m.asset)
}

// value is the event's measure as a decimal string (stored in sorted-set
// members) and as an exact rational.
func (m measure) value(ev *chains.Event) (string, *big.Rat) {
	if m.usd {
		return strconv.FormatFloat(ev.USD, 'f', -1, 64), decRat(ev.USD)
	}
	return ev.Amount.String(), ev.Amount.Rat()
}

// format prints a measured quantity.
func (m measure) format(r *big.Rat) string {
	if m.usd {
		f, _ := r.Float64()
		return alertmodel.USD(f) + " USD"
	}
	return ratString(r) + " " + m.asset
}

// decRat is the shortest decimal that reads back as f, as an exact rational
// (9999.99 is 999999/100, not the binary float's neighbour).
func decRat(f float64) *big.Rat {
	r, ok := new(big.Rat).SetString(strconv.FormatFloat(f, 'f', -1, 64))
	if !ok {
		return new(big.Rat)
	}
	return r
}

// ratString prints an exact decimal without trailing zeros.
func ratString(r *big.Rat) string {
	s := r.FloatString(18)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}

// scopeKey names what a window sums together: one wallet, one owner's
// wallets, one chain, or everything.
func scopeKey(scope string, ev *chains.Event) (key, words string) {
	switch scope {
	case "owner":
		if ev.Owner != "" {
			return "owner:" + ev.Owner, "wallets of " + ev.Owner
		}
		return "wallet:" + ev.Chain + ":" + ev.Wallet, "wallet " + ev.Wallet + " (it has no owner)"
	case "chain":
		return "chain:" + ev.Chain, "wallets on " + ev.Chain
	case "all":
		return "all", "all watched wallets"
	}
	return "wallet:" + ev.Chain + ":" + ev.Wallet, "wallet " + ev.Wallet
}

func (b *builder) scope(path string, p config.Policy) string {
	switch p.Scope {
	case "":
		return "wallet"
	case "wallet", "owner", "chain", "all":
		return p.Scope
	}
	b.errorf(path+".scope", "unknown scope %q (want wallet, owner, chain or all)", p.Scope)
	return "wallet"
}

// window is a sliding window of movements kept in a sorted set of the store:
// score = the movement's time in milliseconds, member = "<event id>|<value>".
// Adding the same event again (pending, then confirmed) changes nothing, and
// every instance sharing the store sees the same sums.
type window struct {
	prefix string // velocity:<policy> or structuring:<policy>
	scope  string
	length time.Duration
}

// keepLate is how much longer than its window a window keeps movements:
// how late a movement may be judged and still count every movement of its
// own window.
const keepLate = 24 * time.Hour

type windowEntry struct {
	event string
	value *big.Rat
}

func millis(t time.Time) float64 { return float64(t.UnixMilli()) }

// add records ev with value and returns the movements inside the window
// ending at ev's time: those later than time-length, up to time.
func (w window) add(ctx context.Context, st store.Store, ev *chains.Event, at time.Time, value string) ([]windowEntry, string, error) {
	if st == nil {
		return nil, "", errNoStore
	}
	key, words := scopeKey(w.scope, ev)
	key = w.prefix + ":" + key
	end := millis(at)
	start := end - float64(w.length.Milliseconds())
	screening := Screening(ctx)
	if screening {
		// An intended withdrawal is judged with the window as it would be,
		// but not recorded: the outflow, if it happens, will be.
		zs, err := st.ZRangeByScore(ctx, key, math.Nextafter(start, math.Inf(1)), end)
		if err != nil {
			return nil, "", fmt.Errorf("read window: %w", err)
		}
		zs = append(zs, store.ZEntry{Member: ev.ID + "|" + value, Score: end})
		return parseWindow(key, zs, words)
	}
	if err := st.ZAdd(ctx, key, end, ev.ID+"|"+value); err != nil {
		return nil, "", fmt.Errorf("record movement in window: %w", err)
	}
	// Movements are not always judged in time order (another chain's
	// watcher behind or catching up, Bitcoin block times), so the trim keeps
	// keepLate more than the window: a movement judged late still sees its
	// whole window.
	if _, err := st.ZRemRangeByScore(ctx, key, math.Inf(-1), start-float64(keepLate.Milliseconds())); err != nil {
		return nil, "", fmt.Errorf("trim window: %w", err)
	}
	zs, err := st.ZRangeByScore(ctx, key, math.Nextafter(start, math.Inf(1)), end)
	if err != nil {
		return nil, "", fmt.Errorf("read window: %w", err)
	}
	return parseWindow(key, zs, words)
}

func parseWindow(key string, zs []store.ZEntry, words string) ([]windowEntry, string, error) {
	out := make([]windowEntry, 0, len(zs))
	for _, z := range zs {
		id, v, ok := strings.Cut(z.Member, "|")
		r, ok2 := new(big.Rat).SetString(v)
		if !ok || !ok2 {
			return nil, "", fmt.Errorf("window %s holds a malformed member %q", key, z.Member)
		}
		out = append(out, windowEntry{event: id, value: r})
	}
	return out, words, nil
}

// remove forgets a retracted event.
func (w window) remove(ctx context.Context, st store.Store, ev *chains.Event, value string) error {
	if st == nil {
		return nil
	}
	key, _ := scopeKey(w.scope, ev)
	return st.ZRem(ctx, w.prefix+":"+key, ev.ID+"|"+value)
}

// velocity fires when the outflows of a wallet (owner, chain, all) inside a
// sliding window sum to more than a limit. Parameters: usd_over, or
// amount_over with asset; scope (wallet); window (1h). Default: outflows.
type velocity struct {
	m measure
	w window
}

func buildVelocity(b *builder, path string, p config.Policy) Detector {
	b.unused(path, p, "usd_over", "amount_over", "asset", "scope", "window")
	return &velocity{m: b.measure(path, p, "velocity"),
		w: window{prefix: "velocity:" + p.Name, scope: b.scope(path, p), length: b.windowOr(path, p, time.Hour)}}
}

func (d *velocity) Detect(ctx context.Context, ev *chains.Event, in *Input) (Finding, error) {
	if !d.m.counts(ev) {
		return Finding{}, nil
	}
	s, v := d.m.value(ev)
	entries, words, err := d.w.add(ctx, in.Store, ev, eventTime(ev, in), s)
	if err != nil {
		return Finding{}, err
	}
	sum := new(big.Rat)
	for _, e := range entries {
		sum.Add(sum, e.value)
	}
	if sum.Cmp(d.m.limit) <= 0 {
		return Finding{}, nil
	}
	return Finding{Hit: true, Reasons: []string{fmt.Sprintf(
		"%ss of %s in the last %s sum to %s over %d movement%s (this one %s), over the limit of %s",
		movement(ev), words, fmtDuration(d.w.length), d.m.format(sum), len(entries), plural(len(entries)), d.m.format(v), d.m.format(d.m.limit))}}, nil
}

func (d *velocity) Retract(ctx context.Context, ev *chains.Event, in *Input) error {
	s, _ := d.m.value(ev)
	return d.w.remove(ctx, in.Store, ev, s)
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// structuring fires when several outflows inside a window each stay just
// under a threshold, as when someone splits a withdrawal to slip under it.
// Parameters: usd_over, or amount_over with asset (the threshold); margin
// (0.1: within 10% under it); count (3); scope (wallet); window (24h).
type structuring struct {
	m      measure
	w      window
	margin float64
	count  int
	floor  *big.Rat
}

func buildStructuring(b *builder, path string, p config.Policy) Detector {
	b.unused(path, p, "usd_over", "amount_over", "asset", "scope", "window", "margin", "count")
	d := &structuring{m: b.measure(path, p, "structuring"), margin: 0.1, count: 3,
		w: window{prefix: "structuring:" + p.Name, scope: b.scope(path, p), length: b.windowOr(path, p, 24*time.Hour)}}
	if p.Margin != nil {
		d.margin = *p.Margin
		if d.margin <= 0 || d.margin >= 1 {
			b.errorf(path+".margin", "must be between 0 and 1 (0.1: within 10%% under the threshold)")
		}
	}
	if p.Count != 0 {
		d.count = p.Count
		if d.count < 2 {
			b.errorf(path+".count", "must be at least 2 (one movement under a threshold is not structuring)")
		}
	}
	d.floor = new(big.Rat).Mul(d.m.limit, new(big.Rat).Sub(big.NewRat(1, 1), decRat(d.margin)))
	return d
}

// justUnder reports whether v is in [threshold*(1-margin), threshold].
func (d *structuring) justUnder(v *big.Rat) bool {
	return v.Cmp(d.floor) >= 0 && v.Cmp(d.m.limit) <= 0
}

func (d *structuring) Detect(ctx context.Context, ev *chains.Event, in *Input) (Finding, error) {
	if !d.m.counts(ev) {
		return Finding{}, nil
	}
	s, v := d.m.value(ev)
	if !d.justUnder(v) {
		return Finding{}, nil
	}
	entries, words, err := d.w.add(ctx, in.Store, ev, eventTime(ev, in), s)
	if err != nil {
		return Finding{}, err
	}
	if len(entries) < d.count {
		return Finding{}, nil
	}
	var each []string
	for _, e := range entries {
		each = append(each, d.m.format(e.value)+" ("+e.event+")")
	}
	return Finding{Hit: true, Reasons: []string{
		fmt.Sprintf("%d %ss of %s in the last %s each stayed just under the threshold of %s (between %s and it)",
			len(entries), movement(ev), words, fmtDuration(d.w.length), d.m.format(d.m.limit), d.m.format(d.floor)),
		"movements: " + strings.Join(each, ", "),
	}}, nil
}

func (d *structuring) Retract(ctx context.Context, ev *chains.Event, in *Input) error {
	s, _ := d.m.value(ev)
	return d.w.remove(ctx, in.Store, ev, s)
}
