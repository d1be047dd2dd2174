// Package testutil holds what lkc's tests share: skipping with the reason
// when a test's needs (root, a binary, a kernel feature) are missing,
// removing a test's cgroups and finding those a suite left at the
// hierarchy roots, and Fill, which sets every field of a value for the
// round-trip tests of the encoders.
package testutil

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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

// RemoveCgroupTree removes the cgroup root and every cgroup beneath it,
// deepest first, after a test; a cgroup that still has processes is
// reported as a leak and left.
func RemoveCgroupTree(t testing.TB, root string) {
	t.Helper()
	var dirs []string
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	for i := len(dirs) - 1; i >= 0; i-- {
		if procs, _ := os.ReadFile(filepath.Join(dirs[i], "cgroup.procs")); len(strings.TrimSpace(string(procs))) > 0 {
			t.Errorf("leak: cgroup %s still has processes %q", dirs[i], procs)
			continue
		}
		if err := os.Remove(dirs[i]); err != nil && !os.IsNotExist(err) {
			t.Errorf("removing cgroup %s: %v", dirs[i], err)
		}
	}
}
