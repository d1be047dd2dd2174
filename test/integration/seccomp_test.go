package integration

import (
	"encoding/json"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// withSeccomp sets sc as the profile and gives the container a writable
// /tmp, so a failing mkdir there is the filter's doing.
func withSeccomp(sc *specs.LinuxSeccomp) func(*specs.Spec) {
	return func(s *specs.Spec) {
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs"})
		s.Linux.Seccomp = sc
	}
}

func errnoRet(e uint) *uint { return &e }

// denyMkdir allows everything but mkdir, which fails with EPERM.
func denyMkdir() *specs.LinuxSeccomp {
	return &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32},
		Syscalls: []specs.LinuxSyscall{{
			Names: []string{"mkdir", "mkdirat"}, Action: specs.ActErrno, ErrnoRet: errnoRet(1),
		}},
	}
}

func TestSeccompDenyMkdir(t *testing.T) {
	e := newEnv(t)
	args := []string{"sh", "-c", "ls / >/dev/null && echo ls-ok && mkdir /tmp/x && echo mkdir-ok"}
	// Without the profile mkdir works, so a failure below is the filter's.
	if r := e.run(args, withSeccomp(nil)); r.code != 0 || !strings.Contains(r.stdout, "mkdir-ok") {
		t.Fatalf("without seccomp: %v", r)
	}
	for _, nnp := range []bool{true, false} {
		r := e.run(args, func(s *specs.Spec) {
			withSeccomp(denyMkdir())(s)
			// Without no_new_privs the filter goes in before the switch to
			// an unprivileged user, which then still works.
			s.Process.NoNewPrivileges = nnp
			s.Process.User = specs.User{UID: 1000, GID: 1000}
		})
		if r.code == 0 || !strings.Contains(r.stdout, "ls-ok") || strings.Contains(r.stdout, "mkdir-ok") ||
			!strings.Contains(r.stderr, "Operation not permitted") {
			t.Errorf("noNewPrivileges %v: want ls to work and mkdir to fail with EPERM, got %v", nnp, r)
		}
	}
}

// allowList is enough for busybox's sh to run true and echo (and lkc init
// between loading the filter and execve); mkdir is left out. A name no
// kernel has is skipped.
var allowList = []string{
	"execve", "brk", "arch_prctl", "set_tid_address", "set_robust_list", "rseq", "prlimit64",
	"mmap", "munmap", "mprotect", "readlink", "getuid", "geteuid", "getgid", "getegid",
	"getpid", "getppid", "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "sigaltstack",
	"read", "write", "writev", "close", "exit", "exit_group", "futex", "nanosleep",
	"openat", "open", "fstat", "newfstatat", "stat", "lstat", "statx", "fcntl", "ioctl", "getcwd",
	"dup2", "dup3", "wait4", "clone", "fork", "vfork", "getrandom", "lkc_no_such_syscall",
}

func TestSeccompDefaultErrnoAllowList(t *testing.T) {
	e := newEnv(t)
	sc := &specs.LinuxSeccomp{
		DefaultAction: specs.ActErrno, DefaultErrnoRet: errnoRet(uint(unix.EACCES)),
		Syscalls: []specs.LinuxSyscall{{Names: allowList, Action: specs.ActAllow}},
	}
	if r := e.run([]string{"sh", "-c", "true && echo alive"}, withSeccomp(sc)); r.code != 0 || r.stdout != "alive\n" {
		t.Errorf("allow-listed sh: %v", r)
	}
	r := e.run([]string{"mkdir", "/tmp/x"}, withSeccomp(sc))
	if r.code == 0 || !strings.Contains(r.stderr, "Permission denied") {
		t.Errorf("mkdir, not allowed: want the default EACCES, got %v", r)
	}
}

func TestSeccompArgs(t *testing.T) {
	e := newEnv(t)
	// personality(PER_LINUX32) is refused, personality(PER_LINUX) is not.
	sc := &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Syscalls: []specs.LinuxSyscall{{
			Names: []string{"personality"}, Action: specs.ActErrno, ErrnoRet: errnoRet(1),
			Args: []specs.LinuxSeccompArg{{Index: 0, Value: 0x0008, Op: specs.OpEqualTo}},
		}},
	}
	if r := e.run([]string{"linux64", "echo", "ok"}, withSeccomp(sc)); r.code != 0 || r.stdout != "ok\n" {
		t.Errorf("personality(PER_LINUX): %v", r)
	}
	if r := e.run([]string{"linux32", "echo", "ok"}, withSeccomp(sc)); r.code == 0 || !strings.Contains(r.stderr, "Operation not permitted") {
		t.Errorf("personality(PER_LINUX32): want EPERM, got %v", r)
	}
	if r := e.run([]string{"linux32", "echo", "ok"}, withSeccomp(nil)); r.code != 0 {
		t.Errorf("personality(PER_LINUX32) without seccomp: %v", r)
	}
}

