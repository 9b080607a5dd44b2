package daemon_test

import (
	"context"
	"crypto/ecdsa"
	"fmt"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/ethclient"

	"github.com/keywatch/keywatch/alertmodel"
	"github.com/keywatch/keywatch/chains"
	"github.com/keywatch/keywatch/chains/ethereum"
	"github.com/keywatch/keywatch/chains/ethereum/safe"
	"github.com/keywatch/keywatch/config"
	"github.com/keywatch/keywatch/contracts"
	"github.com/keywatch/keywatch/daemon"
	"github.com/keywatch/keywatch/internal/safetest"
	"github.com/keywatch/keywatch/internal/simchain"
	"github.com/keywatch/keywatch/internal/testenv"
)

// The Bybit theft (21 February 2025) end to end: three owners of a Safe
// signed what they were shown as a routine transfer; it was a delegatecall
// to the attacker's contract, whose transfer(address,uint256) wrote the
// attacker's contract into slot 0, the Safe's singleton, logging nothing.
// From then on the Safe ran the attacker's code, and the attacker, no
// owner, emptied it by internal calls. These tests play that on a real
// Safe 1.4.1 watched by keywatch (account: safe) and check the alerts an
// on-call engineer receives.

const bybitConfirmations = 3

const bybitConfig = `store: {memory: true}
nats: {url: %q}
api: {listen: "127.0.0.1:0"}
chains:
  - {name: eth, kind: ethereum, rpc: [%q], chain_id: 1337, confirmations: %d, poll_interval: 100ms, start_block: %d, native_usd: 3000, traces: auto}
wallets:
  - {name: treasury-safe, chain: eth, address: %q, role: cold, owner: treasury@firm.example, account: safe}
  - {name: dev-kim, chain: eth, address: %q, role: employee-key, owner: kim@firm.example}
policies:
  - {name: safe-delegatecall, detector: delegatecall, actions: [page, hold]}
  - {name: admin-change, detector: admin-change, severity: critical, actions: [page]}
  - {name: safe-outflow, detector: threshold, usd_over: 100000, severity: critical, actions: [page]}
alerts: {sinks: [{name: log, kind: log}]}
`

// bybitNode is the chain a Bybit scene runs on.
type bybitNode struct {
	chain *safetest.Chain
	// include gets a transaction just sent into a block (the simulated
	// backend's Commit; nothing on geth --dev, which seals it by itself);
	// seal makes one more block (Commit; on geth --dev with period 0, a
	// transfer).
	include, seal func(t *testing.T)
	head          func(t *testing.T) uint64
	rpc           string
	// dial, when set, gives the daemon its client (the simulated chain);
	// otherwise the daemon dials rpc.
	dial func(context.Context, config.Chain) (ethereum.Client, error)
}

// bybitScene is a watched Safe 1.4.1 holding 500 ETH (owners alice, bob
// and the employee key dev-kim, threshold 2), the attacker's
// SlotZeroTakeover, and keywatch running over the chain.
type bybitScene struct {
	t         *testing.T
	ctx       context.Context
	node      bybitNode
	dep       *safetest.Deployment
	safe      *safetest.Safe
	attacker  common.Address
	takeArt   *contracts.Artifact
	alerts    *testenv.AlertStream
	takeover  *types.Receipt
	sweep     *types.Transaction
	sweepRcpt *types.Receipt
	sealedAt  time.Time // when the takeover's block was sealed
}

var bybitLoot = simchain.Ether(500)

func newBybitScene(t *testing.T, node bybitNode) *bybitScene {
	t.Helper()
	ctx := context.Background()
	s := &bybitScene{t: t, ctx: ctx, node: node}
	deployer := simchain.Key("deployer")
	var err error
	if s.dep, err = safetest.Deploy(ctx, node.chain, deployer, "1.4.1"); err != nil {
		t.Fatal(err)
	}
	owners := []common.Address{simchain.Addr("alice"), simchain.Addr("bob"), simchain.Addr("dev-kim")}
	if s.safe, err = s.dep.NewSafe(ctx, node.chain, deployer, owners, 2, false, 21); err != nil {
		t.Fatal(err)
	}
	if _, err := node.chain.Send(ctx, deployer, &s.safe.Address, bybitLoot, nil); err != nil {
		t.Fatal(err)
	}
	if s.takeArt, err = contracts.Load(contracts.NameSlotZeroTakeover); err != nil {
		t.Fatal(err)
	}
	code, err := s.takeArt.DeployData()
	if err != nil {
		t.Fatal(err)
	}
	r, err := node.chain.Send(ctx, simchain.Key("attacker"), nil, nil, code)
	if err != nil {
		t.Fatal(err)
	}
	s.attacker = r.ContractAddress

	ns := testenv.NATS(t)
	body := fmt.Sprintf(bybitConfig, ns.URL(), node.rpc, bybitConfirmations, node.head(t)+1, s.safe.Address.Hex(), simchain.Addr("dev-kim").Hex())
	path := filepath.Join(t.TempDir(), "keywatch.yaml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, set, err := daemon.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	d, err := daemon.New(ctx, cfg, set, daemon.Options{Logger: log, EthDial: node.dial})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- d.Run(runCtx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("daemon: %v", err)
		}
		d.Close()
	})
	s.alerts = testenv.ReadAlerts(t, ns.URL())
	return s
}

