package integration

import (
	"errors"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/procfs"
	"github.com/lkc-containers/lkc/internal/procview"
)

// procLoop is what each container of the crash tests runs: it reads
// meminfo and stat and calls sysinfo (busybox free) in a loop and appends
// anything but a whole file or an answer with the container's values to
// /dev/shm/err.
const procLoop = `while :; do
m=$(cat /proc/meminfo) || echo "meminfo failed" >> /dev/shm/err
case "$m" in "MemTotal:"*" 65536 kB"*HugePages_Total*) ;; *) echo "meminfo: $m" | head -3 >> /dev/shm/err ;; esac
s=$(cat /proc/stat) || echo "stat failed" >> /dev/shm/err
case "$s" in "cpu "*"cpu0 "*softirq*) ;; *) echo "stat: $s" | head -3 >> /dev/shm/err ;; esac
f=$(free) || echo "free failed" >> /dev/shm/err
case "$f" in *Mem:*65536*) ;; *) echo "free: $f" >> /dev/shm/err ;; esac
echo x > /dev/shm/ok
sleep 0.05
done`

// procReaders reads the containers' virtual meminfo and stat from the
// host too, through the daemon's mount (the same FUSE connection the
// containers' bind mounts reach), timing each read: the longest is the
// stall a crash or an upgrade causes.
type procReaders struct {
	t    *testing.T
	stop chan struct{}
	wg   sync.WaitGroup
	mu   sync.Mutex
	max  time.Duration
	n    int
	errs []string
	// gone says the containers are being deleted: their files may fail,
	// but never hang.
	gone bool
}

// procContainers starts n containers running procLoop and waits for each
// one's first good read.
func (d *daemonEnv) procContainers(n int) []string {
	d.t.Helper()
	ids := make([]string, n)
	for i := range ids {
		ids[i] = d.procContainer([]string{"sh", "-c", procLoop})
	}
	for _, id := range ids {
		waitFor(d.t, func() bool { return d.lkc("exec", id, "cat", "/dev/shm/ok").stdout == "x\n" }, "the first read in "+id)
	}
	return ids
}

// readProc starts one reader per container and file; with gone, reads
// may fail but not hang.
func (d *daemonEnv) readProc(gone bool) *procReaders {
	d.t.Helper()
	r := &procReaders{t: d.t, stop: make(chan struct{}), gone: gone}
	for _, c := range d.status().Containers {
		slot := filepath.Join(d.dir, "proc", strconv.Itoa(c.Slot), "proc")
		for _, f := range []string{"meminfo", "stat"} {
			r.wg.Add(1)
			go r.loop(filepath.Join(slot, f))
		}
	}
	return r
}

func (r *procReaders) loop(path string) {
	defer r.wg.Done()
	for {
		select {
		case <-r.stop:
			return
		default:
		}
		start := time.Now()
		b, err := os.ReadFile(path)
		took := time.Since(start)
		r.mu.Lock()
		r.n++
		r.max = max(r.max, took)
		if msg := checkProcFile(path, b, err); msg != "" && !r.gone && len(r.errs) < 10 {
			r.errs = append(r.errs, msg)
		}
		r.mu.Unlock()
		time.Sleep(10 * time.Millisecond)
	}
}

// checkProcFile says what is wrong with one read of a virtual file: an
// error, or a content cut short or not the container's.
func checkProcFile(path string, b []byte, err error) string {
	s := string(b)
	switch {
	case err != nil:
		return err.Error()
	case strings.HasSuffix(path, "meminfo") && (!matches(`^MemTotal: +65536 kB\n`, s) || !strings.Contains(s, "\nHugePages_Total:")):
		return fmt.Sprintf("%s: %.60q (%d bytes)", path, s, len(s))
	case strings.HasSuffix(path, "stat") && (!strings.HasPrefix(s, "cpu ") || !strings.Contains(s, "\nsoftirq ")):
		return fmt.Sprintf("%s: %.60q (%d bytes)", path, s, len(s))
	case !strings.HasSuffix(s, "\n"):
		return fmt.Sprintf("%s: no final newline (%d bytes)", path, len(s))
	}
	return ""
}

