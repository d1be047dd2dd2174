package integration

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// shHook is a hook running script with /bin/sh: the host's for the points
// run in the runtime's namespaces or before pivot_root, busybox's after.
func shHook(script string, env ...string) specs.Hook {
	return specs.Hook{Path: "/bin/sh", Args: []string{"sh", "-c", script}, Env: env}
}

// recordingHook saves its stdin as <dir>/<point>.json, the mount namespace
// it runs in as <dir>/<point>.mnt, and appends point to <dir>/order.
func recordingHook(point, dir string) specs.Hook {
	return shHook(`cat > "$D/$P.json"; readlink /proc/self/ns/mnt > "$D/$P.mnt"; echo $P >> "$D/order"`,
		"D="+dir, "P="+point)
}

// hookState reads the state a recording hook saved.
func hookState(t *testing.T, dir, point string) map[string]any {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, point+".json"))
	if err != nil {
		t.Fatalf("hook %s did not run: %v", point, err)
	}
	var st map[string]any
	if err := json.Unmarshal(data, &st); err != nil {
		t.Fatalf("hook %s read state %q: %v", point, data, err)
	}
	return st
}

func readTrim(t *testing.T, path string) string {
	t.Helper()
	data, _ := os.ReadFile(path)
	return strings.TrimSpace(string(data))
}

func TestHooksRunAtEachPointWithState(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	b := e.bundle([]string{"sleep", "1000"}, func(s *specs.Spec) {
		s.Annotations = map[string]string{"org.test": "hooks"}
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/var", Type: "bind", Source: dir, Options: []string{"rbind", "rw"}})
		s.Hooks = &specs.Hooks{
			Prestart:        []specs.Hook{recordingHook("prestart", dir)},
			CreateRuntime:   []specs.Hook{recordingHook("createRuntime", dir)},
			CreateContainer: []specs.Hook{recordingHook("createContainer", dir)},
			// After pivot_root: the bind mount is where the hook finds dir.
			StartContainer: []specs.Hook{recordingHook("startContainer", "/var")},
			Poststart:      []specs.Hook{recordingHook("poststart", dir)},
			Poststop:       []specs.Hook{recordingHook("poststop", dir)},
		}
	})
	id := e.id()
	e.mustLkc("create", "--bundle", b, id)
	if got := readTrim(t, filepath.Join(dir, "order")); got != "prestart\ncreateRuntime\ncreateContainer" {
		t.Fatalf("after create, hooks ran: %q", got)
	}
	pid := int(e.state(id)["pid"].(float64))
	hostMnt, _ := os.Readlink("/proc/self/ns/mnt")
	initMnt, _ := os.Readlink(filepath.Join("/proc", strconv.Itoa(pid), "ns", "mnt"))
	for _, p := range []string{"prestart", "createRuntime"} {
		if got := readTrim(t, filepath.Join(dir, p+".mnt")); got != hostMnt {
			t.Errorf("%s ran in mount namespace %s, want the host's %s", p, got, hostMnt)
		}
	}
	e.mustLkc("start", id)
	for _, p := range []string{"createContainer", "startContainer"} {
		if got := readTrim(t, filepath.Join(dir, p+".mnt")); got != initMnt {
			t.Errorf("%s ran in mount namespace %s, want the container's %s", p, got, initMnt)
		}
	}
	e.mustLkc("kill", id, "KILL")
	e.waitStatus(id, "stopped")
	e.mustLkc("delete", id)
	want := map[string]string{
		"prestart": "creating", "createRuntime": "creating", "createContainer": "creating",
		"startContainer": "created", "poststart": "running", "poststop": "stopped",
	}
	for p, status := range want {
		st := hookState(t, dir, p)
		wantPid := float64(pid)
		if status == "stopped" {
			wantPid = 0
		}
		if st["id"] != id || st["status"] != status || st["bundle"] != b || st["ociVersion"] == nil ||
			numOr0(st["pid"]) != wantPid || st["annotations"].(map[string]any)["org.test"] != "hooks" {
			t.Errorf("%s hook read state %v, want id %s status %s pid %v bundle %s", p, st, id, status, wantPid, b)
		}
	}
	if got := readTrim(t, filepath.Join(dir, "order")); got != "prestart\ncreateRuntime\ncreateContainer\nstartContainer\npoststart\npoststop" {
		t.Errorf("hooks ran in the order %q", got)
	}
}

