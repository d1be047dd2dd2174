// Package integration drives the built lkc binary as root against real
// namespaces, cgroups and mounts. Every test checks afterwards that its
// containers left nothing behind.
package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/lkc-containers/lkc/internal/testutil"
)

var (
	lkcBinary string // the binary under test
	rootfs    string // a shared busybox rootfs; tests that write copy it
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if os.Geteuid() != 0 {
		fmt.Println("integration tests need root; skipping")
		return m.Run()
	}
	tmp, err := os.MkdirTemp("", "lkc-it-")
	if err != nil {
		fmt.Println(err)
		return 1
	}
	defer os.RemoveAll(tmp)
	_, here, _, _ := runtime.Caller(0)
	repo := filepath.Join(filepath.Dir(here), "..", "..")
	if lkcBinary, err = testutil.LKCBinary(repo, tmp); err != nil {
		fmt.Println(err)
		return 1
	}
	out, err := exec.Command(filepath.Join(repo, "scripts", "mkrootfs.sh"), tmp).CombinedOutput()
	if err != nil {
		fmt.Printf("making busybox rootfs: %v\n%s", err, out)
		return 1
	}
	rootfs = filepath.Join(tmp, "rootfs")
	roots := testutil.CgroupRoots()
	code := m.Run()
	if leaked := testutil.NewAtCgroupRoots(roots, "it-", "lkc-it-"); len(leaked) > 0 {
		fmt.Printf("leak: cgroups made at hierarchy roots, outside the tests' own cgroup: %v\n", leaked)
		return max(code, 1)
	}
	return code
}
