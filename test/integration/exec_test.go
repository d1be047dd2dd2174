package integration

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// runningPid starts a detached container that sleeps and returns its id
// and init pid.
func (e *env) runningPid(mutate func(*specs.Spec)) (string, int) {
	e.t.Helper()
	id := e.id()
	e.mustLkc("run", "-d", "--bundle", e.bundle([]string{"sleep", "1000"}, mutate), id)
	return id, int(e.state(id)["pid"].(float64))
}

func TestExecJoinsEveryNamespace(t *testing.T) {
	e := newEnv(t)
	id, init := e.runningPid(nil)
	out := e.mustLkc("exec", id, "sh", "-c", "for ns in pid mnt net uts ipc cgroup; do readlink /proc/self/ns/$ns; done")
	var want []string
	for _, ns := range []string{"pid", "mnt", "net", "uts", "ipc", "cgroup"} {
		link, err := os.Readlink(filepath.Join("/proc", strconv.Itoa(init), "ns", ns))
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, link)
	}
	if got := strings.Fields(out); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("exec namespaces %v, init's %v", got, want)
	}
	// It is in the container's pid namespace and cgroup, not the host's.
	out = e.mustLkc("exec", id, "sh", "-c", "echo $$; cat /proc/1/cmdline | tr '\\0' ' '; grep -c ':/$' /proc/self/cgroup")
	f := strings.Fields(out)
	if len(f) < 4 || f[0] == "1" || f[1] != "sleep" || f[3] == "0" {
		t.Fatalf("exec: want a non-1 pid next to init 'sleep 1000' and its cgroup as /, got %q", out)
	}
}

func TestExecExitCodeEnvCwdUser(t *testing.T) {
	e := newEnv(t)
	id, _ := e.runningPid(nil)
	if r := e.lkc("exec", id, "sh", "-c", "exit 7"); r.code != 7 {
		t.Errorf("exit 7: got %v", r)
	}
	out := e.mustLkc("exec", "--env", "FOO=bar", "--cwd", "/tmp", "--user", "1000:1001", "--additional-gids", "2000", id,
		"sh", "-c", `echo "$FOO $(pwd) $(id -u) $(id -g) $(id -G)"`)
	if strings.TrimSpace(out) != "bar /tmp 1000 1001 1001 2000" {
		t.Fatalf("exec env/cwd/user: got %q", out)
	}
}

func TestExecProcessFileAndCaps(t *testing.T) {
	e := newEnv(t)
	id, _ := e.runningPid(nil)
	proc := filepath.Join(t.TempDir(), "process.json")
	os.WriteFile(proc, []byte(`{"args":["sh","-c","echo from-file $X"],"env":["PATH=/bin","X=1"],"cwd":"/"}`), 0o644)
	if out := e.mustLkc("exec", "--process", proc, id); strings.TrimSpace(out) != "from-file 1" {
		t.Errorf("exec --process: got %q", out)
	}
	// The default spec has no CAP_SYS_ADMIN (bit 21); --cap adds it.
	capEff := func(args ...string) string {
		out := e.mustLkc(append(append([]string{"exec"}, args...), id, "grep", "CapEff", "/proc/self/status")...)
		return strings.Fields(out)[1]
	}
	if before, after := capEff(), capEff("--cap", "CAP_SYS_ADMIN"); before == after {
		t.Errorf("--cap CAP_SYS_ADMIN changed nothing: %s", before)
	}
}

func TestExecDetachPidFile(t *testing.T) {
	e := newEnv(t)
	id, _ := e.runningPid(nil)
	pidFile := filepath.Join(t.TempDir(), "pid")
	e.mustLkc("exec", "--detach", "--pid-file", pidFile, id, "sleep", "1000")
	data, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(string(data))
	cg, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cgroup"))
	if err != nil || !strings.Contains(string(cg), "/lkc/"+id+"\n") {
		t.Fatalf("detached exec pid %d is not in the container's cgroup: %q %v", pid, cg, err)
	}
}

