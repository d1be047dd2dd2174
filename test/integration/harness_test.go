package integration

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/lkc-containers/lkc/internal/cgroups/cgroupfs"
	"github.com/lkc-containers/lkc/internal/spec"
	"github.com/lkc-containers/lkc/internal/testutil"
)

// env is one test's lkc: its own --root, bundles and container ids, and a
// cleanup that deletes its containers and fails the test on any leftover.
type env struct {
	t    *testing.T
	bin  string // the lkc binary it runs: lkcBinary, or a test's own copy
	root string
	ids  []string
	dirs []string // bundles
	// cgParents are the absolute cgroup paths given to containers.
	cgParents []*cgParent
}

func newEnv(t *testing.T) *env {
	t.Helper()
	testutil.RequiresRoot(t)
	e := &env{t: t, bin: lkcBinary, root: t.TempDir()}
	t.Cleanup(e.cleanup)
	return e
}

// settle is how long a test waits for what should follow soon (a move, a
// state, a file's content, a listener): long, since the TCG VM can stall
// for seconds under load, and a test that passes never waits it out.
// Latency is measured in bench/, never here.
const settle = 30 * time.Second

var unsafeChars = regexp.MustCompile(`[^a-zA-Z0-9_.-]+`)

// id returns a fresh container id for this test.
func (e *env) id() string {
	name := unsafeChars.ReplaceAllString(e.t.Name(), "-")
	if len(name) > 40 {
		name = name[len(name)-40:]
	}
	// The pid keeps ids apart when several test runs share the machine.
	id := fmt.Sprintf("it-%s-%d-%d", strings.Trim(name, "-"), os.Getpid(), len(e.ids))
	e.ids = append(e.ids, id)
	return id
}

// result is one lkc invocation's outcome.
type result struct {
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
}

// lkc runs the binary with this env's --root, stdin from /dev/null.
func (e *env) lkc(args ...string) result {
	e.t.Helper()
	return e.lkcWith(nil, args...)
}

// lkcWith runs lkc with extra as its fds 3, 4, ...
func (e *env) lkcWith(extra []*os.File, args ...string) result {
	e.t.Helper()
	cmd := exec.Command(e.bin, append([]string{"--root", e.root}, args...)...)
	cmd.ExtraFiles = extra
	// Files, not pipes: a detached container inherits lkc's stdio and would
	// hold a pipe open, so waiting for its EOF would never end.
	out, errf := e.tempFile(), e.tempFile()
	defer out.Close()
	defer errf.Close()
	cmd.Stdout, cmd.Stderr = out, errf
	err := cmd.Run()
	r := result{stdout: readAll(out), stderr: readAll(errf)}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		e.t.Fatalf("running lkc %v: %v", args, err)
	}
	return r
}

func (e *env) tempFile() *os.File {
	e.t.Helper()
	f, err := os.CreateTemp(e.t.TempDir(), "out")
	if err != nil {
		e.t.Fatal(err)
	}
	return f
}

func readAll(f *os.File) string {
	data, _ := os.ReadFile(f.Name())
	return string(data)
}

// mustLkc runs lkc and fails the test unless it exits 0.
func (e *env) mustLkc(args ...string) string {
	e.t.Helper()
	r := e.lkc(args...)
	if r.code != 0 {
		e.t.Fatalf("lkc %s: %v%s", strings.Join(args, " "), r, criuLogTail(r.stderr))
	}
	return r.stdout
}

// failLkc runs lkc, expects a non-zero exit with a one-line error that
// matches want, and returns the error line.
func (e *env) failLkc(want string, args ...string) string {
	e.t.Helper()
	return e.checkOneLineFailure(e.lkc(args...), want, args)
}

func (e *env) checkOneLineFailure(r result, want string, args []string) string {
	e.t.Helper()
	if r.code == 0 {
		e.t.Fatalf("lkc %s succeeded, want an error matching %q: %v", strings.Join(args, " "), want, r)
	}
	msg := strings.TrimRight(r.stderr, "\n")
	if strings.Contains(msg, "\n") {
		e.t.Errorf("lkc %s: error is not one line: %q", strings.Join(args, " "), msg)
	}
	if !regexp.MustCompile(want).MatchString(msg) {
		e.t.Errorf("lkc %s: error %q does not match %q", strings.Join(args, " "), msg, want)
	}
	return msg
}

// bundle writes a bundle whose config is lkc's default with terminal off,
// process args args, and the shared read-only busybox rootfs; mutate may
// change it further.
func (e *env) bundle(args []string, mutate func(*specs.Spec)) string {
	e.t.Helper()
	s := spec.Default()
	s.Process.Terminal = false
	s.Process.Args = args
	s.Root.Path = rootfs
	if mutate != nil {
		mutate(s)
	}
	return e.writeBundle(s)
}

func (e *env) writeBundle(s *specs.Spec) string {
	e.t.Helper()
	dir := e.t.TempDir()
	data, err := json.MarshalIndent(s, "", " ")
	if err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), data, 0o644); err != nil {
		e.t.Fatal(err)
	}
	e.dirs = append(e.dirs, dir)
	return dir
}

