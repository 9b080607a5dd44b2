package safequeue_test

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/keywatch/keywatch/alertmodel"
	"github.com/keywatch/keywatch/chains"
	"github.com/keywatch/keywatch/chains/ethereum/safe"
	"github.com/keywatch/keywatch/config"
	"github.com/keywatch/keywatch/contracts"
	"github.com/keywatch/keywatch/internal/safeservice"
	"github.com/keywatch/keywatch/internal/simchain"
	"github.com/keywatch/keywatch/policies"
	"github.com/keywatch/keywatch/store"
	"github.com/keywatch/keywatch/store/memory"
	"github.com/keywatch/keywatch/watchers/safequeue"
)

var (
	owner1, owner2, owner3 = simchain.Key("safe-owner-1"), simchain.Key("safe-owner-2"), simchain.Key("safe-owner-3")
	// multiSend130 is Safe's MultiSend 1.3.0; attacker an address nobody
	// knows.
	multiSend130 = common.HexToAddress("0xA238CBeb142c10Ef7Ad8442C6D1f9E89e07e7761")
	attacker     = common.HexToAddress("0x96221423681A6d52E184D440a8eFCEbB105C7242")
	observed     = time.Date(2026, 3, 2, 10, 30, 0, 0, time.UTC)
)

func addrOf(k *ecdsa.PrivateKey) common.Address { return crypto.PubkeyToAddress(k.PublicKey) }

// harness is a simulated chain with a Safe stand-in, a fake service and a
// poller over a memory store, whose deliveries go through a policy engine.
type harness struct {
	t       testing.TB
	ctx     context.Context
	chain   *simchain.Chain
	svc     *safeservice.Server
	st      store.Store
	safe    common.Address
	ver     string
	opts    safequeue.Options
	svcOpts safequeue.ServiceOptions
	engine  *policies.Engine

	mu        sync.Mutex
	delivered []chains.Event
	alerts    []alertmodel.Alert
}

type harnessOpts struct {
	version       string
	nonce         uint64
	at            *common.Address // place the Safe here (genesis alloc) instead of deploying it
	confirmations uint64
	pageLimit     int
	prefix        string
	apiKey        string
}

const policiesYAML = `
store: {memory: true}
nats: {embedded: true, data_dir: /tmp/keywatch-unused}
chains:
  - {name: dev, kind: ethereum, rpc: ["ws://127.0.0.1:8546"], safe_tx_service: "http://127.0.0.1:1"}
wallets:
  - {name: treasury-safe, chain: dev, address: "%s", role: cold, account: safe}
  - {name: dev-deployer, chain: dev, address: "%s", role: employee-key, owner: kim@firm.example}
policies:
  - {name: safe-hash, detector: safe-hash, actions: [page, hold]}
  - {name: queued-execution, when: 'event.kind == "execution" && event.status == "proposed"', severity: info}
`

