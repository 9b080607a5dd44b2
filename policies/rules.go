package policies

import (
	"fmt"
	"reflect"
	"strings"
	"time"

	"cel.dev/cel-go/cel"
	celast "cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/ext"
	"cel.dev/cel-go/interpreter"

	"github.com/keywatch/keywatch/chains"
	"github.com/keywatch/keywatch/config"
	"github.com/keywatch/keywatch/policies/lists"
)

// RuleEvent is what a when: expression sees as `event`: the event of the
// specification, with amount and usd as doubles and time as a timestamp.
type RuleEvent struct {
	ID           string            `cel:"id"`
	Chain        string            `cel:"chain"`
	Tx           string            `cel:"tx"`
	Block        int64             `cel:"block"`
	BlockHash    string            `cel:"block_hash"`
	Time         time.Time         `cel:"time"`
	Status       string            `cel:"status"`
	Kind         string            `cel:"kind"`
	Direction    string            `cel:"direction"`
	Wallet       string            `cel:"wallet"`
	WalletRole   string            `cel:"wallet_role"`
	Owner        string            `cel:"owner"`
	From         string            `cel:"from"`
	To           string            `cel:"to"`
	Counterparty string            `cel:"counterparty"`
	Initiator    string            `cel:"initiator"`
	Asset        string            `cel:"asset"`
	Token        string            `cel:"token"`
	Amount       float64           `cel:"amount"`
	USD          float64           `cel:"usd"`
	Intent       string            `cel:"intent"`
	Detail       map[string]string `cel:"detail"`
	// Safe executions (kind execution): value is the wei sent (decimal),
	// safe_nonce is -1 when the event has none.
	Operation string   `cel:"operation"`
	Target    string   `cel:"target"`
	Value     string   `cel:"value"`
	Selector  string   `cel:"selector"`
	SafeNonce int64    `cel:"safe_nonce"`
	Signers   []string `cel:"signers"`
	Module    string   `cel:"module"`
}

func ruleEvent(ev *chains.Event) *RuleEvent {
	d := ev.Detail
	if d == nil {
		d = map[string]string{}
	}
	return &RuleEvent{
		ID: ev.ID, Chain: ev.Chain, Tx: ev.Tx, Block: int64(ev.Block), BlockHash: ev.BlockHash, Time: ev.Time,
		Status: string(ev.Status), Kind: string(ev.Kind), Direction: string(ev.Direction),
		Wallet: ev.Wallet, WalletRole: ev.WalletRole, Owner: ev.Owner, From: ev.From, To: ev.To,
		Counterparty: ev.Counterparty, Initiator: ev.Initiator, Asset: ev.Asset, Token: ev.Token,
		Amount: ev.Amount.Float64(), USD: ev.USD, Intent: ev.Intent, Detail: d,
		Operation: ev.Operation, Target: ev.Target, Value: ev.Value, Selector: ev.Selector,
		SafeNonce: safeNonce(ev), Signers: ev.Signers, Module: ev.Module,
	}
}

// safeNonce is the event's Safe nonce for rules, -1 when it has none.
func safeNonce(ev *chains.Event) int64 {
	if ev.SafeNonce == nil || *ev.SafeNonce > 1<<62 {
		return -1
	}
	return int64(*ev.SafeNonce)
}

// listType is the CEL type of one address list: lists.mixers.contains(a).
var listType = cel.OpaqueType("keywatch.List")

// listVal is a list as a CEL value.
type listVal struct{ l *lists.List }

func (v listVal) ConvertToNative(reflect.Type) (any, error) {
	return nil, fmt.Errorf("a list cannot leave the expression")
}
func (v listVal) ConvertToType(t ref.Type) ref.Val {
	if t == types.TypeType {
		return listType
	}
	return types.NewErr("a list converts to nothing")
}
func (v listVal) Equal(o ref.Val) ref.Val { return types.Bool(o == ref.Val(v)) }
func (v listVal) Type() ref.Type          { return listType }
func (v listVal) Value() any              { return v.l }

// contains reports whether an address is on the list. The address's form
// says its family: 0x for EVM, any other form is looked up as Bitcoin (an
// EVM address is never a Bitcoin one, and trying to decode it as one costs
// a hundred lookups).
func (v listVal) contains(addr string) bool {
	f := lists.Bitcoin
	if a := strings.TrimSpace(addr); strings.HasPrefix(a, "0x") || strings.HasPrefix(a, "0X") {
		f = lists.EVM
	}
	_, ok := v.l.Lookup(f, addr)
	return ok
}

// ruleEnv compiles when: expressions against the configuration's lists.
type ruleEnv struct {
	env   *cel.Env
	lists map[string]bool
}

