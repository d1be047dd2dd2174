package integration

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// schedOf reads the policy, realtime priority and nice value of pid as
// the host sees them (/proc/<pid>/stat fields 41, 40 and 19).
func schedOf(t *testing.T, pid int) (policy, rtprio, nice int) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(data)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:]) // f[0] is field 3
	num := func(field int) int {
		n, err := strconv.Atoi(f[field-3])
		if err != nil {
			t.Fatalf("/proc/%d/stat field %d: %v", pid, field, err)
		}
		return n
	}
	return num(41), num(40), num(19)
}

// ioprioOf is ioprio_get(IOPRIO_WHO_PROCESS, pid) from the host.
func ioprioOf(t *testing.T, pid int) int {
	t.Helper()
	r, _, errno := unix.Syscall(unix.SYS_IOPRIO_GET, 1, uintptr(pid), 0)
	if errno != 0 {
		t.Fatalf("ioprio_get(%d): %v", pid, errno)
	}
	return int(r)
}

const (
	schedOther, schedFIFO, schedBatch, schedIdle = 0, 1, 3, 5
	ioprioBE3                                    = 2<<13 | 3
	ioprioIdle                                   = 3 << 13
)

// checkSched fails the test unless pid runs with policy, rtprio, nice and
// ioprio (-1: any; a process whose I/O priority was never set reads as
// one the kernel derives from its policy and nice value).
func checkSched(t *testing.T, what string, pid, policy, rtprio, nice, ioprio int) {
	t.Helper()
	p, r, n := schedOf(t, pid)
	if p != policy || r != rtprio || n != nice {
		t.Errorf("%s (pid %d): policy %d rt_priority %d nice %d, want %d %d %d", what, pid, p, r, n, policy, rtprio, nice)
	}
	if io := ioprioOf(t, pid); ioprio >= 0 && io != ioprio {
		t.Errorf("%s (pid %d): ioprio %#x, want %#x", what, pid, io, ioprio)
	}
}

// execDetached execs args (or the process of a process.json, when proc is
// not empty) into id in the background and returns its pid.
func (e *env) execDetached(id, proc string, args ...string) int {
	e.t.Helper()
	pidFile := filepath.Join(e.t.TempDir(), "pid")
	cmd := []string{"exec", "--detach", "--pid-file", pidFile}
	if proc != "" {
		file := filepath.Join(e.t.TempDir(), "process.json")
		if err := os.WriteFile(file, []byte(proc), 0o644); err != nil {
			e.t.Fatal(err)
		}
		cmd = append(cmd, "--process", file)
	}
	e.mustLkc(append(append(cmd, id), args...)...)
	data, err := os.ReadFile(pidFile)
	if err != nil {
		e.t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		e.t.Fatal(err)
	}
	return pid
}

func batchNice5(s *specs.Spec) {
	s.Process.Scheduler = &specs.Scheduler{Policy: specs.SchedBatch, Nice: 5}
	s.Process.IOPriority = &specs.LinuxIOPriority{Class: specs.IOPRIO_CLASS_BE, Priority: 3}
}

// TestProcessSchedulerIOPriority checks process.scheduler and ioPriority
// on the container's init and on exec'd processes, from the host: a plain
// exec gets the container's (as runc's, which starts from config.json's
// process), a process.json its own or, without them, the container's.
func TestProcessSchedulerIOPriority(t *testing.T) {
	e := newEnv(t)
	id, init := e.runningPid(batchNice5)
	checkSched(t, "init", init, schedBatch, 0, 5, ioprioBE3)
	checkSched(t, "plain exec", e.execDetached(id, "", "sleep", "1000"), schedBatch, 0, 5, ioprioBE3)
	own := `{"args":["sleep","1000"],"cwd":"/","scheduler":{"policy":"SCHED_IDLE"},"ioPriority":{"class":"IOPRIO_CLASS_IDLE","priority":0}}`
	checkSched(t, "exec -p with its own", e.execDetached(id, own), schedIdle, 0, 0, ioprioIdle)
	inherits := `{"args":["sleep","1000"],"cwd":"/"}`
	checkSched(t, "exec -p without", e.execDetached(id, inherits), schedBatch, 0, 5, ioprioBE3)
	// An oom score sends the process through Go's init, whose threads the
	// scheduler must not be lost between.
	goInit := `{"args":["sleep","1000"],"cwd":"/","oomScoreAdj":500,"scheduler":{"policy":"SCHED_OTHER","nice":7}}`
	checkSched(t, "exec -p through Go's init", e.execDetached(id, goInit), schedOther, 0, 7, ioprioBE3)

	// Without a scheduler, nothing changes: the policy lkc itself runs with.
	_, plain := e.runningPid(nil)
	self, _, nice := schedOf(t, os.Getpid())
	checkSched(t, "init without scheduler", plain, self, 0, nice, -1)
}