func newHarness(t testing.TB, ho harnessOpts) *harness {
	t.Helper()
	if ho.version == "" {
		ho.version = "1.3.0"
	}
	ctx := context.Background()
	h := &harness{t: t, ctx: ctx, st: memory.New(), ver: ho.version}
	var alloc types.GenesisAlloc
	if ho.at != nil {
		acc, err := contracts.SafeStandInAlloc(ho.version, ho.nonce)
		if err != nil {
			t.Fatal(err)
		}
		alloc = types.GenesisAlloc{*ho.at: acc}
	}
	h.chain = simchain.New(map[string]int64{"deployer": 10, "safe-owner-1": 1}, alloc)
	t.Cleanup(h.chain.Close)
	if ho.at != nil {
		h.safe = *ho.at
	} else {
		a, err := h.chain.Deploy(ctx, "deployer", contracts.NameSafeStandIn, ho.version, new(big.Int).SetUint64(ho.nonce), []common.Address{simchain.Addr("safe-owner-1")})
		if err != nil {
			t.Fatal(err)
		}
		h.safe = a
	}
	h.svc = safeservice.New(t, ho.prefix)
	h.svc.SetInfo(h.safe, ho.nonce, 3, []common.Address{addrOf(owner1), addrOf(owner2), addrOf(owner3)}, ho.version)

	cfg, err := config.Parse("keywatch.yaml", []byte(fmt.Sprintf(policiesYAML, h.safe.Hex(), addrOf(owner3).Hex())), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	set, err := policies.Build(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	h.engine = policies.New(set, policies.Options{Store: h.st, Now: func() time.Time { return observed },
		Notify: func(_ context.Context, as ...alertmodel.Alert) error {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.alerts = append(h.alerts, as...)
			return nil
		}})
	h.opts = safequeue.Options{
		Chain:         "dev",
		Safes:         []safequeue.Safe{{Name: "treasury-safe", Address: h.safe, Role: "cold"}},
		Keys:          []safequeue.Key{{Name: "dev-deployer", Address: addrOf(owner3), Owner: "kim@firm.example"}},
		NativeUSD:     3000,
		Confirmations: ho.confirmations,
		Interval:      20 * time.Millisecond,
		RetryAfter:    10 * time.Millisecond,
		MaxBackoff:    50 * time.Millisecond,
		Store:         h.st,
		Deliver: func(ctx context.Context, evs []chains.Event) error {
			h.mu.Lock()
			h.delivered = append(h.delivered, evs...)
			h.mu.Unlock()
			return h.engine.Process(ctx, evs)
		},
		Now: func() time.Time { return observed },
	}
	h.svcOpts = safequeue.ServiceOptions{PageLimit: ho.pageLimit, APIKey: ho.apiKey}
	return h
}

// poller makes a poller over the harness's store (a new one is a restart).
func (h *harness) poller() *safequeue.Poller {
	h.t.Helper()
	svc, err := safequeue.NewService(h.svc.URL(), h.svcOpts)
	if err != nil {
		h.t.Fatal(err)
	}
	p, err := safequeue.New(svc, h.chain.Client, h.opts)
	if err != nil {
		h.t.Fatal(err)
	}
	return p
}

// propose adds a proposal to the service's queue and returns its true hash.
func (h *harness) propose(p safeservice.Proposal) common.Hash {
	h.t.Helper()
	rec, hash := safeservice.Record(h.t, h.safe, simchain.ChainID, h.ver, p)
	h.svc.Add(h.safe, rec)
	return hash
}

// execute has the Safe use its nonce for hash on chain, and the service
// index it, as both do when an owner runs execTransaction.
func (h *harness) execute(hash common.Hash) {
	h.t.Helper()
	r, err := h.chain.Call(h.ctx, "deployer", h.safe, contracts.NameSafeStandIn, "execute", hash, true)
	if err != nil {
		h.t.Fatal(err)
	}
	h.svc.MarkExecuted(h.safe, hash, r.TxHash, r.BlockNumber.Uint64(), simchain.Addr("deployer"))
}

// take returns the events delivered since the last call.
func (h *harness) take() []chains.Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := h.delivered
	h.delivered = nil
	return out
}

// takeAlerts returns "policy status/event-status" of the alerts since the
// last call.
func (h *harness) takeAlerts() []alertmodel.Alert {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := h.alerts
	h.alerts = nil
	return out
}

func summary(evs []chains.Event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = fmt.Sprintf("%s %s", e.ID, e.Status)
	}
	return out
}

func policiesOf(as []alertmodel.Alert) []string {
	var out []string
	for _, a := range as {
		out = append(out, fmt.Sprintf("%s %s/%s", a.Policy, a.Status, a.Event.Status))
	}
	slices.Sort(out)
	return out
}

func mustPoll(t testing.TB, p *safequeue.Poller, ctx context.Context) {
	t.Helper()
	if err := p.Step(ctx); err != nil {
		t.Fatalf("poll: %v", err)
	}
}