// play runs the takeover, then at once the sweep by an outsider, and
// waits for the pages: the delegatecall's must arrive while the sweep's
// block is short of confirmation depth (no block is sealed until it does).
func (s *bybitScene) play() {
	t, ctx := s.t, s.ctx
	transfer, err := s.takeArt.Pack("transfer", s.attacker, new(big.Int))
	if err != nil {
		t.Fatal(err)
	}
	signers := []*ecdsa.PrivateKey{simchain.Key("alice"), simchain.Key("dev-kim")}
	if s.takeover, err = s.safe.Run(ctx, simchain.Key("relayer"), s.attacker, nil, transfer, safe.DelegateCall, signers...); err != nil {
		t.Fatal(err)
	}
	s.sealedAt = time.Now()
	if len(s.takeover.Logs) != 1 || s.takeover.Logs[0].Topics[0] != safe.TopicExecutionSuccess {
		t.Fatalf("the takeover logged %d logs, want only the Safe's ExecutionSuccess", len(s.takeover.Logs))
	}
	sweepData, err := s.takeArt.Pack("sweepETH", simchain.Addr("drop"))
	if err != nil {
		t.Fatal(err)
	}
	if s.sweep, err = contracts.Transact(ctx, s.node.chain.Client, simchain.Key("outsider"), simchain.ChainID, &s.safe.Address, nil, sweepData); err != nil {
		t.Fatal(err)
	}
	s.node.include(t)
	s.sweepRcpt = s.receipt(s.sweep.Hash())
	if len(s.sweepRcpt.Logs) != 0 {
		t.Fatalf("the sweep logged %d events, want none", len(s.sweepRcpt.Logs))
	}
	if b, err := s.node.chain.Client.(interface {
		BalanceAt(context.Context, common.Address, *big.Int) (*big.Int, error)
	}).BalanceAt(ctx, s.safe.Address, nil); err != nil || b.Sign() != 0 {
		t.Fatalf("the Safe holds %v wei after the sweep (%v)", b, err)
	}

	var headAtPage uint64
	testenv.WaitFor(t, 0, func() bool {
		if s.message(s.delegatecallID(), "pending", alertmodel.Firing) == nil {
			return false
		}
		headAtPage = s.node.head(t)
		return true
	}, "the delegatecall page")
	if last := s.sweepRcpt.BlockNumber.Uint64() + bybitConfirmations; headAtPage >= last {
		t.Errorf("the delegatecall paged at head %d, when the sweep's block %d was confirmed", headAtPage, s.sweepRcpt.BlockNumber)
	}
	page := s.message(s.delegatecallID(), "pending", alertmodel.Firing)
	t.Logf("the delegatecall's page was on NATS %s after its block was sealed (head %d, the sweep in block %d, confirmed at %d)",
		page.Received.Sub(s.sealedAt).Round(time.Millisecond), headAtPage, s.sweepRcpt.BlockNumber, s.sweepRcpt.BlockNumber.Uint64()+bybitConfirmations)
	testenv.WaitFor(t, 0, func() bool { return s.message(s.slotID(), "pending", alertmodel.Firing) != nil }, "the slot 0 alert")
	testenv.WaitFor(t, 0, func() bool { return s.message(s.sweepID(), "pending", alertmodel.Firing) != nil }, "the sweep's outflow alert")
	s.checkAlerts("pending")
}

// confirm seals blocks until the three alerts are confirmed.
func (s *bybitScene) confirm() {
	t := s.t
	for range bybitConfirmations {
		s.node.seal(t)
	}
	for _, id := range []string{s.delegatecallID(), s.slotID(), s.sweepID()} {
		testenv.WaitFor(t, 0, func() bool { return s.message(id, "confirmed", alertmodel.Firing) != nil }, "the confirmed "+id)
	}
	s.checkAlerts("confirmed")
	// The page came before the sweep was confirmed, in the stream too.
	all := s.alerts.All()
	page := slices.IndexFunc(all, func(m testenv.StreamedAlert) bool {
		return m.Alert.ID == s.delegatecallID() && m.Alert.Event.Status == "pending"
	})
	swept := slices.IndexFunc(all, func(m testenv.StreamedAlert) bool {
		return m.Alert.ID == s.sweepID() && m.Alert.Event.Status == "confirmed"
	})
	if page < 0 || swept < 0 || page > swept {
		t.Errorf("stream order: the delegatecall's page at %d, the sweep's confirmation at %d", page, swept)
	}
	for id, n := range s.alerts.MsgIDCounts() {
		if n != 1 {
			t.Errorf("message %s published %d times", id, n)
		}
	}
}

