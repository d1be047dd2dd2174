// Package testutil holds what lkc's tests share: skipping with the reason
// when a test's needs (root, a binary, a kernel feature) are missing.
package testutil

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// RequiresRoot skips t unless it runs as root.
func RequiresRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: run the suite with scripts/test.sh as root")
	}
}

// RequiresBinary skips t unless name is on PATH, and returns its path.
func RequiresBinary(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("needs %s on PATH: run scripts/deps.sh", name)
	}
	return p
}

// LKCBinary returns $LKC_BINARY, or builds lkc into dir the way `make`
// does (static, against musl) from the checkout at repo, so that tests run
// what users run.
func LKCBinary(repo, dir string) (string, error) {
	if p := os.Getenv("LKC_BINARY"); p != "" {
		return filepath.Abs(p)
	}
	p := filepath.Join(dir, "lkc")
	cmd := exec.Command("make", "-C", repo, "lkc", "BIN="+p)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building lkc: %v\n%s", err, out)
	}
	return p, nil
}