// TestQueuedDelegatecall: a delegatecall proposed in the service is
// delivered as proposed, with the hash recomputed and the owners recovered,
// before any owner executes it; safe-hash fires only when the service shows
// another hash than the payload's.
func TestQueuedDelegatecall(t *testing.T) {
	for _, tampered := range []bool{false, true} {
		t.Run(fmt.Sprintf("tampered=%v", tampered), func(t *testing.T) {
			h := newHarness(t, harnessOpts{nonce: 5})
			data := append(common.FromHex("0x8d80ff0a"), make([]byte, 64)...)
			p := safeservice.Proposal{To: multiSend130, Data: data, Op: safe.DelegateCall, Nonce: 5, Signers: []*ecdsa.PrivateKey{owner1, owner3},
				DataDecoded: safeservice.MultiSendDecoded(attacker)}
			fake := common.HexToHash("0x1111111111111111111111111111111111111111111111111111111111111111")
			if tampered {
				p.Shown = &fake
			}
			hash := h.propose(p)
			poller := h.poller()
			mustPoll(t, poller, h.ctx)

			evs := h.take()
			if len(evs) != 1 {
				t.Fatalf("delivered %v, want one proposed event", summary(evs))
			}
			ev := evs[0]
			shown := hash
			if tampered {
				shown = fake
			}
			want := map[string]string{
				"id": "dev:safe-tx:" + hash.Hex(), "status": "proposed", "kind": "execution", "direction": "out",
				"wallet": "treasury-safe", "from": strings.ToLower(h.safe.Hex()), "operation": "delegatecall",
				"target": strings.ToLower(multiSend130.Hex()), "selector": "0x8d80ff0a", "value": "0", "nonce": "5",
				"signers":  strings.ToLower(addrOf(owner1).Hex() + "," + addrOf(owner3).Hex()),
				"owner":    "kim@firm.example", // owner3 is dev-deployer, an employee key
				"shown":    shown.Hex(),
				"computed": hash.Hex(),
				"method":   "multiSend", "confirmations": "2 of 3", "version": "1.3.0", "bad": "",
			}
			got := map[string]string{
				"id": ev.ID, "status": string(ev.Status), "kind": string(ev.Kind), "direction": string(ev.Direction),
				"wallet": ev.Wallet, "from": ev.From, "operation": ev.Operation, "target": ev.Target, "selector": ev.Selector,
				"value": ev.Value, "nonce": fmt.Sprint(*ev.SafeNonce), "signers": strings.Join(ev.Signers, ","), "owner": ev.Owner,
				"shown": ev.Detail[chains.DetailSafeTxHash], "computed": ev.Detail[chains.DetailComputedSafeTxHash],
				"method": ev.Detail[chains.DetailMethod], "confirmations": ev.Detail[chains.DetailConfirmations],
				"version": ev.Detail[chains.DetailSafeVersion], "bad": ev.Detail[chains.DetailBadConfirmations],
			}
			for k, w := range want {
				if got[k] != w {
					t.Errorf("%s = %q, want %q", k, got[k], w)
				}
			}
			alerts := policiesOf(h.takeAlerts())
			wantAlerts := []string{"queued-execution firing/proposed"}
			if tampered {
				wantAlerts = []string{"queued-execution firing/proposed", "safe-hash firing/proposed"}
			}
			if !slices.Equal(alerts, wantAlerts) {
				t.Errorf("alerts %v, want %v", alerts, wantAlerts)
			}
			// Polling again delivers nothing new.
			mustPoll(t, poller, h.ctx)
			if evs := h.take(); len(evs) != 0 {
				t.Errorf("second poll delivered %v", summary(evs))
			}
		})
	}
}

