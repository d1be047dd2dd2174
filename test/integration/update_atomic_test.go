package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestUpdateAllOrNothing: an update changes every limit it names or none.
// What can be checked is refused before anything is written (a value the
// kernel refuses, a file the host lacks); when the kernel refuses a write
// midway, the writes before it are undone. Each failure is one line naming
// the resource, and the container's limits, live and recorded, stay.
func TestUpdateAllOrNothing(t *testing.T) {
	e := newEnv(t)
	id := e.limited(specs.LinuxResources{Memory: memoryOnly(64 << 20), Pids: &specs.LinuxPids{Limit: 50}})
	unchanged := func(after string) {
		t.Helper()
		s := e.stats(id)
		if got := num(t, s, "memory.usage.limit"); got != 64<<20 {
			t.Errorf("after %s: memory limit %v, want the old %d", after, got, 64<<20)
		}
		if got := num(t, s, "pids.limit"); got != 50 {
			t.Errorf("after %s: pids limit %v, want the old 50", after, got)
		}
		if rec := e.recorded(id); rec["memoryLimit"] != float64(64<<20) || rec["pidsLimit"] != float64(50) {
			t.Errorf("after %s: recorded %v, want memoryLimit %d and pidsLimit 50", after, rec, 64<<20)
		}
	}
	// Memory (and on v1 pids) are written before the throttle of a device
	// that does not exist, which the kernel refuses (ENODEV); v2 names
	// the throttle blockIO.throttle, its one io.max line per device.
	file := filepath.Join(t.TempDir(), "r.json")
	res := `{"memory":{"limit":134217728},"pids":{"limit":60},
	"blockIO":{"throttleReadBpsDevice":[{"major":4000,"minor":4000,"rate":1048576}]}}`
	if err := os.WriteFile(file, []byte(res), 0o644); err != nil {
		t.Fatal(err)
	}
	e.failLkc(`^lkc: update: updating container \S+: linux.resources.blockIO.throttle\S*: .* \(earlier changes undone\)$`,
		"update", "--resources", file, id)
	unchanged("a throttle the kernel refused")

	// A CFS period outside the kernel's range is refused before memory,
	// the first write, is made.
	e.failLkc(`^lkc: update: updating container \S+: linux.resources.cpu.period: 500 µs is outside`,
		"update", "--memory", "128m", "--cpu-period", "500", id)
	unchanged("a period out of range")

	// A file the host lacks is found before anything is written: blkio
	// weights exist only with the CFQ or BFQ I/O scheduler.
	if !hasWeightFile(id) {
		if err := os.WriteFile(file, []byte(`{"memory":{"limit":134217728},"blockIO":{"weight":500}}`), 0o644); err != nil {
			t.Fatal(err)
		}
		e.failLkc(`linux.resources.blockIO.weight: not supported by this host's cgroups \(the kernel has no`,
			"update", "--resources", file, id)
		unchanged("a weight the host has no file for")
	}

	e.mustLkc("update", "--memory", "128m", "--pids-limit", "60", id)
	s := e.stats(id)
	if got, pids := num(t, s, "memory.usage.limit"), num(t, s, "pids.limit"); got != 128<<20 || pids != 60 {
		t.Errorf("after a good update: memory limit %v, pids %v; want %d and 60", got, pids, 128<<20)
	}
}

// hasWeightFile reports whether container id's cgroup has an I/O weight
// file, which an update of blockIO.weight writes.
func hasWeightFile(id string) bool {
	for _, dir := range cgroupDirs(id) {
		for _, f := range []string{"blkio.weight", "blkio.bfq.weight", "io.weight", "io.bfq.weight"} {
			if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
				return true
			}
		}
	}
	return false
}

// TestUpdateMemoryBelowPinnedUsage: on v1 with no swap the kernel refuses
// a memory limit below the memory a container holds that cannot be
// reclaimed, after trying to reclaim it; lkc refuses it at once, naming
// the limit and the usage, and leaves the limit as it was. (v2 takes such
// a limit and OOM-kills; runc and lkc leave that to the kernel.)
func TestUpdateMemoryBelowPinnedUsage(t *testing.T) {
	if cgroupV2() {
		t.Skip("cgroup v2 takes a memory.max below usage (and OOM-kills)")
	}
	if data, _ := os.ReadFile("/proc/swaps"); strings.Count(strings.TrimSpace(string(data)), "\n") > 0 {
		t.Skip("the host swaps: the kernel can reclaim anonymous memory")
	}
	e := newEnv(t)
	id := e.shmHog(24, "sleep 1000", func(s *specs.Spec) {
		s.Linux.Resources = &specs.LinuxResources{Memory: memoryOnly(64 << 20)}
	})
	e.failLkc(`linux.resources.memory.limit: 8388608 is below the \d+ bytes the container holds that cannot be reclaimed without swap`,
		"update", "--memory", "8m", id)
	if got := num(t, e.stats(id), "memory.usage.limit"); got != 64<<20 {
		t.Errorf("memory limit %v after the refused update, want the old %d", got, 64<<20)
	}
}

// TestUpdateFlagsAsRunc: as with runc's update flags, 0 leaves a limit as
// it was (before, --pids-limit 0 left the container unable to fork and
// --memory 0 was refused after a reclaim); --blkio-weight, --cpu-rt-period
// and --cpu-rt-runtime exist, and what they set is written where the host
// has the file, and refused naming the resource where it does not.
func TestUpdateFlagsAsRunc(t *testing.T) {
	e := newEnv(t)
	id := e.limited(specs.LinuxResources{Memory: memoryOnly(64 << 20), Pids: &specs.LinuxPids{Limit: 50}})
	e.mustLkc("update", "--memory", "0", "--pids-limit", "0", "--cpu-quota", "0", "--cpu-period", "0", id)
	s := e.stats(id)
	if mem, pids := num(t, s, "memory.usage.limit"), num(t, s, "pids.limit"); mem != 64<<20 || pids != 50 {
		t.Errorf("after flags of 0: memory limit %v, pids %v; want the old %d and 50", mem, pids, 64<<20)
	}
	if out := e.mustLkc("exec", id, "sh", "-c", "(exit 0) && echo forked"); out != "forked\n" {
		t.Errorf("fork after --pids-limit 0: %q", out)
	}
	flags := []struct{ flag, value, file, key string }{
		{"--blkio-weight", "500", "", "blockIO.weight"},
		{"--cpu-rt-period", "1000000", "cpu.rt_period_us", "cpu.realtime"},
	}
	for _, f := range flags {
		has := f.file != "" && !cgroupV2() && hasFile(id, f.file) || f.file == "" && hasWeightFile(id)
		if has {
			e.mustLkc("update", f.flag, f.value, id)
		} else {
			e.failLkc(`linux.resources.`+f.key, "update", f.flag, f.value, id)
		}
	}
}

// hasFile reports whether one of container id's cgroup directories has
// file.
func hasFile(id, file string) bool {
	for _, dir := range cgroupDirs(id) {
		if _, err := os.Stat(filepath.Join(dir, file)); err == nil {
			return true
		}
	}
	return false
}
