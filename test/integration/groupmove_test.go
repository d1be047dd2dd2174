package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestGroupMoveAllOrNothing makes a later v1 hierarchy refuse a move for
// real: the group's cpuset has no CPUs, and the kernel refuses a task to
// a v1 cpuset without CPUs (ENOSPC), after the hierarchies before it
// (blkio, cpu, cpuacct) took the process. `lkc group move` must fail in
// one line and leave every process where it was in every hierarchy, for
// one pid and for two.
func TestGroupMoveAllOrNothing(t *testing.T) {
	g := newGroupEnv(t)
	cpuset := cpulessGroup(t, g.env, g.parent)
	p1, p2 := sleeper(t).Process.Pid, sleeper(t).Process.Pid
	before := map[int]map[string]string{p1: cgroupLines(t, p1), p2: cgroupLines(t, p2)}
	check := func(after string) {
		t.Helper()
		for pid, was := range before {
			if now := cgroupLines(t, pid); fmt.Sprint(now) != fmt.Sprint(was) {
				t.Fatalf("after %s, pid %d is in %v, was in %v", after, pid, now, was)
			}
		}
	}
	refused := `: writing ` + regexp.QuoteMeta(cpuset) + `/.*/cpuless/cgroup.procs: no space left on device \(nothing moved\)$`
	// The old code wrote the hierarchies in map order: five tries make a
	// half move almost sure there.
	for i := 0; i < 5; i++ {
		g.failLkc(`^lkc: group: moving pid `+strconv.Itoa(p1)+` into group cpuless`+refused, "group", "move", "cpuless", strconv.Itoa(p1))
		check("a refused move")
	}
	g.failLkc(`^lkc: group: moving pid `+strconv.Itoa(p1)+` into group cpuless`+refused,
		"group", "move", "cpuless", strconv.Itoa(p1), strconv.Itoa(p2))
	check("a refused move of two pids")
	g.mustLkc("group", "delete", "cpuless")
	g.assertNone("a refused move")
}

// v1CpusetMount is where the v1 cpuset hierarchy is mounted; it skips
// the test when there is none, or no other hierarchy to write before it.
func v1CpusetMount(t *testing.T) string {
	t.Helper()
	hs, err := ownHierarchies()
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hs {
		if strings.Contains(h.name, "cpuset") && len(hs) > 1 {
			return h.mnt
		}
	}
	t.Skipf("needs a v1 cpuset hierarchy and another (have %v)", hs)
	return ""
}

// cpulessGroup creates group cpuless (groups.parent parent) whose v1
// cpuset has no CPUs: the kernel refuses a process there (ENOSPC), after
// the hierarchies written before cpuset took it. It returns the cpuset
// hierarchy's mount point, and skips the test on v2 or without one.
func cpulessGroup(t *testing.T, e *env, parent string) string {
	t.Helper()
	if cgroupV2() {
		t.Skip("cgroup v2: one hierarchy, so no move is half made")
	}
	cpuset := v1CpusetMount(t)
	e.mustLkc("group", "create", "cpuless")
	t.Cleanup(func() { e.lkc("group", "delete", "--force", "cpuless") })
	cpus := filepath.Join(cpuset, parent, "cpuless", "cpuset.cpus")
	if err := os.WriteFile(cpus, []byte("\n"), 0); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(cpus); strings.TrimSpace(string(data)) != "" {
		t.Fatalf("%s is %q after emptying it", cpus, data)
	}
	return cpuset
}

