package safe_test

import (
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/keywatch/keywatch/chains/ethereum/safe"
	"github.com/keywatch/keywatch/contracts"
)

// Every admin change decodes in both forms: the argument in the data
// (1.1.1 to 1.3.0) and indexed (1.4.1); the threshold is data in both.
func TestDecodeChangeBothForms(t *testing.T) {
	addr := common.HexToAddress("0x00000000000000000000000000000000DeaDBeef")
	word := common.BytesToHash(addr[:])
	for _, tc := range []struct {
		sig, change, arg string
	}{
		{"AddedOwner(address)", "added-owner", "owner"},
		{"RemovedOwner(address)", "removed-owner", "owner"},
		{"EnabledModule(address)", "enabled-module", "module"},
		{"DisabledModule(address)", "disabled-module", "module"},
		{"ChangedGuard(address)", "guard", "guard"},
		{"ChangedFallbackHandler(address)", "fallback-handler", "handler"},
		{"ChangedMasterCopy(address)", "singleton", "singleton"},
	} {
		topic := crypto.Keccak256Hash([]byte(tc.sig))
		for form, l := range map[string]*types.Log{
			"1.3.0 (data)":    {Topics: []common.Hash{topic}, Data: word[:]},
			"1.4.1 (indexed)": {Topics: []common.Hash{topic, word}},
		} {
			c, ok := safe.DecodeChange(l)
			if !ok || c.Change != tc.change || c.Arg != tc.arg || c.Value != "0x00000000000000000000000000000000deadbeef" || c.Event != strings.Split(tc.sig, "(")[0] {
				t.Errorf("%s %s: %+v, %v", tc.sig, form, c, ok)
			}
		}
		// A word that is no address, or a log of the wrong shape.
		bad := common.HexToHash("0xff000000000000000000000000000000000000000000000000000000deadbeef")
		for _, l := range []*types.Log{{Topics: []common.Hash{topic}, Data: bad[:]}, {Topics: []common.Hash{topic, word}, Data: word[:]}, {Topics: []common.Hash{topic}}} {
			if c, ok := safe.DecodeChange(l); ok {
				t.Errorf("%s: malformed log decoded as %+v", tc.sig, c)
			}
		}
	}
	th := common.BigToHash(common.Big3)
	if c, ok := safe.DecodeChange(&types.Log{Topics: []common.Hash{safe.TopicChangedThreshold}, Data: th[:]}); !ok || c.Change != "threshold" || c.Value != "3" {
		t.Errorf("ChangedThreshold: %+v, %v", c, ok)
	}
	if _, ok := safe.DecodeChange(&types.Log{Topics: []common.Hash{safe.TopicChangedThreshold, th}}); ok {
		t.Error("an indexed threshold decoded: no Safe logs that")
	}
}

func TestDecodeExecutionBothForms(t *testing.T) {
	h := common.HexToHash("0x1234")
	pay := make([]byte, 32)
	for name, l := range map[string]*types.Log{
		"1.3.0": {Topics: []common.Hash{safe.TopicExecutionSuccess}, Data: append(h.Bytes(), pay...)},
		"1.4.1": {Topics: []common.Hash{safe.TopicExecutionSuccess, h}, Data: pay},
	} {
		e, ok := safe.DecodeExecution(l)
		if !ok || e.TxHash != h || !e.Success || e.FromModule {
			t.Errorf("%s ExecutionSuccess: %+v, %v", name, e, ok)
		}
	}
	e, ok := safe.DecodeExecution(&types.Log{Topics: []common.Hash{safe.TopicExecutionFailure, h}, Data: pay})
	if !ok || e.Success || e.Event != "ExecutionFailure" {
		t.Errorf("ExecutionFailure: %+v, %v", e, ok)
	}
	mod := common.BytesToHash(common.HexToAddress("0xabc").Bytes())
	e, ok = safe.DecodeExecution(&types.Log{Topics: []common.Hash{safe.TopicExecutionFromModuleFailure, mod}})
	if !ok || !e.FromModule || e.Success || e.Module != common.HexToAddress("0xabc") {
		t.Errorf("ExecutionFromModuleFailure: %+v, %v", e, ok)
	}
}

