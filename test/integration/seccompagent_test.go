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

// agentDir makes the daemon directory lkc finds the agent in.
func agentDir(t *testing.T) string {
	dir := t.TempDir()
	t.Setenv("LKC_DAEMON_DIR", dir)
	return dir
}

var (
	upMinutes = regexp.MustCompile(`up\s+(\d+) min,`)
)

// freeTotalOf is busybox free's total column: 15 wide after "Mem:"; the
// next column may run into it (used = total - free - buff/cache wraps
// while /proc/meminfo, where buff/cache comes from, is the host's).
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
// uptime (both sysinfo(2)) see the container's 64 MiB and its uptime.
func TestSeccompAgentFreeUptime(t *testing.T) {
	e := newEnv(t)
	dir := agentDir(t)
	startAgent(t, e, dir, newHolder(t))
	r := e.run([]string{"sh", "-c", "free; uptime"}, virtualProc)
	if r.code != 0 {
		t.Fatalf("container with a virtual view: %v", r)
	}
	t.Logf("busybox free and uptime inside:\n%s", r.stdout)
	checkFreeUptime(t, r.stdout)
}

// TestSeccompInFlightAcrossKill: the agent dies (SIGKILL) right after
// receiving the container's sysinfo; a successor started with the held
// listener and journal answers it with the container's values.
func TestSeccompInFlightAcrossKill(t *testing.T) {
	e := newEnv(t)
	dir := agentDir(t)
	h := newHolder(t)
	marker := filepath.Join(t.TempDir(), "die")
	if err := os.WriteFile(marker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	first := startAgent(t, e, dir, h, seccompagent.DieEnv+"="+marker)
	res := make(chan result, 1)
	go func() { res <- e.run([]string{"free"}, virtualProc) }()
	select {
	case <-first.done:
	case r := <-res:
		t.Fatalf("the container ended before the agent died: %v", r)
	case <-time.After(30 * time.Second):
		t.Fatal("the agent was never notified")
	}
	if ws, ok := first.cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("first agent: %v, want killed by its hook after receiving", first.err)
	}
	select {
	case r := <-res:
		t.Fatalf("sysinfo returned while no agent ran: %v", r)
	case <-time.After(200 * time.Millisecond):
	}
	startAgent(t, e, dir, h)
	select {
	case r := <-res:
		if r.code != 0 || freeTotalOf(r.stdout) != "65536" {
			t.Fatalf("free across the agent's death: %v, want total 65536", r)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("sysinfo in flight across the agent's death never returned")
	}
}

// TestSeccompAgentAbsentRefused: without an agent listening, create of a
// container with the virtual view fails in one line and leaves nothing.
func TestSeccompAgentAbsentRefused(t *testing.T) {
	e := newEnv(t)
	agentDir(t)
	b := e.bundle([]string{"true"}, virtualProc)
	e.failLkc("seccomp listenerPath", "run", "--bundle", b, e.id())
}

// TestSeccompAgentOwnListenerRefused: a profile with its own listener
// and the virtual view cannot both have sysinfo: one line naming it.
func TestSeccompAgentOwnListenerRefused(t *testing.T) {
	e := newEnv(t)
	agentDir(t)
	own := filepath.Join(t.TempDir(), "own.sock")
	b := e.bundle([]string{"true"}, func(s *specs.Spec) {
		virtualProc(s)
		s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, ListenerPath: own,
			Syscalls: []specs.LinuxSyscall{{Names: []string{"mkdir"}, Action: specs.ActNotify}}}
	})
	line := e.failLkc("org.lkc.proc=virtual: linux.seccomp.listenerPath", "run", "--bundle", b, e.id())
	if !strings.Contains(line, own) {
		t.Errorf("error %q does not name the profile's listenerPath %s", line, own)
	}
}

// TestSeccompNoFeatureNoFilter: a container without the annotation gets
// no filter (Seccomp: 0 in its status) and the host's sysinfo.
func TestSeccompNoFeatureNoFilter(t *testing.T) {
	e := newEnv(t)
	dir := agentDir(t)
	startAgent(t, e, dir, newHolder(t))
	r := e.run([]string{"sh", "-c", "grep ^Seccomp: /proc/self/status; free"}, nil)
	if r.code != 0 || !strings.Contains(r.stdout, "Seccomp:\t0") {
		t.Fatalf("container without the feature: %v, want no seccomp filter", r)
	}
	var host syscall.Sysinfo_t
	syscall.Sysinfo(&host)
	if total := freeTotalOf(r.stdout); total == "" || total == "65536" {
		t.Errorf("free without the feature: total %q, want the host's", total)
	}
	r = e.run([]string{"grep", "^Seccomp:", "/proc/self/status"}, virtualProc)
	if r.code != 0 || !strings.Contains(r.stdout, "Seccomp:\t2") {
		t.Errorf("container with the feature: %v, want a seccomp filter (mode 2)", r)
	}
}

// TestSeccompAgentExec: an lkc exec process loads the filter again and its
// listener reaches the agent too; free in it sees the container's 64 MiB.
func TestSeccompAgentExec(t *testing.T) {
	e := newEnv(t)
	dir := agentDir(t)
	h := newHolder(t)
	startAgent(t, e, dir, h)
	id, _ := e.runningPid(virtualProc)
	for i := 0; i < 2; i++ {
		if total := freeTotalOf(e.mustLkc("exec", id, "free")); total != "65536" {
			t.Fatalf("free in exec %d: total %q, want 65536", i, total)
		}
	}
	// The execs' filters ended with them: the agent drops their listeners
	// (POLLHUP) and only init's stays held.
	deadline := time.Now().Add(5 * time.Second)
	for heldListeners(h) != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("listeners held after the execs ended: %v, want init's only", h.keys())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func heldListeners(h *holder) int {
	n := 0
	for _, k := range h.keys() {
		if strings.HasPrefix(k, "seccomp/") {
			n++
		}
	}
	return n
}

// TestSeccompAgentExecAfterRestore: a restored container's lkc exec loads
// the config's filter with the sysinfo rule, as after create, so its free
// sees the container's 64 MiB again.
func TestSeccompAgentExecAfterRestore(t *testing.T) {
	requireCriu(t)
	e := newEnv(t)
	dir := agentDir(t)
	startAgent(t, e, dir, newHolder(t))
	id, _ := e.runningPid(virtualProc)
	bundle := bundleOf(e, id)
	images := filepath.Join(t.TempDir(), "images")
	e.mustLkc("checkpoint", "--image-path", images, id)
	e.mustLkc("restore", "-d", "--bundle", bundle, "--image-path", images, id)
	if total := freeTotalOf(e.mustLkc("exec", id, "free")); total != "65536" {
		t.Fatalf("free in an exec after restore: total %q, want 65536", total)
	}
}
