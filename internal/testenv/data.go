package testenv

import (
	"os"
	"path/filepath"
	"testing"
)

// TestDataEnv names the variable that points at the shared test data folder.
const TestDataEnv = "KEYWATCH_TESTDATA"

// Data returns the path of rel inside the shared test data folder: the
// KEYWATCH_TESTDATA folder when set, else shared/data beside the repository
// root (the folder holding go.mod, found by walking up from the working
// folder). When the file or folder is absent the test is skipped with a
// message naming the path it looked for (failed under CI=true).
func Data(t testing.TB, rel string) string {
	t.Helper()
	root, err := dataRoot()
	if err != nil {
		skipOrFail(t, "test data %s: %v", rel, err)
		return ""
	}
	p := filepath.Join(root, filepath.FromSlash(rel))
	if _, err := os.Stat(p); err != nil {
		skipOrFail(t, "test data %s not found (set %s to the shared data folder): %v", p, TestDataEnv, err)
		return ""
	}
	return p
}

// dataRoot finds the shared data folder without checking that it exists.
func dataRoot() (string, error) {
	if dir := os.Getenv(TestDataEnv); dir != "" {
		return filepath.Abs(dir)
	}
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(filepath.Dir(root), "shared", "data"), nil
}

// RepoRoot returns the repository root: the folder holding go.mod, found
// by walking up from the working folder.
func RepoRoot(t testing.TB) string {
	t.Helper()
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func repoRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for dir := wd; ; {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", &os.PathError{Op: "find repository root (go.mod) above", Path: wd, Err: os.ErrNotExist}
		}
		dir = parent
	}
}
