package safequeue_test

import (
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"

	"github.com/keywatch/keywatch/chains"
	"github.com/keywatch/keywatch/internal/testenv"
)

// bybitSafe is Bybit's cold Safe (version 1.1.1) on mainnet.
var bybitSafe = common.HexToAddress("0x1Db92e2EeBC8E0c075a02BeA49a2935BcD2dFCF4")

// TestBybitQueue serves the Safe Transaction Service's real record of
// nonce 71 of Bybit's cold Safe (the 2025 theft) as the queue of a Safe at
// Bybit's address, with the nonce at 71 on chain: both transactions of
// nonce 71 are judged before execution. The delegatecall the owners' devices
// signed recomputes to the service's hash and carries the three owners'
// signatures, so safe-hash stays quiet on it (the delegatecall detector is
// the one for it); the 30,000 ETH transfer the service lists with the same
// signatures hashes as shown, but none of them signs it: safe-hash fires on
// it, naming the three owners. When the chain executes the delegatecall, it
// is confirmed and the transfer retracted.
func TestBybitQueue(t *testing.T) {
	b, err := os.ReadFile(testenv.Data(t, "dprk/bybit-safe-tx-71.json"))
	if err != nil {
		t.Fatal(err)
	}
	var page struct {
		Results []map[string]any `json:"results"`
	}
	if err := json.Unmarshal(b, &page); err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, harnessOpts{version: "1.1.1", nonce: 71, at: &bybitSafe})
	h.svc.Add(bybitSafe, page.Results...)
	const (
		delegatecall = "0xb3476d061aeb8fc1d605a873c483a2402d88a68a9cdd1a8b47655dd55ba004f8"
		transfer     = "0x9d89e67333f99c136537be74029c44592985a4855172f4c2d0d942029868f98e"
	)
	owners := []string{"0x1f4eb0a903619ac168b19a82f1a6e2e426522211", "0x3cc3a225769900e003e264dd4cb43e90896bc21a", "0xe3df2cceac61b1afa311372ecc5b40a3a6585a9e"}

	p := h.poller()
	mustPoll(t, p, h.ctx)
	evs := h.take()
	byHash := map[string]chains.Event{}
	for _, ev := range evs {
		byHash[strings.ToLower(ev.Detail[chains.DetailComputedSafeTxHash])] = ev
	}
	if len(evs) != 2 || byHash[delegatecall].ID == "" || byHash[transfer].ID == "" {
		t.Fatalf("delivered %v, want the two transactions of nonce 71", summary(evs))
	}
	d := byHash[delegatecall]
	if d.Status != chains.StatusProposed || d.Operation != "delegatecall" || d.Target != "0x96221423681a6d52e184d440a8efcebb105c7242" || d.Selector != "0xa9059cbb" || *d.SafeNonce != 71 {
		t.Errorf("delegatecall event %+v", d)
	}
	if !strings.EqualFold(d.Detail[chains.DetailSafeTxHash], d.Detail[chains.DetailComputedSafeTxHash]) {
		t.Errorf("the delegatecall's hash does not recompute: %v", d.Detail)
	}
	if !slices.Equal(d.Signers, owners) || d.Detail[chains.DetailBadConfirmations] != "" {
		t.Errorf("delegatecall signers %v (bad %q), want the three owners", d.Signers, d.Detail[chains.DetailBadConfirmations])
	}
	tr := byHash[transfer]
	if tr.Operation != "call" || tr.Amount.String() != "30000" || len(tr.Signers) != 0 {
		t.Errorf("transfer event: operation %s amount %s signers %v", tr.Operation, tr.Amount, tr.Signers)
	}
	for _, o := range owners {
		if !strings.Contains(tr.Detail[chains.DetailBadConfirmations], o+": signature recovers to ") {
			t.Errorf("the transfer's evidence does not name %s: %q", o, tr.Detail[chains.DetailBadConfirmations])
		}
	}
	var safeHash []string
	for _, a := range h.takeAlerts() {
		if a.Policy == "safe-hash" {
			safeHash = append(safeHash, a.Event.ID)
		}
	}
	if !slices.Equal(safeHash, []string{"dev:safe-tx:" + transfer}) {
		t.Errorf("safe-hash fired on %v, want the transfer alone", safeHash)
	}

	// The attackers execute the delegatecall.
	h.execute(common.HexToHash(delegatecall))
	mustPoll(t, p, h.ctx)
	got := summary(h.take())
	slices.Sort(got)
	if want := []string{"dev:safe-tx:" + transfer + " retracted", "dev:safe-tx:" + delegatecall + " confirmed"}; !slices.Equal(got, want) {
		t.Fatalf("after execution delivered %v, want %v", got, want)
	}
}
