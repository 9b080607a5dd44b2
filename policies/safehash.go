package policies

import (
	"context"
	"fmt"
	"strings"

	"github.com/keywatch/keywatch/chains"
	"github.com/keywatch/keywatch/config"
)

// safeHash fires on a Safe transaction from the Safe queue (an execution
// event with detail.safe_tx_hash) when what its signers are shown is not
// what they sign: the safeTxHash the Safe Transaction Service shows differs
// from the EIP-712 hash keywatch recomputed from the payload
// (detail.computed_safe_tx_hash), or a confirmation's signature does not
// recover to the owner the service names against the recomputed hash
// (detail.bad_confirmations: the owner signed something else). A queued
// transaction whose hash could not be recomputed fires too (fail closed).
// Events from blocks carry no service hash and are left alone. No
// parameters; default severity critical.
type safeHash struct{}

func buildSafeHash(b *builder, path string, p config.Policy) Detector {
	b.unused(path, p)
	return safeHash{}
}

func (safeHash) Detect(_ context.Context, ev *chains.Event, in *Input) (Finding, error) {
	shown, ok := ev.Detail[chains.DetailSafeTxHash]
	if !ok {
		return Finding{}, nil
	}
	safeName := ev.Wallet
	if w, ok := in.WalletAt(ev.Chain, ev.From); ok {
		safeName = fmt.Sprintf("Safe %s (%s)", w.Name, ev.From)
	}
	what := fmt.Sprintf("queued transaction of %s", safeName)
	if ev.SafeNonce != nil {
		what += fmt.Sprintf(" at nonce %d", *ev.SafeNonce)
	}
	what += fmt.Sprintf(" (%s to %s", orUnknown(ev.Operation), orUnknown(ev.Target))
	if ev.Selector != "" {
		what += ", selector " + ev.Selector
	}
	what += ")"
	computed := ev.Detail[chains.DetailComputedSafeTxHash]
	var f Finding
	switch {
	case computed == "":
		f.Reasons = append(f.Reasons, fmt.Sprintf("%s: the service shows safeTxHash %s, which keywatch could not recompute from the payload", what, shown))
	case !strings.EqualFold(shown, computed):
		f.Reasons = append(f.Reasons, fmt.Sprintf("%s: the service shows its signers safeTxHash %s, but the payload hashes to %s: what the signers are shown is not what they sign", what, shown, computed))
	}
	if bad := ev.Detail[chains.DetailBadConfirmations]; bad != "" {
		f.Reasons = append(f.Reasons, fmt.Sprintf("%s: confirmations that do not sign its payload (the owners signed something else): %s", what, bad))
	}
	f.Hit = len(f.Reasons) > 0
	return f, nil
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