// writableRootfs returns a private copy of the busybox rootfs.
func (e *env) writableRootfs() string {
	e.t.Helper()
	dir := filepath.Join(e.t.TempDir(), "rootfs")
	if out, err := exec.Command("cp", "-a", rootfs, dir).CombinedOutput(); err != nil {
		e.t.Fatalf("copying rootfs: %v: %s", err, out)
	}
	return dir
}

// run runs a container in the foreground and returns its result.
func (e *env) run(args []string, mutate func(*specs.Spec)) result {
	e.t.Helper()
	b := e.bundle(args, mutate)
	return e.lkc("run", "--bundle", b, e.id())
}

// state returns the OCI state of id.
func (e *env) state(id string) map[string]any {
	e.t.Helper()
	var st map[string]any
	if err := json.Unmarshal([]byte(e.mustLkc("state", id)), &st); err != nil {
		e.t.Fatalf("state %s: %v", id, err)
	}
	return st
}

// waitStatus polls `lkc state` until the container reaches status.
func (e *env) waitStatus(id, status string) {
	e.t.Helper()
	deadline := time.Now().Add(settle)
	for {
		r := e.lkc("state", id)
		var st map[string]any
		if r.code == 0 && json.Unmarshal([]byte(r.stdout), &st) == nil && st["status"] == status {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("container %s never reached status %s: last state %v", id, status, r)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (e *env) cleanup() {
	for _, id := range e.ids {
		e.lkc("delete", "--force", id)
	}
	e.assertNoLeaks()
	e.cleanupCgroupParents()
}

// assertNoLeaks fails the test if any of its containers left a state dir,
// cgroup, mount or process behind.
func (e *env) assertNoLeaks() {
	t := e.t
	if entries, _ := os.ReadDir(e.root); len(entries) > 0 {
		t.Errorf("leak: state dirs left in %s: %v", e.root, names(entries))
	}
	for _, id := range e.ids {
		for _, dir := range cgroupDirs(id) {
			t.Errorf("leak: cgroup %s left behind", dir)
		}
		for _, pid := range processesIn(id) {
			t.Errorf("leak: process %d of container %s still runs", pid, id)
		}
	}
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	for _, line := range strings.Split(string(mounts), "\n") {
		for _, dir := range append(e.dirs, rootfs) {
			if dir != "" && strings.Contains(line, " "+dir) {
				t.Errorf("leak: mount left on the host: %s", line)
			}
		}
	}
}

func names(entries []os.DirEntry) []string {
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

// cgroupDirs lists the cgroup directories named after container id.
func cgroupDirs(id string) []string {
	var out []string
	for _, pattern := range []string{"/sys/fs/cgroup/*/lkc/" + id, "/sys/fs/cgroup/*/*/*/lkc/" + id, "/sys/fs/cgroup/lkc/" + id} {
		m, _ := filepath.Glob(pattern)
		out = append(out, m...)
	}
	return out
}

// processesIn lists host pids whose cgroup names container id.
func processesIn(id string) []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, ent := range entries {
		var pid int
		if _, err := fmt.Sscan(ent.Name(), &pid); err != nil {
			continue
		}
		data, err := os.ReadFile(filepath.Join("/proc", ent.Name(), "cgroup"))
		if err == nil && (strings.Contains(string(data), "/lkc/"+id+"\n") || strings.Contains(string(data), "/lkc/"+id+"/")) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// cgroupV2 reports whether the host runs a pure cgroup v2 hierarchy (the VM
// of scripts/vmtest) rather than v1 (this project's usual host).
func cgroupV2() bool {
	v2, _ := cgroupfs.IsV2("/sys/fs/cgroup")
	return v2
}

// rounds is how many times a test repeats what it checks: host on the
// host, vm in the emulated VM of scripts/vmtest (which sets VMTEST), where
// each round runs ~20x slower. The v2 run checks the behaviour; the
// host's run the races and the figures.
func rounds(host, vm int) int {
	if os.Getenv("VMTEST") != "" {
		return vm
	}
	return host
}

// cgroupFile is where a container with its own cgroup namespace finds a
// controller file under /sys/fs/cgroup: <ctrl>/<v1> on v1, <v2> on v2.
func cgroupFile(ctrl, v1, v2 string) string {
	if cgroupV2() {
		return "/sys/fs/cgroup/" + v2
	}
	return "/sys/fs/cgroup/" + ctrl + "/" + v1
}

// testdataBuilds holds, by name, the build of each program of testdata a
// test asked for: one per test binary.
var testdataBuilds sync.Map

// testdataBinary builds testdata/NAME, static (the busybox rootfs has no
// libc), once per test binary, and returns its path, alone in its
// directory (a test may bind-mount that).
func testdataBinary(t *testing.T, name string) string {
	t.Helper()
	testutil.RequiresBinary(t, "go")
	build, _ := testdataBuilds.LoadOrStore(name, sync.OnceValues(func() (string, error) {
		// rootfs sits in TestMain's temporary directory, removed at exit.
		p := filepath.Join(filepath.Dir(rootfs), "testdata-"+name, name)
		_, here, _, _ := runtime.Caller(0)
		cmd := exec.Command("go", "build", "-o", p, "./testdata/"+name)
		cmd.Dir, cmd.Env = filepath.Dir(here), append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("building testdata/%s: %v\n%s", name, err, out)
		}
		return p, nil
	}))
	p, err := build.(func() (string, error))()
	if err != nil {
		t.Fatal(err)
	}
	return p
}
