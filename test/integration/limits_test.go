package integration

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/lkc-containers/lkc/internal/effective"
)

// limitsOf runs `lkc limits --json pid`.
func (e *env) limitsOf(pid int) *effective.Process {
	e.t.Helper()
	var p effective.Process
	out := e.mustLkc("limits", "--json", strconv.Itoa(pid))
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		e.t.Fatalf("lkc limits --json: %v\n%s", err, out)
	}
	if p.Limits == nil {
		e.t.Fatalf("lkc limits --json: no limits\n%s", out)
	}
	return &p
}

// TestLimitsContainer: a container run with 64 MiB, half a CPU (quota)
// and 50 pids: `lkc limits` of its init reports those, set by its own
// cgroup, in the table and in JSON.
func TestLimitsContainer(t *testing.T) {
	e := newEnv(t)
	mem, quota, period, pids := int64(64<<20), int64(50000), uint64(100000), int64(50)
	b := e.bundle([]string{"sleep", "100"}, func(s *specs.Spec) {
		s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: &mem}
		s.Linux.Resources.CPU = &specs.LinuxCPU{Quota: &quota, Period: &period}
		s.Linux.Resources.Pids = &specs.LinuxPids{Limit: pids}
	})
	id := e.id()
	e.mustLkc("run", "-d", "--bundle", b, id)
	pid := initPid(e, id)
	p := e.limitsOf(pid)
	l := p.Limits
	if l.Memory == nil || !l.Memory.Set || l.Memory.Value != 64<<20 || !strings.HasSuffix(l.Memory.At, "/"+id) {
		t.Errorf("memory = %+v; want 64 MiB set by the container's cgroup", l.Memory)
	}
	if l.CPUs == nil || !l.CPUs.Set || l.CPUs.Value != 0.5 || !strings.HasSuffix(l.CPUs.At, "/"+id) || p.CPUs != 0.5 {
		t.Errorf("cpus = %+v, usable %v; want 0.5 set by the container's cgroup", l.CPUs, p.CPUs)
	}
	if l.Pids == nil || !l.Pids.Set || l.Pids.Value != 50 || !strings.HasSuffix(l.Pids.At, "/"+id) {
		t.Errorf("pids = %+v; want 50 set by the container's cgroup", l.Pids)
	}
	if len(p.Rlimits) == 0 || len(p.Affinity) == 0 {
		t.Errorf("rlimits %v, affinity %v; want both", p.Rlimits, p.Affinity)
	}
	table := e.mustLkc("limits", strconv.Itoa(pid))
	for _, want := range []string{`(?m)^memory\s+64 MiB\s+/\S+/` + id + `$`, `(?m)^cpu quota\s+0\.5 CPUs\s`,
		`(?m)^pids\s+50\s`, `(?m)^Max open files\s+\d+\s+\d+\s+files$`} {
		if !regexp.MustCompile(want).MatchString(table) {
			t.Errorf("lkc limits %d lacks %q:\n%s", pid, want, table)
		}
	}
}

