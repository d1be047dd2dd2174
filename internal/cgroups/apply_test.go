package cgroups

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lkc-containers/lkc/internal/config"
)

// fakeV2 is a v2 cgroup in a temporary directory with the given files.
func fakeV2(t *testing.T, files map[string]string) (*v2, string) {
	t.Helper()
	dir := t.TempDir()
	for f, v := range files {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return &v2{root: dir, dir: dir}, dir
}

// TestUpdateUndoesEarlierWrites: when a write fails midway (here pids.max
// is a directory, as a kernel refusal), the files written before it get
// their old contents back, a per-device line included, and the error
// names the resource and says so.
func TestUpdateUndoesEarlierWrites(t *testing.T) {
	m, dir := fakeV2(t, map[string]string{"memory.max": "max", "cpu.max": "max 100000", "io.max": "8:0 rbps=5 wbps=max riops=max wiops=max"})
	if err := os.Mkdir(filepath.Join(dir, "pids.max"), 0o755); err != nil {
		t.Fatal(err)
	}
	r := &config.Resources{MemoryLimit: i64(1 << 20), CPUQuota: i64(50000), PidsLimit: i64(5),
		BlkioThrottleReadBps: []config.ThrottleDevice{{Major: 8, Minor: 0, Rate: 7}}}
	_, err := Update(m, &config.Resources{}, r)
	if err == nil || !strings.Contains(err.Error(), "linux.resources.pids.limit") || !strings.HasSuffix(err.Error(), "(earlier changes undone)") {
		t.Fatalf("Update = %v; want the pids.limit refusal, undone", err)
	}
	checkFiles(t, dir, map[string]string{"memory.max": "max", "cpu.max": "max 100000"})
	// A fake file holds what was written last: the old line.
	checkFiles(t, dir, map[string]string{"io.max": "8:0 rbps=5 wbps=max riops=max wiops=max"})
}

// TestUpdateRefusesBeforeWriting: a file the host lacks and values the
// kernel refuses are found before anything is written.
func TestUpdateRefusesBeforeWriting(t *testing.T) {
	m, dir := fakeV2(t, map[string]string{"memory.max": "max", "cpu.max": "max 100000"})
	for _, r := range []*config.Resources{
		{MemoryLimit: i64(1 << 20), PidsLimit: i64(5)},          // no pids.max
		{MemoryLimit: i64(1 << 20), CPUPeriod: u64(500)},        // period below 1000
		{MemoryLimit: i64(1 << 20), CPUQuota: i64(10)},          // quota below 1000
		{MemoryLimit: i64(1 << 20), CPUs: "0-"},                 // not a list
		{MemoryLimit: i64(1 << 20), MemoryReservation: i64(-5)}, // neither a size nor -1
	} {
		if _, err := Update(m, &config.Resources{}, r); err == nil || errors.Is(err, os.ErrPermission) {
			t.Errorf("Update(%+v) = %v, want a refusal", r, err)
		}
		checkFiles(t, dir, map[string]string{"memory.max": "max"})
	}
}

func TestParseList(t *testing.T) {
	got, err := parseList("0-2,5")
	if err != nil || len(got) != 4 || !got[0] || !got[2] || !got[5] || got[3] {
		t.Errorf("parseList(0-2,5) = %v, %v", got, err)
	}
	for _, bad := range []string{"x", "2-1", "-1", "1,,2"} {
		if _, err := parseList(bad); err == nil {
			t.Errorf("parseList(%q) accepted", bad)
		}
	}
}

// TestCheckValuesBeforeCreate: on v1, a cgroup not made yet, whose
// parents are not made either, has its CPUs checked against the nearest
// ancestor's.
func TestCheckValuesBeforeCreate(t *testing.T) {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "cpuset.cpus"), []byte("0-1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	m := FromPaths(map[string]string{"cpuset": filepath.Join(root, "a", "b")}, nil)
	if err := CheckValues(m, &config.Resources{CPUs: "1"}); err != nil {
		t.Errorf("CheckValues(cpus 1) = %v", err)
	}
	err := CheckValues(m, &config.Resources{CPUs: "7"})
	if want := `linux.resources.cpu.cpus "7": 7 is not among the allowed 0-1`; err == nil || err.Error() != want {
		t.Errorf("CheckValues(cpus 7) = %v, want %s", err, want)
	}
}