// rtCgroupParent makes a relative cgroup parent (beneath this process's
// own cgroup in each hierarchy) whose cpu hierarchy grants realtime
// runtime down to it, for SCHED_FIFO (v1 RT group scheduling gives a new
// cgroup none). It returns "" and why when the host has no RT group
// scheduling or an ancestor it did not make has no runtime to give.
func (e *env) rtCgroupParent(runtime int) (string, string) {
	e.t.Helper()
	hs, _ := ownHierarchies()
	p := e.addCgroupParent("rt", true)
	p.kept = true
	for _, h := range hs {
		if _, err := os.Stat(filepath.Join(h.mnt, "cpu.rt_runtime_us")); err != nil {
			continue
		}
		dir := p.in(h)
		var made []string
		for d := dir; d != h.mnt; d = filepath.Dir(d) {
			if _, err := os.Stat(d); err == nil {
				data, _ := os.ReadFile(filepath.Join(d, "cpu.rt_runtime_us"))
				if n, _ := strconv.Atoi(strings.TrimSpace(string(data))); n < runtime {
					return "", d + " has " + strings.TrimSpace(string(data)) + " us of realtime runtime"
				}
				break
			}
			made = append([]string{d}, made...)
		}
		for _, d := range made {
			if err := os.Mkdir(d, 0o755); err != nil {
				e.t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(d, "cpu.rt_runtime_us"), []byte(strconv.Itoa(runtime)), 0); err != nil {
				return "", "giving " + d + " realtime runtime: " + err.Error()
			}
		}
		return p.path, ""
	}
	return "", "no RT group scheduling (cpu.rt_runtime_us) on this host"
}

// TestProcessSchedulerFIFO runs a SCHED_FIFO container. Where RT group
// scheduling gives a new cpu cgroup no realtime runtime (v1 here), the
// kernel refuses the policy and create says so; the test then gives the
// container's cgroup runtime, where the host lets it.
func TestProcessSchedulerFIFO(t *testing.T) {
	e := newEnv(t)
	fifo := func(s *specs.Spec) {
		s.Process.Scheduler = &specs.Scheduler{Policy: specs.SchedFIFO, Priority: 10}
	}
	id := e.id()
	args := []string{"run", "-d", "--bundle", e.bundle([]string{"sleep", "1000"}, fifo), id}
	r := e.lkc(args...)
	if r.code == 0 {
		checkSched(t, "FIFO init", initPid(e, id), schedFIFO, 10, 0, -1)
		return
	}
	e.checkOneLineFailure(r, `^lkc: run: .*process.scheduler: sched_setattr SCHED_FIFO: operation not permitted \(no realtime runtime`, args)
	e.assertIDGone(id)
	const runtime = 10000
	parent, why := e.rtCgroupParent(runtime)
	if parent == "" {
		t.Skip("SCHED_FIFO needs realtime runtime: " + why)
	}
	id = e.id()
	rt := int64(runtime)
	b := e.bundle([]string{"sleep", "1000"}, func(s *specs.Spec) {
		fifo(s)
		s.Linux.CgroupsPath = filepath.Join(parent, id)
		s.Linux.Resources.CPU = &specs.LinuxCPU{RealtimeRuntime: &rt}
	})
	e.mustLkc("run", "-d", "--bundle", b, id)
	checkSched(t, "FIFO init", initPid(e, id), schedFIFO, 10, 0, -1)
	checkSched(t, "FIFO plain exec", e.execDetached(id, "", "sleep", "1000"), schedFIFO, 10, 0, -1)
	e.mustLkc("delete", "--force", id)
}

// cpusOf is the Cpus_allowed_list of pid.
func cpusOf(t *testing.T, pid int) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		t.Fatal(err)
	}
	return statusFields(string(data), "Cpus_allowed_list")["Cpus_allowed_list"]
}

