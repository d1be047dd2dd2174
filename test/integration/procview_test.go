package integration

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/daemonapi"
	"github.com/lkc-containers/lkc/internal/hostconf"
	"github.com/lkc-containers/lkc/internal/procfs"
)

// procContainer runs a sleeping container with a virtual /proc (the
// annotation), 64 MiB and half a CPU, autostarting this test's daemon.
func (d *daemonEnv) procContainer(args []string) string {
	d.t.Helper()
	mem, quota, period := int64(64<<20), int64(50000), uint64(100000)
	b := d.bundle(args, func(s *specs.Spec) {
		s.Annotations = map[string]string{"org.lkc.proc": "virtual"}
		s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: &mem}
		s.Linux.Resources.CPU = &specs.LinuxCPU{Quota: &quota, Period: &period}
	})
	id := d.id()
	d.mustLkc("run", "-d", "--bundle", b, id)
	d.t.Cleanup(func() { d.lkc("delete", "--force", id) })
	return id
}

// TestProcViewInContainer: inside a container with org.lkc.proc=virtual,
// the files tools size themselves from show its limits: MemTotal 64 MiB,
// one CPU (cpuinfo, cpu/online), top's memory line, its own uptime; a
// container without the annotation still sees the host's.
func TestProcViewInContainer(t *testing.T) {
	d := newDaemonEnv(t)
	id := d.procContainer([]string{"sleep", "1000"})
	sh := func(cmd string) string {
		t.Helper()
		return d.mustLkc("exec", id, "sh", "-c", cmd)
	}
	if got := sh("head -1 /proc/meminfo"); !matches(`^MemTotal: +65536 kB\n$`, got) {
		t.Errorf("meminfo: %q", got)
	}
	if got := sh("cat /sys/devices/system/cpu/online; grep -c ^processor /proc/cpuinfo"); got != "0\n1\n" {
		t.Errorf("cpu/online and cpuinfo's processors: %q, want 0 and 1", got)
	}
	if got := sh("top -bn1 | grep ^Mem:"); !matches(`^Mem: \d+K used, \d+K free`, got) || !memTotalIs(got, 65536) {
		t.Errorf("top: %q, want used+free = 65536K", got)
	}
	// busybox cat reads with sendfile, through the page cache.
	if got := sh("cat /proc/uptime"); !matches(`^\d{1,3}\.\d\d \d+\.\d\d\n$`, got) {
		t.Errorf("uptime: %q, want the container's own seconds", got)
	}
	if got := sh("cat /proc/stat | grep -c ^cpu"); got != "2\n" {
		t.Errorf("/proc/stat cpu lines: %q, want cpu and cpu0", got)
	}
	if got := sh("grep -c ' fuse.lkc ' /proc/self/mountinfo"); strings.TrimSpace(got) != strconv.Itoa(len(procfs.Files)) {
		t.Errorf("%s bind mounts of the daemon's files, want %d", strings.TrimSpace(got), len(procfs.Files))
	}
	if s := d.status(); len(s.Containers) != 1 || s.Containers[0].ID != id {
		t.Errorf("daemon status: %+v", s)
	}
	slot := filepath.Join(d.dir, "proc", strconv.Itoa(d.status().Containers[0].Slot))
	if _, err := os.Stat(filepath.Join(slot, "proc", "meminfo")); err != nil {
		t.Errorf("the slot's files on the host: %v", err)
	}
	d.mustLkc("delete", "--force", id)
	if s := d.status(); len(s.Containers) != 0 {
		t.Errorf("after delete the daemon still serves %+v", s.Containers)
	}
	if _, err := os.Stat(slot); err == nil {
		t.Errorf("%s still listed after delete", slot)
	}
	host, _ := os.ReadFile("/proc/meminfo")
	plain := d.run([]string{"head", "-1", "/proc/meminfo"}, nil)
	if plain.code != 0 || plain.stdout != strings.SplitAfter(string(host), "\n")[0] {
		t.Errorf("a container without the annotation: %v, want the host's %q", plain, strings.SplitAfter(string(host), "\n")[0])
	}
}