// The topics and selectors are those of the real contracts' ABIs.
func TestTopicsAndSelectorsMatchTheRealABIs(t *testing.T) {
	for _, r := range contracts.SafeReleases() {
		art, err := contracts.LoadSafe(r.Version, r.SingletonL2)
		if err != nil {
			t.Fatal(err)
		}
		known := map[common.Hash]bool{}
		for _, topic := range safe.Topics() {
			known[topic] = true
		}
		for _, name := range []string{"AddedOwner", "RemovedOwner", "ChangedThreshold", "EnabledModule", "DisabledModule", "ChangedGuard",
			"ChangedFallbackHandler", "ExecutionSuccess", "ExecutionFailure", "ExecutionFromModuleSuccess", "ExecutionFromModuleFailure",
			"SafeMultiSigTransaction", "SafeModuleTransaction"} {
			ev, ok := art.ABI.Events[name]
			if !ok || !known[ev.ID] {
				t.Errorf("%s %s: event %s (topic %s) is not decoded", r.Version, r.SingletonL2, name, ev.ID.Hex())
			}
		}
		for name, sel := range map[string][]byte{"execTransaction": safe.SelectorExecTransaction, "execTransactionFromModule": safe.SelectorExecTransactionFromModule,
			"execTransactionFromModuleReturnData": safe.SelectorExecTransactionFromModuleReturnData, "VERSION": safe.SelectorVersion,
			"getOwners": safe.SelectorGetOwners, "nonce": safe.SelectorNonce} {
			if m, ok := art.ABI.Methods[name]; !ok || string(m.ID) != string(sel) {
				t.Errorf("%s: method %s selector %x, want %x", r.Version, name, m.ID, sel)
			}
		}
	}
}

// The default allow list is the one extracted from
// @safe-global/safe-deployments into contracts/safe/deployments.json, and
// the singletons there are byte for byte the npm packages' artifacts.
func TestLibrariesAreSafesOwnDeployments(t *testing.T) {
	deps, version, err := contracts.SafeDeployments()
	if err != nil {
		t.Fatal(err)
	}
	if want := "@safe-global/safe-deployments@" + version; safe.DeploymentsPackage != want {
		t.Errorf("DeploymentsPackage %s, deployments.json is from %s", safe.DeploymentsPackage, want)
	}
	if len(deps) != len(safe.Libraries) {
		t.Fatalf("%d libraries in Go, %d in deployments.json", len(safe.Libraries), len(deps))
	}
	for i, d := range deps {
		l := safe.Libraries[i]
		if l.Version != d.Version || l.Contract != d.Contract || l.Kind != d.Kind || l.Address != d.Address {
			t.Errorf("library %d: Go %+v, deployments.json %+v", i, l, d)
		}
		if got, ok := safe.LibraryAt(strings.ToLower(d.Address.Hex())); !ok || got != l {
			t.Errorf("LibraryAt(%s): %+v %v", d.Address.Hex(), got, ok)
		}
	}
	// MultiSendCallOnly and SignMessageLib have no immutables: the npm
	// artifact's runtime code is what Safe deployed. (MultiSend keeps its
	// own address in an immutable; the SignMessageLib of the 1.3.0 package
	// is another build than the one deployed.)
	for _, d := range deps {
		if d.Contract == "MultiSend" || (d.Contract == "SignMessageLib" && d.Version == "1.3.0") {
			continue
		}
		art, err := contracts.LoadSafe(d.Version, d.Contract)
		if err != nil {
			t.Fatal(err)
		}
		if h := crypto.Keccak256Hash(art.DeployedBytecode); h != d.CodeHash {
			t.Errorf("%s %s: artifact code hash %s, deployed %s", d.Version, d.Contract, h.Hex(), d.CodeHash.Hex())
		}
	}
	if _, ok := safe.LibraryAt("0x0000000000000000000000000000000000000001"); ok {
		t.Error("LibraryAt found a library at 0x…01")
	}
}
