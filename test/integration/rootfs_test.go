package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// mountLine returns the /proc/mounts line of the mount at dest, as the
// container prints it with `grep`.
func mountLine(out, dest string) string {
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) >= 4 && f[1] == dest {
			return line
		}
	}
	return ""
}

func TestRootfsPivot(t *testing.T) {
	for _, noPivot := range []bool{false, true} {
		name := "pivot_root"
		if noPivot {
			name = "no-pivot"
		}
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			rootfs := e.writableRootfs()
			marker := "marker-" + randName(t)
			if err := os.WriteFile(filepath.Join(rootfs, marker), []byte("in the rootfs\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			// The host's paths (the state root, the rootfs path itself) must
			// not be reachable from inside.
			script := "cat /" + marker + "; test -e " + e.root + " && echo host-root-visible; test -e " + rootfs + " && echo rootfs-path-visible; true"
			b := e.bundle([]string{"sh", "-c", script}, func(s *specs.Spec) { s.Root.Path = rootfs })
			args := []string{"run", "--bundle", b}
			if noPivot {
				args = append(args, "--no-pivot")
			}
			r := e.lkc(append(args, e.id())...)
			if r.code != 0 || r.stdout != "in the rootfs\n" {
				t.Errorf("marker file at / (%s): %v", name, r)
			}
		})
	}
}

func TestRootfsReadonly(t *testing.T) {
	e := newEnv(t)
	rootfs := e.writableRootfs()
	r := e.run([]string{"touch", "/x"}, func(s *specs.Spec) { s.Root.Path, s.Root.Readonly = rootfs, true })
	if r.code == 0 || !strings.Contains(r.stderr, "Read-only file system") {
		t.Errorf("touch /x with root.readonly true: want EROFS, got %v", r)
	}
	if _, err := os.Stat(filepath.Join(rootfs, "x")); err == nil {
		t.Errorf("touch /x in a read-only root created the file")
	}
	e.mustRunOut([]string{"touch", "/x"}, func(s *specs.Spec) { s.Root.Path, s.Root.Readonly = rootfs, false })
	if _, err := os.Stat(filepath.Join(rootfs, "x")); err != nil {
		t.Errorf("touch /x with root.readonly false: %v", err)
	}
}

func TestRootfsBindMounts(t *testing.T) {
	e := newEnv(t)
	rw, ro := t.TempDir(), t.TempDir()
	os.WriteFile(filepath.Join(rw, "in-rw"), []byte("rw-data\n"), 0o644)
	os.WriteFile(filepath.Join(ro, "in-ro"), []byte("ro-data\n"), 0o644)
	file := filepath.Join(t.TempDir(), "hostname-file")
	os.WriteFile(file, []byte("file-data\n"), 0o644)
	script := `cat /var/in-rw /run/in-ro /etc/hostname
echo written > /var/new || echo rw-write-failed
touch /run/new 2>&1 || echo ro-write-failed
grep -E ' /(var|run|etc/hostname) ' /proc/mounts`
	out := e.mustRunOut([]string{"sh", "-c", script}, func(s *specs.Spec) {
		s.Mounts = append(s.Mounts,
			specs.Mount{Destination: "/var", Type: "bind", Source: rw, Options: []string{"rbind", "rw", "rprivate"}},
			specs.Mount{Destination: "/run", Source: ro, Options: []string{"bind", "ro", "private"}},
			specs.Mount{Destination: "/etc/hostname", Type: "bind", Source: file, Options: []string{"bind", "ro"}},
		)
	})
	lines := strings.Split(out, "\n")
	if len(lines) < 5 || lines[0] != "rw-data" || lines[1] != "ro-data" || lines[2] != "file-data" ||
		!strings.Contains(lines[3], "Read-only file system") || lines[4] != "ro-write-failed" {
		t.Fatalf("bind mounts: got\n%s", out)
	}
	if data, err := os.ReadFile(filepath.Join(rw, "new")); err != nil || string(data) != "written\n" {
		t.Errorf("write through the rw bind mount: %q, %v", data, err)
	}
	if _, err := os.Stat(filepath.Join(ro, "new")); err == nil {
		t.Errorf("the ro bind mount was written")
	}
	for _, want := range []struct{ dest, opt string }{{"/var", "rw"}, {"/run", "ro"}, {"/etc/hostname", "ro"}} {
		line := mountLine(out, want.dest)
		if f := strings.Fields(line); len(f) < 4 || !strings.HasPrefix(f[3], want.opt+",") {
			t.Errorf("mount %s: %q, want %s", want.dest, line, want.opt)
		}
	}
}