// TestGroupMoveUndoExitedLeader refuses the move of a process whose
// leader thread has exited while another runs on: the zombie leader's
// /proc/<pid>/cgroup shows the root cgroups, and undoing the hierarchies
// written before cpuset's refusal must send the process back where its
// live thread was, not there.
func TestGroupMoveUndoExitedLeader(t *testing.T) {
	py := python3(t)
	r := newRulesEnv(t, "")
	cpulessGroup(t, r.env, r.parent)
	pid, thread := exitedLeader(t, r, py, "")
	before, _ := os.ReadFile(thread)
	r.failLkc(`^lkc: group: moving pid `+strconv.Itoa(pid)+` into group cpuless: writing .*/cpuless/cgroup.procs: no space left on device \(nothing moved\)$`,
		"group", "move", "cpuless", strconv.Itoa(pid))
	if after, _ := os.ReadFile(thread); string(after) != string(before) {
		t.Errorf("after a refused move, the live thread is in\n%s\nwas in\n%s", after, before)
	}
}

// python3 is python3's path; a test without it is skipped.
func python3(t *testing.T) string {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("needs python3 (a leader thread that exits before its process)")
	}
	return py
}

// exitedLeader starts python3 py in r's scope: its leader thread runs
// code first, then exits while another thread sleeps on. It returns the
// pid and the live thread's cgroup file, once the leader is a zombie.
func exitedLeader(t *testing.T, r *rulesEnv, py, code string) (int, string) {
	p := r.inScope(py, "-c", "import ctypes, threading, time\n"+code+
		"threading.Thread(target=time.sleep, args=(600,)).start()\nctypes.CDLL(None).pthread_exit(None)\n")
	pid := p.Process.Pid
	for end := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		stat, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
		if strings.Contains(string(stat), ") Z ") && len(tasks) == 2 {
			return pid, fmt.Sprintf("/proc/%d/task/%s/cgroup", pid, tasks[1].Name())
		}
		if time.Now().After(end) {
			t.Fatalf("pid %d: no exited leader with a live thread (stat %q, %d tasks)", pid, stat, len(tasks))
		}
	}
}

// TestGroupMoveAllOrNothingTwoPids refuses the second of two processes
// only: with RT group scheduling a SCHED_FIFO task may not join a cpu
// cgroup without RT runtime (a new group has 0: EINVAL), while a plain
// one may. The first, moved whole, must go back too.
func TestGroupMoveAllOrNothingTwoPids(t *testing.T) {
	if cgroupV2() {
		t.Skip("cgroup v2: one hierarchy, so no move is half made")
	}
	g := newGroupEnv(t)
	g.mustLkc("group", "create", "nort")
	t.Cleanup(func() { g.lkc("group", "delete", "--force", "nort") })
	var cpu string
	hs, _ := ownHierarchies()
	for _, h := range hs {
		if _, err := os.Stat(filepath.Join(h.mnt, g.parent, "nort", "cpu.rt_runtime_us")); err == nil {
			cpu = h.mnt
		}
	}
	if cpu == "" {
		t.Skip("no RT group scheduling (cpu.rt_runtime_us) on this host")
	}
	plain := sleeper(t).Process.Pid
	rt := exec.Command("chrt", "-f", "1", "sleep", "600")
	if err := rt.Start(); err != nil {
		t.Skipf("chrt: %v", err)
	}
	t.Cleanup(func() { rt.Process.Kill(); rt.Wait() })
	// chrt sets the policy, then execs sleep.
	for end := time.Now().Add(settle); ; time.Sleep(10 * time.Millisecond) {
		if comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", rt.Process.Pid)); string(comm) == "sleep\n" {
			break
		}
		if time.Now().After(end) {
			t.Fatal("chrt never ran sleep")
		}
	}
	before := map[int]map[string]string{plain: cgroupLines(t, plain), rt.Process.Pid: cgroupLines(t, rt.Process.Pid)}
	for i := 0; i < 3; i++ {
		g.failLkc(`^lkc: group: moving pid `+strconv.Itoa(rt.Process.Pid)+` into group nort: writing `+regexp.QuoteMeta(cpu)+
			`/.*/nort/cgroup.procs: invalid argument \(nothing moved\)$`,
			"group", "move", "nort", strconv.Itoa(plain), strconv.Itoa(rt.Process.Pid))
		for pid, was := range before {
			if now := cgroupLines(t, pid); fmt.Sprint(now) != fmt.Sprint(was) {
				t.Fatalf("after a refused move, pid %d is in %v, was in %v", pid, now, was)
			}
		}
	}
	g.mustLkc("group", "delete", "nort")
	g.assertNone("a refused move")
}