// finish stops the readers (a reader stuck for 10 s fails the test) and
// returns the longest read.
func (r *procReaders) finish() time.Duration {
	r.t.Helper()
	close(r.stop)
	done := make(chan struct{})
	go func() { r.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		r.t.Fatalf("a reader of the virtual files is stuck")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.errs {
		r.t.Errorf("read: %s", e)
	}
	r.t.Logf("%d reads from the host, longest %v", r.n, r.max)
	return r.max
}

// checkProcContainers checks the containers' own loops: no failed or
// wrong read, and none of their tasks stuck in D state.
func (d *daemonEnv) checkProcContainers(ids []string) {
	d.t.Helper()
	for _, id := range ids {
		d.mustLkc("exec", id, "sh", "-c", "rm -f /dev/shm/ok")
		waitFor(d.t, func() bool { return d.lkc("exec", id, "cat", "/dev/shm/ok").stdout == "x\n" }, "a read after the test in "+id)
		if bad := d.lkc("exec", id, "cat", "/dev/shm/err").stdout; bad != "" {
			d.t.Errorf("container %s: reads failed: %.500s", id, bad)
		}
		for _, pid := range stuckInD(d.tasksOf(id), 2*time.Second) {
			d.t.Errorf("container %s: task %d in D state for 2 s", id, pid)
		}
	}
}

// stuckInD returns the tasks of pids in D state at every look over window.
// A read of a virtual file sleeps in D state (killable) while it waits
// for the daemon's answer, so one look at a busy container may see a
// healthy read; a read the daemon lost stays there.
func stuckInD(pids []int, window time.Duration) []int {
	stuck := map[int]bool{}
	for _, pid := range pids {
		if procStateOf(pid) == "D" {
			stuck[pid] = true
		}
	}
	for end := time.Now().Add(window); len(stuck) > 0 && time.Now().Before(end); {
		time.Sleep(50 * time.Millisecond)
		for pid := range stuck {
			if procStateOf(pid) != "D" {
				delete(stuck, pid)
			}
		}
	}
	var out []int
	for pid := range stuck {
		out = append(out, pid)
	}
	return out
}

// tasksOf lists the processes in the pid namespace of a container's init.
func (d *daemonEnv) tasksOf(id string) []int {
	init := int(d.state(id)["pid"].(float64))
	ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", init))
	if err != nil {
		d.t.Fatalf("pid namespace of %s: %v", id, err)
	}
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if l, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid)); l == ns {
			pids = append(pids, pid)
		}
	}
	return pids
}

func requireResend(t *testing.T) {
	if !kernelAtLeast(6, 9) {
		// A read the killed worker had taken sleeps until the connection
		// ends: only FUSE_NOTIFY_RESEND gives it to the successor.
		t.Skip("a read in flight across a worker's death needs FUSE_NOTIFY_RESEND (Linux 6.9)")
	}
}

// TestProcReadAcrossWorkerKill: four containers read meminfo and stat in
// a loop while the test SIGKILLs the daemon's worker 20 times at random
// moments (each once its predecessor serves): no read fails or is cut
// short, none shows other than the container's values, no task is left
// in D state, and no read stalls 1 s (the holder replaces a worker that
// served at once, however often).
func TestProcReadAcrossWorkerKill(t *testing.T) {
	requireResend(t)
	d := newDaemonEnv(t)
	ids := d.procContainers(4)
	r := d.readProc(false)
	rng := rand.New(rand.NewSource(time.Now().UnixNano()))
	for i := 0; i < 20; i++ {
		kill9(t, d.status().WorkerPid)
		time.Sleep(time.Duration(rng.Intn(300)) * time.Millisecond)
	}
	d.finishProcReads(r, ids, "across 20 kills")
}

// TestProcReadAcrossUpgrade: the containers' reads go on across `lkc
// daemon upgrade` to a second build: no failed or short read, and the
// stall (reported) stays under 1 s; the old worker answers until the new
// one serves.
func TestProcReadAcrossUpgrade(t *testing.T) {
	d := newDaemonEnv(t)
	second := buildSecondLkc(t)
	ids := d.procContainers(2)
	r := d.readProc(false)
	time.Sleep(200 * time.Millisecond)
	d.mustLkc("daemon", "upgrade", "--exe", second)
	if s := d.status(); s.Build != "upgrade-test" {
		t.Fatalf("after the upgrade the worker runs build %q", s.Build)
	}
	time.Sleep(500 * time.Millisecond)
	d.finishProcReads(r, ids, "across the upgrade")
}

