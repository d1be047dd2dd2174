package integration

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// mustRunOut runs a container in the foreground, fails the test unless it
// exits 0, and returns its stdout without the trailing newline.
func (e *env) mustRunOut(args []string, mutate func(*specs.Spec)) string {
	e.t.Helper()
	r := e.run(args, mutate)
	if r.code != 0 {
		e.t.Fatalf("run %q: %v", args, r)
	}
	return strings.TrimRight(r.stdout, "\n")
}

// withoutNamespace removes namespace typ from the config.
func withoutNamespace(typ specs.LinuxNamespaceType) func(*specs.Spec) {
	return func(s *specs.Spec) {
		var keep []specs.LinuxNamespace
		for _, ns := range s.Linux.Namespaces {
			if ns.Type != typ {
				keep = append(keep, ns)
			}
		}
		s.Linux.Namespaces = keep
		if typ == specs.UTSNamespace {
			s.Hostname = ""
		}
		if typ == specs.MountNamespace {
			// Masking needs a mount namespace of the container's own.
			s.Linux.MaskedPaths, s.Linux.ReadonlyPaths = nil, nil
		}
	}
}

// setNamespace adds namespace typ (joined at path, or new when path is
// empty), replacing any namespace of that type.
func setNamespace(s *specs.Spec, typ specs.LinuxNamespaceType, path string) {
	withoutNamespace(typ)(s)
	s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: typ, Path: path})
	if typ == specs.UTSNamespace && path != "" {
		s.Hostname = ""
	}
}

// createdPid creates (but does not start) a container and returns its init pid.
func (e *env) createdPid(args []string, mutate func(*specs.Spec)) (string, int) {
	e.t.Helper()
	id := e.id()
	e.mustLkc("create", "--bundle", e.bundle(args, mutate), id)
	pid, ok := e.state(id)["pid"].(float64)
	if !ok || pid <= 0 {
		e.t.Fatalf("state %s has no pid: %v", id, e.state(id))
	}
	return id, int(pid)
}

