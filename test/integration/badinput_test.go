package integration

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// badConfig is a config.json lkc must refuse at create.
type badConfig struct {
	name   string
	args   []string // process.args; nil means sleep 100
	mutate func(*specs.Spec)
	want   string // regexp of the one-line error
}

func badAddNamespace(typ specs.LinuxNamespaceType) func(*specs.Spec) {
	return func(s *specs.Spec) {
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: typ})
	}
}

func badDropNamespace(s *specs.Spec, typ specs.LinuxNamespaceType) {
	var keep []specs.LinuxNamespace
	for _, ns := range s.Linux.Namespaces {
		if ns.Type != typ {
			keep = append(keep, ns)
		}
	}
	s.Linux.Namespaces = keep
}

func badUserNS(uids []specs.LinuxIDMapping) func(*specs.Spec) {
	return func(s *specs.Spec) {
		badAddNamespace(specs.UserNamespace)(s)
		s.Linux.UIDMappings = uids
		s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	}
}

func badRlimit(typ string, soft, hard uint64) func(*specs.Spec) {
	return func(s *specs.Spec) {
		s.Process.Rlimits = []specs.POSIXRlimit{{Type: typ, Soft: soft, Hard: hard}}
	}
}

func badConfigs(t *testing.T) []badConfig {
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, nil, 0o644)
	return []badConfig{
		{"UnknownNamespace", nil, badAddNamespace("foo"), `unknown namespace type "foo"`},
		{"NamespaceTwice", nil, badAddNamespace(specs.PIDNamespace), `pid namespace given twice`},
		{"RelativeMountDestination", nil, func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "tmp", Type: "tmpfs", Source: "tmpfs"})
		}, `destination "tmp" is not an absolute path`},
		{"IdmapWithoutUserNS", nil, func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/mnt", Type: "bind", Source: "/tmp", Options: []string{"rbind", "idmap"}})
		}, `mounts\[\d+\] /mnt: option "idmap" without uidMappings and gidMappings takes the maps of the container's user namespace, and the container has none`},
		{"MountUIDMappingsOnly", nil, func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/mnt", Type: "bind", Source: "/tmp", Options: []string{"rbind"},
				UIDMappings: []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 10}}})
		}, `mounts\[\d+\] /mnt: an idmapped mount needs both uidMappings and gidMappings`},
		{"IdmapNotBind", nil, func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/mnt", Type: "tmpfs", Source: "tmpfs", Options: []string{"ridmap"}})
		}, `mounts\[\d+\] /mnt: idmapped mounts \(idmap, ridmap, uidMappings, gidMappings\) are made of binds only, not of type "tmpfs"`},
		{"MountMappingSizeZero", nil, func(s *specs.Spec) {
			m := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 0}}
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/mnt", Type: "bind", Source: "/tmp", UIDMappings: m, GIDMappings: m})
		}, `mounts\[\d+\] /mnt: uidMappings\[0\]: size is 0`},
		{"MountMappingOverflow", nil, func(s *specs.Spec) {
			m := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 4294967000, Size: 1000}}
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/mnt", Type: "bind", Source: "/tmp", UIDMappings: m, GIDMappings: m})
		}, `mounts\[\d+\] /mnt: uidMappings\[0\]: range overflows 32-bit ids`},
		{"MissingRootfs", nil, func(s *specs.Spec) { s.Root.Path = "/nonexistent/rootfs" },
			`root.path /nonexistent/rootfs: .*no such file or directory`},
		{"RootfsIsFile", nil, func(s *specs.Spec) { s.Root.Path = file }, `root.path .* is not a directory`},
		{"UserNSWithoutMappings", nil, badAddNamespace(specs.UserNamespace), `user namespace needs both linux.uidMappings and linux.gidMappings`},
		{"MappingsWithoutUserNS", nil, func(s *specs.Spec) {
			s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 1000}}
		}, `without a new user namespace`},
		{"OverlappingUIDMappings", nil, badUserNS([]specs.LinuxIDMapping{
			{ContainerID: 0, HostID: 100000, Size: 1000}, {ContainerID: 500, HostID: 200000, Size: 10},
		}), `uidMappings\[1\] overlaps linux.uidMappings\[0\]`},
		{"SizeZeroMapping", nil, badUserNS([]specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 0}}),
			`uidMappings\[0\]: size is 0`},
		{"TimeOffsetsWithoutTimeNS", nil, func(s *specs.Spec) {
			s.Linux.TimeOffsets = map[string]specs.LinuxTimeOffset{"monotonic": {Secs: 10}}
		}, `timeOffsets need a new time namespace`},
		{"HostnameWithoutUTSNS", nil, func(s *specs.Spec) {
			badDropNamespace(s, specs.UTSNamespace)
			s.Hostname = "box"
		}, `hostname "box" needs a uts namespace`},
		{"UnknownRlimit", nil, badRlimit("RLIMIT_FOO", 1, 1), `unknown rlimit type "RLIMIT_FOO"`},
		{"RlimitSoftAboveHard", nil, badRlimit("RLIMIT_NOFILE", 2048, 1024), `RLIMIT_NOFILE soft limit 2048 exceeds hard limit 1024`},
		{"EnvNUL", nil, func(s *specs.Spec) { s.Process.Env = append(s.Process.Env, "FOO=a\x00b") },
			`process.env\[2\] \("FOO"\) contains a NUL byte`},
		{"EnvNoEquals", nil, func(s *specs.Spec) { s.Process.Env = append(s.Process.Env, "FOO") }, `process.env\[2\] "FOO" has no '='`},
		{"ArgNUL", []string{"sh", "-c", "echo a\x00b"}, nil, `process.args\[2\] contains a NUL byte`},
		{"NonNamespacedSysctl", nil, func(s *specs.Spec) {
			s.Linux.Sysctl = map[string]string{"kernel.panic": "1"}
		}, `sysctl "kernel.panic" is not namespaced`},
		{"CgroupsPathDotDot", nil, func(s *specs.Spec) { s.Linux.CgroupsPath = "lkc/../../escape" },
			`cgroupsPath "lkc/../../escape" contains '..'`},
		{"CgroupsPathAbsoluteDotDot", nil, func(s *specs.Spec) { s.Linux.CgroupsPath = "/lkc/../../escape" },
			`cgroupsPath "/lkc/../../escape" contains '..'`},
		{"EmptyArgs", []string{}, nil, `process.args is empty`},
		{"RelativeCwd", nil, func(s *specs.Spec) { s.Process.Cwd = "tmp" }, `process.cwd "tmp" is not an absolute path`},
		{"MissingExecutable", []string{"/bin/no-such-program"}, nil, `/bin/no-such-program.*no such file`},
		{"ExecutableNotInPath", []string{"no-such-program"}, nil, `"no-such-program".*not found`},
		{"CwdIsAFile", nil, func(s *specs.Spec) { s.Process.Cwd = "/bin/busybox/dir" }, `process.cwd.*not a directory`},
	}
}