func numOr0(v any) float64 {
	f, _ := v.(float64)
	return f
}

func TestHooksGetArgsAndOnlyTheirEnv(t *testing.T) {
	e := newEnv(t)
	out := filepath.Join(t.TempDir(), "out")
	h := shHook(`echo "$0 $1 $2 FOO=$FOO HOME=$HOME" > "$OUT"`, "FOO=bar", "OUT="+out)
	h.Args = append(h.Args, "a0", "a1", "a2")
	r := e.run([]string{"true"}, func(s *specs.Spec) { s.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{h}} })
	if r.code != 0 {
		t.Fatalf("run: %v", r)
	}
	if got := readTrim(t, out); got != "a0 a1 a2 FOO=bar HOME=" {
		t.Fatalf("hook saw %q", got)
	}
}

// TestHooksWithoutEnvInheritLkcs: a hook that gives no env runs with the
// environment lkc was started with, as runc's do (a hook written for runc
// may rely on PATH or on what its caller set).
func TestHooksWithoutEnvInheritLkcs(t *testing.T) {
	t.Setenv("LKC_TEST_HOOK_ENV", "inherited")
	e := newEnv(t)
	out := filepath.Join(t.TempDir(), "out")
	h := specs.Hook{Path: "/bin/sh", Args: []string{"sh", "-c", `echo "$LKC_TEST_HOOK_ENV" > "$0"`, out}}
	r := e.run([]string{"true"}, func(s *specs.Spec) { s.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{h}} })
	if r.code != 0 {
		t.Fatalf("run: %v", r)
	}
	if got := readTrim(t, out); got != "inherited" {
		t.Fatalf("hook without env saw LKC_TEST_HOOK_ENV=%q, want lkc's %q", got, "inherited")
	}
}

func TestHookTimeoutFailsCreateCleanly(t *testing.T) {
	e := newEnv(t)
	timeout := 1
	h := shHook("sleep 60 & sleep 60")
	h.Timeout = &timeout
	b := e.bundle([]string{"true"}, func(s *specs.Spec) { s.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{h}} })
	e.failLkc(`createRuntime hook #0 /bin/sh: timed out after 1s and was killed`, "create", "--bundle", b, e.id())
}

// TestFailingCreateHooksFailCreateCleanly: a failing create-time hook fails
// create, which undoes its work and then runs the poststop hooks, as the
// runtime spec's lifecycle asks (and runc does after any failure once
// init has started: a mount too).
func TestFailingCreateHooksFailCreateCleanly(t *testing.T) {
	fail := shHook("echo boom >&2; exit 3")
	for name, tc := range map[string]struct {
		hooks specs.Hooks
		mount []specs.Mount
		want  string
	}{
		"prestart":        {hooks: specs.Hooks{Prestart: []specs.Hook{fail}}, want: `prestart hook #0 /bin/sh: exit status 3: boom`},
		"createRuntime":   {hooks: specs.Hooks{CreateRuntime: []specs.Hook{fail}}, want: `createRuntime hook #0 /bin/sh: exit status 3: boom`},
		"createContainer": {hooks: specs.Hooks{CreateContainer: []specs.Hook{fail}}, want: `createContainer hook #0 /bin/sh: exit status 3: boom`},
		"mount": {mount: []specs.Mount{{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"bogus=1"}}},
			want: `mount tmpfs on /tmp: .*invalid argument`},
	} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			dir := t.TempDir()
			tc.hooks.Poststop = []specs.Hook{recordingHook("poststop", dir)}
			b := e.bundle([]string{"true"}, func(s *specs.Spec) {
				s.Hooks = &tc.hooks
				s.Mounts = append(s.Mounts, tc.mount...)
			})
			id := e.id()
			e.failLkc(tc.want, "create", "--bundle", b, id)
			if st := hookState(t, dir, "poststop"); st["status"] != "stopped" || st["id"] != id {
				t.Errorf("poststop hook after the failed create read %v", st)
			}
		})
	}
}