func (s *bybitScene) receipt(h common.Hash) *types.Receipt {
	s.t.Helper()
	var r *types.Receipt
	testenv.WaitFor(s.t, 0, func() bool {
		var err error
		r, err = s.node.chain.Client.TransactionReceipt(s.ctx, h)
		return err == nil
	}, "the receipt of "+h.Hex())
	if r.Status != types.ReceiptStatusSuccessful {
		s.t.Fatalf("transaction %s failed", h.Hex())
	}
	return r
}

func lowerHex(a common.Address) string { return strings.ToLower(a.Hex()) }

// The alerts' ids: the execution's is its ExecutionSuccess log's, the slot
// change's names the takeover transaction (from the prestate trace), the
// sweep's its frame (the proxy's delegatecall to the new singleton is
// frame 0, the attacker's code paying out 0.0).
func (s *bybitScene) delegatecallID() string {
	return fmt.Sprintf("eth:%s:%d:safe-delegatecall", s.takeover.TxHash.Hex(), s.takeover.Logs[0].Index)
}

func (s *bybitScene) slotID() string {
	return "eth:" + s.takeover.TxHash.Hex() + ":slot:" + lowerHex(s.safe.Address) + ":" + ethereum.SlotZero.Hex() + ":admin-change"
}

func (s *bybitScene) sweepID() string {
	return "eth:" + s.sweep.Hash().Hex() + ":call:0.0:safe-outflow"
}

// message is the last message of alert id with the given event and alert
// status.
func (s *bybitScene) message(id, eventStatus string, status alertmodel.Status) *testenv.StreamedAlert {
	var out *testenv.StreamedAlert
	for _, m := range s.alerts.All() {
		if m.Alert.ID == id && string(m.Alert.Event.Status) == eventStatus && m.Alert.Status == status {
			out = &m
		}
	}
	return out
}

// checkAlerts checks what the on-call engineer reads in the three alerts.
func (s *bybitScene) checkAlerts(eventStatus string) {
	t := s.t
	t.Helper()
	relayer, outsider, drop := lowerHex(simchain.Addr("relayer")), lowerHex(simchain.Addr("outsider")), lowerHex(simchain.Addr("drop"))
	signers := []string{lowerHex(simchain.Addr("alice")), lowerHex(simchain.Addr("dev-kim"))}
	slices.Sort(signers)

	dc := s.message(s.delegatecallID(), eventStatus, alertmodel.Firing).Alert
	e := dc.Event
	if dc.Severity != alertmodel.Critical || dc.Wallet != "treasury-safe" || dc.HoldID == "" || !slices.Contains(dc.Actions, alertmodel.ActionPage) ||
		e.Kind != chains.KindExecution || e.Operation != "delegatecall" || e.Target != lowerHex(s.attacker) || e.Selector != "0xa9059cbb" ||
		!slices.Equal(e.Signers, signers) || e.Owner != "kim@firm.example" || e.Initiator != relayer || e.SafeNonce == nil || *e.SafeNonce != 0 {
		t.Errorf("delegatecall alert (%s): severity %s wallet %s hold %q actions %v event %+v", eventStatus, dc.Severity, dc.Wallet, dc.HoldID, dc.Actions, e)
	}
	if r := strings.Join(dc.Reasons, "\n"); !strings.Contains(r, "not in allow (safe-libraries)") || !strings.Contains(r, "dev-kim") {
		t.Errorf("delegatecall reasons: %s", r)
	}

	sl := s.message(s.slotID(), eventStatus, alertmodel.Firing).Alert
	e = sl.Event
	if sl.Severity != alertmodel.Critical || sl.Wallet != "treasury-safe" || e.Kind != chains.KindAdmin ||
		e.Detail[chains.DetailChange] != "slot" || e.Detail[chains.DetailSlot] != ethereum.SlotZero.Hex() ||
		e.Detail[chains.DetailOld] != common.BytesToHash(s.dep.Singleton.Bytes()).Hex() || e.Detail[chains.DetailNew] != common.BytesToHash(s.attacker.Bytes()).Hex() ||
		e.Tx != s.takeover.TxHash.Hex() || e.Initiator != relayer || e.Counterparty != lowerHex(s.attacker) {
		t.Errorf("slot 0 alert (%s): severity %s wallet %s event %+v", eventStatus, sl.Severity, sl.Wallet, e)
	}

	sw := s.message(s.sweepID(), eventStatus, alertmodel.Firing).Alert
	e = sw.Event
	if sw.Severity != alertmodel.Critical || sw.Wallet != "treasury-safe" || e.Kind != chains.KindTransfer || e.Direction != chains.Out ||
		e.Initiator != outsider || e.Counterparty != drop || e.To != drop || e.Amount.String() != "500" || e.Asset != "ETH" ||
		e.Detail[ethereum.DetailInternal] != "call" || e.BlockHash != s.sweepRcpt.BlockHash.Hex() {
		t.Errorf("sweep alert (%s): severity %s wallet %s event %+v", eventStatus, sw.Severity, sw.Wallet, e)
	}
}

