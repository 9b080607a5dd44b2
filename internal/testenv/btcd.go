package testenv

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/keywatch/keywatch/internal/regtest"
)

// Btcd starts btcd --regtest (KEYWATCH_BTCD, PATH or BinDir) for the test,
// with segwit and taproot active and the miner's coinbases mature, and stops
// it when the test ends. Its log is printed if the test fails. The node
// keeps its port and chain across Stop and Start.
func Btcd(t testing.TB) *regtest.Node {
	t.Helper()
	return btcd(t, regtest.Options{})
}

// BtcdNoTLS is Btcd with btcd's --notls: the node serves plain ws:// and
// http:// (WSURL, HTTPURL) and has no certificate.
func BtcdNoTLS(t testing.TB) *regtest.Node {
	t.Helper()
	return btcd(t, regtest.Options{NoTLS: true})
}

// btcd starts a node with o, filling in the binary and the folder.
func btcd(t testing.TB, o regtest.Options) *regtest.Node {
	t.Helper()
	bin := findBinary(t, "btcd", regtest.BinEnv)
	if bin == "" {
		return nil
	}
	checkBtcdVersion(t, bin)
	dir := t.TempDir()
	logOnFailure(t, "btcd", dir+"/btcd.log")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	start := time.Now()
	o.Bin, o.Dir = bin, dir
	n, err := regtest.Start(ctx, o)
	if err != nil {
		t.Fatalf("start btcd: %v", err)
	}
	t.Cleanup(func() {
		if err := n.Stop(); err != nil {
			t.Errorf("stop btcd: %v", err)
		}
	})
	h, _ := n.Height(ctx)
	t.Logf("btcd --regtest ready in %s at %s, height %d", time.Since(start).Round(time.Millisecond), n.WSURL, h)
	return n
}

// checkBtcdVersion notes in the test log when bin was not built from the
// pinned release (the version comes from the build information: btcd
// prints an older number for --version).
func checkBtcdVersion(t testing.TB, bin string) {
	t.Helper()
	out, err := exec.Command("go", "version", "-m", bin).Output()
	if err != nil {
		return // no go tool: nothing to compare
	}
	for line := range strings.SplitSeq(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && f[0] == "mod" {
			if f[2] != regtest.Version {
				t.Logf("note: %s is btcd %s, tests are pinned to %s (scripts/deps.sh installs it)", bin, f[2], regtest.Version)
			}
			return
		}
	}
}