// TestProcViewLoadavgCountsReader: the container's /proc/loadavg counts
// its reader as running, as the kernel's does (nr_running() includes the
// task on the CPU reading the file): in a container whose other tasks
// all sleep, the running count is at least 1 and at most the total, and
// the last pid is one of the container's own namespace (below the pid of
// a process forked after the read), never a host pid. Read several times, across the
// daemon's 5 s sampling, so both the sampled and the counted-at-read
// task counts are seen.
func TestProcViewLoadavgCountsReader(t *testing.T) {
	d := newDaemonEnv(t)
	id := d.procContainer([]string{"sleep", "1000"})
	line := regexp.MustCompile(`^\d+\.\d\d \d+\.\d\d \d+\.\d\d (\d+)/(\d+) (\d+)\n(\d+)\n$`)
	for i := 0; i < 4; i++ {
		out := d.mustLkc("exec", id, "sh", "-c", "cat /proc/loadavg; sh -c 'echo $$'; :")
		m := line.FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("loadavg and the reader's pid: %q", out)
		}
		running, _ := strconv.Atoi(m[1])
		total, _ := strconv.Atoi(m[2])
		last, _ := strconv.Atoi(m[3])
		next, _ := strconv.Atoi(m[4])
		if running < 1 || running > total {
			t.Errorf("read %d: loadavg %q: running %d, want 1 (the reader) to %d", i, out, running, total)
		}
		if last < 1 || last >= next {
			t.Errorf("read %d: loadavg %q: last pid %d, want one of the container's namespace (1 to %d)", i, out, last, next-1)
		}
		time.Sleep(2 * time.Second)
	}
}

// TestProcViewFirstRead: the container's process finds its own files
// from its very first read: lkc run binds them before the process runs,
// and the names it looked up before the container had a state (whose
// stand-in, the host's file, the kernel does not cache) render the
// container's at that read.
func TestProcViewFirstRead(t *testing.T) {
	d := newDaemonEnv(t)
	mem, quota, period := int64(64<<20), int64(50000), uint64(100000)
	script := "head -1 /proc/meminfo; cat /proc/meminfo | head -1; cat /sys/devices/system/cpu/online; grep -c ^processor /proc/cpuinfo"
	for i := 0; i < 3; i++ {
		r := d.run([]string{"sh", "-c", script}, func(s *specs.Spec) {
			s.Annotations = map[string]string{"org.lkc.proc": "virtual"}
			s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: &mem}
			s.Linux.Resources.CPU = &specs.LinuxCPU{Quota: &quota, Period: &period}
		})
		if want := "MemTotal:          65536 kB\nMemTotal:          65536 kB\n0\n1\n"; r.code != 0 || r.stdout != want {
			t.Errorf("run %d: %v, want %q", i, r, want)
		}
	}
}

// TestProcViewUserNamespace: a container with a user namespace, whose root
// is a host uid that may not enter the daemon's directory (0700), gets its
// virtual files: in the run that starts the daemon and has it mount its
// view, and in one after it (adopt sent ahead). lkc makes their mounts and
// init moves them in; binding them, init was refused the view's path.
func TestProcViewUserNamespace(t *testing.T) {
	d := newDaemonEnv(t)
	rootfs := d.userNSRootfs()
	mem := int64(64 << 20)
	for i := 0; i < 2; i++ {
		r := d.run([]string{"sh", "-c", "head -1 /proc/meminfo; id -u"}, func(s *specs.Spec) {
			withUserNS(rootfs)(s)
			s.Annotations = map[string]string{"org.lkc.proc": "virtual"}
			s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: &mem}
		})
		if want := "MemTotal:          65536 kB\n0\n"; r.code != 0 || r.stdout != want {
			t.Errorf("run %d: %v, want %q", i, r, want)
		}
	}
}

