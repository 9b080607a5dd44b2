package daemon_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/keywatch/keywatch/alertmodel"
	"github.com/keywatch/keywatch/api"
	"github.com/keywatch/keywatch/audit"
	"github.com/keywatch/keywatch/chains/ethereum"
	"github.com/keywatch/keywatch/config"
	"github.com/keywatch/keywatch/contracts"
	"github.com/keywatch/keywatch/daemon"
	"github.com/keywatch/keywatch/holds"
	"github.com/keywatch/keywatch/internal/apitest"
	"github.com/keywatch/keywatch/internal/simchain"
	"github.com/keywatch/keywatch/internal/testenv"
	"github.com/keywatch/keywatch/screening"
)

// TestAMixerDepositHoldsBeforeItsAlertIsPublished runs the daemon on a
// simulated chain with real Redis and NATS: kim's key pays the Tornado Cash
// pool; the hold exists before the alert is published (the alert carries
// hold_id), her other key is frozen, screening from it answers hold, and two
// approvers release it through the API.
func TestAMixerDepositHoldsBeforeItsAlertIsPublished(t *testing.T) {
	ctx := context.Background()
	redisURL := testenv.Redis(t)
	ns := testenv.NATS(t)
	mixers, err := contracts.MixerAlloc()
	if err != nil {
		t.Fatal(err)
	}
	chain := simchain.New(map[string]int64{"dev-deployer": 10}, mixers)
	defer chain.Close()

	root := testenv.RepoRoot(t)
	cfg := fmt.Sprintf(`store: {redis: %q, prefix: "holds-it:"}
nats: {url: %q}
api:
  listen: 127.0.0.1:0
  tokens:
    - {name: alice, sha256: %q, roles: [approver]}
    - {name: bob, sha256: %q, roles: [approver]}
    - {name: withdrawals, sha256: %q, roles: [service]}
    - {name: root, sha256: %q, roles: [admin]}
holds: {approvals_required: 2, expire_after: 1h}
chains:
  - {name: eth, kind: ethereum, rpc: ["ws://127.0.0.1:1"], chain_id: 1337, confirmations: 1, poll_interval: 100ms, native_usd: 3000, explorer: "https://etherscan.io/tx/{tx}"}
wallets:
  - {name: dev-deployer, chain: eth, address: %q, role: employee-key, owner: kim@firm.example}
  - {name: kim-laptop, chain: eth, address: "0x3333333333333333333333333333333333333333", role: employee-key, owner: kim@firm.example}
lists:
  mixers: [%q]
policies:
  - {name: mixer-counterparty, detector: list-match, lists: [mixers], severity: critical, actions: [page, hold]}
`, redisURL, ns.URL(), api.HashToken("tok-a"), api.HashToken("tok-b"), api.HashToken("tok-w"), api.HashToken("tok-r"),
		simchain.Addr("dev-deployer").Hex(), filepath.Join(root, "configs/lists/mixers.csv"))
	path := filepath.Join(t.TempDir(), "keywatch.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	c, set, err := daemon.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	d, err := daemon.New(ctx, c, set, daemon.Options{Logger: log, AnchorEvery: 100 * time.Millisecond,
		EthDial: func(context.Context, config.Chain) (ethereum.Client, error) { return chain.Client, nil }})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Listen(); err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- d.Run(runCtx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("daemon: %v", err)
		}
		d.Close()
	}()
	base := "http://" + d.HTTPAddr()
	// apitest.Do sends a name it does not know as the token itself.
	as := func(tok string) string { return "tok-" + tok }

	col := testenv.ReadAlerts(t, ns.URL())
	poolABI, _ := contracts.Load(contracts.NameTornadoPool)
	data, _ := poolABI.Pack("deposit", crypto.Keccak256Hash([]byte("theft")))
	pool := contracts.TornadoPool1ETH
	r, err := chain.Send(ctx, "dev-deployer", &pool, simchain.Ether(1), data)
	if err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 0, func() bool { return col.Has(r.TxHash.Hex(), "mixer-counterparty", "confirmed") }, "the mixer alert")
	holdID := ""
	for _, sa := range col.All() {
		a := sa.Alert
		if !strings.EqualFold(a.Event.Tx, r.TxHash.Hex()) || a.Policy != "mixer-counterparty" {
			continue
		}
		if a.HoldID == "" || (holdID != "" && a.HoldID != holdID) {
			t.Fatalf("published alert %s carries hold_id %q (first %q)", a.MsgID(), a.HoldID, holdID)
		}
		holdID = a.HoldID
	}

	var h holds.Hold
	resp := apitest.Do(t, base, "GET", "/v1/holds/"+holdID, as("a"), nil)
	resp.JSON(t, &h)
	if resp.Code != 200 || h.Status != holds.Held || strings.Join(h.Wallets, ",") != "dev-deployer,kim-laptop" ||
		h.Links[strings.ToLower(r.TxHash.Hex())] == "" && h.Links[r.TxHash.Hex()] == "" {
		t.Fatalf("hold: %s", resp)
	}
	if !strings.Contains(strings.Join(h.Labels[strings.ToLower(pool.Hex())], ""), "mixers: Tornado Cash 1 ETH pool") {
		t.Errorf("labels: %v", h.Labels)
	}

	// The withdrawal system asks to pay a vendor from kim's other key.
	var ans screening.Answer
	resp = apitest.Do(t, base, "POST", "/v1/screen", as("w"), map[string]any{
		"request_id": "wd-1", "chain": "eth", "wallet": "kim-laptop", "to": common.HexToAddress("0xb374907d35f61de043bedb18ee35f7228c83c3e4").Hex(),
		"asset": "ETH", "amount": "0.5", "requested_by": "rita",
	})
	resp.JSON(t, &ans)
	if resp.Code != 200 || ans.Decision != screening.Hold || !strings.Contains(strings.Join(ans.Reasons, " "), "frozen by hold "+holdID) {
		t.Fatalf("screen from a frozen key: %s", resp)
	}

	var feed struct{ Alerts []struct{ alertmodel.Alert } }
	apitest.Do(t, base, "GET", "/v1/alerts", as("a"), nil).JSON(t, &feed)
	if len(feed.Alerts) == 0 || feed.Alerts[0].HoldID != holdID {
		t.Fatalf("alert feed: %+v", feed)
	}

	for _, who := range []string{"a", "b"} {
		if resp := apitest.Do(t, base, "POST", "/v1/holds/"+holdID+"/approve", as(who), nil); resp.Code != 200 {
			t.Fatalf("approve as %s: %s", who, resp)
		}
	}
	var ws holds.WalletStatus
	apitest.Do(t, base, "GET", "/v1/wallets/kim-laptop/status", as("w"), nil).JSON(t, &ws)
	if ws.Frozen {
		t.Fatalf("still frozen after the quorum: %+v", ws)
	}
	var rep audit.Report
	resp = apitest.Do(t, base, "GET", "/v1/audit?verify=1", as("r"), nil)
	resp.JSON(t, &rep)
	if !rep.OK || rep.Entries < 4 { // hold.create, screen.decision, hold.approve × 2
		t.Fatalf("audit: %s", resp)
	}
	// A silence and a reload are audited too.
	if resp := apitest.Do(t, base, "POST", "/v1/silences", as("r"), map[string]any{
		"matchers": map[string]string{"wallet": "dev-deployer"}, "duration": "1h", "comment": "kim's key is being rotated",
	}); resp.Code != 201 {
		t.Fatalf("silence: %s", resp)
	}
	if err := d.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	var page audit.Page
	apitest.Do(t, base, "GET", "/v1/audit?limit=1000", as("r"), nil).JSON(t, &page)
	var actions []string
	for _, e := range page.Entries {
		actions = append(actions, e.Action+" by "+e.Actor)
	}
	if got := strings.Join(actions, ", "); got != "hold.create by keywatch, screen.decision by withdrawals, hold.approve by alice, hold.approve by bob, silence.create by root, config.reload by keywatch" {
		t.Fatalf("audit log: %s", got)
	}
	// The daemon anchors the head in NATS, and verification checks the
	// chain against what it anchored.
	testenv.WaitFor(t, 0, func() bool {
		resp = apitest.Do(t, base, "GET", "/v1/audit?verify=1", as("r"), nil)
		rep = audit.Report{}
		resp.JSON(t, &rep)
		return rep.AnchoredAt != nil && rep.Anchors >= 1 && rep.Head.Seq == 6
	}, "the audit head anchored")
	if !rep.OK || rep.Entries != 6 || rep.Unanchored != "" {
		t.Fatalf("audit after silence and reload: %s", resp)
	}
	var anchors struct{ Anchors []audit.Anchor }
	apitest.Do(t, base, "GET", "/v1/audit/anchors", as("r"), nil).JSON(t, &anchors)
	if n := len(anchors.Anchors); n == 0 || anchors.Anchors[n-1].Seq != 6 || anchors.Anchors[n-1].Hash != rep.Head.Hash {
		t.Fatalf("anchors %+v, want the newest at head %+v", anchors.Anchors, rep.Head)
	}
}
