package policies

import (
	"fmt"
	"strings"

	"github.com/keywatch/keywatch/chains"
)

// changeReasons words the admin events that carry detail.change: a Safe's
// owner, threshold, module, guard, fallback-handler and singleton changes,
// and watched storage slots that changed (logged or not). ok is false for
// other admin events, which adminChange words itself.
func changeReasons(ev *chains.Event, in *Input) ([]string, bool) {
	change := ev.Detail[chains.DetailChange]
	if change == "" {
		return nil, false
	}
	d := ev.Detail
	var what string
	switch change {
	case "added-owner":
		what = "owner " + d["owner"] + " added"
	case "removed-owner":
		what = "owner " + d["owner"] + " removed"
	case "threshold":
		what = "threshold changed to " + d["threshold"] + " signatures"
	case "enabled-module":
		what = "module " + d["module"] + " enabled: it can execute any transaction without owners' signatures"
	case "disabled-module":
		what = "module " + d["module"] + " disabled"
	case "guard":
		what = "transaction guard set to " + d["guard"]
	case "fallback-handler":
		what = "fallback handler set to " + d["handler"]
	case "singleton":
		what = "singleton (the code the Safe runs) changed to " + d["singleton"]
	case chains.DetailSlot:
		what = fmt.Sprintf("storage slot %s changed from %s to %s", d[chains.DetailSlot], d[chains.DetailOld], d[chains.DetailNew])
		if d["event"] == "" {
			what += ", and the contract logged nothing for it"
		}
	default:
		what = change + " changed"
	}
	reason := changedOn(ev, in) + ": " + what
	if e := d["event"]; e != "" {
		reason += " (" + e + ")"
	}
	out := []string{reason}
	if s := signersReason(ev, in); s != "" {
		out = append(out, s+" in tx "+ev.Tx)
	}
	return out, true
}

// changedOn names the Safe or contract an admin event changed.
func changedOn(ev *chains.Event, in *Input) string {
	addr := ev.Detail[DetailContract]
	if addr == "" {
		addr = ev.From
	}
	w, ok := in.Wallets[ev.Wallet]
	if !ok {
		w, ok = in.WalletAt(ev.Chain, addr)
	}
	kind := "contract"
	if ok && w.IsSafe() {
		kind = "Safe"
	}
	if !ok {
		return kind + " " + addr
	}
	return strings.TrimSpace(fmt.Sprintf("watched %s %s %s", kind, describe(w), addr))
}