// TestExecCPUAffinity checks execCPUAffinity on exec'd processes: final is
// where the process runs; initial alone leaves it every CPU of its cgroup
// once it is in it (as runc, since the kernel would keep it on initial);
// config.json's is a plain exec's; the container's init ignores it.
// Initial itself holds only until the process is in its cgroup, which
// lkc's `lkc init` enters first thing, so it is not seen here.
func TestExecCPUAffinity(t *testing.T) {
	online, _ := os.ReadFile("/sys/devices/system/cpu/online")
	if ids := strings.TrimSpace(string(online)); !strings.HasPrefix(ids, "0-") && !strings.HasPrefix(ids, "0,1") {
		t.Skipf("needs CPUs 0 and 1 online, has %s", ids)
	}
	e := newEnv(t)
	id, init := e.runningPid(func(s *specs.Spec) {
		s.Process.ExecCPUAffinity = &specs.CPUAffinity{Final: "1"}
	})
	all := cpusOf(t, init)
	if all == "1" {
		t.Fatalf("init took execCPUAffinity.final: Cpus_allowed_list %s", all)
	}
	proc := func(aff string) string {
		return `{"args":["sleep","1000"],"cwd":"/","execCPUAffinity":` + aff + `}`
	}
	for _, c := range []struct{ name, proc, want string }{
		{"final", proc(`{"final":"0"}`), "0"},
		{"initial and final", proc(`{"initial":"1","final":"0"}`), "0"},
		{"initial only", proc(`{"initial":"1"}`), all},
		{"none in process.json", `{"args":["sleep","1000"],"cwd":"/"}`, "1"},
		{"through Go's init", `{"args":["sleep","1000"],"cwd":"/","oomScoreAdj":500,"execCPUAffinity":{"initial":"1","final":"0"}}`, "0"},
	} {
		if got := cpusOf(t, e.execDetached(id, c.proc)); got != c.want {
			t.Errorf("exec -p, %s: Cpus_allowed_list %s, want %s", c.name, got, c.want)
		}
	}
	if got := cpusOf(t, e.execDetached(id, "", "sleep", "1000")); got != "1" {
		t.Errorf("plain exec with config.json's final 1: Cpus_allowed_list %s", got)
	}
	if got := cpusOf(t, os.Getpid()); got != all {
		t.Errorf("the test's own CPUs changed to %s", got)
	}
}

// TestBadProcessSched refuses bad scheduler, I/O priority and CPU lists
// at create and at exec, in one line, leaving nothing behind.
func TestBadProcessSched(t *testing.T) {
	e := newEnv(t)
	cases := []struct {
		name, json string
		mutate     func(*specs.Process)
		want       string
	}{
		{"UnknownPolicy", `"scheduler":{"policy":"SCHED_FAST"}`,
			func(p *specs.Process) { p.Scheduler = &specs.Scheduler{Policy: "SCHED_FAST"} },
			`process.scheduler.policy "SCHED_FAST" is not a policy`},
		{"Nice20", `"scheduler":{"policy":"SCHED_OTHER","nice":20}`,
			func(p *specs.Process) { p.Scheduler = &specs.Scheduler{Policy: specs.SchedOther, Nice: 20} },
			`process.scheduler.nice 20 is out of range -20..19`},
		{"FIFOPriority0", `"scheduler":{"policy":"SCHED_FIFO"}`,
			func(p *specs.Process) { p.Scheduler = &specs.Scheduler{Policy: specs.SchedFIFO} },
			`process.scheduler.priority 0 is out of range 1..99 for SCHED_FIFO`},
		{"PriorityOnBatch", `"scheduler":{"policy":"SCHED_BATCH","priority":3}`,
			func(p *specs.Process) { p.Scheduler = &specs.Scheduler{Policy: specs.SchedBatch, Priority: 3} },
			`process.scheduler.priority 3: only SCHED_FIFO and SCHED_RR take a priority`},
		{"DeadlineParamsOnOther", `"scheduler":{"policy":"SCHED_OTHER","runtime":5000}`,
			func(p *specs.Process) { p.Scheduler = &specs.Scheduler{Policy: specs.SchedOther, Runtime: 5000} },
			`process.scheduler.runtime/deadline/period are for SCHED_DEADLINE only`},
		{"BadIOClass", `"ioPriority":{"class":"IOPRIO_CLASS_NONE","priority":1}`,
			func(p *specs.Process) { p.IOPriority = &specs.LinuxIOPriority{Class: "IOPRIO_CLASS_NONE", Priority: 1} },
			`process.ioPriority.class "IOPRIO_CLASS_NONE" is not a class`},
		{"IOPriority8", `"ioPriority":{"class":"IOPRIO_CLASS_BE","priority":8}`,
			func(p *specs.Process) {
				p.IOPriority = &specs.LinuxIOPriority{Class: specs.IOPRIO_CLASS_BE, Priority: 8}
			},
			`process.ioPriority.priority 8 is out of range 0..7`},
		// Left to the kernel, as runc leaves it: every kernel refuses it.
		{"ISO", `"scheduler":{"policy":"SCHED_ISO"}`,
			func(p *specs.Process) { p.Scheduler = &specs.Scheduler{Policy: specs.SchedISO} },
			`process.scheduler: sched_setattr SCHED_ISO: invalid argument`},
		{"CPUListGarbage", `"execCPUAffinity":{"initial":"zero"}`,
			func(p *specs.Process) { p.ExecCPUAffinity = &specs.CPUAffinity{Initial: "zero"} },
			`process.execCPUAffinity.initial: "zero" is not a list of numbers and ranges`},
		{"CPUNotOnHost", `"execCPUAffinity":{"final":"0,4096"}`,
			func(p *specs.Process) { p.ExecCPUAffinity = &specs.CPUAffinity{Final: "0,4096"} },
			`process.execCPUAffinity.final "0,4096" names \[4096\], which the host does not have online`},
	}
	id, _ := e.runningPid(nil)
	before := processesIn(id)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			bad := e.id()
			b := e.bundle([]string{"sleep", "100"}, func(s *specs.Spec) { c.mutate(s.Process) })
			e.failLkc(`^lkc: create: .*`+c.want, "create", "--bundle", b, bad)
			e.assertIDGone(bad)
			file := filepath.Join(t.TempDir(), "process.json")
			os.WriteFile(file, []byte(`{"args":["sleep","100"],"cwd":"/",`+c.json+`}`), 0o644)
			e.failLkc(`^lkc: exec: .*`+c.want, "exec", "--process", file, id)
			if now := processesIn(id); len(now) != len(before) {
				t.Errorf("a refused exec left processes: %v, before %v", now, before)
			}
		})
	}
}

