package integration

import (
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// hostUsr is where a container gets the host's /usr, read-only, to run
// procps's ps and top (the busybox rootfs has busybox's) through the
// host's dynamic loader.
const hostUsr = "/host-usr"

// procps is the shell command that runs procps's program name from
// hostUsr.
func procps(name string) string {
	return hostUsr + "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 --library-path " + hostUsr + "/lib/x86_64-linux-gnu " + hostUsr + "/bin/" + name
}

// withProcps binds the host's /usr at hostUsr in a container on a
// writable rootfs, or skips the test on a host without procps or the
// loader procps names.
func withProcps(t *testing.T) func(*specs.Spec) {
	t.Helper()
	for _, p := range []string{"/usr/bin/ps", "/usr/bin/top", "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", "/usr/lib/x86_64-linux-gnu/libproc2.so.0"} {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("needs procps 4 on x86-64 (Debian's procps): %v", err)
		}
	}
	return func(s *specs.Spec) {
		s.Mounts = append(s.Mounts, specs.Mount{Destination: hostUsr, Type: "bind", Source: "/usr", Options: []string{"rbind", "ro"}})
	}
}

// containerClocks is what a container's processes see of its time.
type containerClocks struct {
	ns, execNS  string  // init's time namespace, and an exec'd process's
	up          float64 // /proc/uptime
	btime, date int64   // /proc/stat's btime and the date, in seconds
	initStart   float64 // init's start time (field 22), in seconds
	etimes      int64   // procps ps's ELAPSED of init, in seconds
	pcpu        float64 // procps ps's %CPU of a shell that only counted
}

// clocks reads containerClocks in container id, in one exec.
func (d *daemonEnv) clocks(id string) containerClocks {
	d.t.Helper()
	out := d.mustLkc("exec", id, "sh", "-c", "readlink /proc/1/ns/time; readlink /proc/self/ns/time; cut -d' ' -f1 /proc/uptime; "+
		"grep ^btime /proc/stat | cut -d' ' -f2; cut -d' ' -f22 /proc/1/stat; date +%s; "+procps("ps")+" -o etimes= -p 1; "+
		"i=0; while [ $i -lt 100000 ]; do i=$((i+1)); done; "+procps("ps")+" -o pcpu= -p $$")
	f := strings.Fields(out)
	if len(f) != 8 {
		d.t.Fatalf("time namespaces, uptime, btime, init's start, date, ps's etimes and pcpu: %q", out)
	}
	var c containerClocks
	var start int64
	c.ns, c.execNS = f[0], f[1]
	var errs [7]error
	c.up, errs[0] = strconv.ParseFloat(f[2], 64)
	c.btime, errs[1] = strconv.ParseInt(f[3], 10, 64)
	start, errs[2] = strconv.ParseInt(f[4], 10, 64)
	c.date, errs[3] = strconv.ParseInt(f[5], 10, 64)
	c.etimes, errs[4] = strconv.ParseInt(f[6], 10, 64)
	c.pcpu, errs[5] = strconv.ParseFloat(f[7], 64)
	for _, err := range errs {
		if err != nil {
			d.t.Fatalf("%q: %v", out, err)
		}
	}
	c.initStart = float64(start) / 100
	return c
}

// agree checks that the kernel's clocks in the container (init's start
// time, counted from the boot of its time namespace) and the view's
// (uptime, btime) tell one story: init started after the boot and no
// later than now; btime is now less the uptime; ps's elapsed time of init
// is the uptime less its start; a shell that did nothing but count had a
// share of the CPU.
func (c containerClocks) agree(t *testing.T, hostNS string) {
	t.Helper()
	if c.ns == hostNS || c.execNS != c.ns {
		t.Errorf("time namespace of init %s, of an exec'd process %s, of the host %s: want the container's own for both", c.ns, c.execNS, hostNS)
	}
	if c.initStart > c.up {
		t.Errorf("init started %.2f s after the boot, the uptime is %.2f s", c.initStart, c.up)
	}
	if boot := float64(c.date) - c.up; boot < float64(c.btime)-1.5 || boot > float64(c.btime)+1.5 {
		t.Errorf("the date %d less the uptime %.2f s is %.2f; btime %d", c.date, c.up, boot, c.btime)
	}
	if want := c.up - c.initStart; float64(c.etimes) < want-2 || float64(c.etimes) > want+2 {
		t.Errorf("ps's elapsed time of init %d s; uptime %.2f s less its start %.2f s is %.2f", c.etimes, c.up, c.initStart, want)
	}
	if c.pcpu <= 0 || c.pcpu > 100 {
		t.Errorf("ps's %%CPU of a shell that only counted: %.1f", c.pcpu)
	}
}

func hostTimeNS(t *testing.T) string {
	t.Helper()
	ns, err := os.Readlink("/proc/self/ns/time")
	if err != nil {
		t.Skipf("no time namespaces: %v", err)
	}
	return ns
}

