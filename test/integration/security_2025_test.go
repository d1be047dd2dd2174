package integration

import (
	"errors"
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

// The runc escapes of November 2025 all redirect something the runtime
// does while it builds the container's tree: the /dev/null a mask binds
// (CVE-2025-31133), the /dev/console the terminal is bound on
// (CVE-2025-52565), the procfs files it writes (CVE-2025-52881). Each test
// points the redirect at a canary file the test made, never at a real
// host file, and checks that the canary is untouched.

// imageDevRootfs returns a writable rootfs copy whose /dev is the image's
// own (the config mounts no tmpfs there), with the nodes devs names made
// in it, a canary file /canary and a file /secret for a mask to hide.
func (e *env) imageDevRootfs(devs map[string]string) string {
	e.t.Helper()
	root := e.writableRootfs()
	for name, data := range map[string]string{"canary": "canary\n", "secret": "secret\n"} {
		if err := os.WriteFile(filepath.Join(root, name), []byte(data), 0o644); err != nil {
			e.t.Fatal(err)
		}
	}
	for name, what := range devs {
		p := filepath.Join(root, "dev", name)
		var err error
		switch {
		case what == "file":
			err = os.WriteFile(p, nil, 0o666)
		case strings.HasPrefix(what, "char "):
			var maj, min uint32
			if _, err = fmt.Sscanf(what, "char %d:%d", &maj, &min); err == nil {
				err = unix.Mknod(p, unix.S_IFCHR|0o666, int(unix.Mkdev(maj, min)))
			}
		default: // a symlink's target
			err = os.Symlink(what, p)
		}
		if err != nil {
			e.t.Fatalf("making /dev/%s (%s): %v", name, what, err)
		}
	}
	return root
}

// withoutDevTmpfs drops the config's /dev tmpfs: the container keeps the
// image's /dev, as runc's configs without one do.
func withoutDevTmpfs(s *specs.Spec) {
	var mounts []specs.Mount
	for _, m := range s.Mounts {
		if m.Destination != "/dev" {
			mounts = append(mounts, m)
		}
	}
	s.Mounts = mounts
}

func readCanary(t *testing.T, root string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "canary"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestSecMaskNeedsTheNullDevice: a masked file gets the container's
// /dev/null bound over it only when that is the null device (char 1:3).
// As a symlink it would bind its target (in the attack, the still
// writable /proc/sys/kernel/core_pattern; here a canary) writable over
// the masked path (here /secret, as /proc/kcore is not on every kernel); as a file or another device it would "mask" with that;
// missing, the masks were silently skipped. Each fails the create with a
// one-line error and leaves nothing behind. A real /dev/null node in the
// image masks as before.
func TestSecMaskNeedsTheNullDevice(t *testing.T) {
	write := []string{"sh", "-c", "echo pwned > /secret; stat -c '%F %t:%T' /secret"}
	for _, c := range []struct{ name, null string }{
		{"symlink", "/canary"},
		{"file", "file"},
		{"zero", "char 1:5"},
		{"missing", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			devs := map[string]string{}
			if c.null != "" {
				devs["null"] = c.null
			}
			root := e.imageDevRootfs(devs)
			r := e.run(write, func(s *specs.Spec) {
				s.Root.Path = root
				s.Linux.MaskedPaths = append(s.Linux.MaskedPaths, "/secret")
				withoutDevTmpfs(s)
			})
			if got := readCanary(t, root); got != "canary\n" {
				t.Errorf("the canary behind /dev/null was written through the mask: %q", got)
			}
			e.checkOneLineFailure(r, `masking /[a-z_/]+: .*/dev/null`, []string{"run"})
		})
	}
	t.Run("real", func(t *testing.T) {
		e := newEnv(t)
		root := e.imageDevRootfs(map[string]string{"null": "char 1:3"})
		r := e.run(write, func(s *specs.Spec) {
			s.Root.Path = root
			s.Linux.MaskedPaths = append(s.Linux.MaskedPaths, "/secret")
			withoutDevTmpfs(s)
		})
		if r.code != 0 || !strings.Contains(r.stdout, "character special file 1:3") {
			t.Errorf("run with the image's real /dev/null: %v, want /secret masked by char 1:3", r)
		}
		if got, _ := os.ReadFile(filepath.Join(root, "secret")); string(got) != "secret\n" {
			t.Errorf("/secret behind its mask was written: %q", got)
		}
	})
}

// TestSecConsoleNotBoundThroughSymlink: the terminal is bound on the
// container's /dev/console only when that is a file or a node. An image's
// /dev/console symlink to /victim would have lkc create /victim and bind
// the terminal there (any path of the image's choosing); it fails the
// create instead, with a one-line error. Without the symlink, the image's
// /dev gets its /dev/console made and bound.
func TestSecConsoleNotBoundThroughSymlink(t *testing.T) {
	e := newEnv(t)
	devs := map[string]string{"null": "char 1:3", "ptmx": "pts/ptmx", "console": "/victim"}
	root := e.imageDevRootfs(devs)
	l, sock := consoleSocket(t)
	b := e.bundle([]string{"true"}, func(s *specs.Spec) {
		s.Root.Path, s.Root.Readonly = root, false
		s.Process.Terminal = true
		withoutDevTmpfs(s)
	})
	r := e.lkc("create", "--console-socket", sock, "--bundle", b, e.id())
	l.Close()
	if _, err := os.Lstat(filepath.Join(root, "victim")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("/victim, where the /dev/console symlink points, was created (%v)", err)
	}
	e.checkOneLineFailure(r, `/dev/console is a symlink`, []string{"create"})

	delete(devs, "console")
	root = e.imageDevRootfs(devs)
	id, master := e.createWithConsole([]string{"sh", "-c", "[ -c /dev/console ] && echo console-$(stat -c %t /dev/console)"}, func(s *specs.Spec) {
		s.Root.Path, s.Root.Readonly = root, false
		withoutDevTmpfs(s)
	})
	e.mustLkc("start", id)
	// 0x88 is the first pty slave major (136).
	readUntil(t, master, "console-88")
}

// TestSecProcWritesNotRedirected: init writes sysctls and oom_score_adj
// through a procfs it checked, not through the container's /proc, where
// the config's mounts (here binds of a directory holding a symlink, over
// /proc/sys/net/ipv4 and over init's own /proc/1) would send the writes
// to a file of their choosing (in the attack, /proc/sysrq-trigger; here
// canaries). The values land where they belong.
func TestSecProcWritesNotRedirected(t *testing.T) {
	e := newEnv(t)
	root := e.writableRootfs()
	for _, name := range []string{"canary1", "canary2"} {
		if err := os.WriteFile(filepath.Join(root, name), []byte("canary\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	sysDir, pidDir := t.TempDir(), t.TempDir()
	if err := os.Symlink("/canary1", filepath.Join(sysDir, "ip_forward")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/canary2", filepath.Join(pidDir, "oom_score_adj")); err != nil {
		t.Fatal(err)
	}
	score := 123
	b := e.bundle([]string{"sleep", "60"}, func(s *specs.Spec) {
		s.Root.Path, s.Root.Readonly = root, false
		s.Linux.Sysctl = map[string]string{"net.ipv4.ip_forward": "1"}
		s.Process.OOMScoreAdj = &score
		s.Mounts = append(s.Mounts,
			specs.Mount{Destination: "/proc/sys/net/ipv4", Type: "bind", Source: sysDir, Options: []string{"bind"}},
			specs.Mount{Destination: "/proc/1", Type: "bind", Source: pidDir, Options: []string{"bind"}})
	})
	c := e.secCreate(b)
	for _, name := range []string{"canary1", "canary2"} {
		if got, _ := os.ReadFile(filepath.Join(root, name)); string(got) != "canary\n" {
			t.Errorf("/%s, behind a mount over /proc, was written: %q", name, got)
		}
	}
	pid := strconv.Itoa(c.pid)
	if got, _ := os.ReadFile("/proc/" + pid + "/oom_score_adj"); strings.TrimSpace(string(got)) != "123" {
		t.Errorf("init's oom_score_adj is %q, want 123", got)
	}
	out, err := exec.Command("nsenter", "--net=/proc/"+pid+"/ns/net", "cat", "/proc/sys/net/ipv4/ip_forward").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "1" {
		t.Errorf("net.ipv4.ip_forward in the container's network namespace: %q (%v), want 1", out, err)
	}
	// A process exec'd in writes its oom_score_adj through the container's
	// own /proc, checked the same way (the mount over /proc/1 is not on
	// its way).
	e.mustLkc("start", c.id)
	proc := filepath.Join(t.TempDir(), "process.json")
	os.WriteFile(proc, []byte(`{"args":["cat","/proc/self/oom_score_adj"],"env":["PATH=/bin"],"cwd":"/","oomScoreAdj":456}`), 0o644)
	if out := e.mustLkc("exec", "--process", proc, c.id); strings.TrimSpace(out) != "456" {
		t.Errorf("exec with oomScoreAdj 456: the process reads %q", out)
	}
}