// TestPagination: a queue longer than a page is read through the next
// links, with the filters keywatch asks for.
func TestPagination(t *testing.T) {
	h := newHarness(t, harnessOpts{nonce: 5, pageLimit: 2})
	var want []string
	for n := uint64(5); n < 10; n++ {
		hash := h.propose(safeservice.Proposal{To: attacker, Value: big.NewInt(int64(n)), Nonce: n, Signers: []*ecdsa.PrivateKey{owner1}})
		want = append(want, "dev:safe-tx:"+hash.Hex()+" proposed")
	}
	// One untrusted proposal (the service hides those by default) and one
	// of a nonce the chain already used.
	hash := h.propose(safeservice.Proposal{To: attacker, Nonce: 7, Untrusted: true})
	want = append(want[:3], append([]string{"dev:safe-tx:" + hash.Hex() + " proposed"}, want[3:]...)...)
	h.propose(safeservice.Proposal{To: attacker, Nonce: 4, Signers: []*ecdsa.PrivateKey{owner1}})

	mustPoll(t, h.poller(), h.ctx)
	got := summary(h.take())
	if !slices.Equal(got, want) {
		t.Fatalf("delivered\n %v\nwant\n %v", got, want)
	}
	ls := h.svc.Listings()
	if len(ls) != 3 {
		t.Fatalf("%d listing requests, want 3 pages of 2", len(ls))
	}
	for i, u := range ls {
		q := u.Query()
		if q.Get("nonce__gte") != "5" || q.Get("ordering") != "nonce" || q.Get("trusted") != "false" || q.Get("limit") != "2" {
			t.Errorf("request %d: query %s", i, u.RawQuery)
		}
		if off := fmt.Sprint(2 * i); i > 0 && q.Get("offset") != off {
			t.Errorf("request %d: offset %q, want %s", i, q.Get("offset"), off)
		}
	}
}

// TestExecutedNonceConfirms: once the chain uses the nonce at confirmation
// depth for this transaction, its event is confirmed, once, with the
// execution's transaction and block.
func TestExecutedNonceConfirms(t *testing.T) {
	h := newHarness(t, harnessOpts{nonce: 5, confirmations: 2})
	hash := h.propose(safeservice.Proposal{To: multiSend130, Op: safe.DelegateCall, Data: common.FromHex("0x8d80ff0a"), Nonce: 5, Signers: []*ecdsa.PrivateKey{owner1, owner2}})
	p := h.poller()
	mustPoll(t, p, h.ctx)
	if got := summary(h.take()); len(got) != 1 {
		t.Fatalf("delivered %v", got)
	}
	h.execute(hash)
	mustPoll(t, p, h.ctx)
	if got := h.take(); len(got) != 0 {
		t.Fatalf("settled %v before confirmation depth", summary(got))
	}
	h.chain.Backend.Commit()
	h.chain.Backend.Commit()
	mustPoll(t, p, h.ctx)
	evs := h.take()
	if got := summary(evs); !slices.Equal(got, []string{"dev:safe-tx:" + hash.Hex() + " confirmed"}) {
		t.Fatalf("delivered %v, want the confirmation", got)
	}
	r, err := h.chain.Client.TransactionReceipt(h.ctx, common.HexToHash(evs[0].Tx))
	if err != nil || evs[0].Block != r.BlockNumber.Uint64() || evs[0].BlockHash != r.BlockHash.Hex() {
		t.Errorf("confirmed in tx %s block %d %s, receipt %v (%v)", evs[0].Tx, evs[0].Block, evs[0].BlockHash, r, err)
	}
	if evs[0].Detail[chains.DetailExecution] != "success" {
		t.Errorf("execution %q", evs[0].Detail[chains.DetailExecution])
	}
	if as := policiesOf(h.takeAlerts()); !slices.Equal(as, []string{"queued-execution firing/proposed"}) {
		t.Errorf("alerts %v", as)
	}
	for range 2 {
		mustPoll(t, p, h.ctx)
	}
	if got := h.take(); len(got) != 0 {
		t.Fatalf("delivered again: %v", summary(got))
	}
}