func TestRootfsTmpfsOptions(t *testing.T) {
	e := newEnv(t)
	script := `stat -c %a /root; grep ' /root ' /proc/mounts
dd if=/dev/zero of=/root/big bs=1k count=2048 2>&1 >/dev/null | grep -c 'No space left'`
	out := e.mustRunOut([]string{"sh", "-c", script}, func(s *specs.Spec) {
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/root", Type: "tmpfs", Source: "tmpfs",
			Options: []string{"nosuid", "size=1m", "mode=1770"}})
	})
	lines := strings.Split(out, "\n")
	if len(lines) != 3 || lines[0] != "1770" || lines[2] != "1" {
		t.Fatalf("tmpfs size=1m,mode=1770: got\n%s", out)
	}
	if f := strings.Fields(lines[1]); len(f) < 4 || f[2] != "tmpfs" || !strings.Contains(f[3], "size=1024k") ||
		!strings.Contains(f[3], "nosuid") || !strings.Contains(f[3], "mode=1770") {
		t.Errorf("tmpfs mount line %q, want size=1024k, mode=1770, nosuid", lines[1])
	}
}

// TestRootfsTmpfsKeepsCoveredMode: a tmpfs without mode= on a directory
// the image has gets that directory's mode (a --read-only Podman
// container's /run stays 0755, not tmpfs's 1777), with tmpcopyup too; an
// explicit mode= wins, and a directory made for the mount keeps tmpfs's
// default; as runc (since 1.1.8) and crun do.
func TestRootfsTmpfsKeepsCoveredMode(t *testing.T) {
	e := newEnv(t)
	root := e.writableRootfs()
	for dir, mode := range map[string]os.FileMode{"covered": 0o751, "copied": 0o710 | os.ModeSetgid, "asked": 0o755} {
		if err := os.Mkdir(filepath.Join(root, dir), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(filepath.Join(root, dir), mode); err != nil {
			t.Fatal(err)
		}
	}
	out := e.mustRunOut([]string{"stat", "-c", "%n %a", "/covered", "/copied", "/asked", "/made"}, func(s *specs.Spec) {
		s.Root.Path = root
		for dest, opts := range map[string][]string{"/covered": nil, "/copied": {"tmpcopyup"}, "/asked": {"mode=700"}, "/made": nil} {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: dest, Type: "tmpfs", Source: "tmpfs", Options: opts})
		}
	})
	if want := "/covered 751\n/copied 2710\n/asked 700\n/made 1777"; out != want {
		t.Errorf("tmpfs roots:\n%s\nwant\n%s", out, want)
	}
}

func TestRootfsDevpts(t *testing.T) {
	e := newEnv(t)
	// Opening /dev/ptmx allocates pty 0 of a new devpts instance: the
	// host's ptys are not visible.
	script := `readlink /dev/ptmx; stat -c '%a %t:%T' /dev/pts/ptmx
exec 3<>/dev/ptmx && ls /dev/pts | tr '\n' ' '; echo
grep ' /dev/pts ' /proc/mounts`
	out := e.mustRunOut([]string{"sh", "-c", script}, nil)
	lines := strings.Split(out, "\n")
	if len(lines) != 4 || lines[0] != "pts/ptmx" || lines[1] != "666 5:2" || lines[2] != "0 ptmx " {
		t.Fatalf("devpts: got\n%s", out)
	}
	if f := strings.Fields(lines[3]); len(f) < 4 || f[2] != "devpts" || !strings.Contains(f[3], "ptmxmode=666") ||
		!strings.Contains(f[3], "mode=620") || !strings.Contains(f[3], "gid=5") {
		t.Errorf("devpts mount %q, want ptmxmode=666,mode=620,gid=5", lines[3])
	}
}

func TestRootfsSpecialMounts(t *testing.T) {
	e := newEnv(t)
	out := e.mustRunOut([]string{"sh", "-c", "cat /proc/mounts; touch /sys/x 2>&1; stat -f -c %T /dev/shm"}, nil)
	want := []struct{ dest, typ, opt string }{
		{"/dev/mqueue", "mqueue", "rw"}, {"/sys", "sysfs", "ro"}, {"/dev/shm", "tmpfs", "rw"},
		{"/proc", "proc", "rw"}, {"/dev", "tmpfs", "rw"},
	}
	for _, w := range want {
		line := mountLine(out, w.dest)
		if f := strings.Fields(line); len(f) < 4 || f[2] != w.typ || !strings.HasPrefix(f[3], w.opt+",") {
			t.Errorf("mount at %s: %q, want type %s, %s", w.dest, line, w.typ, w.opt)
		}
	}
	if !strings.Contains(out, "touch: /sys/x: Read-only file system") {
		t.Errorf("touch in a read-only /sys did not fail with EROFS:\n%s", out)
	}
	if !strings.HasSuffix(out, "\ntmpfs") {
		t.Errorf("/dev/shm is not a tmpfs:\n%s", out)
	}
}