// TestProcViewLateRelease: lkc run does not wait for the daemon to
// release its container. A release that comes after the same id was
// created again names the earlier generation and leaves the new
// container served, files and all; an id adopted again before its
// release came gets the slot's next generation.
func TestProcViewLateRelease(t *testing.T) {
	d := newDaemonEnv(t)
	b := d.bundle([]string{"sleep", "1000"}, func(s *specs.Spec) {
		s.Annotations = map[string]string{"org.lkc.proc": "virtual"}
	})
	id := d.id()
	t.Cleanup(func() { d.lkc("delete", "--force", id) })
	d.mustLkc("run", "-d", "--bundle", b, id)
	first := d.status().Containers
	d.mustLkc("delete", "--force", id)
	d.mustLkc("run", "-d", "--bundle", b, id)
	second := d.status().Containers
	if len(first) != 1 || len(second) != 1 || first[0].Gen == second[0].Gen {
		t.Fatalf("served %+v, then %+v: want one container, each time of another generation", first, second)
	}
	cl, err := daemonapi.Dial(d.dir)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.Release(d.root, id, first[0].Gen); !errors.Is(err, daemonapi.ErrNotExist) {
		t.Errorf("release of generation %d: %v, want a not-exist error", first[0].Gen, err)
	}
	if s := d.status(); len(s.Containers) != 1 || s.Containers[0].Gen != second[0].Gen {
		t.Errorf("after the late release the daemon serves %+v, want %s of generation %d", s.Containers, id, second[0].Gen)
	}
	if got := d.mustLkc("exec", id, "cat", "/proc/uptime"); !matches(`^\d+\.\d\d \d+\.\d\d\n$`, got) {
		t.Errorf("/proc/uptime after the late release: %q", got)
	}
	ghost := hostconf.Features{Proc: true}
	a, err := cl.Adopt(d.root, "ghost", ghost)
	if err != nil {
		t.Fatal(err)
	}
	again, err := cl.Adopt(d.root, "ghost", ghost)
	if err != nil {
		t.Fatal(err)
	}
	if again.Gen == a.Gen {
		t.Errorf("ghost adopted twice: generation %d both times, want a new one", a.Gen)
	}
	if err := cl.Release(d.root, "ghost", again.Gen); err != nil {
		t.Error(err)
	}
}

