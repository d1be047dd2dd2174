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

	"github.com/lkc-containers/lkc/internal/config"
)

// trapScript logs USR1 and USR2 and exits 0 on TERM, each through a trap,
// into /out/log, and otherwise waits.
const trapScript = `trap 'echo USR1 >>/out/log' USR1; trap 'echo USR2 >>/out/log' USR2; ` +
	`trap 'echo TERM >>/out/log; exit 0' TERM; while :; do sleep 1 & wait $!; done`

// TestSignalRightAfterStart signals the container at once after `start`
// (and `run -d`) returns, as containerd does: by then pid 1 must be the
// process, not lkc's init before its execve (where TERM killed init unseen
// and USR1/USR2 were lost). Half the rounds have a seccomp profile, which
// init used to build between the release and the execve.
func TestSignalRightAfterStart(t *testing.T) {
	e := newEnv(t)
	for i := 0; i < rounds(16, 4); i++ {
		dir := t.TempDir()
		b := e.bundle([]string{"sh", "-c", trapScript}, func(s *specs.Spec) {
			if i%2 == 1 {
				withSeccomp(denyMkdir())(s)
			}
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/out", Type: "bind", Source: dir, Options: []string{"rbind", "rw"}})
		})
		id := e.id()
		if i%4 == 3 {
			e.mustLkc("run", "-d", "--bundle", b, id)
		} else {
			e.mustLkc("create", "--bundle", b, id)
			e.mustLkc("start", id)
		}
		pid := int(e.state(id)["pid"].(float64))
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if !strings.HasPrefix(string(cmdline), "sh\x00-c\x00") {
			t.Fatalf("round %d: right after start, pid 1 runs %q, not the process", i, cmdline)
		}
		for _, sig := range []string{"USR1", "USR2", "TERM"} {
			e.mustLkc("kill", id, sig)
		}
		e.waitSignalled(id, filepath.Join(dir, "log"))
		e.mustLkc("delete", id)
	}
}

// waitSignalled waits for a container running trapScript and sent TERM to
// stop, which it must do through its trap. A signal that reached the
// shell before it set its traps is ignored (pid 1 ignores signals it has
// no handler for; runc has the same window): then TERM goes again.
func (e *env) waitSignalled(id, log string) {
	e.t.Helper()
	for try := 0; ; try++ {
		deadline := time.Now().Add(3 * time.Second)
		for time.Now().Before(deadline) && e.state(id)["status"] != "stopped" {
			time.Sleep(10 * time.Millisecond)
		}
		data, _ := os.ReadFile(log)
		stopped := e.state(id)["status"] == "stopped"
		switch {
		case stopped && strings.Contains(string(data), "TERM"):
			return
		case stopped:
			e.t.Fatalf("container %s stopped without its TERM trap (log %q)", id, data)
		case try > 0:
			e.t.Fatalf("container %s ignores TERM (log %q)", id, data)
		}
		e.mustLkc("kill", id, "TERM")
	}
}

// TestRlimitASWithSeccomp gives the process a 1 GiB address space limit and
// a few fds along with a seccomp profile: the limits bind the process, not
// lkc's building of the filter.
func TestRlimitASWithSeccomp(t *testing.T) {
	e := newEnv(t)
	for _, nnp := range []bool{true, false} {
		out := e.mustRunOut([]string{"sh", "-c", "ulimit -v; ulimit -n; grep '^Seccomp:' /proc/self/status"}, func(s *specs.Spec) {
			withSeccomp(denyMkdir())(s)
			s.Process.NoNewPrivileges = nnp
			s.Process.Rlimits = []specs.POSIXRlimit{
				{Type: "RLIMIT_AS", Soft: 1 << 30, Hard: 1 << 30},
				{Type: "RLIMIT_NOFILE", Soft: 16, Hard: 16},
			}
		})
		if want := "1048576\n16\nSeccomp:\t2"; out != want {
			t.Errorf("no_new_privs %v: got %q, want %q", nnp, out, want)
		}
	}
}