func TestRootfsCgroupMount(t *testing.T) {
	e := newEnv(t)
	// A second container, so there is a sibling cgroup that must stay hidden.
	sibling := e.id()
	e.mustLkc("create", "--bundle", e.bundle([]string{"true"}, nil), sibling)
	// v1: one directory per controller, each the container's cgroup; v2: the
	// container's cgroup itself.
	depth := "2"
	if cgroupV2() {
		depth = "1"
	}
	script := `cat ` + cgroupFile("pids", "pids.max", "pids.max") + ` ` + cgroupFile("memory", "memory.limit_in_bytes", "memory.max") + `
find /sys/fs/cgroup/ -mindepth ` + depth + ` -type d | wc -l
grep -rl ` + sibling + ` /sys/fs/cgroup/ 2>/dev/null | wc -l
ls /sys/fs/cgroup | tr '\n' ' '`
	limit := int64(42)
	mem := int64(64 << 20)
	out := e.mustRunOut([]string{"sh", "-c", script}, func(s *specs.Spec) {
		s.Linux.Resources.Pids = &specs.LinuxPids{Limit: limit}
		s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: &mem}
	})
	lines := strings.Split(out, "\n")
	if len(lines) != 5 || lines[0] != "42" || lines[1] != "67108864" || lines[2] != "0" || lines[3] != "0" {
		t.Fatalf("cgroup mount: want pids.max 42, memory limit 67108864 and no subdirectories, got\n%s", out)
	}
	want := []string{"pids", "memory", "cpu", "devices", "freezer"}
	if cgroupV2() {
		want = []string{"pids.max", "memory.max", "cpu.max", "cgroup.freeze"}
	}
	for _, ctrl := range want {
		if !strings.Contains(" "+lines[4], " "+ctrl+" ") {
			t.Errorf("/sys/fs/cgroup lacks %s: %q", ctrl, lines[4])
		}
	}
}

func TestRootfsDefaultDevices(t *testing.T) {
	e := newEnv(t)
	out := e.mustRunOut([]string{"sh", "-c",
		"stat -c '%n %F %t:%T %a' /dev/null /dev/zero /dev/full /dev/random /dev/urandom /dev/tty; echo x > /dev/null; head -c 4 /dev/zero | wc -c"}, nil)
	want := []string{
		"/dev/null character special file 1:3 666",
		"/dev/zero character special file 1:5 666",
		"/dev/full character special file 1:7 666",
		"/dev/random character special file 1:8 666",
		"/dev/urandom character special file 1:9 666",
		"/dev/tty character special file 5:0 666",
		"4",
	}
	if got := strings.Split(out, "\n"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("default devices: got\n%s\nwant\n%s", out, strings.Join(want, "\n"))
	}
}

// TestRootfsMountOverDefaultDevice: a config mount on a default device's
// path stays and the default node is not made there, as in runc (docker
// run -v /dev/urandom:/dev/random, for containers short of entropy).
func TestRootfsMountOverDefaultDevice(t *testing.T) {
	e := newEnv(t)
	out := e.mustRunOut([]string{"stat", "-c", "%n %t:%T", "/dev/random", "/dev/null"}, func(s *specs.Spec) {
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/dev/random", Type: "bind", Source: "/dev/urandom", Options: []string{"bind"}})
	})
	if want := "/dev/random 1:9\n/dev/null 1:3"; out != want {
		t.Errorf("with /dev/urandom bound on /dev/random:\n%s\nwant\n%s", out, want)
	}
}

func TestRootfsLinuxDevices(t *testing.T) {
	e := newEnv(t)
	mode := os.FileMode(0o620)
	uid, gid := uint32(0), uint32(5)
	// /dev/mykmsg is made by hand (CAP_MKNOD), so the device cgroup, not a
	// missing node, is what refuses it.
	script := `stat -c '%F %t:%T %a %g' /dev/mynull /dev/sub/myfuse
echo hello > /dev/mynull && echo null-ok
(exec 3<>/dev/sub/myfuse) && echo fuse-ok
mknod /dev/mykmsg c 1 11 && (exec 4</dev/mykmsg) 2>&1`
	out := e.mustRunOut([]string{"sh", "-c", script + "; true"}, func(s *specs.Spec) {
		s.Linux.Devices = []specs.LinuxDevice{
			{Path: "/dev/mynull", Type: "c", Major: 1, Minor: 3},
			{Path: "/dev/sub/myfuse", Type: "c", Major: 10, Minor: 229, FileMode: &mode, UID: &uid, GID: &gid},
		}
		c := s.Process.Capabilities
		c.Bounding = append(c.Bounding, "CAP_MKNOD")
		c.Effective = append(c.Effective, "CAP_MKNOD")
		c.Permitted = append(c.Permitted, "CAP_MKNOD")
	})
	lines := strings.Split(out, "\n")
	want := []string{"character special file 1:3 666 0", "character special file a:e5 620 5", "null-ok", "fuse-ok"}
	if len(lines) != 5 || strings.Join(lines[:4], "\n") != strings.Join(want, "\n") {
		t.Fatalf("linux.devices: got\n%s\nwant\n%s\n<EPERM opening /dev/mykmsg>", out, strings.Join(want, "\n"))
	}
	if !strings.Contains(lines[4], "Operation not permitted") {
		t.Errorf("opening a device not in the device cgroup (1:11): want EPERM, got %q", lines[4])
	}
}