// TestGroupMoveKilledIsFinished kills `lkc group move` (SIGKILL, through
// the LKC_TEST_GROUP_MOVE_DIE hook) right after its first cgroup.procs
// write: on v1 the process is then in the group in one hierarchy and not
// in the others. The next command touching the groups (here `lkc group
// list`, which only reads) must finish the move from the record written
// before it: the process in the group in every hierarchy.
func TestGroupMoveKilledIsFinished(t *testing.T) {
	g := newGroupEnv(t)
	pid := g.killedMove(t, "half")
	g.mustLkc("group", "list")
	if in, total := g.hierarchiesIn(t, pid, "half"); in != total {
		t.Fatalf("after group list, pid %d is in group half in %d of %d hierarchies: %v", pid, in, total, cgroupLines(t, pid))
	}
	g.mustLkc("group", "delete", "--force", "half")
	g.assertNone("a finished move")
}

// TestGroupMoveKilledIsUndone: when the killed move cannot be finished
// (the group's v1 cpuset lost its CPUs meanwhile, so the kernel refuses
// the process there), the next command puts the process back where it
// was in every hierarchy, as a refused move leaves it.
func TestGroupMoveKilledIsUndone(t *testing.T) {
	g := newGroupEnv(t)
	before := cgroupLines(t, os.Getpid())
	pid := g.killedMove(t, "half")
	cpus := ""
	for _, dir := range g.dirs("half") {
		if _, err := os.Stat(filepath.Join(dir, "cpuset.cpus")); err == nil {
			cpus = filepath.Join(dir, "cpuset.cpus")
		}
	}
	if cpus == "" {
		t.Skip("needs a v1 cpuset hierarchy")
	}
	if err := os.WriteFile(cpus, []byte("\n"), 0); err != nil {
		t.Fatal(err)
	}
	g.mustLkc("group", "stats", "half")
	if now := cgroupLines(t, pid); fmt.Sprint(now) != fmt.Sprint(before) {
		t.Fatalf("after group stats, pid %d is in %v, was in %v", pid, now, before)
	}
	g.mustLkc("group", "delete", "half")
	g.assertNone("an undone move")
}

// killedMove creates group name, starts a sleeper and moves it there
// with an lkc killed after the first hierarchy; it returns the
// sleeper's pid, in the group in some hierarchies only.
func (g *groupEnv) killedMove(t *testing.T, name string) int {
	t.Helper()
	if cgroupV2() {
		t.Skip("cgroup v2: one hierarchy, so no move is half made")
	}
	g.mustLkc("group", "create", name)
	t.Cleanup(func() { g.lkc("group", "delete", "--force", name) })
	pid := sleeper(t).Process.Pid
	marker := filepath.Join(t.TempDir(), "die")
	if err := os.WriteFile(marker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(g.bin, "--root", g.root, "group", "move", name, strconv.Itoa(pid))
	cmd.Env = append(os.Environ(), "LKC_TEST_GROUP_MOVE_DIE="+marker)
	out, err := cmd.CombinedOutput()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("lkc group move was not killed mid-move: %v: %s", err, out)
	}
	if in, total := g.hierarchiesIn(t, pid, name); in == 0 || in == total {
		t.Fatalf("after the killed move, pid %d is in group %s in %d of %d hierarchies: the check would prove nothing", pid, name, in, total)
	}
	return pid
}

// hierarchiesIn counts the hierarchies where pid sits in group name's
// cgroup, of all of them.
func (g *groupEnv) hierarchiesIn(t *testing.T, pid int, name string) (in, total int) {
	t.Helper()
	for _, c := range cgroupLines(t, pid) {
		total++
		if c == filepath.Join(g.parent, name) {
			in++
		}
	}
	return in, total
}
