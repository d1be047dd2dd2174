package integration

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// viewPids reads, from the host, container id's loadavg last pid and
// stat's processes as the daemon's view serves them: a reader outside
// the container, which is none of its threads.
func (d *daemonEnv) viewPids(id string) (lastPid, processes int) {
	d.t.Helper()
	slot := -1
	for _, c := range d.status().Containers {
		if c.ID == id {
			slot = c.Slot
		}
	}
	if slot < 0 {
		d.t.Fatalf("the daemon does not serve %s", id)
	}
	dir := filepath.Join(d.dir, "proc", strconv.Itoa(slot), "proc")
	load, err1 := os.ReadFile(filepath.Join(dir, "loadavg"))
	stat, err2 := os.ReadFile(filepath.Join(dir, "stat"))
	if err1 != nil || err2 != nil {
		d.t.Fatalf("reading the view of %s: %v %v", id, err1, err2)
	}
	f := strings.Fields(string(load))
	if len(f) != 5 {
		d.t.Fatalf("loadavg %q", load)
	}
	lastPid, err1 = strconv.Atoi(f[4])
	for _, line := range strings.Split(string(stat), "\n") {
		if v, ok := strings.CutPrefix(line, "processes "); ok {
			processes, err2 = strconv.Atoi(v)
		}
	}
	if err1 != nil || err2 != nil || processes == 0 {
		d.t.Fatalf("loadavg %q, stat %q: %v %v", load, stat, err1, err2)
	}
	return lastPid, processes
}

// TestProcViewPidsSurviveDaemonKill: loadavg's last pid and stat's
// processes do not go back when the daemon is killed (SIGKILL of holder
// and worker) and started again, although the threads that moved them on
// have exited and the container's only thread left is its pid 1.
func TestProcViewPidsSurviveDaemonKill(t *testing.T) {
	d := newDaemonEnv(t)
	id := d.procContainer([]string{"sleep", "1000"})
	inside := d.mustLkc("exec", id, "sh", "-c", "i=0; while [ $i -lt 20 ]; do /bin/true; i=$((i+1)); done; cut -d' ' -f5 /proc/loadavg; grep ^processes /proc/stat")
	lastPid, processes := d.viewPids(id)
	t.Logf("inside: %q; from the host: last pid %d, processes %d", inside, lastPid, processes)
	if lastPid < 20 || processes < lastPid {
		t.Fatalf("before the kill: last pid %d, processes %d; want at least the 20 forks of the exec", lastPid, processes)
	}
	d.killBoth()
	d.start()
	afterPid, afterProcesses := d.viewPids(id)
	if afterPid < lastPid || afterProcesses < processes {
		t.Errorf("after the daemon's SIGKILL and start: last pid %d, processes %d; before: %d, %d", afterPid, afterProcesses, lastPid, processes)
	}
}