// TestCheckpointRestoreScheduler checks that a container with a
// scheduler checkpoints and restores, and runs with its policy after:
// CRIU dumps and restores a task's policy and nice value itself.
func TestCheckpointRestoreScheduler(t *testing.T) {
	requireCriu(t)
	e := newEnv(t)
	id, root := e.ckptCounter(batchNice5)
	bundle := bundleOf(e, id)
	checkSched(t, "before checkpoint", initPid(e, id), schedBatch, 0, 5, ioprioBE3)
	images := filepath.Join(t.TempDir(), "images")
	saved := e.checkpointStops(id, root, images)
	e.restoreDetached(id, bundle, root, images, saved)
	p, _, nice := schedOf(t, initPid(e, id))
	if p != schedBatch || nice != 5 {
		t.Errorf("restored init: policy %d nice %d, want SCHED_BATCH (3) nice 5", p, nice)
	}
	t.Logf("restored init's ioprio %#x (before the checkpoint %#x)", ioprioOf(t, initPid(e, id)), ioprioBE3)
}

// TestRestoreIOPriority: CRIU does not restore an I/O priority; lkc sets
// the config's process.ioPriority on the restored init again, so a
// container checkpointed and restored keeps the one it was created with.
func TestRestoreIOPriority(t *testing.T) {
	requireCriu(t)
	e := newEnv(t)
	const ioprioBE7 = 2<<13 | 7
	id, root := e.ckptCounter(func(s *specs.Spec) {
		s.Process.IOPriority = &specs.LinuxIOPriority{Class: specs.IOPRIO_CLASS_BE, Priority: 7}
	})
	if io := ioprioOf(t, initPid(e, id)); io != ioprioBE7 {
		t.Fatalf("the created init's ioprio: %#x, want %#x", io, ioprioBE7)
	}
	bundle := bundleOf(e, id)
	images := filepath.Join(t.TempDir(), "images")
	saved := e.checkpointStops(id, root, images)
	e.restoreDetached(id, bundle, root, images, saved)
	if io := ioprioOf(t, initPid(e, id)); io != ioprioBE7 {
		t.Errorf("the restored init's ioprio: %#x, want %#x", io, ioprioBE7)
	}
	e.mustLkc("delete", "-f", id)
}
