package main

import (
	"os"
	"path/filepath"
	"testing"
)

func TestSweepDetachedUnifiedRemovesRunLeftovers(t *testing.T) {
	mount := t.TempDir() // a plain directory, as the unmounted mount point is
	mine := filepath.Join(mount, "lkcbench-1-crun-0")
	nested := filepath.Join(mount, "process_api", "x", "lkcbench-1-cri-0", "pods", "c1")
	other := filepath.Join(mount, "lkcbench-2-crun-0")
	for _, d := range []string{mine, nested, other} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "cgroup.procs"), []byte("1"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if notes := sweepDetachedUnified(mount, "lkcbench-1-"); len(notes) > 0 {
		t.Errorf("notes: %v", notes)
	}
	for _, d := range []string{mine, filepath.Dir(filepath.Dir(nested))} {
		if _, err := os.Stat(d); err == nil {
			t.Errorf("%s is left", d)
		}
	}
	if _, err := os.Stat(other); err != nil {
		t.Errorf("another run's %s went: %v", other, err)
	}
}