func randName(t *testing.T) string {
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// TestNamespaceLinks checks, for each namespace type, that a container
// configured with it is in a namespace other than the host's, and one
// configured without it shares the host's.
func TestNamespaceLinks(t *testing.T) {
	types := []struct {
		typ  specs.LinuxNamespaceType
		proc string
	}{
		{specs.PIDNamespace, "pid"}, {specs.NetworkNamespace, "net"},
		{specs.UTSNamespace, "uts"}, {specs.IPCNamespace, "ipc"},
		{specs.CgroupNamespace, "cgroup"}, {specs.MountNamespace, "mnt"},
	}
	for _, tt := range types {
		t.Run(tt.proc, func(t *testing.T) {
			e := newEnv(t)
			// The namespaces lkc inherits are those of the thread that
			// starts it, so ask a child started the same way.
			out, err := exec.Command("readlink", "/proc/self/ns/"+tt.proc).Output()
			if err != nil {
				t.Fatal(err)
			}
			host := strings.TrimSpace(string(out))
			args := []string{"readlink", "/proc/self/ns/" + tt.proc}
			if in := e.mustRunOut(args, nil); in == host || !strings.HasPrefix(in, tt.proc+":[") {
				t.Errorf("with a new %s namespace: inside %q, host %q", tt.proc, in, host)
			}
			if in := e.mustRunOut(args, withoutNamespace(tt.typ)); in != host {
				t.Errorf("without a %s namespace: inside %q, want the host's %q", tt.proc, in, host)
			}
		})
	}
}

func TestNamespacePid(t *testing.T) {
	e := newEnv(t)
	out := e.mustRunOut([]string{"sh", "-c", "echo $$; ls /proc | grep -c '^[0-9]'"}, nil)
	f := strings.Fields(out)
	if len(f) != 2 || f[0] != "1" {
		t.Fatalf("want the shell as pid 1, got %q", out)
	}
	// The shell and ls (and grep) are all the container has.
	if n, _ := strconv.Atoi(f[1]); n < 1 || n > 3 {
		t.Errorf("container sees %s processes in /proc, want its own 1-3", f[1])
	}
}

func TestNamespaceNetworkOnlyLoopback(t *testing.T) {
	e := newEnv(t)
	out := e.mustRunOut([]string{"sh", "-c", "ip -o link | cut -d: -f2"}, nil)
	if strings.TrimSpace(out) != "lo" {
		t.Errorf("links in a new network namespace: %q, want only lo", out)
	}
}

func TestNamespaceUTS(t *testing.T) {
	e := newEnv(t)
	host, _ := os.Hostname()
	out := e.mustRunOut([]string{"hostname"}, func(s *specs.Spec) { s.Hostname = "uts-test" })
	if out != "uts-test" {
		t.Errorf("hostname inside: %q, want uts-test", out)
	}
	if now, _ := os.Hostname(); now != host {
		t.Errorf("host's hostname changed from %q to %q", host, now)
	}
}

func TestNamespaceIPC(t *testing.T) {
	e := newEnv(t)
	b := make([]byte, 3)
	rand.Read(b)
	key := 0x6c000000 | int(b[0])<<16 | int(b[1])<<8 | int(b[2])
	id, err := unix.SysvShmGet(key, 4096, unix.IPC_CREAT|unix.IPC_EXCL|0o600)
	if err != nil {
		t.Fatalf("creating a host shm segment: %v", err)
	}
	defer unix.SysvShmCtl(id, unix.IPC_RMID, nil)
	// The first column of /proc/sysvipc/shm is the key, in decimal.
	args := []string{"sh", "-c", fmt.Sprintf("awk '$1 == %d' /proc/sysvipc/shm | wc -l", key)}
	if out := e.mustRunOut(args, nil); out != "0" {
		t.Errorf("the host's shm segment (key %d) is visible in a new ipc namespace: %s", key, out)
	}
	if out := e.mustRunOut(args, withoutNamespace(specs.IPCNamespace)); out != "1" {
		t.Errorf("the host's shm segment (key %d) is not visible without an ipc namespace: %s", key, out)
	}
}

func TestNamespaceCgroup(t *testing.T) {
	e := newEnv(t)
	out := e.mustRunOut([]string{"cat", "/proc/self/cgroup"}, nil)
	for _, line := range strings.Split(out, "\n") {
		if !strings.HasSuffix(line, ":/") {
			t.Errorf("in a cgroup namespace every cgroup should read /, got %q", line)
		}
	}
	out = e.mustRunOut([]string{"cat", "/proc/self/cgroup"}, withoutNamespace(specs.CgroupNamespace))
	if !strings.Contains(out, "/lkc/it-") {
		t.Errorf("without a cgroup namespace the container should see its full cgroup path .../lkc/<id>, got\n%s", out)
	}
}

// userNSRootfs returns a rootfs copy owned by uid/gid 100000 beneath
// directories any uid may traverse, as a user namespace needs.
func (e *env) userNSRootfs() string {
	e.t.Helper()
	dir := e.writableRootfs()
	for p := filepath.Dir(dir); p != "/tmp" && p != "/"; p = filepath.Dir(p) {
		if err := os.Chmod(p, 0o755); err != nil {
			e.t.Fatal(err)
		}
	}
	if out, err := exec.Command("chown", "-R", "100000:100000", dir).CombinedOutput(); err != nil {
		e.t.Fatalf("chown rootfs: %v: %s", err, out)
	}
	return dir
}

func withUserNS(rootfs string) func(*specs.Spec) {
	return func(s *specs.Spec) {
		s.Root.Path = rootfs
		setNamespace(s, specs.UserNamespace, "")
		m := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
		s.Linux.UIDMappings, s.Linux.GIDMappings = m, m
	}
}

func TestNamespaceUser(t *testing.T) {
	e := newEnv(t)
	rootfs := e.userNSRootfs()
	out := e.mustRunOut([]string{"sh", "-c", "id -u; id -g; cat /proc/self/uid_map /proc/self/gid_map; stat -c %u /bin/busybox"}, withUserNS(rootfs))
	lines := strings.Split(out, "\n")
	want := []string{"0", "0", "0 100000 65536", "0 100000 65536", "0"}
	if len(lines) != len(want) {
		t.Fatalf("user namespace: got %q, want %q", lines, want)
	}
	for i := range want {
		if strings.Join(strings.Fields(lines[i]), " ") != want[i] {
			t.Errorf("user namespace line %d: got %q, want %q", i, lines[i], want[i])
		}
	}

	// From the host, the container's root is uid 100000.
	_, pid := e.createdPid([]string{"true"}, withUserNS(rootfs))
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if strings.HasPrefix(line, "Uid:") || strings.HasPrefix(line, "Gid:") {
			if f := strings.Fields(line); len(f) != 5 || f[1] != "100000" || f[2] != "100000" {
				t.Errorf("host view of init %d: %q, want ids 100000", pid, line)
			}
		}
	}
	host, _ := os.Readlink("/proc/self/ns/user")
	if in, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/user", pid)); in == host || in == "" {
		t.Errorf("init's user namespace %q is the host's %q", in, host)
	}
}