func TestFailingStartContainerHookFailsStart(t *testing.T) {
	e := newEnv(t)
	marker := filepath.Join(t.TempDir(), "ran")
	b := e.bundle([]string{"sleep", "1000"}, func(s *specs.Spec) {
		s.Hooks = &specs.Hooks{
			StartContainer: []specs.Hook{shHook("echo nope >&2; exit 2")},
			Poststart:      []specs.Hook{shHook("touch " + marker)},
		}
	})
	id := e.id()
	e.mustLkc("create", "--bundle", b, id)
	e.failLkc(`startContainer hook #0 /bin/sh: exit status 2: nope`, "start", id)
	e.waitStatus(id, "stopped")
	if _, err := os.Stat(marker); err == nil {
		t.Error("poststart ran after a failed startContainer hook")
	}
	e.mustLkc("delete", id)
}

func TestFailingPostHooksOnlyWarn(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	b := e.bundle([]string{"true"}, func(s *specs.Spec) {
		s.Hooks = &specs.Hooks{
			Poststart: []specs.Hook{shHook("exit 4"), recordingHook("poststart", dir)},
			Poststop:  []specs.Hook{shHook("exit 5"), recordingHook("poststop", dir)},
		}
	})
	r := e.lkc("run", "--bundle", b, e.id())
	if r.code != 0 {
		t.Fatalf("run with failing post hooks: %v", r)
	}
	for _, want := range []string{"warning: .*poststart hook #0 /bin/sh: exit status 4", "warning: .*poststop hook #0 /bin/sh: exit status 5"} {
		if !regexp.MustCompile(want).MatchString(r.stderr) {
			t.Errorf("stderr %q lacks %q", r.stderr, want)
		}
	}
	if got := readTrim(t, filepath.Join(dir, "order")); got != "poststart\npoststop" {
		t.Errorf("after failing hooks, the next ones ran: %q", got)
	}
}

// assertFailedRanPoststop checks what a failed op (create, restore) of
// container id from bundle left: no state, cgroup, process or mount, and
// the poststop hooks, which recorded into dir, run once with the state of
// a stopped container.
func assertFailedRanPoststop(t *testing.T, e *env, op, id, bundle, dir string) {
	t.Helper()
	e.assertIDGone(id)
	if m := mountsUnder(t, e.root); len(m) > 0 {
		t.Errorf("the failed %s left mounts %v", op, m)
	}
	if got := readTrim(t, filepath.Join(dir, "order")); got != "poststop" {
		t.Errorf("hooks run by the failed %s: %q, want poststop once", op, got)
		return
	}
	if st := hookState(t, dir, "poststop"); st["status"] != "stopped" || st["id"] != id || st["bundle"] != bundle {
		t.Errorf("poststop hook after the failed %s read %v", op, st)
	}
}