// TestOtherTransactionTakesNonce: two proposals share a nonce; the one the
// chain executes is confirmed, the other retracted, and the alert the
// retracted one raised is resolved.
func TestOtherTransactionTakesNonce(t *testing.T) {
	h := newHarness(t, harnessOpts{nonce: 5})
	fake := common.HexToHash("0x2222222222222222222222222222222222222222222222222222222222222222")
	bad := h.propose(safeservice.Proposal{To: attacker, Op: safe.DelegateCall, Nonce: 5, Signers: []*ecdsa.PrivateKey{owner1}, Shown: &fake})
	good := h.propose(safeservice.Proposal{To: attacker, Value: big.NewInt(0), Data: []byte{}, Nonce: 5, Signers: []*ecdsa.PrivateKey{owner1, owner2}})
	if bad == good {
		t.Fatal("the two proposals hash alike")
	}
	next := h.propose(safeservice.Proposal{To: attacker, Nonce: 6, Signers: []*ecdsa.PrivateKey{owner1}})
	p := h.poller()
	mustPoll(t, p, h.ctx)
	if got := h.take(); len(got) != 3 {
		t.Fatalf("delivered %v", summary(got))
	}
	h.takeAlerts()
	h.execute(good)
	mustPoll(t, p, h.ctx)
	evs := h.take()
	got := summary(evs)
	slices.Sort(got)
	want := []string{"dev:safe-tx:" + bad.Hex() + " retracted", "dev:safe-tx:" + good.Hex() + " confirmed"}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("delivered %v, want %v", got, want)
	}
	for _, ev := range evs {
		if ev.Status == chains.StatusRetracted && !strings.Contains(ev.Detail[chains.DetailRetracted], "nonce 5 was taken by Safe transaction "+good.Hex()) {
			t.Errorf("retraction reason %q", ev.Detail[chains.DetailRetracted])
		}
	}
	if as := policiesOf(h.takeAlerts()); !slices.Equal(as, []string{"queued-execution resolved/retracted", "safe-hash resolved/retracted"}) {
		t.Errorf("alerts %v, want the retracted proposal's resolved", as)
	}
	// Then nonce 6 is used too.
	h.execute(next)
	mustPoll(t, p, h.ctx)
	if got := summary(h.take()); !slices.Equal(got, []string{"dev:safe-tx:" + next.Hex() + " confirmed"}) {
		t.Fatalf("delivered %v, want nonce 6 confirmed", got)
	}
}

// TestUnprovenExecutionStaysProposed: the service says a transaction was
// executed, and the chain used the nonce, but the receipt it names does not
// log that safeTxHash: nothing is settled from the service's word.
func TestUnprovenExecutionStaysProposed(t *testing.T) {
	h := newHarness(t, harnessOpts{nonce: 5})
	mine := h.propose(safeservice.Proposal{To: attacker, Op: safe.DelegateCall, Nonce: 5, Signers: []*ecdsa.PrivateKey{owner1}})
	other := h.propose(safeservice.Proposal{To: attacker, Nonce: 5, Signers: []*ecdsa.PrivateKey{owner1}})
	p := h.poller()
	mustPoll(t, p, h.ctx)
	h.take()
	// The chain executes mine; the service claims other was executed in
	// that transaction.
	r, err := h.chain.Call(h.ctx, "deployer", h.safe, contracts.NameSafeStandIn, "execute", mine, true)
	if err != nil {
		t.Fatal(err)
	}
	h.svc.MarkExecuted(h.safe, other, r.TxHash, r.BlockNumber.Uint64(), simchain.Addr("deployer"))
	mustPoll(t, p, h.ctx)
	if got := h.take(); len(got) != 0 {
		t.Fatalf("settled from an unproven claim: %v", summary(got))
	}
}

