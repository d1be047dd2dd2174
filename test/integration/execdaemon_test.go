package integration

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// execSeesContainer runs an lkc exec into container id, a 64 MiB one with
// a virtual /proc, and checks that it works at its first try, without a
// warning, and that its meminfo (the /proc view) and busybox free
// (sysinfo, the seccomp agent) show the container's 64 MiB.
func (d *daemonEnv) execSeesContainer(id, what string) {
	d.t.Helper()
	r := d.lkc("exec", id, "sh", "-c", "head -1 /proc/meminfo; free")
	if r.code != 0 || r.stderr != "" {
		d.t.Fatalf("exec %s: %v", what, r)
	}
	if !matches(`^MemTotal: +65536 kB\n`, r.stdout) {
		d.t.Errorf("meminfo in an exec %s: %q, want MemTotal 65536 kB", what, r.stdout)
	}
	if total := freeTotalOf(r.stdout); total != "65536" {
		d.t.Errorf("busybox free in an exec %s: total %q, want 65536:\n%s", what, total, r.stdout)
	}
}

// TestExecAfterDaemonStop: after lkc daemon stop, an exec into a
// container with org.lkc.proc=virtual (whose seccomp listener is the
// daemon's agent) starts the daemon, which takes the container back
// before the exec hands over its listener.
func TestExecAfterDaemonStop(t *testing.T) {
	d := newDaemonEnv(t)
	id := d.procContainer([]string{"sleep", "1000"})
	d.execSeesContainer(id, "with the daemon running")
	d.mustLkc("daemon", "stop")
	d.execSeesContainer(id, "after lkc daemon stop")
	if s := d.status(); len(s.Containers) != 1 || s.Containers[0].ID != id {
		t.Errorf("daemon status after the exec: %+v, want %s served", s.Containers, id)
	}
	// The files were repaired once (by the start or by the reattach);
	// the reattach of the next execs finds them served and repairs
	// nothing.
	d.execSeesContainer(id, "again")
	d.execSeesContainer(id, "a third time")
	log, _ := os.ReadFile(filepath.Join(d.dir, "daemon.log"))
	if n := strings.Count(string(log), "container "+id+" has this session's files again"); n != 1 {
		t.Errorf("the container's files were repaired %d times, want once", n)
	}
}

// TestExecAfterDaemonKilled: the same after SIGKILL of holder and worker
// (both stopped first, so that neither starts the other again).
func TestExecAfterDaemonKilled(t *testing.T) {
	d := newDaemonEnv(t)
	id := d.procContainer([]string{"sleep", "1000"})
	d.killBoth()
	d.execSeesContainer(id, "after SIGKILL of holder and worker")
}

// killBoth SIGKILLs the daemon's holder and worker, both stopped first
// so that neither starts the other again, and waits until no process of
// the daemon is seen (its threads may still be closing their fds).
func (d *daemonEnv) killBoth() {
	d.t.Helper()
	s := d.status()
	var fds []int
	for _, p := range []int{s.HolderPid, s.WorkerPid} {
		fd, err := unix.PidfdOpen(p, 0)
		if err != nil {
			d.t.Fatal(err)
		}
		defer unix.Close(fd)
		unix.PidfdSendSignal(fd, unix.SIGSTOP, nil, 0)
		fds = append(fds, fd)
	}
	for _, fd := range fds {
		unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0)
	}
	waitFor(d.t, func() bool { return len(d.processes()) == 0 }, "both daemon processes gone")
}

// TestExecWithoutDaemonWarns: when the daemon cannot be started (here
// daemon.autostart = false), an exec into a container with a virtual
// /proc still runs, after one warning line, and its sysinfo is the
// kernel's, not ENOSYS: busybox uptime (sysinfo alone; free reads the
// dead view's meminfo too) shows the uptime of the container's time
// namespace, which its config puts two days on, where a failed call
// leaves zeros.
func TestExecWithoutDaemonWarns(t *testing.T) {
	d := newDaemonEnv(t)
	b := d.bundle([]string{"sleep", "1000"}, func(s *specs.Spec) {
		s.Annotations = map[string]string{"org.lkc.proc": "virtual"}
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.TimeNamespace})
		s.Linux.TimeOffsets = map[string]specs.LinuxTimeOffset{"boottime": {Secs: 2 * 86400}}
	})
	id := d.id()
	d.mustLkc("run", "-d", "--bundle", b, id)
	t.Cleanup(func() { d.lkc("delete", "--force", id) })
	d.mustLkc("daemon", "stop")
	if err := os.WriteFile(os.Getenv("LKC_CONFIG"), []byte("daemon.autostart = false\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := d.lkc("exec", id, "uptime")
	if r.code != 0 {
		t.Fatalf("exec with no daemon to be had: %v", r)
	}
	if lines := strings.Split(strings.TrimSpace(r.stderr), "\n"); len(lines) != 1 || !strings.HasPrefix(lines[0], "lkc: warning: container "+id+": ") ||
		!strings.Contains(lines[0], "autostart") {
		t.Errorf("stderr %q, want one warning line naming the container and why", r.stderr)
	}
	if !matches(`up +2 days,`, r.stdout) {
		t.Errorf("busybox uptime with no agent: %q, want the kernel's for the container's time namespace (up 2 days)", r.stdout)
	}
	if pids := d.processes(); len(pids) != 0 {
		t.Errorf("a daemon started with autostart off: %v", pids)
	}
}

// TestExecOwnListenerGoneFails: a container whose profile has the user's
// own listenerPath keeps runc's behaviour: once that agent is gone, lkc
// exec fails (exit 255, one line naming the listener), and lkc starts no
// daemon for it.
func TestExecOwnListenerGoneFails(t *testing.T) {
	d := newDaemonEnv(t)
	sock := filepath.Join(t.TempDir(), "own.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			buf, oob := make([]byte, 1<<20), make([]byte, unix.CmsgSpace(4))
			_, oobn, _, _, _ := c.(*net.UnixConn).ReadMsgUnix(buf, oob)
			if msgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil && len(msgs) == 1 {
				fds, _ := unix.ParseUnixRights(&msgs[0])
				for _, fd := range fds {
					unix.Close(fd)
				}
			}
			c.Close()
		}
	}()
	sc := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, ListenerPath: sock,
		Syscalls: []specs.LinuxSyscall{{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActNotify}}}
	id, _ := d.runningPid(withSeccomp(sc))
	l.Close()
	r := d.lkc("exec", id, "true")
	if r.code != 255 || !strings.Contains(r.stderr, "seccomp listenerPath") || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
		t.Errorf("exec with the container's own agent gone: %v, want exit 255 and one line naming the listener", r)
	}
	if pids := d.processes(); len(pids) != 0 {
		t.Errorf("exec with the user's own listener started a daemon: %v", pids)
	}
}