func TestBadConfig(t *testing.T) {
	t.Parallel()
	for _, c := range badConfigs(t) {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			args := c.args
			if args == nil {
				args = []string{"sleep", "100"}
			}
			b := e.bundle(args, c.mutate)
			id := e.id()
			e.failLkc(`^lkc: create: .*`+c.want, "create", "--bundle", b, id)
			e.assertIDGone(id)
		})
	}
}

func TestBadBundle(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	malformed := t.TempDir()
	os.WriteFile(filepath.Join(malformed, "config.json"), []byte(`{"ociVersion": "1.0.2", "process": {`), 0o644)
	id := e.id()
	e.failLkc(`^lkc: create: .*config.json: invalid config.json: unexpected EOF`, "create", "--bundle", malformed, id)
	e.assertIDGone(id)

	id = e.id()
	e.failLkc(`^lkc: create: .*config.json: no such file or directory`, "create", "--bundle", t.TempDir(), id)
	e.assertIDGone(id)

	// An error naming a path with a newline is still one line.
	id = e.id()
	e.failLkc(`^lkc: create: .*/no-such-bundle; second line/config.json: no such file or directory$`,
		"create", "--bundle", filepath.Join(t.TempDir(), "no-such-bundle\nsecond line"), id)
	e.assertIDGone(id)
}

// TestBadRlimitAboveHostHard fails inside init (setrlimit), so it also
// proves that an init failure unwinds the whole create.
func TestBadRlimitAboveHostHard(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var host unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &host); err != nil {
		t.Fatal(err)
	}
	if hasEffectiveCap(t, unix.CAP_SYS_RESOURCE) {
		t.Skip("this test process has CAP_SYS_RESOURCE: raising RLIMIT_NOFILE above the host's hard limit would succeed")
	}
	hard := host.Max + 10000
	b := e.bundle([]string{"sleep", "100"}, badRlimit("RLIMIT_NOFILE", 1024, hard))
	id := e.id()
	e.failLkc(`^lkc: create: .*RLIMIT_NOFILE hard `+strconv.FormatUint(hard, 10)+`.*the host's hard limit is `+
		strconv.FormatUint(host.Max, 10), "create", "--bundle", b, id)
	e.assertIDGone(id)
}

// hasEffectiveCap reports whether this process has capability c in its effective set.
func hasEffectiveCap(t *testing.T, c int) bool {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		if hex, ok := strings.CutPrefix(l, "CapEff:\t"); ok {
			v, err := strconv.ParseUint(hex, 16, 64)
			if err != nil {
				t.Fatal(err)
			}
			return v&(1<<c) != 0
		}
	}
	t.Fatal("no CapEff in /proc/self/status")
	return false
}

func TestBadDuplicateID(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	b := e.bundle([]string{"sleep", "100"}, nil)
	id := e.createdID([]string{"sleep", "100"}, nil)
	before := e.state(id)
	e.failLkc(`^lkc: create: container already exists: `+id+`$`, "create", "--bundle", b, id)
	after := e.state(id)
	if after["status"] != "created" || after["pid"] != before["pid"] || after["bundle"] != before["bundle"] {
		t.Fatalf("a refused duplicate create changed the first container: before %v, after %v", before, after)
	}
	e.mustLkc("start", id)
	e.waitStatus(id, "running")
}

