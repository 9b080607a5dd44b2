// Package policytest runs recorded or hand-written events through a policy
// set and compares the alerts with the ones a cases file expects: the
// regression tests of a firm's policies (`keywatch policy test`).
package policytest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/keywatch/keywatch/chains"
	"github.com/keywatch/keywatch/config"
	"github.com/keywatch/keywatch/intents"
)

// File is a cases file.
type File struct {
	Cases []Case `yaml:"cases"`

	path    string
	intents []intents.Intent // of the configuration's intents files
}

// Case is one scenario: intents registered first, then events judged in
// order by a fresh engine (its own memory store), then the alerts compared
// with Expect.
type Case struct {
	Name    string       `yaml:"name"`
	Time    string       `yaml:"time"` // clock of the first event (RFC 3339); later ones a minute apart
	Intents []IntentSpec `yaml:"intents"`
	Events  []EventSpec  `yaml:"events"`
	Expect  []Expect     `yaml:"expect"`

	line     int
	start    time.Time
	events   []chains.Event
	balances map[string]chains.Amount // by event id
}

// IntentSpec is an approved withdrawal registered before the events.
type IntentSpec struct {
	ID        string `yaml:"id"`
	Wallet    string `yaml:"wallet"`
	To        string `yaml:"to"`
	Asset     string `yaml:"asset"`
	Amount    string `yaml:"amount"`
	ExpiresAt string `yaml:"expires_at"`
}

// EventSpec is an event as written in a cases file: the fields of the event
// model, most of which default from the configuration (see README).
type EventSpec struct {
	ID           string            `yaml:"id"`
	Tx           string            `yaml:"tx"`
	Block        uint64            `yaml:"block"`
	Time         string            `yaml:"time"`
	Status       string            `yaml:"status"`
	Kind         string            `yaml:"kind"`
	Direction    string            `yaml:"direction"`
	Wallet       string            `yaml:"wallet"`
	From         string            `yaml:"from"`
	To           string            `yaml:"to"`
	Counterparty string            `yaml:"counterparty"`
	Initiator    string            `yaml:"initiator"`
	Asset        string            `yaml:"asset"`
	Token        string            `yaml:"token"`
	Amount       string            `yaml:"amount"`
	USD          *float64          `yaml:"usd"`
	Intent       string            `yaml:"intent"`
	Detail       map[string]string `yaml:"detail"`
	// BalanceBefore is what the wallet held in the event's asset before it,
	// as the node would say (for drain); without it, drain cannot decide.
	BalanceBefore string `yaml:"balance_before"`
}

// Expect is one alert a case expects.
type Expect struct {
	Policy   string   `yaml:"policy"`
	Severity string   `yaml:"severity"` // compared when given
	Status   string   `yaml:"status"`   // default firing
	Reasons  []string `yaml:"reasons"`  // each must be a substring of one of the alert's reasons
	Event    int      `yaml:"event"`    // 1-based index of the event that raised it; 0: any

	line int
}

// DefaultStart is the clock of a case that gives no time: a Monday, noon UTC.
var DefaultStart = time.Date(2025, 1, 6, 12, 0, 0, 0, time.UTC)

var (
	yamlLineRe   = regexp.MustCompile(`line (\d+): `)
	unknownKeyRe = regexp.MustCompile(`field (\S+) not found in type \S+`)
)

