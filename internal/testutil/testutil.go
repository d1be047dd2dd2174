// Package testutil holds what lkc's tests share: skipping with the reason
// when a test's needs (root, a binary, a kernel feature) are missing.
package testutil

import (
	"os"
	"os/exec"
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
