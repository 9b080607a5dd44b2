package console_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/keywatch/keywatch/alertmodel"
	"github.com/keywatch/keywatch/alerts/feed"
	"github.com/keywatch/keywatch/api"
	"github.com/keywatch/keywatch/audit"
	"github.com/keywatch/keywatch/chains"
	"github.com/keywatch/keywatch/console"
	"github.com/keywatch/keywatch/holds"
	"github.com/keywatch/keywatch/intents"
	"github.com/keywatch/keywatch/internal/apitest"
	"github.com/keywatch/keywatch/internal/testenv"
	"github.com/keywatch/keywatch/store/redis"
)

// server runs the holds API, the alert feed and the console over a real
// Redis, with one hold: kim's dev-deployer key paid the Tornado Cash pool.
func server(t *testing.T) (base, holdID string) {
	t.Helper()
	ctx := context.Background()
	rs := testenv.StartRedis(t)
	cfg := apitest.Config(t, "redis: "+rs.URL, "")
	st, err := redis.Open(ctx, rs.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	lg := audit.New(st, audit.Options{})
	hm := holds.New(holds.Options{Store: st, Config: cfg, Intents: intents.New(st, nil), Audit: lg,
		Labeler: func(_, addr string) []string {
			if strings.EqualFold(addr, apitest.Mixer) {
				return []string{"mixers: Tornado Cash 1 ETH pool"}
			}
			return nil
		}})
	fd := feed.New(feed.Options{Store: st, Audit: lg})
	auth, err := api.NewAuthenticator(cfg.API.Tokens, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := api.NewServer(auth, nil)
	hm.Register(srv)
	fd.Register(srv)
	console.Register(srv)
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)

	amount, _ := chains.ParseAmount("1")
	tx := "0x5e1f8b2c7a4d9e0f1b3c5d7e9f0a2b4c6d8e0f1a3b5c7d9e1f3a5b7c9d1e3f5a"
	ev := chains.Event{ID: "eth:" + tx + ":native", Chain: "eth", Tx: tx, Block: 19431837, Status: chains.StatusPending,
		Kind: chains.KindTransfer, Direction: chains.Out, Wallet: "dev-deployer", WalletRole: "employee-key", Owner: "kim@firm.example",
		From: apitest.DevDeployer, To: apitest.Mixer, Counterparty: apitest.Mixer, Asset: "ETH", Amount: amount, USD: 3000,
		Detail: map[string]string{"path": apitest.DevDeployer + " → " + apitest.Mixer}}
	as := []alertmodel.Alert{{ID: alertmodel.AlertID(ev.ID, "mixer-counterparty"), Policy: "mixer-counterparty", Severity: alertmodel.Critical, Status: alertmodel.Firing,
		Chain: "eth", Wallet: "dev-deployer", Event: ev, Actions: []alertmodel.Action{alertmodel.ActionPage, alertmodel.ActionHold},
		Reasons: []string{"counterparty " + apitest.Mixer + " is on list mixers (Tornado Cash 1 ETH pool; source tornadocash/tornado-cli; mixers.csv:6)"}}}
	if err := hm.Apply(ctx, as); err != nil {
		t.Fatal(err)
	}
	if err := fd.Record(ctx, as...); err != nil {
		t.Fatal(err)
	}
	return hs.URL, as[0].HoldID
}

// browser starts headless Chromium with no background network traffic and
// a fresh profile.
func browser(t *testing.T) context.Context {
	t.Helper()
	exec := testenv.Chromium(t)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exec),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	// The whole browser lives at most this long.
	ctx, cancelTimeout := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(cancelTimeout)
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// waitText waits until the text of the element sel (CSS) satisfies ok, and
// returns it.
func waitText(t *testing.T, ctx context.Context, sel string, ok func(string) bool, what string) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		tctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		text, err := chromedp.Run(tctx, chromedp.Text(chromedp.CSS(sel), chromedp.NodeVisible))
		cancel()
		if err == nil && ok(text) {
			return text
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: %s has %q (%v)", what, sel, text, err)
		}
		time.Sleep(100 * time.Millisecond) // poll interval
	}
}

func do(t *testing.T, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatal(err)
	}
}