// TestProcReadAcrossHolderKill: the holder is SIGKILLed, the worker
// starts a new one and deposits the FUSE fd in it; then the worker is
// SIGKILLed too and the new holder's next worker serves the same mount.
func TestProcReadAcrossHolderKill(t *testing.T) {
	requireResend(t)
	d := newDaemonEnv(t)
	ids := d.procContainers(2)
	r := d.readProc(false)
	s := d.status()
	kill9(t, s.HolderPid)
	waitFor(t, func() bool { return d.status().HolderPid != s.HolderPid }, "a new holder")
	kill9(t, s.WorkerPid)
	if n := d.status(); n.WorkerPid == s.WorkerPid {
		t.Fatalf("worker %d still answers after kill -9", s.WorkerPid)
	}
	time.Sleep(300 * time.Millisecond)
	d.finishProcReads(r, ids, "across both kills")
}

// finishProcReads stops the host's readers and checks the containers' own
// loops; the longest read (reported) must stay under 1 s.
func (d *daemonEnv) finishProcReads(r *procReaders, ids []string, what string) {
	d.t.Helper()
	stall := r.finish()
	d.checkProcContainers(ids)
	d.t.Logf("max stall %s: %v", what, stall)
	if stall >= time.Second {
		d.t.Errorf("a read stalled %v %s, want < 1 s", stall, what)
	}
}

// buildSecondLkc builds lkc again with the version "upgrade-test", or
// returns $LKC_UPGRADE_BINARY, such a build that scripts/test.sh made
// once for the host's run and the VM's (where a build takes ~40 s).
func buildSecondLkc(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("LKC_UPGRADE_BINARY"); p != "" {
		return p
	}
	second := filepath.Join(t.TempDir(), "lkc-upgraded")
	_, here, _, _ := runtime.Caller(0)
	repo := filepath.Join(filepath.Dir(here), "..", "..")
	if out, err := exec.Command("make", "-C", repo, "lkc", "BIN="+second, "VERSION=upgrade-test").CombinedOutput(); err != nil {
		t.Fatalf("building a second lkc: %v\n%s", err, out)
	}
	return second
}

// TestProcRepairAfterBothKilled: with holder and worker both SIGKILLed the
// FUSE connection is gone and the container's files fail (ENOTCONN); the
// next daemon mounts a new session and replaces the container's bind
// mounts, so its reads work again without a restart, with no dead mount
// left beneath. `lkc daemon stop` then a start is repaired the same way.
func TestProcRepairAfterBothKilled(t *testing.T) {
	d := newDaemonEnv(t)
	id := d.procContainer([]string{"sleep", "1000"})
	repaired := func(what string) {
		t.Helper()
		start := time.Now()
		d.mustLkc("daemon", "--detach")
		// All the files are the new session's (each replaced dead mount
		// is gone, none is left without its file) and answer.
		check := "grep -c ' fuse.lkc ' /proc/self/mountinfo; cat /proc/cpuinfo /proc/stat /proc/uptime /proc/loadavg " +
			"/proc/diskstats /proc/swaps /proc/vmstat /sys/devices/system/cpu/online >/dev/null && head -1 /proc/meminfo"
		want := fmt.Sprintf(`^%d\nMemTotal: +65536 kB\n$`, len(procfs.Files))
		waitFor(t, func() bool {
			return matches(want, d.lkc("exec", id, "sh", "-c", check).stdout)
		}, "the container's files "+what)
		t.Logf("reads work again %v after the start %s", time.Since(start), what)
		if s := d.status(); len(s.Containers) != 1 || s.Containers[0].ID != id {
			t.Errorf("%s: daemon status: %+v", what, s.Containers)
		}
	}
	d.killBoth()
	// Read through the container's mount tree from here: an lkc exec
	// would start the daemon again (reattach).
	inside := fmt.Sprintf("/proc/%d/root/proc/meminfo", int(d.state(id)["pid"].(float64)))
	// The kernel serves its cached rendering until meminfo's freshness
	// bound (1 s) runs out, then the dead connection's error.
	dead := func(what string) {
		t.Helper()
		start := time.Now()
		waitFor(t, func() bool {
			_, err := os.ReadFile(inside)
			return errors.Is(err, unix.ENOTCONN)
		}, "ENOTCONN from meminfo "+what)
		if took := time.Since(start); took > 2*time.Second {
			t.Errorf("meminfo %s read for %v, want ENOTCONN within meminfo's 1 s bound", what, took)
		}
	}
	dead("with both daemon processes dead")
	repaired("after both were killed")
	d.mustLkc("daemon", "stop")
	dead("after daemon stop")
	repaired("after daemon stop")
}

