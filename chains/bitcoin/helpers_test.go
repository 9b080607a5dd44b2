package bitcoin_test

import "fmt"

// fmtSscanf reads a "branch/index" path.
func fmtSscanf(path string, branch, index *uint32) (int, error) {
	return fmt.Sscanf(path, "%d/%d", branch, index)
}