// TestBybitTakeoverOnTheSimulatedChain plays the sequence on the simulated
// chain serving geth's tracers, then a reorg drops the sweep's block: its
// alert is retracted and resolved, and fires again, confirmed, in the
// block of the new branch that took the sweep.
func TestBybitTakeoverOnTheSimulatedChain(t *testing.T) {
	funds := map[string]int64{"deployer": 1000, "relayer": 10, "outsider": 10, "attacker": 10}
	c, err := simchain.NewTraced(funds, safetest.DeployerAlloc())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close) // after keywatch stops
	s := newBybitScene(t, bybitNode{
		chain:   safetest.Sim(c),
		include: func(*testing.T) { c.Backend.Commit() },
		seal:    func(*testing.T) { c.Backend.Commit() },
		head: func(t *testing.T) uint64 {
			n, err := c.Client.BlockNumber(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			return n
		},
		rpc:  "ws://127.0.0.1:1", // the chain is in-process
		dial: func(context.Context, config.Chain) (ethereum.Client, error) { return c.Client, nil },
	})
	s.play()

	// A reorg drops the sweep's block; the new branch takes the sweep again
	// (the node's pool puts the transactions of a dropped block back once
	// it sees the new head; it is sent again too, in case).
	dropped := s.sweepRcpt
	if err := c.Backend.Fork(s.takeover.BlockHash); err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		if i == 10 {
			t.Fatalf("the new branch did not take the sweep in %d blocks", i)
		}
		_ = c.Client.SendTransaction(s.ctx, s.sweep) // "already known" or "nonce too low" while the pool catches up
		c.Backend.Commit()
		if r, err := c.Client.TransactionReceipt(s.ctx, s.sweep.Hash()); err == nil && r.BlockHash != dropped.BlockHash {
			s.sweepRcpt = r
			break
		}
	}
	c.Backend.Commit() // a block above the sweep's, so that the new branch is the longer
	testenv.WaitFor(t, 0, func() bool { return s.message(s.sweepID(), "retracted", alertmodel.Resolved) != nil }, "the sweep's alert retracted and resolved")
	if m := s.message(s.sweepID(), "retracted", alertmodel.Resolved); m.Alert.Event.BlockHash != dropped.BlockHash.Hex() {
		t.Errorf("the retraction names block %s, want the dropped %s", m.Alert.Event.BlockHash, dropped.BlockHash.Hex())
	}
	for _, id := range []string{s.delegatecallID(), s.slotID()} {
		if s.message(id, "retracted", alertmodel.Resolved) != nil {
			t.Errorf("%s was retracted, but the takeover's block stayed", id)
		}
	}
	s.confirm()
}

// TestBybitTakeoverOnGeth plays the sequence on a real geth --dev with the
// debug API (callTracer and prestateTracer), sealing a block only when a
// transaction is sent.
func TestBybitTakeoverOnGeth(t *testing.T) {
	ctx := context.Background()
	g := testenv.Geth(t, testenv.GethDevPeriod(0))
	for name, eth := range map[string]int64{"deployer": 1000, "relayer": 10, "outsider": 10, "attacker": 10} {
		if err := g.Fund(ctx, simchain.Addr(name), simchain.Ether(eth)); err != nil {
			t.Fatal(err)
		}
	}
	client, err := ethclient.Dial(g.HTTPURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(client.Close)
	filler := common.HexToAddress("0x000000000000000000000000000000000000f111")
	s := newBybitScene(t, bybitNode{
		chain:   safetest.Node(client, simchain.ChainID),
		include: func(*testing.T) {},
		seal: func(t *testing.T) {
			if err := g.Fund(ctx, filler, big.NewInt(1)); err != nil {
				t.Fatal(err)
			}
		},
		head: func(t *testing.T) uint64 {
			n, err := g.BlockNumber(ctx)
			if err != nil {
				t.Fatal(err)
			}
			return n
		},
		rpc: g.HTTPURL,
	})
	s.play()
	s.confirm()
}
