package policies

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/keywatch/keywatch/alertmodel"
	"github.com/keywatch/keywatch/chains"
	"github.com/keywatch/keywatch/config"
	"github.com/keywatch/keywatch/policies/lists"
)

// listMatch fires when the counterparty is on one of the named lists.
// Parameters: lists (required). Default: transfers and approvals, both
// directions.
type listMatch struct{ lists []string }

func buildListMatch(b *builder, path string, p config.Policy) Detector {
	b.unused(path, p, "lists")
	return &listMatch{lists: b.listNames(path, p, nil, "whose addresses this policy matches")}
}

func (d *listMatch) Detect(_ context.Context, ev *chains.Event, in *Input) (Finding, error) {
	fam := familyOf(ev, in)
	var f Finding
	for _, name := range d.lists {
		l, ok := in.Lists.Get(name)
		if !ok {
			return Finding{}, fmt.Errorf("list %s is not loaded", name)
		}
		e, addr, ok := match(l, fam, ev)
		switch {
		case !ok:
			continue
		case addr == ev.Counterparty:
			f.Reasons = append(f.Reasons, fmt.Sprintf("counterparty %s is on list %s (%s)", addr, name, e.Evidence()))
		default:
			f.Reasons = append(f.Reasons, fmt.Sprintf("the movement went through %s, which is on list %s (%s)", addr, name, e.Evidence()))
		}
		f.Hit = true
	}
	return f, nil
}

// match finds the event's counterparty on list l, or else the router it
// went through, and says which address matched.
func match(l *lists.List, fam lists.Family, ev *chains.Event) (lists.Entry, string, bool) {
	for _, a := range []string{ev.Counterparty, ev.Detail[chains.DetailVia]} {
		if a == "" {
			continue
		}
		if e, ok := l.Lookup(fam, a); ok {
			return e, a, true
		}
	}
	return lists.Entry{}, "", false
}

// listed is an address of an event found on a list.
type listed struct {
	entry   lists.Entry
	list    string
	address string // the counterparty, or the router it went through
}

// lookup finds the event's counterparty (or the router it went through) on
// the first of the named lists that has it.
func lookup(ev *chains.Event, in *Input, names []string) (listed, bool, error) {
	fam := familyOf(ev, in)
	for _, name := range names {
		l, ok := in.Lists.Get(name)
		if !ok {
			return listed{}, false, fmt.Errorf("list %s is not loaded", name)
		}
		if e, a, ok := match(l, fam, ev); ok {
			return listed{entry: e, list: name, address: a}, true, nil
		}
	}
	return listed{}, false, nil
}

// familyOf is the list family of the event's chain.
func familyOf(ev *chains.Event, in *Input) lists.Family {
	switch in.Chains[ev.Chain].Kind {
	case "bitcoin":
		return lists.Bitcoin
	default:
		return lists.EVM
	}
}

// threshold fires when one movement is over an amount of its asset or a USD
// value. Parameters: usd_over, or amount_over with asset; asset beside
// usd_over limits the rule to that asset. Default: outflows.
type threshold struct {
	usdOver    *float64
	amountOver chains.Amount
	asset      string
}

func buildThreshold(b *builder, path string, p config.Policy) Detector {
	b.unused(path, p, "usd_over", "amount_over", "asset")
	d := &threshold{usdOver: p.USDOver, asset: p.Asset}
	switch {
	case p.USDOver == nil && p.AmountOver == "":
		b.errorf(path, "threshold needs usd_over, or amount_over with asset")
	case p.USDOver != nil && p.AmountOver != "":
		b.errorf(path+".amount_over", "set usd_over or amount_over, not both")
	case p.AmountOver != "":
		a, err := chains.ParseAmount(p.AmountOver)
		if err != nil {
			b.errorf(path+".amount_over", "%v", err)
		}
		d.amountOver = a
		if p.Asset == "" {
			b.errorf(path+".asset", "required with amount_over (amounts of different assets do not compare)")
		}
	case *p.USDOver < 0:
		b.errorf(path+".usd_over", "must not be negative")
	}
	return d
}

func (d *threshold) Detect(_ context.Context, ev *chains.Event, _ *Input) (Finding, error) {
	if d.asset != "" && !strings.EqualFold(ev.Asset, d.asset) {
		return Finding{}, nil
	}
	if d.usdOver != nil {
		if ev.USD > *d.usdOver {
			return Finding{Hit: true, Reasons: []string{fmt.Sprintf("%s of %s %s (%s USD) is over the threshold of %s USD",
				movement(ev), ev.Amount, ev.Asset, alertmodel.USD(ev.USD), alertmodel.USD(*d.usdOver))}}, nil
		}
		return Finding{}, nil
	}
	if ev.Amount.Cmp(d.amountOver) > 0 {
		return Finding{Hit: true, Reasons: []string{fmt.Sprintf("%s of %s %s is over the threshold of %s %s",
			movement(ev), ev.Amount, ev.Asset, d.amountOver, d.asset)}}, nil
	}
	return Finding{}, nil
}

// honeytoken fires on any movement of a wallet whose role is honeytoken: no
// one should ever touch it, so any use means its key has leaked.
type honeytoken struct{}

func buildHoneytoken(b *builder, path string, p config.Policy) Detector {
	b.unused(path, p)
	return honeytoken{}
}

func (honeytoken) Detect(_ context.Context, ev *chains.Event, _ *Input) (Finding, error) {
	if ev.WalletRole != "honeytoken" {
		return Finding{}, nil
	}
	return Finding{Hit: true, Reasons: []string{fmt.Sprintf(
		"wallet %s is a honeytoken: no one should use it, so its key has leaked (%s %s %s %s %s)",
		ev.Wallet, ev.Kind, ev.Direction, ev.Amount, ev.Asset, arrow(ev))}}, nil
}

func movement(ev *chains.Event) string {
	if ev.Direction == chains.In {
		return "inflow"
	}
	return "outflow"
}

func arrow(ev *chains.Event) string {
	if ev.Direction == chains.In {
		return "from " + ev.Counterparty
	}
	return "to " + ev.Counterparty
}

// describe names a wallet for reasons: "dev-deployer (employee key of kim@firm.example)".
func describe(w config.Wallet) string {
	switch {
	case w.Owner != "" && w.Role != "":
		return fmt.Sprintf("%s (%s of %s)", w.Name, roleWords(w.Role), w.Owner)
	case w.Role != "":
		return fmt.Sprintf("%s (%s)", w.Name, roleWords(w.Role))
	}
	return w.Name
}

func roleWords(role string) string {
	switch role {
	case "employee-key":
		return "employee key"
	case "hot", "warm", "cold":
		return role + " wallet"
	}
	return role
}

// eventTime is when the event happened (its block's time), or now when the
// chain gave none.
func eventTime(ev *chains.Event, in *Input) time.Time {
	if !ev.Time.IsZero() {
		return ev.Time
	}
	if in.Now != nil {
		return in.Now()
	}
	return time.Now()
}

// fmtDuration prints 1h, 90m, 72h or 1h30m rather than 1h0m0s.
func fmtDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// errNoStore is the error of a stateful detector run without a store.
var errNoStore = errors.New("no store to keep its state in")