// TestRestartDeliversNothingTwice: a new poller over the same store (a
// restart) delivers nothing already delivered, and still settles what was.
func TestRestartDeliversNothingTwice(t *testing.T) {
	h := newHarness(t, harnessOpts{nonce: 5})
	hash := h.propose(safeservice.Proposal{To: attacker, Op: safe.DelegateCall, Nonce: 5, Signers: []*ecdsa.PrivateKey{owner1}})
	mustPoll(t, h.poller(), h.ctx)
	if got := h.take(); len(got) != 1 {
		t.Fatalf("delivered %v", summary(got))
	}
	mustPoll(t, h.poller(), h.ctx)
	if got := h.take(); len(got) != 0 {
		t.Fatalf("restart delivered again: %v", summary(got))
	}
	h.execute(hash)
	mustPoll(t, h.poller(), h.ctx)
	if got := summary(h.take()); !slices.Equal(got, []string{"dev:safe-tx:" + hash.Hex() + " confirmed"}) {
		t.Fatalf("after restart delivered %v, want the confirmation", got)
	}
	mustPoll(t, h.poller(), h.ctx)
	if got := h.take(); len(got) != 0 {
		t.Fatalf("restart delivered the confirmation again: %v", summary(got))
	}
}

// TestHashShownChangesRedelivers: the service first shows the true hash,
// then another one for the same payload: the event is judged again and
// safe-hash fires.
func TestHashShownChangesRedelivers(t *testing.T) {
	h := newHarness(t, harnessOpts{nonce: 5})
	p := safeservice.Proposal{To: attacker, Op: safe.DelegateCall, Nonce: 5, Signers: []*ecdsa.PrivateKey{owner1}}
	hash := h.propose(p)
	poller := h.poller()
	mustPoll(t, poller, h.ctx)
	h.take()
	if as := policiesOf(h.takeAlerts()); slices.Contains(as, "safe-hash firing/proposed") {
		t.Fatalf("safe-hash fired on the true hash: %v", as)
	}
	h.svc.Update(h.safe, func(recs []map[string]any) { recs[0]["safeTxHash"] = common.HexToHash("0x33").Hex() })
	mustPoll(t, poller, h.ctx)
	if got := summary(h.take()); !slices.Equal(got, []string{"dev:safe-tx:" + hash.Hex() + " proposed"}) {
		t.Fatalf("delivered %v", got)
	}
	if as := policiesOf(h.takeAlerts()); !slices.Contains(as, "safe-hash firing/proposed") {
		t.Fatalf("alerts %v, want safe-hash", as)
	}
}

// TestConfirmations: signatures that do not recover to their owner are
// evidence, an on-chain approval counts, and a confirmation with neither
// is evidence too.
func TestConfirmations(t *testing.T) {
	h := newHarness(t, harnessOpts{nonce: 5})
	rec, hash := safeservice.Record(t, h.safe, simchain.ChainID, h.ver, safeservice.Proposal{To: attacker, Nonce: 5, Signers: []*ecdsa.PrivateKey{owner1, owner2}})
	// owner2's confirmation is credited to owner3; owner1 approved on chain
	// and the service shows its confirmation without a signature.
	cs := rec["confirmations"].([]map[string]any)
	cs[1]["owner"] = addrOf(owner3).Hex()
	cs[0]["signature"], cs[0]["signatureType"] = nil, "APPROVED_HASH"
	unapproved := map[string]any{"owner": addrOf(owner2).Hex(), "submissionDate": "2026-03-02T10:00:00Z", "transactionHash": nil, "signature": nil, "signatureType": "APPROVED_HASH"}
	rec["confirmations"] = append(cs, unapproved)
	h.svc.Add(h.safe, rec)
	if _, err := h.chain.Call(h.ctx, "safe-owner-1", h.safe, contracts.NameSafeStandIn, "approveHash", hash); err != nil {
		t.Fatal(err)
	}
	mustPoll(t, h.poller(), h.ctx)
	evs := h.take()
	if len(evs) != 1 {
		t.Fatalf("delivered %v", summary(evs))
	}
	ev := evs[0]
	if want := []string{strings.ToLower(addrOf(owner1).Hex())}; !slices.Equal(ev.Signers, want) {
		t.Errorf("signers %v, want %v", ev.Signers, want)
	}
	wantBad := strings.ToLower(addrOf(owner3).Hex()) + ": signature recovers to " + strings.ToLower(addrOf(owner2).Hex()) +
		"; " + strings.ToLower(addrOf(owner2).Hex()) + ": no signature, and no approval of this hash on chain"
	if got := ev.Detail[chains.DetailBadConfirmations]; got != wantBad {
		t.Errorf("bad confirmations\n %q\nwant\n %q", got, wantBad)
	}
	if ev.Owner != "" {
		t.Errorf("owner %q: dev-deployer's name on a confirmation it did not sign gave the event its owner", ev.Owner)
	}
	if as := policiesOf(h.takeAlerts()); !slices.Contains(as, "safe-hash firing/proposed") {
		t.Errorf("alerts %v, want safe-hash on the confirmations", as)
	}
}