// TestPidsLimitTiny runs containers whose pids limit leaves room for the
// process alone (1) or a little more: lkc's init, whose Go runtime has
// several threads, must not count against it.
func TestPidsLimitTiny(t *testing.T) {
	e := newEnv(t)
	for _, limit := range []int64{1, 2, 3} {
		withLimit := func(s *specs.Spec) {
			s.Linux.Resources = &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: limit}}
		}
		if out := e.mustRunOut([]string{"sh", "-c", "echo ok"}, withLimit); out != "ok" {
			t.Errorf("pids limit %d: run printed %q", limit, out)
		}
		// The limit is in force once create returns.
		id := e.createdID([]string{"sleep", "100"}, withLimit)
		pid := int(e.state(id)["pid"].(float64))
		if got := pidsMax(t, pid); got != strconv.FormatInt(limit, 10) {
			t.Errorf("pids limit %d: pids.max of the created container is %q", limit, got)
		}
		e.mustLkc("start", id)
		e.mustLkc("delete", "--force", id)
	}
}

// pidsMax reads pids.max of the cgroup process pid is in.
func pidsMax(t *testing.T, pid int) string {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		var dir string
		switch {
		case cgroupV2() && parts[1] == "":
			dir = filepath.Join("/sys/fs/cgroup", parts[2])
		case !cgroupV2() && parts[1] == "pids":
			dir = filepath.Join("/sys/fs/cgroup/pids", parts[2])
		default:
			continue
		}
		v, err := os.ReadFile(filepath.Join(dir, "pids.max"))
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(v))
	}
	t.Fatalf("process %d is in no pids cgroup: %s", pid, data)
	return ""
}

// TestCapabilityHostCannotGrant asks for a capability the host withholds
// from lkc's bounding set: create must fail naming it, and leave nothing.
func TestCapabilityHostCannotGrant(t *testing.T) {
	e := newEnv(t)
	missing := ""
	bnd := statusCaps(t, "CapBnd")
	for n := 0; n < 41; n++ {
		if bnd&(1<<n) == 0 {
			missing = config.CapName(n)
			break
		}
	}
	if missing == "" {
		t.Skip("this process's bounding set has every capability: nothing the host withholds to ask for")
	}
	b := e.bundle([]string{"sleep", "100"}, func(s *specs.Spec) {
		c := s.Process.Capabilities
		c.Bounding = append(c.Bounding, missing)
		c.Effective = append(c.Effective, missing)
		c.Permitted = append(c.Permitted, missing)
	})
	id := e.id()
	e.failLkc(`^lkc: create: .*cannot grant `+missing, "create", "--bundle", b, id)
	e.assertIDGone(id)
}

// TestCapabilityUnknownIgnored gives capability names lkc does not know:
// like runc, it warns and runs the container with the others.
func TestCapabilityUnknownIgnored(t *testing.T) {
	e := newEnv(t)
	r := e.run([]string{"sh", "-c", "grep ^CapEff: /proc/self/status"}, func(s *specs.Spec) {
		c := s.Process.Capabilities
		c.Bounding = append(c.Bounding, "CAP_NOT_YET_INVENTED")
		c.Effective = append(c.Effective, "CAP_NOT_YET_INVENTED")
	})
	if r.code != 0 {
		t.Fatalf("run with an unknown capability: %v", r)
	}
	if !strings.Contains(r.stderr, "warning") || !strings.Contains(r.stderr, "CAP_NOT_YET_INVENTED") {
		t.Errorf("no warning naming the unknown capability: stderr %q", r.stderr)
	}
	def := e.mustRunOut([]string{"sh", "-c", "grep ^CapEff: /proc/self/status"}, nil)
	if strings.TrimSpace(r.stdout) != def {
		t.Errorf("effective set with an unknown name %q, without %q", r.stdout, def)
	}
}

// statusCaps reads a capability set of this process from /proc/self/status.
func statusCaps(t *testing.T, field string) uint64 {
	t.Helper()
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		if hex, ok := strings.CutPrefix(l, field+":\t"); ok {
			v, err := strconv.ParseUint(hex, 16, 64)
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
	}
	t.Fatalf("no %s in /proc/self/status", field)
	return 0
}