func TestNamespaceTimeOffsets(t *testing.T) {
	e := newEnv(t)
	const offset = 10000
	var host unix.Timespec
	unix.ClockGettime(unix.CLOCK_BOOTTIME, &host)
	out := e.mustRunOut([]string{"sh", "-c", "cut -d' ' -f1 /proc/uptime; readlink /proc/self/ns/time"}, func(s *specs.Spec) {
		setNamespace(s, specs.TimeNamespace, "")
		s.Linux.TimeOffsets = map[string]specs.LinuxTimeOffset{
			"monotonic": {Secs: offset}, "boottime": {Secs: offset},
		}
	})
	f := strings.Fields(out)
	if len(f) != 2 {
		t.Fatalf("time namespace: got %q", out)
	}
	up, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		t.Fatalf("uptime %q: %v", f[0], err)
	}
	if diff := up - float64(host.Sec); diff < offset-1 || diff > offset+30 {
		t.Errorf("uptime inside %.2f, host %d: shifted by %.0f s, want about %d", up, host.Sec, diff, offset)
	}
	if hostNS, _ := os.Readlink("/proc/self/ns/time"); f[1] == hostNS {
		t.Errorf("time namespace inside %q is the host's", f[1])
	}
}

func TestNamespaceJoinNetnsByPath(t *testing.T) {
	e := newEnv(t)
	name := "lkcit-" + randName(t)
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	if out, err := exec.Command("ip", "-n", name, "link", "add", "lkcbr0", "type", "bridge").CombinedOutput(); err != nil {
		t.Fatalf("adding a bridge link: %v: %s", err, out)
	}
	path := "/var/run/netns/" + name
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("net:[%d]", st.Ino)
	out := e.mustRunOut([]string{"sh", "-c", "ip -o link | cut -d: -f2; readlink /proc/self/ns/net"}, func(s *specs.Spec) {
		setNamespace(s, specs.NetworkNamespace, path)
	})
	f := strings.Fields(out)
	if len(f) != 3 || f[0] != "lo" || f[1] != "lkcbr0" || f[2] != want {
		t.Errorf("container joined to %s: got %q, want links lo and lkcbr0 in %s", path, out, want)
	}
}