func TestRootfsMaskedPaths(t *testing.T) {
	e := newEnv(t)
	rootfs := e.writableRootfs()
	os.MkdirAll(filepath.Join(rootfs, "secret"), 0o755)
	os.WriteFile(filepath.Join(rootfs, "secret", "key"), []byte("s3cret"), 0o600)
	os.WriteFile(filepath.Join(rootfs, "secret-file"), []byte("s3cret"), 0o600)
	// This kernel may lack /proc/kcore: mask the first default masked file
	// the host has.
	procFile := ""
	for _, p := range []string{"/proc/kcore", "/proc/timer_list", "/proc/keys"} {
		if _, err := os.Stat(p); err == nil {
			procFile = p
			break
		}
	}
	script := "wc -c < " + procFile + "; ls -A /secret | wc -l; wc -c < /secret-file; touch /secret/x 2>&1 | grep -c 'Read-only'"
	out := e.mustRunOut([]string{"sh", "-c", script}, func(s *specs.Spec) {
		s.Root.Path = rootfs
		s.Linux.MaskedPaths = append(s.Linux.MaskedPaths, "/secret", "/secret-file", "/does/not/exist")
	})
	if got := strings.Fields(out); strings.Join(got, " ") != "0 0 0 1" {
		t.Errorf("masked "+procFile+", /secret, /secret-file: want sizes 0 0 0 and a read-only mask, got %q", out)
	}
}

func TestRootfsReadonlyPaths(t *testing.T) {
	e := newEnv(t)
	script := `(echo 1 > /proc/sys/net/ipv4/ip_forward) 2>&1; touch /root/x 2>&1; grep ' /proc/sys ' /proc/mounts`
	out := e.mustRunOut([]string{"sh", "-c", script + "; true"}, func(s *specs.Spec) {
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/root", Type: "tmpfs", Source: "tmpfs"})
		s.Linux.ReadonlyPaths = append(s.Linux.ReadonlyPaths, "/root", "/does/not/exist")
	})
	if strings.Count(out, "Read-only file system") != 2 {
		t.Errorf("writes to /proc/sys and /root (read-only paths): want EROFS twice, got\n%s", out)
	}
	if f := strings.Fields(mountLine(out, "/proc/sys")); len(f) < 4 || !strings.HasPrefix(f[3], "ro,") {
		t.Errorf("/proc/sys is not mounted ro:\n%s", out)
	}
}

func TestRootfsDevSymlinks(t *testing.T) {
	e := newEnv(t)
	out := e.mustRunOut([]string{"sh", "-c", "for l in fd stdin stdout stderr; do readlink /dev/$l; done; echo via-stdout >> /dev/stdout"}, nil)
	want := "/proc/self/fd\n/proc/self/fd/0\n/proc/self/fd/1\n/proc/self/fd/2\nvia-stdout"
	if out != want {
		t.Errorf("/dev symlinks: got\n%s\nwant\n%s", out, want)
	}
}

// TestRootfsFileBindOnFifo: a file bind whose destination is a named pipe
// in the image is mounted over it, as runc does, without opening the pipe
// (an open for reading would wait for a writer, and create with it).
func TestRootfsFileBindOnFifo(t *testing.T) {
	e := newEnv(t)
	root := e.writableRootfs()
	if err := unix.Mkfifo(filepath.Join(root, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(t.TempDir(), "src")
	if err := os.WriteFile(src, []byte("bound\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	b := e.bundle([]string{"cat", "/fifo"}, func(s *specs.Spec) {
		s.Root.Path = root
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/fifo", Type: "bind", Source: src, Options: []string{"bind"}})
	})
	id := e.id()
	done := make(chan result, 1)
	go func() { done <- e.lkc("run", "--bundle", b, id) }()
	select {
	case r := <-done:
		if r.code != 0 || r.stdout != "bound\n" {
			t.Errorf("run with a file bound on a fifo: %v", r)
		}
	case <-time.After(settle):
		e.lkc("delete", "--force", id)
		t.Errorf("run with a file bound on a fifo did not end in %v: %v", settle, <-done)
	}
}
