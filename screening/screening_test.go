package screening_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/keywatch/keywatch/alertmodel"
	"github.com/keywatch/keywatch/api"
	"github.com/keywatch/keywatch/audit"
	"github.com/keywatch/keywatch/chains"
	"github.com/keywatch/keywatch/chains/bitcoin/btcaddr"
	"github.com/keywatch/keywatch/config"
	"github.com/keywatch/keywatch/holds"
	"github.com/keywatch/keywatch/hops"
	"github.com/keywatch/keywatch/intents"
	"github.com/keywatch/keywatch/internal/apitest"
	"github.com/keywatch/keywatch/internal/testenv"
	"github.com/keywatch/keywatch/policies"
	"github.com/keywatch/keywatch/policies/lists"
	"github.com/keywatch/keywatch/screening"
	"github.com/keywatch/keywatch/store"
	"github.com/keywatch/keywatch/store/redis"
)

type fixture struct {
	base    string
	engine  *policies.Engine
	cfg     *config.Config
	st      store.Store
	redis   *testenv.RedisServer
	holds   *holds.Manager
	intents *intents.Registry
	audit   *audit.Log
	s       *screening.Screener
}

func setup(t testing.TB) *fixture { return setupWith(t, "") }

// setupWith adds policies (YAML list items) to the test configuration.
func setupWith(t testing.TB, policies string) *fixture {
	t.Helper()
	rs := testenv.StartRedis(t)
	f := &fixture{redis: rs}
	clock := apitest.NewClock()
	f.cfg = apitest.Config(t, "redis: "+rs.URL, policies)
	st, err := redis.Open(context.Background(), rs.URL, redis.WithPrefix("screen-test:"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f.st = st
	ls, err := lists.Load(f.cfg)
	if err != nil {
		t.Fatal(err)
	}
	set, err := buildPolicies(f.cfg, ls)
	if err != nil {
		t.Fatal(err)
	}
	f.audit = audit.New(st, audit.Options{Now: clock.Now})
	f.intents = intents.New(st, clock.Now)
	engine := newEngine(set, st, f.intents, clock.Now)
	f.engine = engine
	f.holds = holds.New(holds.Options{Store: st, Config: f.cfg, Intents: f.intents, Audit: f.audit, Now: clock.Now})
	f.s = screening.New(screening.Options{
		Config: f.cfg, Engine: engine, Lists: func() *lists.Set { return engine.Set().Input().Lists },
		Holds: f.holds, Intents: f.intents, Audit: f.audit, Store: st, Now: clock.Now,
	})
	auth, err := api.NewAuthenticator(f.cfg.API.Tokens, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := api.NewServer(auth, nil)
	f.s.Register(srv)
	f.holds.Register(srv)
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	f.base = hs.URL
	return f
}

func req(id, wallet, to, asset, amount string) map[string]any {
	return map[string]any{"request_id": id, "chain": "eth", "wallet": wallet, "to": to, "asset": asset, "amount": amount, "requested_by": "rita@firm.example"}
}

func (f *fixture) screen(t testing.TB, body any) screening.Answer {
	t.Helper()
	r := apitest.Do(t, f.base, "POST", "/v1/screen", "svc", body)
	if r.Code != 200 {
		t.Fatalf("screen: %s", r)
	}
	var a screening.Answer
	r.JSON(t, &a)
	return a
}

func (f *fixture) intentIDs(t *testing.T, wallet string) []string {
	t.Helper()
	ins, err := f.intents.List(context.Background(), "eth", wallet)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, in := range ins {
		ids = append(ids, in.ID)
	}
	return ids
}

func TestDecisions(t *testing.T) {
	f := setup(t)
	cases := []struct {
		name, wallet, to, asset, amount string
		want                            screening.Decision
		says                            string
		intent                          bool
	}{
		{"a vendor payment", "treasury-hot", apitest.Vendor, "USDC", "25000", screening.Allow, "no policy objects", true},
		{"a large payment pages but is not held", "treasury-hot", apitest.Fresh, "ETH", "50", screening.Allow, "big-outflow: outflow of 50 ETH (150,000.00 USD)", true},
		{"into the mixer", "treasury-hot", apitest.Mixer, "ETH", "1", screening.Hold, "mixer-counterparty: counterparty " + apitest.Mixer + " is on list mixers (Tornado Cash 1 ETH pool", false},
		{"a huge payment", "treasury-hot", apitest.Fresh, "ETH", "400", screening.Hold, "huge-outflow", false},
		{"to a sanctioned address", "treasury-hot", apitest.Sanctioned, "ETH", "1", screening.Deny, "destination " + apitest.Sanctioned + " is on list sanctioned (Lazarus Group", false},
		{"mixed-case addresses are the same address", "treasury-hot", "0x47CE0C6eD5B0Ce3d3A51fdb1C52DC66a7c3c2936", "eth", "0.5", screening.Hold, "mixer-counterparty", false},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			id := fmt.Sprintf("wd-%d", i)
			a := f.screen(t, req(id, c.wallet, c.to, c.asset, c.amount))
			if a.Decision != c.want || a.RequestID != id || !strings.Contains(strings.Join(a.Reasons, "\n"), c.says) {
				t.Fatalf("got %s %q; want %s with %q", a.Decision, a.Reasons, c.want, c.says)
			}
			if (a.Decision == screening.Hold) != (a.HoldID != "") {
				t.Fatalf("decision %s with hold_id %q", a.Decision, a.HoldID)
			}
			registered := false
			for _, in := range f.intentIDs(t, c.wallet) {
				registered = registered || in == id
			}
			if registered != c.intent {
				t.Fatalf("intent registered: %v, want %v", registered, c.intent)
			}
		})
	}
}

func TestBitcoinWithdrawals(t *testing.T) {
	f := setup(t)
	btc := func(id, to, amount string) map[string]any {
		r := req(id, "btc-hot", to, "BTC", amount)
		r["chain"] = "btc"
		return r
	}
	// A regtest address whose script is on the mainnet sanctions list.
	if a := f.screen(t, btc("wd-btc-1", apitest.BTCSanctioned, "2")); a.Decision != screening.Deny ||
		!strings.Contains(strings.Join(a.Reasons, "\n"), "is on list sanctioned (Hydra Market") {
		t.Fatalf("to a sanctioned script: %+v", a)
	}
	if a := f.screen(t, btc("wd-btc-2", "bcrt1q6rz28mcfaxtmd6v789l9rrlrusdprr9pz3cppk", "0.00000001")); a.Decision != screening.Allow {
		t.Fatalf("one satoshi to a fresh address: %+v", a)
	}
	for _, c := range []struct {
		body  map[string]any
		field string
	}{
		{btc("wd-btc-3", apitest.BTCHot, "0.000000001"), "amount"}, // 9 decimals: BTC has 8
		{btc("wd-btc-3", "bc1qnotanaddress", "1"), "to"},
		{btc("wd-btc-3", apitest.Vendor, "1"), "to"}, // an EVM address on a Bitcoin chain
		{btc("wd-btc-3", apitest.BTCHot, "1") /* ETH is not an asset of btc */, ""},
	} {
		if c.field == "" {
			c.body["asset"] = "ETH"
			c.field = "asset"
		}
		r := apitest.Do(t, f.base, "POST", "/v1/screen", "svc", c.body)
		if m := r.Map(t); r.Code != 400 || m["field"] != c.field {
			t.Errorf("%v: %s; want 400 naming %s", c.body, r, c.field)
		}
	}
	// A Bitcoin wallet named under the Ethereum chain is not there.
	r := apitest.Do(t, f.base, "POST", "/v1/screen", "svc", req("wd-btc-4", "btc-hot", apitest.Vendor, "ETH", "1"))
	if m := r.Map(t); r.Code != 404 || m["field"] != "wallet" {
		t.Errorf("btc wallet on eth: %s", r)
	}
}

// TestABitcoinDestinationIsRegisteredAsTheChainWritesIt: the withdrawal
// system may write a Bitcoin address in upper case (BIP 173 allows it, QR
// codes use it) or in another network's form; the approved intent names it
// as the watcher writes the outflow, or the outflow would match no intent.
func TestABitcoinDestinationIsRegisteredAsTheChainWritesIt(t *testing.T) {
	f := setup(t)
	const fresh = "bcrt1q6rz28mcfaxtmd6v789l9rrlrusdprr9pz3cppk"
	script, err := btcaddr.ScriptOf(fresh)
	if err != nil {
		t.Fatal(err)
	}
	mainnet, err := btcaddr.Network("mainnet")
	if err != nil {
		t.Fatal(err)
	}
	for i, to := range []string{strings.ToUpper(fresh), btcaddr.AddressOf(script, mainnet)} {
		r := req(fmt.Sprintf("wd-btc-form-%d", i), "btc-hot", to, "BTC", "0.1")
		r["chain"] = "btc"
		if a := f.screen(t, r); a.Decision != screening.Allow {
			t.Fatalf("%s: %+v", to, a)
		}
	}
	ins, err := f.intents.List(context.Background(), "btc", "btc-hot")
	if err != nil {
		t.Fatal(err)
	}
	if len(ins) != 2 || ins[0].To != fresh || ins[1].To != fresh {
		t.Fatalf("intents %+v, want two to %s", ins, fresh)
	}
}

func TestAFrozenWalletAnswersHold(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	// kim's dev-deployer paid the mixer on chain: her other key is frozen too.
	ev := chains.Event{ID: "eth:0xabc:native", Chain: "eth", Tx: "0xabc", Status: chains.StatusPending, Kind: chains.KindTransfer,
		Direction: chains.Out, Wallet: "dev-deployer", To: apitest.Mixer, Counterparty: apitest.Mixer, Asset: "ETH"}
	as := []alertmodel.Alert{{ID: "eth:0xabc:native:mixer-counterparty", Policy: "mixer-counterparty", Severity: alertmodel.Critical,
		Status: alertmodel.Firing, Chain: "eth", Wallet: "dev-deployer", Event: ev, Actions: []alertmodel.Action{alertmodel.ActionHold}}}
	if err := f.holds.Apply(ctx, as); err != nil {
		t.Fatal(err)
	}
	a := f.screen(t, req("wd-kim", "kim-laptop", apitest.Vendor, "USDC", "10"))
	if a.Decision != screening.Hold || !strings.Contains(strings.Join(a.Reasons, "\n"), "wallet kim-laptop is frozen by hold "+as[0].HoldID) {
		t.Fatalf("got %+v", a)
	}
	if ids := f.intentIDs(t, "kim-laptop"); len(ids) != 0 {
		t.Fatalf("a held request registered intents %v", ids)
	}
}

func TestScreeningIsIdempotentPerRequestID(t *testing.T) {
	f := setup(t)
	body := req("wd-1", "treasury-hot", apitest.Mixer, "ETH", "1")
	first := f.screen(t, body)
	second := f.screen(t, body)
	if first.Decision != screening.Hold || second.Decision != screening.Hold || second.HoldID != first.HoldID {
		t.Fatalf("first %+v, second %+v", first, second)
	}
	hs, err := f.holds.List(context.Background(), holds.Filter{})
	if err != nil || len(hs) != 1 {
		t.Fatalf("%d holds (%v), want 1", len(hs), err)
	}
	// The same id for another withdrawal is a conflict, and changes nothing.
	other := req("wd-1", "treasury-hot", apitest.Mixer, "ETH", "2")
	r := apitest.Do(t, f.base, "POST", "/v1/screen", "svc", other)
	if m := r.Map(t); r.Code != 409 || m["field"] != "request_id" {
		t.Fatalf("reused request_id: %s", r)
	}
	allowed := req("wd-2", "treasury-hot", apitest.Vendor, "USDC", "5")
	if a, b := f.screen(t, allowed), f.screen(t, allowed); a.Decision != screening.Allow || b.Decision != screening.Allow {
		t.Fatalf("%+v %+v", a, b)
	}
	if ids := f.intentIDs(t, "treasury-hot"); strings.Join(ids, ",") != "wd-2" {
		t.Fatalf("intents %v, want wd-2 once", ids)
	}
	p, err := f.audit.Read(context.Background(), 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range p.Entries {
		if e.Action == "screen.decision" {
			n++
		}
	}
	if n != 2 {
		t.Fatalf("%d screen.decision audit entries, want one per request id", n)
	}
}

func TestAnApprovedHoldAllowsAndARejectedOneDenies(t *testing.T) {
	f := setup(t)
	held := f.screen(t, req("wd-approve", "treasury-hot", apitest.Mixer, "ETH", "1"))
	path := "/v1/holds/" + held.HoldID
	// rita asked for it: she may not approve it.
	r := apitest.Do(t, f.base, "POST", path+"/approve", "rita", nil)
	if r.Code != 403 || !strings.Contains(string(r.Body), "rita requested this withdrawal: the requester may not approve it") {
		t.Fatalf("self-approval: %s", r)
	}
	if a := f.screen(t, req("wd-approve", "treasury-hot", apitest.Mixer, "ETH", "1")); a.Decision != screening.Hold ||
		!strings.Contains(strings.Join(a.Reasons, "\n"), "awaits approval: 0 of 2 approvals") {
		t.Fatalf("asked again while held: %+v", a)
	}
	for _, who := range []string{"alice", "bob"} {
		if r := apitest.Do(t, f.base, "POST", path+"/approve", who, map[string]string{"comment": "compliance cleared it"}); r.Code != 200 {
			t.Fatal(r)
		}
	}
	// The approval registered the intent at once.
	ins, err := f.intents.List(context.Background(), "eth", "treasury-hot")
	if err != nil || len(ins) != 1 || ins[0].ID != "wd-approve" || strings.Join(ins[0].ApprovedBy, ",") != "alice,bob" || ins[0].Source != "hold" {
		t.Fatalf("intents after approval: %+v %v", ins, err)
	}
	a := f.screen(t, req("wd-approve", "treasury-hot", apitest.Mixer, "ETH", "1"))
	if a.Decision != screening.Allow || a.HoldID != held.HoldID || !strings.Contains(strings.Join(a.Reasons, "\n"), "approved by alice, bob") {
		t.Fatalf("after approval: %+v", a)
	}

	held = f.screen(t, req("wd-reject", "treasury-hot", apitest.Mixer, "ETH", "1"))
	if r := apitest.Do(t, f.base, "POST", "/v1/holds/"+held.HoldID+"/reject", "carol", map[string]string{"comment": "no mixers"}); r.Code != 200 {
		t.Fatal(r)
	}
	a = f.screen(t, req("wd-reject", "treasury-hot", apitest.Mixer, "ETH", "1"))
	if a.Decision != screening.Deny || !strings.Contains(strings.Join(a.Reasons, "\n"), "rejected by carol: no mixers") {
		t.Fatalf("after rejection: %+v", a)
	}
	if ids := f.intentIDs(t, "treasury-hot"); strings.Join(ids, ",") != "wd-approve" {
		t.Fatalf("intents %v", ids)
	}
}

func TestBadRequestsAreRefusedAndNothingIsRecorded(t *testing.T) {
	f := setup(t)
	good := `"request_id":"wd-1","chain":"eth","wallet":"treasury-hot","to":"` + apitest.Vendor + `","asset":"ETH","requested_by":"rita"`
	cases := []struct {
		name, body string
		code       int
		field      string
	}{
		{"malformed JSON", `{"request_id": "wd-1",`, 400, ""},
		{"not an object", `["wd-1"]`, 400, ""},
		{"unknown field", `{` + good + `,"amount":"1","memo":"x"}`, 400, "memo"},
		{"negative amount", `{` + good + `,"amount":"-1"}`, 400, "amount"},
		{"negative number", `{` + good + `,"amount":-1}`, 400, "amount"},
		{"amount not a number", `{` + good + `,"amount":"one"}`, 400, "amount"},
		{"amount in exponent form", `{` + good + `,"amount":"1e3"}`, 400, "amount"},
		{"amount zero", `{` + good + `,"amount":"0"}`, 400, "amount"},
		{"amount missing", `{` + good + `}`, 400, "amount"},
		{"amount a boolean", `{` + good + `,"amount":true}`, 400, "amount"},
		{"19 decimals for ETH", `{` + good + `,"amount":"0.0000000000000000001"}`, 400, "amount"},
		{"7 decimals for USDC", `{"request_id":"wd-1","chain":"eth","wallet":"treasury-hot","to":"` + apitest.Vendor + `","asset":"USDC","requested_by":"rita","amount":"1.0000001"}`, 400, "amount"},
		{"request_id missing", `{"chain":"eth","wallet":"treasury-hot","to":"` + apitest.Vendor + `","asset":"ETH","requested_by":"rita","amount":"1"}`, 400, "request_id"},
		{"request_id with spaces", `{"request_id":"wd 1","chain":"eth","wallet":"treasury-hot","to":"` + apitest.Vendor + `","asset":"ETH","requested_by":"rita","amount":"1"}`, 400, "request_id"},
		{"requested_by missing", `{"request_id":"wd-1","chain":"eth","wallet":"treasury-hot","to":"` + apitest.Vendor + `","asset":"ETH","amount":"1"}`, 400, "requested_by"},
		{"request_id a number", `{"request_id":7,"chain":"eth","wallet":"treasury-hot","to":"` + apitest.Vendor + `","asset":"ETH","requested_by":"rita","amount":"1"}`, 400, "request_id"},
		{"destination not an address", `{"request_id":"wd-1","chain":"eth","wallet":"treasury-hot","to":"0x1234","asset":"ETH","requested_by":"rita","amount":"1"}`, 400, "to"},
		{"destination with a bad checksum", `{"request_id":"wd-1","chain":"eth","wallet":"treasury-hot","to":"0x47Ce0C6eD5B0Ce3d3A51fdb1C52DC66a7c3c2936","asset":"ETH","requested_by":"rita","amount":"1"}`, 400, "to"},
		{"unknown asset", `{"request_id":"wd-1","chain":"eth","wallet":"treasury-hot","to":"` + apitest.Vendor + `","asset":"DOGE","requested_by":"rita","amount":"1"}`, 400, "asset"},
		{"unknown chain", `{"request_id":"wd-1","chain":"sol","wallet":"treasury-hot","to":"` + apitest.Vendor + `","asset":"ETH","requested_by":"rita","amount":"1"}`, 404, "chain"},
		{"unknown wallet", `{"request_id":"wd-1","chain":"eth","wallet":"petty-cash","to":"` + apitest.Vendor + `","asset":"ETH","requested_by":"rita","amount":"1"}`, 404, "wallet"},
		{"oversized body", `{` + good + `,"amount":"1","pad":"` + strings.Repeat("x", 9000) + `"}`, 413, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := apitest.Do(t, f.base, "POST", "/v1/screen", "svc", c.body)
			var e api.ErrorBody
			r.JSON(t, &e)
			if r.Code != c.code || e.Field != c.field || e.Error == "" {
				t.Fatalf("%s; want %d naming %q", r, c.code, c.field)
			}
		})
	}
	// Nothing was recorded: no audit entry, no hold, no intent, and the
	// request id is still free.
	p, err := f.audit.Read(context.Background(), 0, 10)
	if err != nil || len(p.Entries) != 0 || p.Head.Seq != 0 {
		t.Fatalf("audit after bad requests: %+v %v", p, err)
	}
	if hs, _ := f.holds.List(context.Background(), holds.Filter{}); len(hs) != 0 {
		t.Fatalf("holds after bad requests: %d", len(hs))
	}
	if ids := f.intentIDs(t, "treasury-hot"); len(ids) != 0 {
		t.Fatalf("intents after bad requests: %v", ids)
	}
	if a := f.screen(t, req("wd-1", "treasury-hot", apitest.Vendor, "ETH", "1")); a.Decision != screening.Allow {
		t.Fatalf("a good request after the bad ones: %+v", a)
	}
}

func TestOnlyTheServiceMayScreen(t *testing.T) {
	f := setup(t)
	body := req("wd-1", "treasury-hot", apitest.Vendor, "ETH", "1")
	for who, want := range map[string]int{"": 401, "bogus": 401, "alice": 403, "root": 403, "vic": 403} {
		if r := apitest.Do(t, f.base, "POST", "/v1/screen", who, body); r.Code != want {
			t.Errorf("as %q: %s, want %d", who, r, want)
		}
	}
}

func TestScreeningFailsClosedWhenRedisStops(t *testing.T) {
	f := setup(t)
	ok := req("wd-before", "treasury-hot", apitest.Vendor, "ETH", "1")
	if a := f.screen(t, ok); a.Decision != screening.Allow {
		t.Fatalf("before: %+v", a)
	}
	f.redis.Stop()
	for name, body := range map[string]map[string]any{
		"a new request":                     req("wd-during", "treasury-hot", apitest.Vendor, "ETH", "1"),
		"a request allowed before the stop": ok,
	} {
		a := f.screen(t, body)
		if a.Decision != screening.Hold || a.HoldID != "" || !strings.Contains(strings.Join(a.Reasons, " "), "cannot read or write its state") {
			t.Errorf("%s with Redis down: %+v; want hold", name, a)
		}
	}
	if r := apitest.Do(t, f.base, "GET", "/v1/wallets/treasury-hot/status", "svc", nil); r.Code != 503 || r.Map(t)["frozen"] != true {
		t.Errorf("wallet status with Redis down: %s", r)
	}
	f.redis.Start() // empty: no persistence
	if a := f.screen(t, req("wd-after", "treasury-hot", apitest.Vendor, "ETH", "1")); a.Decision != screening.Allow {
		t.Fatalf("after Redis came back: %+v", a)
	}
}

// TestScreeningJudgesButLeavesDetectorStateAlone screens withdrawals with the
// stateful detectors configured: they judge the request as the outflow it
// would be, but record nothing, and the allowed withdrawal's intent explains
// the on-chain outflow when it comes.
func TestScreeningJudgesButLeavesDetectorStateAlone(t *testing.T) {
	f := setupWith(t, `  - {name: unapproved-outflow, detector: unapproved-outflow, severity: critical, actions: [page, hold]}
  - {name: hourly-velocity, detector: velocity, scope: wallet, window: 1h, usd_over: 250000, severity: high, actions: [page, hold]}
  - {name: new-counterparty, detector: new-counterparty, severity: low, actions: [alert]}
  - {name: funds-to-mixer, detector: forwarding, lists: [mixers, sanctioned], severity: critical, actions: [page, hold]}
`)
	ctx := context.Background()
	// 60 ETH = 180,000 USD: under the hourly limit alone, and a new
	// counterparty; screened twice under two ids, it stays under, because
	// the first screening added nothing to the window.
	for _, id := range []string{"wd-a", "wd-b"} {
		a := f.screen(t, req(id, "treasury-hot", apitest.Fresh, "ETH", "60"))
		joined := strings.Join(a.Policies, ",")
		if a.Decision != screening.Allow || joined != "big-outflow,new-counterparty" {
			t.Fatalf("%s: %s %v %q", id, a.Decision, a.Policies, a.Reasons)
		}
	}
	// 100 ETH more would make 300,000 USD in the hour only with an outflow
	// already in the window: screening alone stays under.
	if a := f.screen(t, req("wd-c", "treasury-hot", apitest.Fresh, "ETH", "70")); a.Decision != screening.Allow {
		t.Fatalf("wd-c: %+v", a)
	}
	// Now the first withdrawal happens on chain: its intent explains it (no
	// unapproved-outflow), the window counts it, the counterparty is new.
	amt, _ := chains.ParseAmount("60")
	ev := chains.Event{ID: "eth:0xfeed:native", Chain: "eth", Tx: "0xfeed", Status: chains.StatusPending, Kind: chains.KindTransfer,
		Direction: chains.Out, Wallet: "treasury-hot", WalletRole: "hot", From: apitest.TreasuryHot, To: apitest.Fresh,
		Counterparty: apitest.Fresh, Asset: "ETH", Amount: amt, USD: 180000, Time: apitest.NewClock().Now()}
	as, err := f.engine.Evaluate(ctx, &ev)
	if err != nil {
		t.Fatal(err)
	}
	if got := policyNames(as); got != "big-outflow,new-counterparty" || ev.Intent != "wd-a" {
		t.Fatalf("the real outflow raised %s (intent %q); want big-outflow and new-counterparty, explained by wd-a", got, ev.Intent)
	}
	// With 180,000 USD in the window, screening 30 ETH more (90,000 USD)
	// would pass the 250,000 USD hourly limit: hold.
	a := f.screen(t, req("wd-d", "treasury-hot", apitest.Fresh, "ETH", "30"))
	if a.Decision != screening.Hold || !strings.Contains(strings.Join(a.Reasons, "\n"), "hourly-velocity: outflows of wallet treasury-hot in the last 1h sum to 270,000.00 USD over 2 movements") {
		t.Fatalf("wd-d: %s %q", a.Decision, a.Reasons)
	}
	// And the counterparty is no longer new to the wallet.
	if strings.Contains(strings.Join(a.Policies, ","), "new-counterparty") {
		t.Fatalf("wd-d still calls the counterparty new: %v", a.Policies)
	}
}

func policyNames(as []alertmodel.Alert) string {
	var out []string
	for _, a := range as {
		out = append(out, a.Policy)
	}
	return strings.Join(out, ",")
}

func buildPolicies(cfg *config.Config, ls *lists.Set) (*policies.Set, error) {
	return policies.Build(cfg, ls)
}

func newEngine(set *policies.Set, st store.Store, in *intents.Registry, now func() time.Time) *policies.Engine {
	return policies.New(set, policies.Options{Store: st, Intents: in, Hops: hops.New(st), Now: now,
		Notify: func(context.Context, ...alertmodel.Alert) error { return nil }})
}