// TestProcRepairAfterWorkerKilledInRepair: a worker that mounts a new
// session (both daemon processes were killed) deposits it in the holder
// and is SIGKILLed before it repaired any container's files; the next
// worker inherits that session and must repair the containers itself,
// without waiting for an lkc exec (reattach): a reader of the
// container's meminfo, polling from the host through its mount tree,
// gets the container's file again. The daemon runs in the foreground, as
// a unit runs it: a --detach start ends with a first worker that dies
// before it serves.
func TestProcRepairAfterWorkerKilledInRepair(t *testing.T) {
	repairAfterWorkerDeath(t, procview.RepairDieEnv, "as its repair began")
}

// TestProcRepairAfterWorkerKilledInClone: as above, the worker killed
// while its server holds, read and not answered, a look-up of the
// repair's clone of the container's files. Were the clone the worker's
// own, the thread that asked would sleep uninterruptibly for an answer
// only the dead process could give, so the worker could not exit and
// its holder would never start another (and the session, kept by the
// holder, would answer nobody). The clone is the remount helper's, which
// the successor's FUSE_NOTIFY_RESEND answers.
func TestProcRepairAfterWorkerKilledInClone(t *testing.T) {
	requireResend(t)
	repairAfterWorkerDeath(t, procview.CloneDieEnv, "in a clone's look-up")
}

// repairAfterWorkerDeath kills both daemon processes, starts a daemon
// whose first worker dies at the point dieEnv (a procview test hook)
// names, and checks that the container's files are repaired.
func repairAfterWorkerDeath(t *testing.T, dieEnv, when string) {
	d := newDaemonEnv(t)
	id := d.procContainer([]string{"sleep", "1000"})
	inside := fmt.Sprintf("/proc/%d/root/proc/meminfo", int(d.state(id)["pid"].(float64)))
	d.killBoth()
	marker := filepath.Join(t.TempDir(), "die")
	if err := os.WriteFile(marker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv(dieEnv, marker)
	holder := d.foreground()
	// Runs before the foreground daemon's stop: a worker that cannot
	// exit holds the session, which only an abort ends.
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the holder's children: %s", childStates(holder))
			abortSession(t, filepath.Join(d.dir, "proc"))
		}
	})
	waitFor(t, func() bool {
		_, err := os.Stat(marker)
		return errors.Is(err, os.ErrNotExist)
	}, "a worker's death "+when)
	var last error
	deadline := time.Now().Add(settle)
	for {
		b, err := os.ReadFile(inside)
		if err == nil && matches(`^MemTotal: +65536 kB\n`, string(b)) {
			break
		}
		last = err
		if time.Now().After(deadline) {
			t.Fatalf("the container's meminfo not repaired %v after the worker's death %s (last: %v, %.40q)", settle, when, last, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if s := d.status(); len(s.Containers) != 1 || s.Containers[0].ID != id {
		t.Errorf("daemon status: %+v", s.Containers)
	}
}

// childStates describes process pid's children: pid, state and the
// states of their threads (a killed worker whose thread waits for its
// own server shows Z with a D thread).
func childStates(pid int) string {
	var out []string
	for _, parent := range taskIDs(pid) {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, parent))
		for _, c := range strings.Fields(string(b)) {
			n, _ := strconv.Atoi(c)
			var states []string
			for _, tid := range taskIDs(n) {
				stat, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/stat", n, tid))
				if i := strings.LastIndexByte(string(stat), ')'); i > 0 && i+3 <= len(stat) {
					states = append(states, string(stat[i+2:i+3]))
				}
			}
			out = append(out, fmt.Sprintf("%d %s (threads %s)", n, procStateOf(n), strings.Join(states, "")))
		}
	}
	return strings.Join(out, ", ")
}