func newRuleEnv(cfg *config.Config) (*ruleEnv, error) {
	env, err := cel.NewEnv(
		ext.NativeTypes(reflect.TypeOf(RuleEvent{}), ext.ParseStructTags(true)),
		ext.Strings(),
		cel.Variable("event", cel.ObjectType("policies.RuleEvent")),
		cel.Variable("lists", cel.MapType(cel.StringType, listType)),
		cel.Function("contains",
			cel.MemberOverload("keywatch_list_contains_string", []*cel.Type{listType, cel.StringType}, cel.BoolType,
				cel.BinaryBinding(func(l, a ref.Val) ref.Val {
					lv, ok := l.(listVal)
					s, ok2 := a.(types.String)
					if !ok || !ok2 {
						return types.NewErr("contains: want a list and an address")
					}
					return types.Bool(lv.contains(string(s)))
				}))),
	)
	if err != nil {
		return nil, fmt.Errorf("rule language: %w", err)
	}
	re := &ruleEnv{env: env, lists: map[string]bool{}}
	for name := range cfg.Lists {
		re.lists[name] = true
	}
	return re, nil
}

// Rule is a compiled when: expression.
type Rule struct {
	Source string
	prg    cel.Program
}

// compile type-checks an expression; problems are reported at the policy's
// when: field with the position inside the expression.
func (re *ruleEnv) compile(b *builder, path, policy, src string) *Rule {
	ast, iss := re.env.Compile(src)
	if iss != nil && iss.Err() != nil {
		for _, e := range iss.Errors() {
			b.errorf(path, "policy %s: expression does not type-check at line %d, column %d: %s%s",
				policy, e.Location.Line(), e.Location.Column()+1, e.Message, snippet(src, e.Location.Line(), e.Location.Column()))
		}
		return nil
	}
	if !ast.OutputType().IsExactType(cel.BoolType) {
		b.errorf(path, "policy %s: expression gives %s, want a bool (true fires the policy)", policy, ast.OutputType())
		return nil
	}
	// Every list named as lists.NAME or lists["NAME"] must exist.
	bad := false
	nat := ast.NativeRep()
	celast.PreOrderVisit(nat.Expr(), celast.NewExprVisitor(func(e celast.Expr) {
		var name string
		var id int64
		switch e.Kind() {
		case celast.SelectKind:
			s := e.AsSelect()
			if s.Operand().Kind() == celast.IdentKind && s.Operand().AsIdent() == "lists" {
				name, id = s.FieldName(), e.ID()
			}
		case celast.CallKind:
			c := e.AsCall()
			if c.FunctionName() == "_[_]" && len(c.Args()) == 2 && c.Args()[0].Kind() == celast.IdentKind && c.Args()[0].AsIdent() == "lists" {
				if k := c.Args()[1]; k.Kind() == celast.LiteralKind {
					if s, ok := k.AsLiteral().(types.String); ok {
						name, id = string(s), e.ID()
					}
				}
			}
		}
		if name == "" || re.lists[name] {
			return
		}
		loc := nat.SourceInfo().GetStartLocation(id)
		b.errorf(path, "policy %s: expression names list %q at line %d, column %d, which is not defined under lists:%s",
			policy, name, loc.Line(), loc.Column()+1, snippet(src, loc.Line(), loc.Column()))
		bad = true
	}))
	if bad {
		return nil
	}
	prg, err := re.env.Program(ast, cel.EvalOptions(cel.OptOptimize))
	if err != nil {
		b.errorf(path, "policy %s: %v", policy, err)
		return nil
	}
	return &Rule{Source: src, prg: prg}
}

// snippet shows the expression line with a caret under the column.
func snippet(src string, line, col int) string {
	lines := strings.Split(src, "\n")
	if line < 1 || line > len(lines) || col < 0 {
		return ""
	}
	return "\n    | " + lines[line-1] + "\n    | " + strings.Repeat(".", col) + "^"
}

// ruleVars is the activation of one event: built once per event, shared by
// every when: expression of the set.
type ruleVars struct {
	event *RuleEvent
	lists map[string]listVal
}

func (v *ruleVars) ResolveName(name string) (any, bool) {
	switch name {
	case "event":
		return v.event, true
	case "lists":
		return v.lists, true
	}
	return nil, false
}

func (v *ruleVars) Parent() interpreter.Activation { return nil }

// eval runs the rule; an error means it could not decide.
func (r *Rule) eval(act interpreter.Activation) (bool, error) {
	out, _, err := r.prg.Eval(act)
	if err != nil {
		return false, fmt.Errorf("when: %w", err)
	}
	b, ok := out.Value().(bool)
	if !ok {
		return false, fmt.Errorf("when: gave %v, not a bool", out.Value())
	}
	return b, nil
}

// listValues wraps every loaded list for rule activations.
func listValues(ls *lists.Set) map[string]listVal {
	out := map[string]listVal{}
	for _, n := range ls.Names() {
		l, _ := ls.Get(n)
		out[n] = listVal{l: l}
	}
	return out
}
