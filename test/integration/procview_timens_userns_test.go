package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestProcViewTimeNamespaceUserNSCheckpoint: a view container with a user
// namespace is checkpointed (its time namespace, which lkc makes inside
// the user namespace, is one CRIU dumps) and restored (the view's files,
// under the daemon's directory, reach CRIU in the user namespace through
// the restore's staging, docs/criu.md): it is in the time namespace CRIU
// restored, and an exec'd process joins it: its
// /proc/uptime is that namespace's clock (the host's uptime plus init's
// boottime offset) and init's start time, on that clock, is no later
// than it.
func TestProcViewTimeNamespaceUserNSCheckpoint(t *testing.T) {
	requireCriu(t)
	d := newDaemonEnv(t)
	hostNS := hostTimeNS(t)
	rootfs := d.userNSRootfs()
	b := d.bundle([]string{"sh", "-c", counterScript}, func(s *specs.Spec) {
		withUserNS(rootfs)(s)
		s.Root.Readonly = false
		s.Annotations = map[string]string{"org.lkc.proc": "virtual"}
	})
	id := d.id()
	d.mustLkc("run", "-d", "--bundle", b, id)
	t.Cleanup(func() { d.lkc("delete", "--force", id) })
	waitCount(t, rootfs, 3)
	images := filepath.Join(t.TempDir(), "images")
	saved := d.checkpointStops(id, rootfs, images)
	d.restoreDetached(id, b, rootfs, images, saved)
	pid := int(d.state(id)["pid"].(float64))
	initNS, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/time", pid))
	if err != nil || initNS == hostNS {
		t.Fatalf("restored init %d's time namespace %q (%v); want its own", pid, initNS, err)
	}
	f := strings.Fields(d.mustLkc("exec", id, "sh", "-c", "readlink /proc/self/ns/time; cut -d' ' -f1 /proc/uptime; cut -d' ' -f22 /proc/1/stat"))
	hostUp := hostUptime(t)
	if len(f) != 3 {
		t.Fatalf("time namespace, uptime, init's start: %q", f)
	}
	up, err1 := strconv.ParseFloat(f[1], 64)
	start, err2 := strconv.ParseFloat(f[2], 64)
	if err1 != nil || err2 != nil {
		t.Fatalf("%q: %v %v", f, err1, err2)
	}
	if f[0] != initNS {
		t.Errorf("an exec'd process's time namespace %s; want the restored init's %s", f[0], initNS)
	}
	// The exec's uptime is read before the host's: at most the time
	// between the two reads below the namespace's clock then.
	off := bootOffsetOf(t, pid)
	if want := hostUp + off.Seconds(); up > want+0.05 || start/100 > up {
		t.Errorf("an exec'd process's /proc/uptime %.2f s, init's start %.2f s; the namespace's clock (the host's %.2f s + offset %v) %.2f s",
			up, start/100, hostUp, off, want)
	}
}

// bootOffsetOf is the boottime offset of pid's time namespace.
func bootOffsetOf(t *testing.T, pid int) time.Duration {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/timens_offsets", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		var secs, nanos int64
		if n, _ := fmt.Sscanf(line, "boottime %d %d", &secs, &nanos); n == 2 {
			return time.Duration(secs)*time.Second + time.Duration(nanos)
		}
	}
	t.Fatalf("no boottime offset in %q", data)
	return 0
}
