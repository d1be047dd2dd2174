package cgroups

import (
	"os"
	"path/filepath"
	"testing"
)

func TestFlat(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	os.WriteFile(filepath.Join(a, "tasks"), nil, 0o644)
	paths := map[string]string{"pids": a, "memory": b}
	if !Flat(paths) {
		t.Errorf("cgroups without children: Flat = false")
	}
	if err := os.Mkdir(filepath.Join(b, "child"), 0o755); err != nil {
		t.Fatal(err)
	}
	if Flat(paths) {
		t.Errorf("a cgroup with a child: Flat = true")
	}
	if Flat(map[string]string{"pids": filepath.Join(a, "missing")}) {
		t.Errorf("a cgroup that cannot be read: Flat = true")
	}
}
