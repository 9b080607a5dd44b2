package policies_test

import (
	"context"
	"testing"

	"github.com/keywatch/keywatch/alertmodel"
	"github.com/keywatch/keywatch/chains"
)

// queued is the proposed event of a queued Safe transaction of cold-store
// (standing in for a Safe), as the Safe queue poller builds it.
func queued(shown, computed string, detail map[string]string) chains.Event {
	nonce := uint64(71)
	d := map[string]string{chains.DetailComputedSafeTxHash: computed, chains.DetailSafeVersion: "1.3.0"}
	if shown != "" {
		d[chains.DetailSafeTxHash] = shown
	}
	for k, v := range detail {
		d[k] = v
	}
	if computed == "" {
		delete(d, chains.DetailComputedSafeTxHash)
	}
	return chains.Event{
		ID: "eth:safe-tx:" + computed, Chain: "eth", Time: observedAt, Status: chains.StatusProposed,
		Kind: chains.KindExecution, Direction: chains.Out, Wallet: "cold-store", WalletRole: "cold",
		From: coldStore, To: "0x96221423681a6d52e184d440a8efcebb105c7242", Counterparty: "0x96221423681a6d52e184d440a8efcebb105c7242",
		Asset: "ETH", Amount: chains.NewAmount(nil, 18), Operation: "delegatecall",
		Target: "0x96221423681a6d52e184d440a8efcebb105c7242", Value: "0", Selector: "0xa9059cbb", SafeNonce: &nonce,
		Detail: d,
	}
}

func TestSafeHash(t *testing.T) {
	const (
		h1 = "0xb3476d061aeb8fc1d605a873c483a2402d88a68a9cdd1a8b47655dd55ba004f8"
		h2 = "0x9d89e67333f99c136537be74029c44592985a4855172f4c2d0d942029868f98e"
	)
	// No severity: safe-hash is critical by default.
	const section = `policies:
  - {name: safe-hash, detector: safe-hash, actions: [page, hold]}
`
	what := "queued transaction of Safe cold-store (" + coldStore + ") at nonce 71 (delegatecall to 0x96221423681a6d52e184d440a8efcebb105c7242, selector 0xa9059cbb)"
	tests := []struct {
		name string
		ev   chains.Event
		want []string
	}{
		{name: "hash recomputes equal", ev: queued(h1, h1, nil)},
		{name: "hash in another case", ev: queued("0xB3476D061AEB8FC1D605A873C483A2402D88A68A9CDD1A8B47655DD55BA004F8", h1, nil)},
		{
			name: "the service shows another hash",
			ev:   queued(h2, h1, nil),
			want: []string{"safe-hash: " + what + ": the service shows its signers safeTxHash " + h2 + ", but the payload hashes to " + h1 + ": what the signers are shown is not what they sign"},
		},
		{
			name: "a confirmation signs something else",
			ev:   queued(h2, h2, map[string]string{chains.DetailBadConfirmations: "0x1f4eb0a903619ac168b19a82f1a6e2e426522211: signature recovers to 0x9ed84723885128072e4eebe53d2c71cac23ceb01"}),
			want: []string{"safe-hash: " + what + ": confirmations that do not sign its payload (the owners signed something else): 0x1f4eb0a903619ac168b19a82f1a6e2e426522211: signature recovers to 0x9ed84723885128072e4eebe53d2c71cac23ceb01"},
		},
		{
			name: "not recomputed: fails closed",
			ev:   queued(h1, "", nil),
			want: []string{"safe-hash: " + what + ": the service shows safeTxHash " + h1 + ", which keywatch could not recompute from the payload"},
		},
		{name: "an execution seen in a block (no service hash)", ev: queued("", h1, nil)},
	}
	e := newEngine(mustBuild(t, section), nil, nil)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			as, err := e.Evaluate(context.Background(), &tc.ev)
			if err != nil {
				t.Fatal(err)
			}
			checkFired(t, as, tc.want)
			for _, a := range as {
				if a.Severity != alertmodel.Critical {
					t.Errorf("severity %s, want critical by default", a.Severity)
				}
				if a.ID != tc.ev.ID+":safe-hash" {
					t.Errorf("alert id %s", a.ID)
				}
			}
		})
	}
	t.Run("transfers are not judged", func(t *testing.T) {
		ev := queued(h2, h1, nil)
		ev.Kind = chains.KindTransfer
		as, err := e.Evaluate(context.Background(), &ev)
		if err != nil || len(as) != 0 {
			t.Fatalf("alerts %v, err %v", fired(as), err)
		}
	})
	t.Run("an explicit severity wins", func(t *testing.T) {
		set := mustBuild(t, "policies:\n  - {name: safe-hash, detector: safe-hash, severity: high}\n")
		ev := queued(h2, h1, nil)
		as, err := newEngine(set, nil, nil).Evaluate(context.Background(), &ev)
		if err != nil || len(as) != 1 || as[0].Severity != alertmodel.High {
			t.Fatalf("alerts %v, err %v", as, err)
		}
	})
	t.Run("other detectors still need a severity", func(t *testing.T) {
		if _, err := buildPolicies(t, "policies:\n  - {name: t, detector: honeytoken}\n"); err == nil {
			t.Fatal("a honeytoken policy without severity was accepted")
		}
	})
}