// Load reads a cases file and builds its events against the configuration
// (wallets, chains, token prices). Every problem is reported with the file's
// line.
func Load(path string, cfg *config.Config) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, config.Errors{{File: path, Msg: fmt.Sprintf("cannot read cases: %v", err)}}
	}
	f := &File{path: path}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(f); err != nil {
		return nil, yamlErrors(path, err)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, yamlErrors(path, err)
	}
	lines := caseLines(&root)
	var errs config.Errors
	ins, err := intents.Load(cfg)
	if err != nil {
		var ce config.Errors
		if errors.As(err, &ce) {
			errs = append(errs, ce...)
		} else {
			errs = append(errs, &config.Error{File: cfg.File(), Msg: err.Error()})
		}
	}
	f.intents = ins
	add := func(line int, field, format string, args ...any) {
		errs = append(errs, &config.Error{File: path, Line: line, Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	if len(f.Cases) == 0 {
		add(1, "cases", "no cases")
	}
	names := map[string]bool{}
	for i := range f.Cases {
		c := &f.Cases[i]
		l := lines.at(i)
		c.line = l.line
		p := fmt.Sprintf("cases[%d]", i)
		switch {
		case c.Name == "":
			add(c.line, p+".name", "required")
		case names[c.Name]:
			add(l.field("name"), p+".name", "case %q is defined twice", c.Name)
		}
		names[c.Name] = true
		c.start = DefaultStart
		if c.Time != "" {
			t, err := time.Parse(time.RFC3339, c.Time)
			if err != nil {
				add(l.field("time"), p+".time", "%q: want an RFC 3339 time such as 2025-01-06T12:00:00Z", c.Time)
			}
			c.start = t.UTC()
		}
		if len(c.Events) == 0 {
			add(l.field("events"), p+".events", "a case needs at least one event")
		}
		for j, in := range c.Intents {
			ip := fmt.Sprintf("%s.intents[%d]", p, j)
			line := l.intent(j)
			_, ok := cfg.Wallet(in.Wallet)
			switch {
			case in.ID == "":
				add(line, ip+".id", "required")
			case !ok:
				add(line, ip+".wallet", "no wallet named %q in %s", in.Wallet, cfg.File())
			case in.To == "":
				add(line, ip+".to", "required")
			}
			if _, err := chains.ParseAmount(in.Amount); err != nil {
				add(line, ip+".amount", "%v", err)
			}
			if in.ExpiresAt != "" {
				if _, err := time.Parse(time.RFC3339, in.ExpiresAt); err != nil {
					add(line, ip+".expires_at", "%q: want an RFC 3339 time", in.ExpiresAt)
				}
			}
		}
		c.balances = map[string]chains.Amount{}
		for j := range c.Events {
			ep := fmt.Sprintf("%s.events[%d]", p, j)
			ev, es := buildEvent(cfg, c, j, l.event(j), ep, path)
			errs = append(errs, es...)
			c.events = append(c.events, ev)
			if b := c.Events[j].BalanceBefore; b != "" {
				a, err := chains.ParseAmount(b)
				if err != nil {
					add(l.event(j), ep+".balance_before", "%v", err)
				}
				c.balances[ev.ID] = a
			}
		}
		for j := range c.Expect {
			x := &c.Expect[j]
			x.line = l.expect(j)
			xp := fmt.Sprintf("%s.expect[%d]", p, j)
			if x.Policy == "" {
				add(x.line, xp+".policy", "required")
			} else if !hasPolicy(cfg, x.Policy) {
				add(x.line, xp+".policy", "no policy named %q in %s", x.Policy, cfg.File())
			}
			if x.Severity != "" && !oneOf(x.Severity, "critical", "high", "medium", "low", "info") {
				add(x.line, xp+".severity", "%q: want critical, high, medium, low or info", x.Severity)
			}
			if x.Status == "" {
				x.Status = "firing"
			} else if !oneOf(x.Status, "firing", "resolved") {
				add(x.line, xp+".status", "%q: want firing or resolved", x.Status)
			}
			if x.Event < 0 || x.Event > len(c.Events) {
				add(x.line, xp+".event", "%d: the case has events 1 to %d", x.Event, len(c.Events))
			}
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return f, nil
}

// buildEvent fills an event from its spec and the configuration.
func buildEvent(cfg *config.Config, c *Case, j, line int, p, path string) (chains.Event, config.Errors) {
	s := c.Events[j]
	var errs config.Errors
	add := func(field, format string, args ...any) {
		errs = append(errs, &config.Error{File: path, Line: line, Field: p + "." + field, Msg: fmt.Sprintf(format, args...)})
	}
	ev := chains.Event{Block: s.Block, Intent: s.Intent, Detail: s.Detail}
	w, ok := cfg.Wallet(s.Wallet)
	if s.Wallet == "" {
		add("wallet", "required: the watched wallet the event concerns")
	} else if !ok {
		add("wallet", "no wallet named %q in %s", s.Wallet, cfg.File())
	}
	ch, _ := cfg.Chain(w.Chain)
	ev.Chain, ev.Wallet, ev.WalletRole, ev.Owner = w.Chain, w.Name, w.Role, w.Owner

	ev.Time = c.start.Add(time.Duration(j) * time.Minute)
	if s.Time != "" {
		t, err := time.Parse(time.RFC3339, s.Time)
		if err != nil {
			add("time", "%q: want an RFC 3339 time such as 2025-01-06T12:00:00Z", s.Time)
		}
		ev.Time = t.UTC()
	}
	ev.Status = chains.StatusConfirmed
	if s.Status != "" {
		if !oneOf(s.Status, "pending", "confirmed", "retracted") {
			add("status", "%q: want pending, confirmed or retracted", s.Status)
		}
		ev.Status = chains.Status(s.Status)
	}
	ev.Kind = chains.KindTransfer
	if s.Kind != "" {
		if !oneOf(s.Kind, "transfer", "approval", "admin") {
			add("kind", "%q: want transfer, approval or admin", s.Kind)
		}
		ev.Kind = chains.Kind(s.Kind)
	}
	ev.Direction = chains.Out
	if s.Direction != "" {
		if !oneOf(s.Direction, "out", "in") {
			add("direction", "%q: want out or in", s.Direction)
		}
		ev.Direction = chains.Direction(s.Direction)
	}
	if s.Counterparty == "" {
		add("counterparty", "required: the other side's address")
	}
	ev.Counterparty = address(s.Counterparty)
	self := address(w.Address)
	if ev.Direction == chains.Out {
		ev.From, ev.To = self, ev.Counterparty
	} else {
		ev.From, ev.To = ev.Counterparty, self
	}
	if s.From != "" {
		ev.From = address(s.From)
	}
	if s.To != "" {
		ev.To = address(s.To)
	}
	ev.Initiator = ev.From
	if s.Initiator != "" {
		ev.Initiator = address(s.Initiator)
	}

	ev.Asset = s.Asset
	if ev.Asset == "" {
		ev.Asset = ch.NativeSymbol
	}
	price, token, known := priceOf(ch, ev.Asset)
	ev.Token = token
	if s.Token != "" {
		ev.Token = address(s.Token)
	}
	amount, err := chains.ParseAmount(s.Amount)
	if s.Amount == "" {
		add("amount", "required: a decimal amount in asset units, such as \"1.5\"")
	} else if err != nil {
		add("amount", "%v", err)
	}
	ev.Amount = amount
	switch {
	case s.USD != nil:
		ev.USD = *s.USD
	case known && err == nil:
		ev.USD = amount.Float64() * price
	}

	ev.Tx = s.Tx
	if ev.Tx == "" {
		h := sha256.Sum256([]byte(c.Name + "\x00" + strconv.Itoa(j)))
		ev.Tx = "0x" + hex.EncodeToString(h[:])
	}
	ev.ID = s.ID
	if ev.ID == "" {
		ev.ID = chains.EventID(ev.Chain, ev.Tx, j)
	}
	return ev, errs
}

// priceOf returns the configured USD price of an asset on a chain and, for
// a token, its contract address.
func priceOf(ch config.Chain, asset string) (price float64, token string, known bool) {
	if strings.EqualFold(asset, ch.NativeSymbol) {
		return ch.NativeUSD, "", true
	}
	for _, t := range ch.Tokens {
		if strings.EqualFold(t.Symbol, asset) {
			return t.USD, address(t.Address), true
		}
	}
	return 0, "", false
}

func hasPolicy(cfg *config.Config, name string) bool {
	for _, p := range cfg.Policies {
		if p.Name == name {
			return true
		}
	}
	return false
}

func oneOf(s string, options ...string) bool {
	for _, o := range options {
		if s == o {
			return true
		}
	}
	return false
}

// address writes an address as events carry it: EVM addresses lowercase,
// Bitcoin addresses as written (base58 is case-sensitive).
func address(s string) string { return chains.NormaliseAddress(strings.TrimSpace(s)) }

// yamlErrors turns yaml.v3's errors into file:line problems.
func yamlErrors(path string, err error) config.Errors {
	var te *yaml.TypeError
	msgs := []string{strings.TrimPrefix(err.Error(), "yaml: ")}
	if errors.As(err, &te) {
		msgs = te.Errors
	}
	var out config.Errors
	for _, m := range msgs {
		e := &config.Error{File: path}
		if loc := yamlLineRe.FindStringSubmatchIndex(m); loc != nil {
			e.Line, _ = strconv.Atoi(m[loc[2]:loc[3]])
			m = m[:loc[0]] + m[loc[1]:]
		}
		if u := unknownKeyRe.FindStringSubmatch(m); u != nil {
			m = fmt.Sprintf("unknown key %q", u[1])
		}
		e.Msg = strings.TrimSpace(m)
		out = append(out, e)
	}
	return out
}

// lineIndex holds where each case and its parts are written.
type lineIndex []caseNode

type caseNode struct {
	line                     int
	fields                   map[string]int // the case's keys
	intents, events, expects []int
}

// field is the line of one of the case's keys (the case's line if absent).
func (c caseNode) field(key string) int {
	if l, ok := c.fields[key]; ok {
		return l
	}
	return c.line
}

func (l lineIndex) at(i int) caseNode {
	if i < len(l) {
		return l[i]
	}
	return caseNode{}
}

func (c caseNode) intent(j int) int { return pick(c.intents, j, c.line) }
func (c caseNode) event(j int) int  { return pick(c.events, j, c.line) }
func (c caseNode) expect(j int) int { return pick(c.expects, j, c.line) }

func pick(lines []int, j, fallback int) int {
	if j < len(lines) {
		return lines[j]
	}
	return fallback
}

// caseLines finds the line of every case, event, intent and expectation.
func caseLines(root *yaml.Node) lineIndex {
	doc := root
	if doc.Kind == yaml.DocumentNode && len(doc.Content) > 0 {
		doc = doc.Content[0]
	}
	cases := mapValue(doc, "cases")
	if cases == nil || cases.Kind != yaml.SequenceNode {
		return nil
	}
	var out lineIndex
	for _, cn := range cases.Content {
		c := caseNode{line: cn.Line, fields: map[string]int{}}
		if cn.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(cn.Content); i += 2 {
				c.fields[cn.Content[i].Value] = cn.Content[i].Line
			}
		}
		for key, dst := range map[string]*[]int{"intents": &c.intents, "events": &c.events, "expect": &c.expects} {
			if seq := mapValue(cn, key); seq != nil && seq.Kind == yaml.SequenceNode {
				for _, item := range seq.Content {
					*dst = append(*dst, item.Line)
				}
			}
		}
		out = append(out, c)
	}
	return out
}

func mapValue(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}