func TestSeccompKillProcess(t *testing.T) {
	e := newEnv(t)
	sc := &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Syscalls:      []specs.LinuxSyscall{{Names: []string{"uname"}, Action: specs.ActKillProcess}},
	}
	if r := e.run([]string{"uname"}, withSeccomp(sc)); r.code != 128+int(unix.SIGSYS) {
		t.Errorf("uname under KILL_PROCESS: want exit %d, got %v", 128+int(unix.SIGSYS), r)
	}
	if r := e.run([]string{"echo", "ok"}, withSeccomp(sc)); r.code != 0 {
		t.Errorf("echo under the same profile: %v", r)
	}
}

func TestSeccompExec(t *testing.T) {
	e := newEnv(t)
	id, _ := e.runningPid(func(s *specs.Spec) {
		withSeccomp(denyMkdir())(s)
		s.Process.NoNewPrivileges = false
	})
	// Both ways of loading the filter: before dropping to uid 1000
	// (no no_new_privs), and last with no_new_privs.
	for _, args := range [][]string{{"--user", "1000:1000"}, {"--no-new-privs"}} {
		cmd := append(append([]string{"exec"}, args...), id, "mkdir", "/tmp/y")
		if r := e.lkc(cmd...); r.code == 0 || !strings.Contains(r.stderr, "Operation not permitted") {
			t.Errorf("exec %v mkdir in a seccomp'd container: want EPERM, got %v", args, r)
		}
	}
	if out := e.mustLkc("exec", id, "sh", "-c", "ls -d /tmp"); strings.TrimSpace(out) != "/tmp" {
		t.Errorf("exec ls: %q", out)
	}
}

// notified is what the test's seccomp agent saw.
type notified struct {
	state   specs.ContainerProcessState
	syscall string
	err     error
}

// seccompAgent accepts one connection on sock, reads the notify fd and the
// state, answers the first notification with EACCES and reports.
func seccompAgent(t *testing.T, sock string) <-chan notified {
	t.Helper()
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan notified, 1)
	go func() {
		defer l.Close()
		var n notified
		n.err = agent(l, &n)
		ch <- n
	}()
	return ch
}

func agent(l *net.UnixListener, n *notified) error {
	l.SetDeadline(time.Now().Add(30 * time.Second))
	conn, err := l.AcceptUnix()
	if err != nil {
		return err
	}
	defer conn.Close()
	buf, oob := make([]byte, 1<<16), make([]byte, unix.CmsgSpace(4))
	nb, noob, _, _, err := conn.ReadMsgUnix(buf, oob)
	if err != nil {
		return err
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:noob])
	if err != nil || len(msgs) != 1 {
		return err
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil {
		return err
	}
	defer unix.Close(fds[0])
	if err := json.Unmarshal(buf[:nb], &n.state); err != nil {
		return err
	}
	req, err := libseccomp.NotifReceive(libseccomp.ScmpFd(fds[0]))
	if err != nil {
		return err
	}
	n.syscall, _ = req.Data.Syscall.GetName()
	return libseccomp.NotifRespond(libseccomp.ScmpFd(fds[0]), &libseccomp.ScmpNotifResp{ID: req.ID, Error: int32(unix.EACCES)})
}

func TestSeccompNotify(t *testing.T) {
	e := newEnv(t)
	sock := filepath.Join(t.TempDir(), "agent.sock")
	got := seccompAgent(t, sock)
	sc := &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow, ListenerPath: sock, ListenerMetadata: "meta-1",
		Syscalls: []specs.LinuxSyscall{{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActNotify}},
	}
	r := e.run([]string{"sh", "-c", "mkdir /tmp/x; echo done"}, withSeccomp(sc))
	n := <-got
	if n.err != nil {
		t.Fatalf("seccomp agent: %v (container: %v)", n.err, r)
	}
	if r.code != 0 || r.stdout != "done\n" || !strings.Contains(r.stderr, "Permission denied") {
		t.Errorf("mkdir answered EACCES by the agent: got %v", r)
	}
	st := n.state
	if st.Version == "" || len(st.Fds) != 1 || st.Fds[0] != "seccompFd" || st.Metadata != "meta-1" ||
		st.Pid <= 0 || st.State.Pid != st.Pid || !strings.HasPrefix(st.State.ID, "it-") {
		t.Errorf("process state sent with the fd: %+v", st)
	}
	if n.syscall != "mkdir" && n.syscall != "mkdirat" {
		t.Errorf("notified syscall %q, want mkdir or mkdirat", n.syscall)
	}
}