func TestConsoleSignInSeeAHoldApproveIt(t *testing.T) {
	base, id := server(t)
	ctx := browser(t)
	row := `#holds button[data-id="` + id + `"]`

	// A wrong token is refused on the page.
	do(t, ctx,
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), "not-a-token"),
		chromedp.Click(chromedp.ID("signin")),
	)
	waitText(t, ctx, "#signin-error", func(s string) bool { return strings.Contains(s, "not valid") }, "the sign-in error")

	// alice signs in and sees the hold in the queue.
	do(t, ctx,
		chromedp.SendKeys(chromedp.ID("token"), apitest.Tokens["alice"]),
		chromedp.Click(chromedp.ID("signin")),
		chromedp.WaitVisible(chromedp.CSS(row)),
	)
	waitText(t, ctx, "#who-name", func(s string) bool { return s == "alice (approver)" }, "the signed-in name")
	waitText(t, ctx, row, func(s string) bool {
		return strings.Contains(s, "held") && strings.Contains(s, "dev-deployer") && strings.Contains(s, "0 of 2 approvals")
	}, "the hold in the queue")

	// Its evidence: the alert, the amount, the counterparty with its list
	// label, the explorer link and the hop path.
	do(t, ctx, chromedp.Click(chromedp.CSS(row)))
	waitText(t, ctx, "#approval-count", func(s string) bool { return s == "0 of 2 approvals" }, "the quorum count")
	detail := waitText(t, ctx, "#hold-detail", func(s string) bool { return strings.Contains(s, "mixer-counterparty") }, "the evidence")
	for _, want := range []string{
		"Hold " + id, "dev-deployer, kim-laptop", "transfer out 1 ETH (3,000 USD)", apitest.Mixer + " — mixers: Tornado Cash 1 ETH pool",
		"is on list mixers (Tornado Cash 1 ETH pool", "eth #19431837", "path", apitest.DevDeployer + " → " + apitest.Mixer,
	} {
		if !strings.Contains(detail, want) {
			t.Errorf("evidence lacks %q:\n%s", want, detail)
		}
	}
	href, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS(`#hold-detail a.addr`), "href"))
	if err != nil || !strings.HasPrefix(href.Value, "https://etherscan.io/tx/0x5e1f8b2c") {
		t.Errorf("explorer link %q (%v)", href.Value, err)
	}
	// The live feed shows the alert.
	waitText(t, ctx, "#alerts", func(s string) bool {
		return strings.Contains(s, "mixer-counterparty") && strings.Contains(s, "hold "+id)
	}, "the alert feed")

	// alice approves with a comment; the count moves to 1 of 2.
	do(t, ctx,
		chromedp.SendKeys(chromedp.ID("comment"), "called kim: not her"),
		chromedp.Click(chromedp.ID("approve")),
	)
	waitText(t, ctx, "#approval-count", func(s string) bool { return s == "1 of 2 approvals" }, "the quorum count after approving")
	waitText(t, ctx, "#message", func(s string) bool { return strings.Contains(s, "Your approval is counted (1 of 2 approvals)") }, "the confirmation")
	waitText(t, ctx, "#hold-detail", func(s string) bool {
		return strings.Contains(s, "approved by alice at") && strings.Contains(s, "called kim: not her")
	}, "the approval in the decisions")

	// Approving again counts once.
	do(t, ctx, chromedp.Click(chromedp.ID("approve")))
	waitText(t, ctx, "#message", func(s string) bool { return strings.Contains(s, "counts once") }, "the repeat notice")
	waitText(t, ctx, "#approval-count", func(s string) bool { return s == "1 of 2 approvals" }, "the unchanged count")

	// The token lives in the tab's session storage only.
	local, err := chromedp.Run(ctx, chromedp.Evaluate[int](`localStorage.length`))
	if err != nil || local != 0 {
		t.Errorf("localStorage holds %d items (%v)", local, err)
	}
}

func TestConsoleShowsTheOwnerWhyTheyMayNotApprove(t *testing.T) {
	base, id := server(t)
	ctx := browser(t)
	row := `#holds button[data-id="` + id + `"]`
	do(t, ctx,
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), apitest.Tokens["kim"]),
		chromedp.Click(chromedp.ID("signin")),
		chromedp.WaitVisible(chromedp.CSS(row)),
		chromedp.Click(chromedp.CSS(row)),
		chromedp.WaitVisible(chromedp.ID("approve")),
		chromedp.Click(chromedp.ID("approve")),
	)
	waitText(t, ctx, "#message", func(s string) bool {
		return strings.Contains(s, "Refused: kim owns a key this hold involves")
	}, "the refusal")
	waitText(t, ctx, "#approval-count", func(s string) bool { return s == "0 of 2 approvals" }, "the unchanged count")
}