// taskIDs lists the threads of process pid.
func taskIDs(pid int) []int {
	ents, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	var out []int
	for _, e := range ents {
		if tid, err := strconv.Atoi(e.Name()); err == nil {
			out = append(out, tid)
		}
	}
	return out
}

// abortSession aborts the FUSE connection mounted at dir through its
// fusectl abort file (fusectl mounted for the moment on a directory of
// the test's): every request of it ends at once.
func abortSession(t *testing.T, dir string) {
	info, _ := os.ReadFile("/proc/self/mountinfo")
	var dev string
	for _, line := range strings.Split(string(info), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && f[4] == dir {
			var major, minor uint32
			if _, err := fmt.Sscanf(f[2], "%d:%d", &major, &minor); err == nil {
				dev = strconv.FormatUint(uint64(major)<<20|uint64(minor), 10)
			}
		}
	}
	if dev == "" {
		return
	}
	ctl, err := os.MkdirTemp("", "fusectl-")
	if err != nil {
		t.Log(err)
		return
	}
	defer os.Remove(ctl)
	if err := unix.Mount("fusectl", ctl, "fusectl", 0, ""); err != nil {
		t.Logf("mounting fusectl: %v", err)
		return
	}
	defer unix.Unmount(ctl, unix.MNT_DETACH)
	if err := os.WriteFile(filepath.Join(ctl, dev, "abort"), []byte("1"), 0); err != nil {
		t.Logf("aborting the session at %s: %v", dir, err)
	}
	unix.Unmount(dir, unix.MNT_DETACH)
}

// foreground runs `lkc daemon` in the foreground (no readiness pipe) until
// the test's cleanup stops it, and returns its pid (the holder's).
func (d *daemonEnv) foreground() int {
	d.t.Helper()
	cmd := exec.Command(d.bin, "--root", d.root, "daemon")
	out := d.tempFile()
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		d.t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	d.t.Cleanup(func() {
		cmd.Process.Signal(unix.SIGTERM) // a holder stops its worker
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
		}
		if d.t.Failed() {
			d.t.Logf("lkc daemon's output:\n%s", readAll(out))
		}
	})
	return cmd.Process.Pid
}

// TestProcRepairAbortsDeadSession: when both daemon processes die while
// another process still holds the session's /dev/fuse fd (here: this test,
// through pidfd_getfd of the holder's), the kernel keeps the connection
// and a reader of a container's file sleeps with nobody to answer; the
// next worker aborts that connection before it mounts a new session, so
// the reader gets an error at once instead of sleeping until that fd
// closes.
func TestProcRepairAbortsDeadSession(t *testing.T) {
	d := newDaemonEnv(t)
	id := d.procContainer([]string{"sleep", "1000"})
	// The poll helper the adopt started asks the server too: stopped
	// with the daemon, it would sleep on the session this test keeps,
	// and the daemon's processes (it is one) would never all be gone.
	waitFor(t, func() bool { return len(d.processes()) == 2 }, "the daemon's helpers done")
	s := d.status()
	fuseFD := dupFuseFD(t, s.HolderPid)
	var fds []int
	for _, p := range []int{s.HolderPid, s.WorkerPid} {
		fd, err := unix.PidfdOpen(p, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Close(fd)
		unix.PidfdSendSignal(fd, unix.SIGSTOP, nil, 0)
		fds = append(fds, fd)
	}
	// Past meminfo's freshness bound: the read asks the (stopped) server.
	time.Sleep(1100 * time.Millisecond)
	inside := fmt.Sprintf("/proc/%d/root/proc/meminfo", int(d.state(id)["pid"].(float64)))
	reader := exec.Command("cat", inside)
	if err := reader.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	exited := make(chan struct{})
	go func() { done <- reader.Wait(); close(exited) }()
	t.Cleanup(func() {
		reader.Process.Kill()
		unix.Close(fuseFD) // ends the connection if the test failed
		<-exited
	})
	for _, fd := range fds {
		unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0)
	}
	waitFor(t, func() bool { return len(d.processes()) == 0 }, "both daemon processes gone")
	select {
	case err := <-done:
		t.Fatalf("the reader ended with the session kept alive and unanswered: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	d.mustLkc("daemon", "--detach")
	select {
	case err := <-done:
		if err == nil {
			t.Errorf("the reader of the dead session succeeded")
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("the reader still sleeps (state %s) 5 s after the next worker started", procStateOf(reader.Process.Pid))
	}
	waitFor(t, func() bool {
		return matches(`^MemTotal: +65536 kB\n$`, d.lkc("exec", id, "head", "-1", "/proc/meminfo").stdout)
	}, "the container's meminfo repaired")
}

// dupFuseFD returns a duplicate of process pid's /dev/fuse fd.
func dupFuseFD(t *testing.T, pid int) int {
	t.Helper()
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(pidfd)
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if l, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, e.Name())); l != "/dev/fuse" {
			continue
		}
		n, _ := strconv.Atoi(e.Name())
		fd, err := unix.PidfdGetfd(pidfd, n, 0)
		if err != nil {
			t.Fatalf("pidfd_getfd of the holder's /dev/fuse: %v", err)
		}
		return fd
	}
	t.Fatalf("process %d holds no /dev/fuse fd", pid)
	return -1
}

