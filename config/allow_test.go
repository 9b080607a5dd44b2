package config_test

import (
	"testing"

	"github.com/keywatch/keywatch/config"
)

// TestPolicyAllow: a policy's allow: takes addresses, lists and
// safe-libraries; anything else is an error naming the entry.
func TestPolicyAllow(t *testing.T) {
	withLists := insertAfter(t, base, "    role: hot", "lists:\n  libs: [libs.txt]\n")
	ok := insertAfter(t, withLists, "    severity: high", "  - name: dc\n    detector: delegatecall\n    severity: critical\n    allow: [safe-libraries, libs, \"0x40a2accbd92bca938b02010e17a5b8929b49130d\"]\n")
	cfg, err := config.Parse("kw.yaml", []byte(ok), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Policies[1].Allow; len(got) != 3 || got[0] != config.AllowSafeLibraries {
		t.Errorf("allow parsed as %v", got)
	}
	bad := insertAfter(t, withLists, "    severity: high", "  - name: dc\n    detector: delegatecall\n    severity: critical\n    allow: [multisend, \"0x40a2\", libs]\n")
	_, err = config.Parse("kw.yaml", []byte(bad), noEnv)
	checkErrors(t, err, []string{
		`kw.yaml:29:13: policies[1].allow[0]: "multisend" is neither an address (0x and 40 hex digits), a list under lists:, nor safe-libraries`,
		`kw.yaml:29:24: policies[1].allow[1]: "0x40a2" is not an address (want 0x and 40 hex digits)`,
	})
}