// upFields matches the uptime of busybox uptime and of top's header:
// "up 3 min", "up 1:05", "up 2 days, ...".
var upFields = regexp.MustCompile(`up +(?:(\d+) min|(\d+):(\d+)|(\d+) days?)`)

// upSeconds is the least uptime, in seconds, that a line of upFields's
// form shows.
func upSeconds(t *testing.T, line string) int {
	t.Helper()
	m := upFields.FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("no uptime in %q", line)
	}
	n := func(s string) int { v, _ := strconv.Atoi(s); return v }
	return n(m[1])*60 + n(m[2])*3600 + n(m[3])*60 + n(m[4])*86400
}

// TestProcViewTimeNamespace: a container with a virtual /proc and no time
// namespace in its config gets one whose boot is its start, so the
// kernel's start times of its processes agree with the view's uptime and
// btime: procps ps's ELAPSED of init is within a few seconds of the
// container's age and its %CPU is not 0.0; busybox uptime (sysinfo) and
// top's header show minutes, not the host's days or a count from the
// host's boot; an exec'd process joins the namespace.
func TestProcViewTimeNamespace(t *testing.T) {
	d := newDaemonEnv(t)
	hostNS := hostTimeNS(t)
	root := d.writableRootfs()
	b := d.bundle([]string{"sleep", "1000"}, func(s *specs.Spec) {
		s.Root.Path, s.Root.Readonly = root, false
		s.Annotations = map[string]string{"org.lkc.proc": "virtual"}
		withProcps(t)(s)
	})
	id := d.id()
	before := time.Now()
	d.mustLkc("run", "-d", "--bundle", b, id)
	t.Cleanup(func() { d.lkc("delete", "--force", id) })
	c := d.clocks(id)
	age := time.Since(before).Seconds()
	c.agree(t, hostNS)
	if c.up > age || float64(c.etimes) > age+1 {
		t.Errorf("uptime %.2f s, ps's elapsed time of init %d s; the container is at most %.2f s old", c.up, c.etimes, age)
	}
	top := "TERM=dumb TERMINFO=" + hostUsr + "/lib/terminfo " + procps("top") + " -bn1"
	out := d.mustLkc("exec", id, "sh", "-c", "uptime; "+top+" | head -1; "+top+" -p 1 | tail -1")
	t.Logf("%+v\n%s", c, out)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.Contains(lines[2], "sleep") {
		t.Fatalf("busybox uptime, top's header and its line of init: %q", out)
	}
	age = time.Since(before).Seconds()
	for _, line := range lines[:2] {
		if up := upSeconds(t, line); float64(up) > age {
			t.Errorf("%q: up %d s; the container is at most %.2f s old", line, up, age)
		}
	}
}

// TestProcViewTimeNamespaceCheckpoint: across a checkpoint and a restore
// the container's time namespace goes on (CRIU sets its offsets so that
// its clocks continue), and the view's uptime with it, so the kernel's
// start times (the restored processes' count from the restore) and the
// view still agree and an exec'd process still joins the namespace.
func TestProcViewTimeNamespaceCheckpoint(t *testing.T) {
	requireCriu(t)
	d := newDaemonEnv(t)
	hostNS := hostTimeNS(t)
	procpsMount := withProcps(t)
	id, root := d.ckptCounter(func(s *specs.Spec) {
		s.Annotations = map[string]string{"org.lkc.proc": "virtual"}
		procpsMount(s)
	})
	t.Cleanup(func() { d.lkc("delete", "--force", id) })
	first := d.clocks(id)
	first.agree(t, hostNS)
	bundle := bundleOf(d.env, id)
	images := fmt.Sprintf("%s/images", t.TempDir())
	saved := d.checkpointStops(id, root, images)
	d.restoreDetached(id, bundle, root, images, saved)
	then := d.clocks(id)
	then.agree(t, hostNS)
	// The restored init is a new process: it starts at the restore, on
	// the namespace's clock that went on from the dump.
	if then.up < first.up || then.initStart < first.initStart || then.initStart > then.up {
		t.Errorf("uptime %.2f s and init's start %.2f s before the checkpoint, %.2f s and %.2f s after the restore: want the clock to go on",
			first.up, first.initStart, then.up, then.initStart)
	}
}