func TestExecRefusedWhenPausedOrStopped(t *testing.T) {
	e := newEnv(t)
	id, _ := e.runningPid(nil)
	e.mustLkc("pause", id)
	// As runc: the error names the way out, exit 255, nothing started.
	if r := e.lkc("exec", id, "true"); r.code != 255 {
		t.Errorf("exec into a paused container: %v, want exit 255", r)
	}
	e.failLkc(`cannot exec in container .*: it is paused \(use --ignore-paused to override\)`, "exec", id, "true")
	if pids := processesIn(id); len(pids) != 1 {
		t.Errorf("refused execs left processes: %v besides init", pids)
	}
	e.mustLkc("resume", id)
	e.mustLkc("kill", id, "KILL")
	e.waitStatus(id, "stopped")
	e.failLkc("cannot exec in container .*: it is stopped", "exec", id, "true")
	e.failLkc("does not exist", "exec", "no-such-container", "true")
}

func TestExecIntoUserNamespace(t *testing.T) {
	e := newEnv(t)
	root := e.userNSRootfs()
	id, init := e.runningPid(func(s *specs.Spec) {
		s.Root.Path = root
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
		s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
		s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	})
	out := e.mustLkc("exec", id, "sh", "-c", "id -u; readlink /proc/self/ns/user")
	link, _ := os.Readlink(filepath.Join("/proc", strconv.Itoa(init), "ns", "user"))
	if f := strings.Fields(out); len(f) != 2 || f[0] != "0" || f[1] != link {
		t.Fatalf("exec into a user namespace: want uid 0 in %s, got %q", link, out)
	}
}

func TestExecWithConsoleSocket(t *testing.T) {
	e := newEnv(t)
	id, _ := e.runningPid(nil)
	l, sock := consoleSocket(t)
	done := make(chan result, 1)
	go func() { done <- e.lkc("exec", "--tty", "--console-socket", sock, id, "sh") }()
	master := recvMaster(t, l)
	defer master.Close()
	master.Write([]byte("tty; echo hi-$((2+3)); exit 4\n"))
	out := readUntil(t, master, "hi-5")
	if !strings.Contains(out, "/dev/pts/") {
		t.Fatalf("exec --tty: terminal output %q lacks the tty name", out)
	}
	if r := <-done; r.code != 4 {
		t.Fatalf("exec --tty: want exit 4, got %v", r)
	}
}