// TestNotASafe: an address without a Safe's VERSION() is an error naming
// it, and nothing is judged.
func TestNotASafe(t *testing.T) {
	h := newHarness(t, harnessOpts{nonce: 5})
	nobody := common.HexToAddress("0x00000000000000000000000000000000000000aa")
	h.opts.Safes = []safequeue.Safe{{Name: "not-a-safe", Address: nobody, Role: "cold"}}
	err := h.poller().Step(h.ctx)
	if !errors.Is(err, safequeue.ErrNotSafe) || !strings.Contains(err.Error(), "not-a-safe") || !strings.Contains(err.Error(), nobody.Hex()) {
		t.Fatalf("err %v, want ErrNotSafe naming the wallet and address", err)
	}
	if got := h.take(); len(got) != 0 {
		t.Fatalf("delivered %v", summary(got))
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestNewConfirmationJudgedAgain: another owner confirming a delivered
// transaction has it judged again (same id, still proposed), so its
// signers and owner are those of now.
func TestNewConfirmationJudgedAgain(t *testing.T) {
	h := newHarness(t, harnessOpts{nonce: 5})
	hash := h.propose(safeservice.Proposal{To: attacker, Op: safe.DelegateCall, Nonce: 5, Signers: []*ecdsa.PrivateKey{owner1}})
	p := h.poller()
	mustPoll(t, p, h.ctx)
	if evs := h.take(); len(evs) != 1 || evs[0].Owner != "" {
		t.Fatalf("delivered %v", summary(evs))
	}
	sig, err := crypto.Sign(hash[:], owner3)
	if err != nil {
		t.Fatal(err)
	}
	sig[64] += 27
	h.svc.Update(h.safe, func(recs []map[string]any) {
		recs[0]["confirmations"] = append(recs[0]["confirmations"].([]map[string]any), map[string]any{
			"owner": addrOf(owner3).Hex(), "submissionDate": "2026-03-02T10:20:00Z", "transactionHash": nil,
			"signature": hexutil.Encode(sig), "signatureType": "EOA"})
	})
	mustPoll(t, p, h.ctx)
	evs := h.take()
	if len(evs) != 1 || evs[0].ID != "dev:safe-tx:"+hash.Hex() || evs[0].Status != chains.StatusProposed {
		t.Fatalf("delivered %v, want the transaction again", summary(evs))
	}
	if len(evs[0].Signers) != 2 || evs[0].Owner != "kim@firm.example" || evs[0].Detail[chains.DetailConfirmations] != "2 of 3" {
		t.Errorf("signers %v owner %q confirmations %q", evs[0].Signers, evs[0].Owner, evs[0].Detail[chains.DetailConfirmations])
	}
	mustPoll(t, p, h.ctx)
	if evs := h.take(); len(evs) != 0 {
		t.Fatalf("delivered again: %v", summary(evs))
	}
}