// TestProcViewOwnTimeNamespace: a config with its own time namespace and
// offsets keeps exactly those with a virtual /proc, whose uptime is then
// that namespace's; a container without the view keeps the host's time
// namespace.
func TestProcViewOwnTimeNamespace(t *testing.T) {
	d := newDaemonEnv(t)
	hostNS := hostTimeNS(t)
	b := d.bundle([]string{"sleep", "1000"}, func(s *specs.Spec) {
		s.Annotations = map[string]string{"org.lkc.proc": "virtual"}
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.TimeNamespace})
		s.Linux.TimeOffsets = map[string]specs.LinuxTimeOffset{"monotonic": {Secs: 7}, "boottime": {Secs: 100000, Nanosecs: 5}}
	})
	id := d.id()
	hostUp := hostUptime(t)
	d.mustLkc("run", "-d", "--bundle", b, id)
	t.Cleanup(func() { d.lkc("delete", "--force", id) })
	pid := int(d.state(id)["pid"].(float64))
	offsets, err := os.ReadFile(fmt.Sprintf("/proc/%d/timens_offsets", pid))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(strings.Fields(string(offsets)), " "); got != "monotonic 7 0 boottime 100000 5" {
		t.Errorf("init's time offsets %q; want the config's", got)
	}
	var up float64
	if _, err := fmt.Sscanf(d.mustLkc("exec", id, "cat", "/proc/uptime"), "%f", &up); err != nil {
		t.Fatal(err)
	}
	if up < hostUp+100000-0.05 {
		t.Errorf("the view's uptime %.2f s; want the namespace's, past the host's %.2f s + 100000", up, hostUp)
	}

	plain := d.bundle([]string{"sleep", "1000"}, nil)
	id2 := d.id()
	d.mustLkc("run", "-d", "--bundle", plain, id2)
	t.Cleanup(func() { d.lkc("delete", "--force", id2) })
	pid2 := int(d.state(id2)["pid"].(float64))
	if ns, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/time", pid2)); ns != hostNS {
		t.Errorf("a container without the view is in time namespace %s; want the host's %s", ns, hostNS)
	}
}

// hostUptime is the host's /proc/uptime, in seconds.
func hostUptime(t *testing.T) float64 {
	t.Helper()
	data, err := os.ReadFile("/proc/uptime")
	if err != nil {
		t.Fatal(err)
	}
	var up float64
	if _, err := fmt.Sscanf(string(data), "%f", &up); err != nil {
		t.Fatal(err)
	}
	return up
}

// TestProcViewTimeNamespaceUserNS: with a user namespace too, the time
// namespace is made (inside the user namespace, its offsets written
// through a file opened before) and an exec'd process joins it (before
// the user namespace).
func TestProcViewTimeNamespaceUserNS(t *testing.T) {
	d := newDaemonEnv(t)
	hostNS := hostTimeNS(t)
	rootfs := d.userNSRootfs()
	b := d.bundle([]string{"sleep", "1000"}, func(s *specs.Spec) {
		withUserNS(rootfs)(s)
		s.Annotations = map[string]string{"org.lkc.proc": "virtual"}
	})
	id := d.id()
	before := time.Now()
	d.mustLkc("run", "-d", "--bundle", b, id)
	t.Cleanup(func() { d.lkc("delete", "--force", id) })
	f := strings.Fields(d.mustLkc("exec", id, "sh", "-c", "readlink /proc/1/ns/time; readlink /proc/self/ns/time; cut -d' ' -f1 /proc/uptime; cut -d' ' -f22 /proc/1/stat"))
	age := time.Since(before).Seconds()
	if len(f) != 4 {
		t.Fatalf("time namespaces, uptime, init's start: %q", f)
	}
	up, _ := strconv.ParseFloat(f[2], 64)
	start, _ := strconv.ParseFloat(f[3], 64)
	if f[0] == hostNS || f[1] != f[0] || up > age || start/100 > up {
		t.Errorf("init's time namespace %s, an exec'd process's %s (the host's %s), uptime %.2f s, init's start %.2f s, the container at most %.2f s old",
			f[0], f[1], hostNS, up, start/100, age)
	}
}

// TestProcViewTimeNamespaceHostPid: a container in the host's pid
// namespace, which has no fork of its own to place init, gets the time
// namespace all the same: init is the constructor's forked child.
func TestProcViewTimeNamespaceHostPid(t *testing.T) {
	d := newDaemonEnv(t)
	hostNS := hostTimeNS(t)
	b := d.bundle([]string{"sleep", "1000"}, func(s *specs.Spec) {
		s.Annotations = map[string]string{"org.lkc.proc": "virtual"}
		var nss []specs.LinuxNamespace
		for _, ns := range s.Linux.Namespaces {
			if ns.Type != specs.PIDNamespace {
				nss = append(nss, ns)
			}
		}
		s.Linux.Namespaces = nss
	})
	id := d.id()
	d.mustLkc("run", "-d", "--bundle", b, id)
	t.Cleanup(func() { d.lkc("delete", "--force", id) })
	pid := int(d.state(id)["pid"].(float64))
	ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/time", pid))
	if err != nil || ns == hostNS {
		t.Errorf("init %d's time namespace %q (%v); want its own", pid, ns, err)
	}
	if comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); string(comm) != "sleep\n" {
		t.Errorf("init %d runs %q; want sleep", pid, comm)
	}
	if got := d.mustLkc("exec", id, "readlink", "/proc/self/ns/time"); strings.TrimSpace(got) != ns {
		t.Errorf("an exec'd process's time namespace %q; want init's %q", got, ns)
	}
}
