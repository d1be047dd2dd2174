package integration

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/lkc-containers/lkc/internal/seccompagent"
)

const mem64M = 64 << 20

// virtualProc opts a container into the virtual machine view with a
// 64 MiB memory limit.
func virtualProc(s *specs.Spec) {
	if s.Annotations == nil {
		s.Annotations = map[string]string{}
	}
	s.Annotations["org.lkc.proc"] = "virtual"
	if s.Linux.Resources == nil {
		s.Linux.Resources = &specs.LinuxResources{}
	}
	limit := int64(mem64M)
	s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: &limit}
}

var upMinutes = regexp.MustCompile(`up\s+(\d+) min,`)

// freeTotalOf is busybox free's total column: 15 wide after "Mem:"; the
// next column may run into it when its used (total - free - buff/cache)
// wraps.
func freeTotalOf(out string) string {
	i := strings.Index(out, "\nMem:")
	if i < 0 || len(out) < i+5+15 {
		return ""
	}
	return strings.TrimSpace(out[i+5 : i+5+15])
}

// checkFreeUptime checks busybox free's and uptime's output in out: a total
// of 64 MiB and, on a host up for two minutes or more (so that its uptime
// prints differently), an uptime of 0 minutes.
func checkFreeUptime(t *testing.T, out string) {
	t.Helper()
	if total := freeTotalOf(out); total != "65536" {
		t.Errorf("busybox free inside a 64M container: total %q, want 65536 KiB:\n%s", total, out)
	}
	var host syscall.Sysinfo_t
	if syscall.Sysinfo(&host); host.Uptime < 120 {
		t.Logf("host up %d s: busybox uptime prints the container's and the host's alike; not checked", host.Uptime)
		return
	}
	u := upMinutes.FindStringSubmatch(out)
	if u == nil || u[1] != "0" {
		t.Errorf("busybox uptime inside a fresh container: %v, want up 0 min (host up %d s):\n%s", u, host.Uptime, out)
	}
}

// TestSeccompAgentFreeUptime: with org.lkc.proc=virtual, busybox free and
// uptime (both sysinfo(2)) see the container's 64 MiB and its uptime,
// answered by the daemon's seccomp agent.
func TestSeccompAgentFreeUptime(t *testing.T) {
	d := newDaemonEnv(t)
	r := d.run([]string{"sh", "-c", "free; uptime"}, virtualProc)
	if r.code != 0 {
		t.Fatalf("container with a virtual view: %v", r)
	}
	t.Logf("busybox free and uptime inside:\n%s", r.stdout)
	checkFreeUptime(t, r.stdout)
}

// TestSeccompAgentLoads: sysinfo's load averages (busybox uptime) are the
// container's own, sampled every 5 s like /proc/loadavg's: a busy loop
// running across a sample raises the 1-minute average above 0.00, and
// uptime and /proc/loadavg say the same.
func TestSeccompAgentLoads(t *testing.T) {
	d := newDaemonEnv(t)
	r := d.run([]string{"sh", "-c", "while :; do :; done & sleep 6; uptime; cat /proc/loadavg; kill $!"}, virtualProc)
	if r.code != 0 {
		t.Fatalf("container: %v", r)
	}
	up := regexp.MustCompile(`load average: ([0-9.]+), [0-9.]+, [0-9.]+`).FindStringSubmatch(r.stdout)
	avg := regexp.MustCompile(`(?m)^([0-9.]+) [0-9.]+ [0-9.]+ \d+/\d+ \d+$`).FindStringSubmatch(r.stdout)
	if up == nil || avg == nil {
		t.Fatalf("no load average in:\n%s", r.stdout)
	}
	if up[1] == "0.00" || avg[1] == "0.00" {
		t.Errorf("a busy loop across a sample left the load at 0.00 (uptime %s, loadavg %s):\n%s", up[1], avg[1], r.stdout)
	}
	if up[1] != avg[1] {
		t.Logf("uptime %s and /proc/loadavg %s differ (a sample between the two reads?)", up[1], avg[1])
	}
}