// TestProcBadCgroups: a virtual file never hangs on a cgroup that is
// gone. A container whose v1 memory cgroup is removed under it (its
// task moved to the parent) answers meminfo with the host's values or
// EIO within 1 s; a container deleted while readers loop on its files
// gives them an error within 1 s, never a hang.
func TestProcBadCgroups(t *testing.T) {
	d := newDaemonEnv(t)
	parent := d.addCgroupParent("bad", false)
	parent.kept = true
	mem := int64(64 << 20)
	b := d.bundle([]string{"sleep", "1000"}, func(s *specs.Spec) {
		s.Annotations = map[string]string{"org.lkc.proc": "virtual"}
		s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: &mem}
		s.Linux.CgroupsPath = parent.path + "/c"
	})
	id := d.id()
	d.mustLkc("run", "-d", "--bundle", b, id)
	t.Cleanup(func() { d.lkc("delete", "--force", id) })
	if r := d.lkc("exec", id, "head", "-1", "/proc/meminfo"); !matches(`^MemTotal: +65536 kB\n$`, r.stdout) {
		t.Fatalf("meminfo: %v", r)
	}
	if cgroupV2() {
		t.Log("no v1 controller to remove on a cgroup v2 host")
	} else {
		meminfo := filepath.Join(d.dir, "proc", strconv.Itoa(d.status().Containers[0].Slot), "proc", "meminfo")
		d.removeMemoryCgroup(parent, int(d.state(id)["pid"].(float64)))
		// The kernel may serve the last rendering for meminfo's freshness
		// bound (docs/procfs.md): 1 s.
		time.Sleep(1100 * time.Millisecond)
		host, _ := os.ReadFile("/proc/meminfo")
		start := time.Now()
		got, err := os.ReadFile(meminfo)
		took := time.Since(start)
		t.Logf("meminfo without the memory cgroup: %.40q, %v in %v", got, err, took)
		if took > time.Second {
			t.Errorf("meminfo without the memory cgroup took %v", took)
		}
		hostTotal := strings.SplitAfter(string(host), "\n")[0]
		if err == nil && !strings.HasPrefix(string(got), hostTotal) {
			t.Errorf("meminfo without the memory cgroup: %.60q, want the host's %q or EIO", got, hostTotal)
		}
		if err != nil && !errors.Is(err, unix.EIO) {
			t.Errorf("meminfo without the memory cgroup failed other than EIO: %v", err)
		}
	}
	r := d.readProc(true)
	time.Sleep(100 * time.Millisecond)
	d.mustLkc("delete", "--force", id)
	time.Sleep(300 * time.Millisecond)
	if stall := r.finish(); stall >= time.Second {
		t.Errorf("a read stalled %v across the delete, want < 1 s", stall)
	}
}

// removeMemoryCgroup moves pid (a container's only task) from the
// memory cgroup <parent>/c to <parent> and removes <parent>/c.
func (d *daemonEnv) removeMemoryCgroup(parent *cgParent, pid int) {
	d.t.Helper()
	hs, _ := ownHierarchies()
	for _, h := range hs {
		if !strings.Contains(","+h.name+",", ",memory,") {
			continue
		}
		dir := parent.in(h)
		if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0); err != nil {
			d.t.Fatalf("moving %d out of the memory cgroup: %v", pid, err)
		}
		if err := os.Remove(filepath.Join(dir, "c")); err != nil {
			d.t.Fatalf("removing the memory cgroup: %v", err)
		}
		return
	}
	d.t.Fatal("no memory hierarchy")
}