// TestCwdCreated runs a process whose cwd the image lacks: lkc creates it,
// inside the rootfs even when the path goes through a symlink that names a
// host directory.
func TestCwdCreated(t *testing.T) {
	e := newEnv(t)
	root := e.writableRootfs()
	host, dangling := t.TempDir(), t.TempDir()
	// The symlinks name host directories; in the container they name the
	// same paths inside its root: host's exists there, dangling's does not.
	if err := os.MkdirAll(filepath.Join(root, host), 0o755); err != nil {
		t.Fatal(err)
	}
	links := map[string]string{"abs": host, "rel": "../../../../../../../../.." + host, "dangling": dangling}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
			t.Fatal(err)
		}
	}
	withCwd := func(cwd string) func(*specs.Spec) {
		return func(s *specs.Spec) {
			s.Root.Path = root
			s.Process.Cwd = cwd
		}
	}
	for _, c := range []struct{ cwd, inRoot string }{
		{"/new/deep/dir", "/new/deep/dir"},
		{"/abs/made", host + "/made"},
		{"/rel/made2", host + "/made2"},
	} {
		if out := e.mustRunOut([]string{"sh", "-c", "pwd -P"}, withCwd(c.cwd)); out != c.inRoot {
			t.Errorf("cwd %s: the process is in %q, want %q", c.cwd, out, c.inRoot)
		}
		if fi, err := os.Stat(filepath.Join(root, c.inRoot)); err != nil || !fi.IsDir() {
			t.Errorf("cwd %s: no directory %s in the rootfs: %v", c.cwd, c.inRoot, err)
		}
	}
	b := e.bundle([]string{"true"}, withCwd("/dangling/made3"))
	id := e.id()
	e.failLkc(`^lkc: create: .*process.cwd`, "create", "--bundle", b, id)
	e.assertIDGone(id)
	for _, dir := range []string{host, dangling} {
		if entries, _ := os.ReadDir(dir); len(entries) > 0 {
			t.Errorf("a cwd through a symlink created %v in the host's %s", names(entries), dir)
		}
	}
}

// TestTooManyGroupsShortError gives more supplementary groups than Linux
// takes: create fails, in one short line (not a list of 70,000 ids).
func TestTooManyGroupsShortError(t *testing.T) {
	e := newEnv(t)
	b := e.bundle([]string{"sleep", "100"}, func(s *specs.Spec) {
		s.Process.User.AdditionalGids = make([]uint32, 70000)
		for i := range s.Process.User.AdditionalGids {
			s.Process.User.AdditionalGids[i] = uint32(1000 + i)
		}
	})
	id := e.id()
	msg := e.failLkc(`^lkc: create: .*70000 groups`, "create", "--bundle", b, id)
	if len(msg) > 200 {
		t.Errorf("the error is %d bytes long", len(msg))
	}
	e.assertIDGone(id)
}

// TestUnmappedUserFailsCreate gives the process a user or group its user
// namespace does not map: setresuid/setgroups would fail after start, so
// create refuses it.
func TestUnmappedUserFailsCreate(t *testing.T) {
	e := newEnv(t)
	rootfs := e.userNSRootfs()
	for _, c := range []struct {
		user specs.User
		want string
	}{
		{specs.User{UID: 70000}, `process.user.uid 70000 is not mapped by linux.uidMappings`},
		{specs.User{GID: 70000}, `process.user.gid 70000 is not mapped by linux.gidMappings`},
		{specs.User{AdditionalGids: []uint32{10, 70000}}, `additionalGids: 70000 is not mapped by linux.gidMappings`},
	} {
		b := e.bundle([]string{"true"}, func(s *specs.Spec) {
			withUserNS(rootfs)(s)
			s.Process.User = c.user
		})
		id := e.id()
		e.failLkc(`^lkc: create: .*`+c.want, "create", "--bundle", b, id)
		e.assertIDGone(id)
	}
}
