package cr

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/lkc-containers/lkc/internal/config"
)

func TestViewPids(t *testing.T) {
	dir := t.TempDir()
	load, stat := filepath.Join(dir, "loadavg"), filepath.Join(dir, "stat")
	if err := os.WriteFile(load, []byte("0.00 0.01 0.05 1/3 39\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(stat, []byte("cpu  1 2 3\nctxt 0\nprocesses 40\nprocs_running 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := &config.Config{Mounts: []config.Mount{
		{Source: load, Destination: "/proc/loadavg"},
		{Source: stat, Destination: "/proc/stat"},
	}}
	if last, processes, ok := viewPids(cfg); last != 39 || processes != 40 || !ok {
		t.Errorf("viewPids = %d, %d, %v; want 39, 40, true", last, processes, ok)
	}
	if _, _, ok := viewPids(&config.Config{}); ok {
		t.Error("viewPids of a container without a view succeeded")
	}
}