func TestNamespaceJoinUTSOfContainer(t *testing.T) {
	e := newEnv(t)
	_, pid := e.createdPid([]string{"true"}, func(s *specs.Spec) { s.Hostname = "peer-host" })
	nsPath := fmt.Sprintf("/proc/%d/ns/uts", pid)
	want, err := os.Readlink(nsPath)
	if err != nil {
		t.Fatal(err)
	}
	out := e.mustRunOut([]string{"sh", "-c", "hostname; readlink /proc/self/ns/uts"}, func(s *specs.Spec) {
		setNamespace(s, specs.UTSNamespace, nsPath)
	})
	if f := strings.Fields(out); len(f) != 2 || f[0] != "peer-host" || f[1] != want {
		t.Errorf("joined %s: got %q, want hostname peer-host in %s", nsPath, out, want)
	}
}

// TestNamespaceJoinUTSSetsHostname checks that hostname applies to a uts
// namespace joined by path, as runc sets it.
func TestNamespaceJoinUTSSetsHostname(t *testing.T) {
	e := newEnv(t)
	_, pid := e.createdPid([]string{"true"}, func(s *specs.Spec) { s.Hostname = "peer-host" })
	nsPath := fmt.Sprintf("/proc/%d/ns/uts", pid)
	out := e.mustRunOut([]string{"hostname"}, func(s *specs.Spec) {
		setNamespace(s, specs.UTSNamespace, nsPath)
		s.Hostname = "joined-host"
	})
	if out != "joined-host" {
		t.Errorf("hostname in a container joined to %s with hostname joined-host: got %q", nsPath, out)
	}
	peer, err := exec.Command("nsenter", "-u", "-t", strconv.Itoa(pid), "hostname").Output()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(peer)); got != "joined-host" {
		t.Errorf("hostname of the namespace's first container: got %q, want joined-host", got)
	}
}

// TestNamespaceWrongTypeRefused checks that a namespace path of another
// type than the one it is given as is refused at create, and leaves
// nothing behind (the env's cleanup checks).
func TestNamespaceWrongTypeRefused(t *testing.T) {
	self := func(name string) string { return fmt.Sprintf("/proc/%d/ns/%s", os.Getpid(), name) }
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		typ  specs.LinuxNamespaceType
		path string
		want string
	}{
		{specs.IPCNamespace, self("net"), `ipc namespace path .*/ns/net: is a network namespace, not ipc`},
		{specs.NetworkNamespace, self("uts"), `network namespace path .*/ns/uts: is a uts namespace, not network`},
		{specs.PIDNamespace, self("mnt"), `pid namespace path .*/ns/mnt: is a mount namespace, not pid`},
		{specs.UTSNamespace, file, `uts namespace path .*/file: not a namespace file`},
		{specs.IPCNamespace, "/nonexistent/ns", `ipc namespace path /nonexistent/ns: no such file or directory`},
	}
	for _, tt := range cases {
		t.Run(string(tt.typ)+"-"+filepath.Base(tt.path), func(t *testing.T) {
			e := newEnv(t)
			b := e.bundle([]string{"true"}, func(s *specs.Spec) { setNamespace(s, tt.typ, tt.path) })
			e.failLkc("linux.namespaces: "+tt.want, "create", "--bundle", b, e.id())
		})
	}
}

// TestNamespaceJoinUser joins another container's user namespace by path
// with a mount namespace of its own: /dev is populated as in a new user
// namespace (bind mounts, since mknod is refused there), not with mknod.
func TestNamespaceJoinUser(t *testing.T) {
	e := newEnv(t)
	rootfs := e.userNSRootfs()
	_, pid := e.createdPid([]string{"true"}, withUserNS(rootfs))
	out := e.mustRunOut([]string{"sh", "-c", "id -u; cat /proc/self/uid_map; echo x >/dev/null && echo null ok"}, func(s *specs.Spec) {
		s.Root.Path = rootfs
		setNamespace(s, specs.UserNamespace, fmt.Sprintf("/proc/%d/ns/user", pid))
	})
	got := strings.Join(strings.Fields(out), " ")
	if want := "0 0 100000 65536 null ok"; got != want {
		t.Errorf("joined user namespace: got %q, want %q", got, want)
	}
}