// TestProcViewReleasedAsRunDeletes: `lkc run` posts the daemon's release
// as soon as its container's process has exited, so that the release
// overlaps the delete instead of following it: a poststop hook, which the
// delete runs before it removes the cgroup, sees the container's slot
// freed (it waits 3 s for it; before, run sent the release only after the
// delete, hook included).
func TestProcViewReleasedAsRunDeletes(t *testing.T) {
	d := newDaemonEnv(t)
	seen := filepath.Join(t.TempDir(), "seen")
	id := d.id()
	script := fmt.Sprintf(`for i in $(seq 300); do grep -qs '"id":"%s"' %s/slots/* || { echo released >%s; exit 0; }; sleep 0.01; done; echo served >%s`,
		id, d.dir, seen, seen)
	b := d.bundle([]string{"true"}, func(s *specs.Spec) {
		virtualProc(s)
		s.Hooks = &specs.Hooks{Poststop: []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", script}}}}
	})
	d.mustLkc("run", "--bundle", b, id)
	if got, err := os.ReadFile(seen); strings.TrimSpace(string(got)) != "released" {
		t.Errorf("the poststop hook found the container %q (%v), want released", got, err)
	}
}

// TestProcViewAgentMismatch: create sends the adopt ahead and starts init
// with the sysinfo listener lkc.conf names; a daemon that still runs with
// another proc.sysinfo (lkc.conf changed, no reload) fails the create in
// one line saying so, and leaves nothing behind, served or not.
func TestProcViewAgentMismatch(t *testing.T) {
	d := newDaemonEnv(t)
	b := d.bundle([]string{"true"}, virtualProc)
	d.mustLkc("run", "--bundle", b, d.id()) // starts the daemon, mounts its view
	// run's release reaches the daemon after run exits.
	waitFor(t, func() bool { return len(d.status().Containers) == 0 }, "the daemon to release the first run's container")
	if err := os.WriteFile(os.Getenv("LKC_CONFIG"), []byte("proc.sysinfo = false\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	id := d.id()
	d.failLkc(`seccomp agent .* is not the one lkc.conf names .*: run lkc daemon reload$`, "run", "--bundle", b, id)
	d.assertIDGone(id)
	if s := d.status(); len(s.Containers) != 0 {
		t.Errorf("the daemon still serves %+v after the failed create", s.Containers)
	}
	d.mustLkc("daemon", "reload")
	if r := d.lkc("run", "--bundle", b, d.id()); r.code != 0 {
		t.Errorf("run after the reload: %v", r)
	}
}

// TestProcViewBadAnnotation: an invalid value fails create in one line
// naming the annotation, and starts no daemon.
func TestProcViewBadAnnotation(t *testing.T) {
	d := newDaemonEnv(t)
	id := d.id()
	b := d.bundle([]string{"true"}, func(s *specs.Spec) {
		s.Annotations = map[string]string{"org.lkc.proc": "virtualx"}
	})
	d.failLkc(`org\.lkc\.proc`, "run", "--bundle", b, id)
	if pids := d.processes(); len(pids) != 0 {
		t.Errorf("a refused create started a daemon: %v", pids)
	}
	if _, err := os.Stat(filepath.Join(d.root, id)); err == nil {
		t.Errorf("refused create left %s behind", id)
	}
}

func matches(re, s string) bool { return regexp.MustCompile(re).MatchString(s) }

func waitFor(t *testing.T, ok func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(settle)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func procStateOf(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return s[i+2 : i+3]
}

// kernelAtLeast reports whether the running kernel is major.minor or newer.
func kernelAtLeast(major, minor int) bool {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return false
	}
	var ma, mi int
	fmt.Sscanf(unix.ByteSliceToString(u.Release[:]), "%d.%d", &ma, &mi)
	return ma > major || ma == major && mi >= minor
}

// memTotalIs checks busybox top's "Mem: <used>K used, <free>K free" sums
// to kb.
func memTotalIs(line string, kb int) bool {
	var used, free int
	if _, err := fmt.Sscanf(line, "Mem: %dK used, %dK free", &used, &free); err != nil {
		return false
	}
	return used+free == kb
}

// TestProcViewCheckpointRestore: a container with a virtual /proc is
// checkpointed and restored; the restore adopts it again and CRIU maps
// its bind mounts to the daemon's files, which still show its limit, and
// its uptime and CPU times go on from the checkpoint: the time it was
// down does not count, and nothing goes back.
func TestProcViewCheckpointRestore(t *testing.T) {
	requireCriu(t)
	d := newDaemonEnv(t)
	mem := int64(64 << 20)
	id, root := d.ckptCounter(func(s *specs.Spec) {
		s.Annotations = map[string]string{"org.lkc.proc": "virtual"}
		s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: &mem}
	})
	t.Cleanup(func() { d.lkc("delete", "--force", id) })
	memTotal := func() string {
		t.Helper()
		return d.mustLkc("exec", id, "head", "-1", "/proc/meminfo")
	}
	if got := memTotal(); !matches(`^MemTotal: +65536 kB\n$`, got) {
		t.Fatalf("before the checkpoint: %q", got)
	}
	// Some CPU time, and an uptime well past what a restore takes.
	d.mustLkc("exec", id, "sh", "-c", "i=0; while [ $i -lt 100000 ]; do i=$((i+1)); done")
	for d.clock(id).up < 2 {
		time.Sleep(100 * time.Millisecond)
	}
	bundle := bundleOf(d.env, id)
	images := filepath.Join(t.TempDir(), "images")
	before, wall := d.clock(id), time.Now()
	saved := d.checkpointStops(id, root, images)
	d.restoreDetached(id, bundle, root, images, saved)
	after := d.clock(id)
	wall2 := time.Since(wall).Seconds()
	if got := memTotal(); !matches(`^MemTotal: +65536 kB\n$`, got) {
		t.Errorf("after the restore: %q", got)
	}
	if after.up < before.up || after.up-before.up > wall2-0.2 {
		t.Errorf("uptime %.2f s before the checkpoint, %.2f s after the restore, %.2f s later with 0.3 s or more down: "+
			"want it to go on from the checkpoint without the time down", before.up, after.up, wall2)
	}
	if before.cpu == 0 || after.cpu < before.cpu {
		t.Errorf("/proc/stat's CPU time %d ticks before the checkpoint, %d after the restore: want it not to go back", before.cpu, after.cpu)
	}
	if s := d.status(); len(s.Containers) != 1 || s.Containers[0].ID != id {
		t.Errorf("daemon status after the restore: %+v", s.Containers)
	}
}

// viewClock is what a container's virtual /proc says of its time.
type viewClock struct {
	up  float64 // /proc/uptime's seconds
	cpu uint64  // /proc/stat's user and system ticks of all CPUs
}

func (d *daemonEnv) clock(id string) viewClock {
	d.t.Helper()
	out := d.mustLkc("exec", id, "sh", "-c", "cat /proc/uptime; head -1 /proc/stat")
	var c viewClock
	var idle float64
	var user, nice, system uint64
	if _, err := fmt.Sscanf(out, "%f %f\ncpu %d %d %d", &c.up, &idle, &user, &nice, &system); err != nil {
		d.t.Fatalf("uptime and stat %q: %v", out, err)
	}
	c.cpu = user + system
	return c
}

// TestProcViewWithNetwork: a container with a virtual /proc and a CNI
// network gets both. A networked container's init gets a copy of the
// config (without the net.* sysctls), which must still carry the view's
// mounts the daemon's answer adds.
func TestProcViewWithNetwork(t *testing.T) {
	d := newDaemonEnv(t)
	c := newCNINet(d.env, "")
	mem := int64(64 << 20)
	b := d.bundle([]string{"sleep", "1000"}, func(s *specs.Spec) {
		c.annotate("org.lkc.proc", "virtual")(s)
		s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: &mem}
	})
	id := d.id()
	d.mustLkc("run", "-d", "--bundle", b, id)
	if got := d.mustLkc("exec", id, "head", "-1", "/proc/meminfo"); !matches(`^MemTotal: +65536 kB\n$`, got) {
		t.Errorf("meminfo: %q, want the container's 64 MiB", got)
	}
	if ip := d.addr(id); ip == "" {
		t.Errorf("no address on the network")
	}
}

// TestProcViewHeldFileFollows: a file read regularly is held (the kernel
// keeps its attributes and the worker refreshes it in the page cache), and
// what a later read within the hold shows still follows the container: 16
// MiB written to its /dev/shm show in meminfo's Shmem and MemFree at the
// next read past the file's bound, with no other read between.
func TestProcViewHeldFileFollows(t *testing.T) {
	d := newDaemonEnv(t)
	id := d.procContainer([]string{"sleep", "1000"})
	kB := func(field string) int64 {
		t.Helper()
		out := d.mustLkc("exec", id, "grep", "^"+field+":", "/proc/meminfo")
		f := strings.Fields(out)
		if len(f) != 3 {
			t.Fatalf("meminfo's %s: %q", field, out)
		}
		v, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			t.Fatalf("meminfo's %s: %q", field, out)
		}
		return v
	}
	kB("MemTotal")
	time.Sleep(1200 * time.Millisecond) // past meminfo's bound of 1 s: the read asks again, and is held
	shm0, free0 := kB("Shmem"), kB("MemFree")
	d.mustLkc("exec", id, "dd", "if=/dev/zero", "of=/dev/shm/held", "bs=1M", "count=16")
	time.Sleep(1500 * time.Millisecond) // meminfo's bound is 1 s, its hold 10 s
	shm1, free1 := kB("Shmem"), kB("MemFree")
	// MemFree moves less when the container's other memory shrank
	// meanwhile (a v2 guest gave 12016 kB back of 16384).
	if shm1-shm0 < 15<<10 || free0-free1 < 8<<10 {
		t.Errorf("after 16 MiB in /dev/shm: Shmem %d -> %d kB, MemFree %d -> %d kB; want Shmem up by about 16384 kB and MemFree down by at least half that", shm0, shm1, free0, free1)
	}
}