// TestProcViewMigrate: a container with a virtual /proc migrates to the
// other test host: the receiver adopts it on the daemon (the same one
// here, under the other host's root, so another slot) and CRIU maps its
// bind mounts to that slot's files: meminfo still shows its limit and it
// keeps counting; the source's slot is released.
func TestProcViewMigrate(t *testing.T) {
	requireCriu(t)
	d := newDaemonEnv(t)
	h := newTestHosts(t)
	a, b := h.hosts[0], h.hosts[1]
	d.mustLkc("daemon", "--detach") // the receivers run outside the init netns: no autostart there
	h.startServe(b)
	mem := int64(64 << 20)
	id, _ := h.runContainer(a, migCounter, func(s *specs.Spec) {
		s.Annotations = map[string]string{"org.lkc.proc": "virtual"}
		s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: &mem}
	})
	cpuTicks := func(x *testHost) int {
		t.Helper()
		line := x.e.mustLkc("exec", id, "head", "-1", "/proc/stat")
		var user, nice, sys int
		if _, err := fmt.Sscanf(line, "cpu %d %d %d", &user, &nice, &sys); err != nil {
			t.Fatalf("/proc/stat's cpu line %q: %v", line, err)
		}
		return user + nice + sys
	}
	time.Sleep(300 * time.Millisecond)
	if got := a.e.mustLkc("exec", id, "head", "-1", "/proc/meminfo"); !matches(`^MemTotal: +65536 kB\n$`, got) {
		t.Fatalf("meminfo before the move: %q", got)
	}
	ticks, before := cpuTicks(a), migCount(t, a.e, id)
	mustMigrate(t, h, a, b, id, "--shared-storage", "--mode", "stopcopy")
	checkCounting(t, b, id, before)
	if got := b.e.mustLkc("exec", id, "head", "-1", "/proc/meminfo"); !matches(`^MemTotal: +65536 kB\n$`, got) {
		t.Errorf("meminfo after the move: %q", got)
	}
	// The target's cgroup counts the container's CPU time from zero:
	// nothing carries the source's total over yet.
	t.Logf("/proc/stat's cpu time: %d ticks before the move, %d after", ticks, cpuTicks(b))
	s := d.status()
	if len(s.Containers) != 1 || s.Containers[0].ID != id {
		t.Errorf("daemon status after the move: %+v, want only the arrived %s", s.Containers, id)
	}
}

// TestProcViewEndsCleanly: a daemon that ends for good otherwise than by
// `lkc daemon stop` (SIGTERM to its holder, its run directory moved away)
// unmounts its FUSE tree too, wherever the directory went; a start in
// between repairs the container's files.
func TestProcViewEndsCleanly(t *testing.T) {
	d := newDaemonEnv(t)
	id := d.procContainer([]string{"sleep", "1000"})
	ended := func(what, dir string) {
		t.Helper()
		waitFor(t, func() bool { return len(d.processes()) == 0 }, "the daemon's end after "+what)
		if mountedAt(filepath.Join(dir, "proc")) {
			t.Errorf("after %s the daemon's FUSE mount is left on %s/proc", what, dir)
		}
	}
	s := d.status()
	if err := unix.Kill(s.HolderPid, unix.SIGTERM); err != nil {
		t.Fatal(err)
	}
	ended("SIGTERM to the holder", d.dir)
	d.mustLkc("daemon", "--detach")
	waitFor(t, func() bool {
		return matches(`^MemTotal: +65536 kB\n$`, d.lkc("exec", id, "head", "-1", "/proc/meminfo").stdout)
	}, "meminfo after the restart")
	moved := d.dir + ".moved"
	if err := os.Rename(d.dir, moved); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Rename(moved, d.dir) })
	ended("its directory moved", moved)
}

// mountedAt says whether something is mounted on dir in this mount
// namespace.
func mountedAt(dir string) bool {
	data, _ := os.ReadFile("/proc/self/mountinfo")
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 4 && f[4] == dir {
			return true
		}
	}
	return false
}
