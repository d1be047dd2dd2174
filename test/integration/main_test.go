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
	if lkcBinary, err = binary(repo, tmp); err != nil {
		fmt.Println(err)
		return 1
	}
	out, err := exec.Command(filepath.Join(repo, "scripts", "mkrootfs.sh"), tmp).CombinedOutput()
	if err != nil {
		fmt.Printf("making busybox rootfs: %v\n%s", err, out)
		return 1
	}
	rootfs = filepath.Join(tmp, "rootfs")
	return m.Run()
}

// binary returns $LKC_BINARY, or builds lkc into dir the way `make` does
// (static, against musl), so the tests run what users run.
func binary(repo, dir string) (string, error) {
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