// TestExecCgroup runs processes in sub-cgroups of the container (runc's
// exec --cgroup); delete then kills them there and removes the sub-cgroups.
func TestExecCgroup(t *testing.T) {
	e := newEnv(t)
	id, _ := e.runningPid(nil)
	for _, d := range cgroupDirs(id) {
		// A new v1 cpuset cgroup has no cpus and would refuse tasks.
		if !strings.Contains(d, "cpuset") {
			if err := os.Mkdir(filepath.Join(d, "sub"), 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	args, want := []string{"--cgroup", "sub"}, []string{"0::/sub"}
	if !cgroupV2() {
		args = []string{"--cgroup", "memory:sub", "--cgroup", "pids,freezer:sub"}
		want = []string{":memory:/sub", ":pids:/sub", ":freezer:/sub", ":blkio:/"}
	}
	out := e.mustLkc(append(append([]string{"exec"}, args...), id, "cat", "/proc/self/cgroup")...)
	for _, w := range want {
		if !strings.Contains(out, w+"\n") {
			t.Errorf("exec %v: /proc/self/cgroup lacks %q:\n%s", args, w, out)
		}
	}
	e.mustLkc(append(append([]string{"exec", "-d"}, args...), id, "sleep", "1000")...)
	if ps := e.mustLkc("ps", "--format", "json", id); strings.Count(ps, ",")+1 != 2 {
		t.Errorf("ps: want init and the process in the sub-cgroup, got %s", ps)
	}
	e.failLkc(`--cgroup "nosuch": sub-cgroup .*no such file`, "exec", "--cgroup", "nosuch", id, "true")
	e.failLkc(`--cgroup "\.\./x": the path must stay below`, "exec", "--cgroup", "../x", id, "true")
	if !cgroupV2() {
		e.failLkc(`the container has no "nosuch" controller`, "exec", "--cgroup", "nosuch:sub", id, "true")
	}
	e.mustLkc("delete", "--force", id)
}

// TestExecStdioArePipes checks that a foreground exec gives the process
// pipes, as runc does, never lkc's own stdio files (here a host file, which
// the process could reopen through /proc/self/fd), and that the pipes carry
// everything: stdin, a megabyte of output, output of a non-root user that
// reopens /dev/stdout, and output of a process that leaves a background
// child holding the pipes open.
func TestExecStdioArePipes(t *testing.T) {
	e := newEnv(t)
	id, _ := e.runningPid(nil)
	out := e.mustLkc("exec", id, "sh", "-c", "for fd in 0 1 2; do readlink /proc/self/fd/$fd; done")
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if !strings.HasPrefix(l, "pipe:[") {
			t.Errorf("exec's stdio %q: want three pipes", out)
			break
		}
	}
	if out := e.mustLkc("exec", id, "sh", "-c", "head -c 1048576 /dev/zero | tr '\\0' a"); len(out) != 1<<20 || strings.Trim(out, "a") != "" {
		t.Errorf("1 MiB of output: got %d bytes", len(out))
	}
	if out := e.mustLkc("exec", "--user", "1000:1000", id, "sh", "-c", "echo reopened >/dev/stdout"); out != "reopened\n" {
		t.Errorf("non-root reopening /dev/stdout: got %q", out)
	}
	cmd := exec.Command(e.bin, "--root", e.root, "exec", id, "tr", "a-z", "A-Z")
	cmd.Stdin = strings.NewReader("from stdin")
	if got, err := cmd.Output(); err != nil || string(got) != "FROM STDIN" {
		t.Errorf("stdin through exec: got %q, %v", got, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd = exec.CommandContext(ctx, e.bin, "--root", e.root, "exec", id, "sh", "-c", "sleep 1000 & echo started")
	if got, err := cmd.Output(); err != nil || string(got) != "started\n" {
		t.Errorf("exec leaving a background child: got %q, %v", got, err)
	}
}

// TestExecCgroupOOMKillCounted: a process that `exec --cgroup` put in a
// sub-cgroup and the kernel OOM-kills there (here for the container's
// limit) counts in the container's OOM kills, in `events --stats` and in
// `lkc stats`. v1 counts the kill in the victim's own cgroup only.
func TestExecCgroupOOMKillCounted(t *testing.T) {
	e := newEnv(t)
	limit := int64(32 << 20)
	id, _ := e.runningPid(func(s *specs.Spec) {
		s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: &limit, Swap: &limit}
	})
	sub := "sub"
	for _, d := range cgroupDirs(id) {
		if cgroupV2() || strings.Contains(d, "/memory/") {
			if err := os.Mkdir(filepath.Join(d, "sub"), 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	if !cgroupV2() {
		sub = "memory:sub"
	}
	if n := num(t, e.stats(id), "memory.oomKill"); n != 0 {
		t.Fatalf("oomKill %v before any OOM", n)
	}
	// dd fills a 100 MiB buffer: over the container's limit, the kernel
	// kills it in the sub-cgroup.
	r := e.lkc("exec", "--cgroup", sub, id, "dd", "if=/dev/zero", "of=/dev/null", "bs=100M", "count=1")
	if r.code != 137 {
		t.Fatalf("dd of 100 MiB in a 32 MiB container: %v, want killed by SIGKILL (137)", r)
	}
	if n := num(t, e.stats(id), "memory.oomKill"); n != 1 {
		t.Errorf("events --stats: oomKill %v after the kill in the sub-cgroup, want 1", n)
	}
	if s := e.statsJSON(id); len(s) != 1 || s[0].OOMKills != 1 {
		t.Errorf("stats: %+v, want oomKills 1", s)
	}
	e.mustLkc("delete", "--force", id)
}