// TestSeccompInFlightAcrossKill: the worker dies (SIGKILL) right after
// receiving the container's sysinfo; the holder's next worker takes the
// listener and the journal and answers it with the container's values.
func TestSeccompInFlightAcrossKill(t *testing.T) {
	d := newDaemonEnv(t)
	marker := filepath.Join(t.TempDir(), "die")
	if err := os.WriteFile(marker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv(seccompagent.DieEnv, marker)
	first := d.start().WorkerPid
	r := d.run([]string{"free"}, virtualProc)
	if r.code != 0 || freeTotalOf(r.stdout) != "65536" {
		t.Fatalf("free across the worker's death: %v, want total 65536", r)
	}
	if _, err := os.Stat(marker); !os.IsNotExist(err) {
		t.Fatalf("the worker never reached its death after receiving (marker: %v)", err)
	}
	if now := d.status().WorkerPid; now == first || now == 0 {
		t.Fatalf("worker %d before, %d after: want a new worker", first, now)
	}
}

// TestSeccompAgentOwnListenerRefused: a profile with its own listener
// and the virtual view cannot both have sysinfo: one line naming it, and
// the daemon lets the container go.
func TestSeccompAgentOwnListenerRefused(t *testing.T) {
	d := newDaemonEnv(t)
	own := filepath.Join(t.TempDir(), "own.sock")
	b := d.bundle([]string{"true"}, func(s *specs.Spec) {
		virtualProc(s)
		s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, ListenerPath: own,
			Syscalls: []specs.LinuxSyscall{{Names: []string{"mkdir"}, Action: specs.ActNotify}}}
	})
	line := d.failLkc("org.lkc.proc=virtual: linux.seccomp.listenerPath", "run", "--bundle", b, d.id())
	if !strings.Contains(line, own) {
		t.Errorf("error %q does not name the profile's listenerPath %s", line, own)
	}
	if st := d.status(); len(st.Containers) != 0 {
		t.Errorf("daemon still serves %v after the refused create", st.Containers)
	}
}

// TestSeccompNoFeatureNoFilter: a container without the annotation gets
// no filter (Seccomp: 0 in its status) and the host's sysinfo; one with it
// gets the filter.
func TestSeccompNoFeatureNoFilter(t *testing.T) {
	d := newDaemonEnv(t)
	r := d.run([]string{"sh", "-c", "grep ^Seccomp: /proc/self/status; free"}, nil)
	if r.code != 0 || !strings.Contains(r.stdout, "Seccomp:\t0") {
		t.Fatalf("container without the feature: %v, want no seccomp filter", r)
	}
	if total := freeTotalOf(r.stdout); total == "" || total == "65536" {
		t.Errorf("free without the feature: total %q, want the host's", total)
	}
	r = d.run([]string{"grep", "^Seccomp:", "/proc/self/status"}, virtualProc)
	if r.code != 0 || !strings.Contains(r.stdout, "Seccomp:\t2") {
		t.Errorf("container with the feature: %v, want a seccomp filter (mode 2)", r)
	}
}

// TestSeccompAgentExec: an lkc exec process loads the filter again and its
// listener reaches the agent too; free in it sees the container's 64 MiB;
// the execs' listeners leave the holder when they end.
func TestSeccompAgentExec(t *testing.T) {
	d := newDaemonEnv(t)
	id, _ := d.runningPid(virtualProc)
	for i := 0; i < 2; i++ {
		if total := freeTotalOf(d.mustLkc("exec", id, "free")); total != "65536" {
			t.Fatalf("free in exec %d: total %q, want 65536", i, total)
		}
	}
	deadline := time.Now().Add(settle)
	for heldListeners(d.status().Held) != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("listeners held after the execs ended: %v, want init's only", d.status().Held)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func heldListeners(keys []string) int {
	n := 0
	for _, k := range keys {
		if strings.HasPrefix(k, "seccomp/") {
			n++
		}
	}
	return n
}

// TestSeccompAgentExecAfterRestore: a restored container is adopted again
// and its lkc exec loads the config's filter with the sysinfo rule, so its
// free sees the container's 64 MiB again.
func TestSeccompAgentExecAfterRestore(t *testing.T) {
	requireCriu(t)
	d := newDaemonEnv(t)
	id, _ := d.runningPid(virtualProc)
	bundle := bundleOf(d.env, id)
	images := filepath.Join(t.TempDir(), "images")
	d.mustLkc("checkpoint", "--image-path", images, id)
	d.mustLkc("restore", "-d", "--bundle", bundle, "--image-path", images, id)
	if total := freeTotalOf(d.mustLkc("exec", id, "free")); total != "65536" {
		t.Fatalf("free in an exec after restore: total %q, want 65536", total)
	}
}

// TestSeccompAgentLargeAnnotations: the state a runtime sends with the
// notify fd carries the container's annotations, which may be far larger
// than one read of the socket (a Kubernetes pod's, Podman's
// --annotation): the agent still takes the listener, and sysinfo answers
// the container's 64 MiB rather than failing with ENOSYS.
func TestSeccompAgentLargeAnnotations(t *testing.T) {
	d := newDaemonEnv(t)
	r := d.run([]string{"free"}, func(s *specs.Spec) {
		virtualProc(s)
		s.Annotations["org.example.big"] = strings.Repeat("x", 300<<10)
	})
	if r.code != 0 {
		t.Fatalf("free in a container with 300 KiB of annotations: %v", r)
	}
	if total := freeTotalOf(r.stdout); total != "65536" {
		t.Errorf("busybox free: total %q, want 65536 KiB:\n%s", total, r.stdout)
	}
}