// TestFailedCreateRunsPoststopOnce: a create that fails once it claimed
// the container's id runs the poststop hooks once, with the state of a
// stopped container, after it undid everything else, wherever it failed:
// before init started (an idmapped mount procfs refuses, a console socket
// nobody listens on, a cgroup path that cannot be made), in a create-time
// hook, in init (a mount, a missing
// executable). runc does the same: its create destroys the container it
// failed to create, and destroying runs them. One refused before the id is
// claimed (a config lkc refuses, a bind source missing among them; an
// id in use) runs none: runc's has no container yet.
func TestFailedCreateRunsPoststopOnce(t *testing.T) {
	fail := shHook("echo boom >&2; exit 3")
	for _, c := range []struct {
		name   string
		args   []string // create's arguments before the id, after --bundle
		mutate func(*specs.Spec)
		want   string
	}{
		{"console socket", []string{"--console-socket", "/nonexistent/console.sock"},
			func(s *specs.Spec) { s.Process.Terminal = true }, `console.sock: .*no such file or directory`},
		{"cgroup path", nil, func(s *specs.Spec) { s.Linux.CgroupsPath = "cgroup.procs/x" },
			`creating cgroup: mkdir /sys/fs/cgroup/.*cgroup.procs/x: not a directory`},
		{"idmapped mount", nil, func(s *specs.Spec) {
			m := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/mnt", Type: "bind", Source: "/proc/sys", Options: []string{"rbind"}, UIDMappings: m, GIDMappings: m})
		}, `mount /proc/sys on /mnt: mount_setattr\(/proc/sys, MOUNT_ATTR_IDMAP\)`},
		{"prestart hook", nil, func(s *specs.Spec) { s.Hooks.Prestart = []specs.Hook{fail} }, `prestart hook #0 /bin/sh: exit status 3: boom`},
		{"createRuntime hook", nil, func(s *specs.Spec) { s.Hooks.CreateRuntime = []specs.Hook{fail} }, `createRuntime hook #0 /bin/sh: exit status 3: boom`},
		{"mount", nil, func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"bogus=1"}})
		}, `mount tmpfs on /tmp: .*invalid argument`},
		{"exec", nil, func(s *specs.Spec) { s.Process.Args = []string{"/bin/no-such-program"} }, `/bin/no-such-program.*no such file`},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			dir := t.TempDir()
			b := e.bundle([]string{"sleep", "100"}, func(s *specs.Spec) {
				s.Hooks = &specs.Hooks{Poststop: []specs.Hook{recordingHook("poststop", dir)}}
				c.mutate(s)
			})
			id := e.id()
			e.failLkc(c.want, append(append([]string{"create", "--bundle", b}, c.args...), id)...)
			assertFailedRanPoststop(t, e, "create", id, b, dir)
		})
	}

	t.Run("refused before the id is claimed", func(t *testing.T) {
		e := newEnv(t)
		dir := t.TempDir()
		b := e.bundle([]string{"sleep", "100"}, func(s *specs.Spec) {
			s.Hooks = &specs.Hooks{Poststop: []specs.Hook{recordingHook("poststop", dir)}}
		})
		bad := e.bundle([]string{"sleep", "100"}, func(s *specs.Spec) {
			s.Hooks = &specs.Hooks{Poststop: []specs.Hook{recordingHook("poststop", dir)}}
			s.Process.Cwd = "tmp"
		})
		noSource := e.bundle([]string{"sleep", "100"}, func(s *specs.Spec) {
			s.Hooks = &specs.Hooks{Poststop: []specs.Hook{recordingHook("poststop", dir)}}
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/mnt", Type: "bind", Source: "/nonexistent", Options: []string{"rbind"}})
		})
		id := e.id()
		e.failLkc(`process.cwd "tmp" is not an absolute path`, "create", "--bundle", bad, id)
		e.failLkc(`bind source: stat /nonexistent: no such file or directory`, "create", "--bundle", noSource, id)
		e.assertIDGone(id)
		e.mustLkc("create", "--bundle", b, id)
		e.failLkc(`exists`, "create", "--bundle", b, id)
		if got := readTrim(t, filepath.Join(dir, "order")); got != "" {
			t.Errorf("hooks run by creates refused before they claimed the id: %q, want none", got)
		}
		e.mustLkc("delete", "-f", id)
		if got := readTrim(t, filepath.Join(dir, "order")); got != "poststop" {
			t.Errorf("hooks run after the delete: %q, want poststop once", got)
		}
	})
}