func TestBadUnknownID(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, args := range [][]string{
		{"state", "it-unknown"}, {"start", "it-unknown"}, {"kill", "it-unknown"},
		{"kill", "it-unknown", "KILL"}, {"delete", "it-unknown"},
	} {
		e.failLkc(`^lkc: `+args[0]+`: container does not exist: it-unknown$`, args...)
	}
	if _, err := os.Lstat(filepath.Join(e.root, "it-unknown")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a command on an unknown id made its state dir: %v", err)
	}
}

func TestBadWrongState(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	running := e.createdID([]string{"sleep", "100"}, nil)
	e.mustLkc("start", running)
	e.failLkc(`^lkc: start: .*cannot start container `+running+`: it is running$`, "start", running)
	if st := e.state(running); st["status"] != "running" {
		t.Errorf("a refused start changed the container: %v", st)
	}

	stopped := e.id()
	if r := e.lkc("run", "--keep", "--bundle", e.bundle([]string{"true"}, nil), stopped); r.code != 0 {
		t.Fatalf("run --keep: %v", r)
	}
	e.failLkc(`^lkc: start: .*cannot start container `+stopped+`: it is stopped$`, "start", stopped)
	e.failLkc(`^lkc: kill: .*cannot kill container `+stopped+`: it is stopped$`, "kill", stopped, "KILL")
	e.mustLkc("delete", stopped)
	e.assertIDGone(stopped)
}

func TestBadSignal(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id := e.createdID([]string{"sleep", "100"}, nil)
	e.mustLkc("start", id)
	for _, sig := range []string{"SIGFOO", "FOO", "99", "65", "-1"} { // 0 is a liveness check, as in runc
		e.failLkc(`^lkc: kill: invalid signal "`+sig+`"`, "kill", id, sig)
	}
	if st := e.state(id); st["status"] != "running" {
		t.Errorf("after refused kills: want running, got %v", st)
	}
}

func TestBadCommandLine(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.failLkc(`^lkc: create: flag provided but not defined: -bogus`, "create", "--bogus", "x")
	e.failLkc(`^lkc: flag provided but not defined: -bogus`, "--bogus", "state", "x")
	e.failLkc(`^lkc: unknown command "bogus"`, "bogus")
	for _, cmd := range []string{"create", "run", "start", "state", "kill", "delete"} {
		e.failLkc(`^lkc: `+cmd+`: missing argument \(usage: lkc `+cmd, cmd)
	}
	if entries, _ := os.ReadDir(e.root); len(entries) > 0 {
		t.Errorf("refused command lines left state: %v", names(entries))
	}
}

func TestBadID(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	b := e.bundle([]string{"sleep", "100"}, nil)
	for _, id := range []string{"../x", "a/b", "..", ".", "x y", ""} {
		e.failLkc(`^lkc: create: invalid container id "`+regexp.QuoteMeta(id)+`"`, "create", "--bundle", b, id)
		for _, cmd := range []string{"state", "start", "delete"} {
			e.failLkc(`^lkc: `+cmd+`: invalid container id`, cmd, id)
		}
	}
	if _, err := os.Lstat(filepath.Join(filepath.Dir(e.root), "x")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("create ../x made something beside the state root: %v", err)
	}
	if entries, _ := os.ReadDir(e.root); len(entries) > 0 {
		t.Errorf("invalid ids left state: %v", names(entries))
	}
}

// TestBadCreateFailsLate gives inputs that fail only after create has made
// its state dir, cgroup and init: each must unwind them all.
func TestBadCreateFailsLate(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name   string
		flags  []string
		mutate func(*specs.Spec)
		want   string
	}{
		{"PidFileDirMissing", []string{"--pid-file", "/nonexistent/dir/pid"}, nil, `writing pid file: .*/nonexistent/dir/.*no such file`},
		{"ConsoleSocketMissing", []string{"--console-socket", "/nonexistent/sock"}, func(s *specs.Spec) { s.Process.Terminal = true },
			`console socket: .*/nonexistent/sock.*no such file`},
		{"TerminalWithoutConsoleSocket", nil, func(s *specs.Spec) { s.Process.Terminal = true }, `process.terminal is true: pass --console-socket`},
		{"MountUnknownFSType", nil, func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/tmp", Type: "nosuchfs", Source: "none"})
		}, `container init: .*/tmp.*no such device`},
		{"MountSourceMissing", nil, func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/tmp", Type: "bind", Source: "/nonexistent/src"})
		}, `mounts\[7\] /tmp: bind source: .*no such file`},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			b := e.bundle([]string{"sleep", "100"}, c.mutate)
			id := e.id()
			e.failLkc(`^lkc: create: .*`+c.want, append(append([]string{"create", "--bundle", b}, c.flags...), id)...)
			e.assertIDGone(id)
		})
	}
}