// TestLimitsParentLevel: a host process in a test cgroup whose parent
// holds tighter limits than the cgroup itself: `lkc limits` reports the
// parent's values and names the parent as where they are set.
func TestLimitsParentLevel(t *testing.T) {
	e := newEnv(t)
	parent := e.keptCgroupParent("limits")
	hs, err := ownHierarchies()
	if err != nil {
		t.Fatal(err)
	}
	parentFiles := map[string]string{"memory.limit_in_bytes": "33554432", "pids.max": "20", "cpu.cfs_quota_us": "25000"}
	// v1 refuses a child quota above its parent's: the child has none.
	childFiles := map[string]string{"memory.limit_in_bytes": "134217728", "pids.max": "100", "cpu.cfs_quota_us": "-1"}
	if cgroupV2() {
		sub, _ := os.ReadFile(filepath.Join("/sys/fs/cgroup", filepath.Dir(parent), "cgroup.subtree_control"))
		for _, ctrl := range []string{"memory", "pids", "cpu"} {
			if !strings.Contains(" "+strings.TrimSpace(string(sub))+" ", " "+ctrl+" ") {
				t.Skipf("the %s controller is not delegated to %s", ctrl, filepath.Dir(parent))
			}
		}
		parentFiles = map[string]string{"cgroup.subtree_control": "+memory +pids +cpu", "memory.max": "33554432", "pids.max": "20", "cpu.max": "25000 100000"}
		childFiles = map[string]string{"memory.max": "134217728", "pids.max": "100", "cpu.max": "200000 100000"}
	}
	sleep := exec.Command("sleep", "100")
	if err := sleep.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sleep.Process.Kill(); sleep.Wait() })
	for _, h := range hs {
		if !cgroupV2() && !slices.ContainsFunc(strings.Split(h.name, ","), func(c string) bool {
			return c == "memory" || c == "pids" || c == "cpu"
		}) {
			continue
		}
		dir := filepath.Join(h.mnt, parent)
		if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
			t.Fatal(err)
		}
		makeCgroup(t, dir, parentFiles)
		makeCgroup(t, filepath.Join(dir, "c"), childFiles)
		procs := filepath.Join(dir, "c", "cgroup.procs")
		if err := os.WriteFile(procs, []byte(strconv.Itoa(sleep.Process.Pid)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	p := e.limitsOf(sleep.Process.Pid)
	l := p.Limits
	atParent := func(at string) bool { return strings.HasSuffix(at, parent) }
	if l.Memory == nil || l.Memory.Value != 32<<20 || !atParent(l.Memory.At) || len(l.Memory.Levels) < 2 {
		t.Errorf("memory = %+v; want 32 MiB set by the parent %s", l.Memory, parent)
	}
	if l.Pids == nil || l.Pids.Value != 20 || !atParent(l.Pids.At) {
		t.Errorf("pids = %+v; want 20 set by the parent", l.Pids)
	}
	if l.CPUs == nil || l.CPUs.Value != 0.25 || !atParent(l.CPUs.At) || p.CPUs != 0.25 {
		t.Errorf("cpus = %+v (usable %v); want 0.25 set by the parent", l.CPUs, p.CPUs)
	}
	table := e.mustLkc("limits", strconv.Itoa(sleep.Process.Pid))
	if !regexp.MustCompile(`(?m)^memory\s+32 MiB\s+/sys/fs/cgroup\S*` + regexp.QuoteMeta(parent) + `$`).MatchString(table) {
		t.Errorf("the table does not name the parent for memory:\n%s", table)
	}
}

// makeCgroup creates dir and writes files into it, skipping the test where
// a file cannot be written because a controller is not delegated here.
func makeCgroup(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	keys := []string{"cgroup.subtree_control"}
	for k := range files {
		if k != "cgroup.subtree_control" {
			keys = append(keys, k)
		}
	}
	for _, k := range keys {
		v, ok := files[k]
		if !ok {
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, k)); err != nil {
			continue
		}
		if err := os.WriteFile(filepath.Join(dir, k), []byte(v), 0o644); err != nil {
			t.Fatalf("%s/%s: %v", dir, k, err)
		}
	}
}

// TestLimitsBadPid: a process that does not exist, or a PID that is not
// one, is a one-line error and a non-zero exit.
func TestLimitsBadPid(t *testing.T) {
	e := newEnv(t)
	e.failLkc(`^lkc: limits: process 999999999: no such process$`, "limits", "999999999")
	e.failLkc(`^lkc: limits: PID "abc": want a positive number$`, "limits", "abc")
	e.failLkc(`^lkc: limits: PID "0": want a positive number$`, "limits", "0")
	e.failLkc(`too many arguments|usage`, "limits", "1", "2")
}

// TestLimitsInsideContainer: `lkc limits` run inside a container (the
// binary bind-mounted in) reports the container's limits from what the
// container sees of /proc and /sys/fs/cgroup.
func TestLimitsInsideContainer(t *testing.T) {
	e := newEnv(t)
	mem, pids := int64(64<<20), int64(50)
	r := e.run([]string{"/lkc", "limits", "--json"}, func(s *specs.Spec) {
		s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: &mem}
		s.Linux.Resources.Pids = &specs.LinuxPids{Limit: pids}
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/lkc", Type: "bind", Source: e.bin, Options: []string{"bind", "ro"}})
	})
	if r.code != 0 {
		t.Fatalf("lkc limits inside: %v", r)
	}
	var p effective.Process
	if err := json.Unmarshal([]byte(r.stdout), &p); err != nil || p.Limits == nil {
		t.Fatalf("lkc limits --json inside: %v\n%s", err, r.stdout)
	}
	if l := p.Limits.Memory; l == nil || !l.Set || l.Value != 64<<20 {
		t.Errorf("memory inside = %+v; want 64 MiB", l)
	}
	if l := p.Limits.Pids; l == nil || !l.Set || l.Value != 50 {
		t.Errorf("pids inside = %+v; want 50", l)
	}
}
