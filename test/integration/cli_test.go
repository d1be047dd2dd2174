package integration

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// createdID creates a container running args and returns its id.
func (e *env) createdID(args []string, mutate func(*specs.Spec)) string {
	e.t.Helper()
	id := e.id()
	e.mustLkc("create", "--bundle", e.bundle(args, mutate), id)
	return id
}

// withOutDir bind-mounts dir, writable, at /tmp of the container: the
// container reports through files there.
func withOutDir(dir string) func(*specs.Spec) {
	return func(s *specs.Spec) {
		s.Mounts = append(s.Mounts, specs.Mount{
			Destination: "/tmp", Type: "bind", Source: dir, Options: []string{"rbind", "rw"},
		})
	}
}

// waitOutFile waits until the file at path holds a line for which ok is true
// and returns the file's lines.
func waitOutFile(t *testing.T, path string, ok func(lines []string) bool) []string {
	t.Helper()
	lines, done := pollOutFile(path, ok)
	if !done {
		data, _ := os.ReadFile(path)
		t.Fatalf("%s: waited 5s, got %q", path, data)
	}
	return lines
}

// pollOutFile reads path until ok accepts its words, for settle at most.
func pollOutFile(path string, ok func(lines []string) bool) ([]string, bool) {
	deadline := time.Now().Add(settle)
	for {
		data, _ := os.ReadFile(path)
		lines := strings.Fields(string(data))
		if ok(lines) {
			return lines, true
		}
		if time.Now().After(deadline) {
			return lines, false
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func containsWord(want string) func([]string) bool {
	return func(lines []string) bool {
		for _, l := range lines {
			if l == want {
				return true
			}
		}
		return false
	}
}

// assertIDGone fails unless container id left no state dir, cgroup or process.
func (e *env) assertIDGone(id string) {
	e.t.Helper()
	if _, err := os.Lstat(filepath.Join(e.root, id)); !errors.Is(err, os.ErrNotExist) {
		e.t.Errorf("state dir of %s: want it gone, got %v", id, err)
	}
	if dirs := cgroupDirs(id); len(dirs) > 0 {
		e.t.Errorf("cgroups of %s left: %v", id, dirs)
	}
	if pids := processesIn(id); len(pids) > 0 {
		e.t.Errorf("processes of %s left: %v", id, pids)
	}
}

func TestCLICreateStartStateDelete(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	b := e.bundle([]string{"sleep", "100"}, nil)
	id := e.id()
	pidFile := filepath.Join(t.TempDir(), "init.pid")
	e.mustLkc("create", "--bundle", b, "--pid-file", pidFile, id)

	data, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatalf("--pid-file: %v", err)
	}
	pid, err := strconv.Atoi(string(data))
	if err != nil || pid <= 0 {
		t.Fatalf("--pid-file holds %q, want a pid", data)
	}
	st := e.state(id)
	if st["status"] != "created" || st["pid"] != float64(pid) {
		t.Fatalf("after create: want status created, pid %d; got %v", pid, st)
	}
	if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err != nil {
		t.Fatalf("init pid %d from the pid file does not live: %v", pid, err)
	}
	wantFields := map[string]any{"ociVersion": specs.Version, "id": id, "bundle": b, "rootfs": rootfs, "owner": "root"}
	for k, v := range wantFields {
		if st[k] != v {
			t.Errorf("state.%s: want %v, got %v", k, v, st[k])
		}
	}
	created, err := time.Parse(time.RFC3339Nano, st["created"].(string))
	if err != nil || time.Since(created) > time.Minute || time.Since(created) < 0 {
		t.Errorf("state.created %v: want a time in the last minute (%v)", st["created"], err)
	}

	e.mustLkc("start", id)
	if st := e.state(id); st["status"] != "running" || st["pid"] != float64(pid) {
		t.Fatalf("after start: want running with pid %d, got %v", pid, st)
	}
	e.mustLkc("kill", id, "KILL")
	e.waitStatus(id, "stopped")
	// runc prints pid 0 for a stopped container.
	if st := e.state(id); st["pid"] != float64(0) {
		t.Errorf("stopped container: want pid 0, got %v", st["pid"])
	}
	e.mustLkc("delete", id)
	e.assertIDGone(id)
	e.failLkc("does not exist", "state", id)
}

func TestCLIList(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if out := e.mustLkc("list", "-q"); out != "" {
		t.Fatalf("list -q of an empty root: got %q", out)
	}
	a := e.createdID([]string{"sleep", "100"}, nil)
	b := e.createdID([]string{"sleep", "100"}, nil)
	e.mustLkc("start", b)
	pidA := int(e.state(a)["pid"].(float64))

	lines := strings.Split(strings.TrimRight(e.mustLkc("list"), "\n"), "\n")
	if got := strings.Fields(lines[0]); strings.Join(got, " ") != "ID PID STATUS BUNDLE CREATED OWNER" {
		t.Fatalf("list header: got %q", lines[0])
	}
	if len(lines) != 3 {
		t.Fatalf("list: want a header and 2 rows, got %q", lines)
	}
	rows := map[string][]string{}
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		rows[f[0]] = f
	}
	if r := rows[a]; len(r) != 6 || r[1] != strconv.Itoa(pidA) || r[2] != "created" || r[5] != "root" {
		t.Errorf("list row of %s: got %q", a, r)
	}
	if r := rows[b]; len(r) != 6 || r[2] != "running" {
		t.Errorf("list row of %s: got %q", b, r)
	}

	var states []map[string]any
	if err := json.Unmarshal([]byte(e.mustLkc("list", "--format", "json")), &states); err != nil {
		t.Fatalf("list --format json: %v", err)
	}
	got := map[string]any{}
	for _, s := range states {
		got[s["id"].(string)] = s["status"]
	}
	if len(states) != 2 || got[a] != "created" || got[b] != "running" {
		t.Errorf("list --format json: want %s created and %s running, got %v", a, b, states)
	}

	ids := strings.Fields(e.mustLkc("list", "-q"))
	if len(ids) != 2 || !((ids[0] == a && ids[1] == b) || (ids[0] == b && ids[1] == a)) {
		t.Errorf("list -q: want %s and %s, got %q", a, b, ids)
	}
}

// trapSignalsScript traps USR1, USR2 and HUP, logging each to /tmp/log.
const trapSignalsScript = `for s in USR1 USR2 HUP; do trap "echo $s >>/tmp/log" $s; done
echo ready >/tmp/ready
while :; do sleep 0.02; done
`

// signalMasks is the signal lines of /proc/PID/status (pending, blocked,
// caught), which tell a lost signal from a slow handler when a test fails.
func signalMasks(pid int) string {
	data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	var out []string
	for _, l := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(l, "Sig") || strings.HasPrefix(l, "ShdPnd") || strings.HasPrefix(l, "State") {
			out = append(out, strings.Join(strings.Fields(l), " "))
		}
	}
	return strings.Join(out, "; ")
}

func TestCLIKillSignalForms(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	out := t.TempDir()
	os.WriteFile(filepath.Join(out, "sig.sh"), []byte(trapSignalsScript), 0o644)
	id, pid := e.createdPid([]string{"sh", "/tmp/sig.sh"}, withOutDir(out))
	e.mustLkc("start", id)
	waitOutFile(t, filepath.Join(out, "ready"), containsWord("ready"))

	logf := filepath.Join(out, "log")
	for _, c := range []struct{ arg, want string }{
		{"USR1", "USR1"}, {"SIGUSR2", "USR2"}, {"1", "HUP"}, {"usr1", "USR1"},
	} {
		os.Remove(logf)
		e.mustLkc("kill", id, c.arg)
		if _, ok := pollOutFile(logf, containsWord(c.want)); !ok {
			t.Fatalf("kill %s: the trap logged no %s within %v; init: %s", c.arg, c.want, settle, signalMasks(pid))
		}
	}
	e.mustLkc("kill", id) // SIGTERM by default; sh as pid 1 ignores it
	e.mustLkc("kill", id, "9")
	e.waitStatus(id, "stopped")
	e.mustLkc("delete", id)
	e.assertIDGone(id)
}

func TestCLIKillAll(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	out := t.TempDir()
	script := `for i in 1 2 3; do
  sh -c "trap 'echo child\$\$ >>/tmp/all' USR1; echo up >>/tmp/ready; while :; do sleep 0.02; done" &
done
trap 'echo init >>/tmp/all' USR1
echo up >>/tmp/ready
while :; do sleep 0.02; done
`
	os.WriteFile(filepath.Join(out, "all.sh"), []byte(script), 0o644)
	id := e.createdID([]string{"sh", "/tmp/all.sh"}, withOutDir(out))
	e.mustLkc("start", id)
	waitOutFile(t, filepath.Join(out, "ready"), func(l []string) bool { return len(l) == 4 })

	e.mustLkc("kill", "--all", id, "USR1")
	lines := waitOutFile(t, filepath.Join(out, "all"), func(l []string) bool { return len(l) >= 4 })
	if !containsWord("init")(lines) || len(lines) != 4 {
		t.Fatalf("kill --all USR1: want init and 3 children to log it, got %q", lines)
	}
	e.mustLkc("kill", "--all", id, "KILL")
	e.waitStatus(id, "stopped")
	e.mustLkc("delete", id)
	e.assertIDGone(id)
}

func TestCLIDeleteByState(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	// A created container may be deleted without --force.
	c := e.createdID([]string{"sleep", "100"}, nil)
	e.mustLkc("delete", c)
	e.assertIDGone(c)

	r := e.createdID([]string{"sleep", "100"}, nil)
	e.mustLkc("start", r)
	e.failLkc(`^lkc: delete: .*`+r+`.*running`, "delete", r)
	if st := e.state(r); st["status"] != "running" {
		t.Fatalf("a refused delete changed the container: %v", st)
	}
	e.mustLkc("delete", "--force", r)
	e.assertIDGone(r)

	// runc: delete --force of an unknown id succeeds, plain delete fails.
	e.mustLkc("delete", "--force", "it-no-such-container")
	e.failLkc("does not exist", "delete", "it-no-such-container")
}

func TestCLIRunDetach(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	b := e.bundle([]string{"sleep", "100"}, nil)
	id := e.id()
	start := time.Now()
	e.mustLkc("run", "-d", "--bundle", b, id)
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("run -d took %v: it did not detach", d)
	}
	if st := e.state(id); st["status"] != "running" {
		t.Fatalf("after run -d: want running, got %v", st)
	}
	e.mustLkc("kill", id, "KILL")
	e.waitStatus(id, "stopped")
	e.mustLkc("delete", id)
	e.assertIDGone(id)
}

func TestCLIRunKeep(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	b := e.bundle([]string{"sh", "-c", "exit 3"}, nil)
	id := e.id()
	if r := e.lkc("run", "--keep", "--bundle", b, id); r.code != 3 {
		t.Fatalf("run --keep of exit 3: %v", r)
	}
	st := e.state(id)
	if st["status"] != "stopped" || st["pid"] != float64(0) {
		t.Fatalf("after run --keep: want stopped with pid 0, got %v", st)
	}
	e.mustLkc("delete", id)
	e.assertIDGone(id)
}

func TestCLIPreserveFDs(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	f, err := os.CreateTemp(t.TempDir(), "fd3")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := e.bundle([]string{"sh", "-c", "echo through-fd3 >&3"}, nil)
	if r := e.lkcWith([]*os.File{f}, "run", "--preserve-fds", "1", "--bundle", b, e.id()); r.code != 0 {
		t.Fatalf("run --preserve-fds 1: %v", r)
	}
	if data, _ := os.ReadFile(f.Name()); string(data) != "through-fd3\n" {
		t.Fatalf("fd 3 got %q, want the container's line", data)
	}
	// Without the flag, fd 3 must not reach the container.
	if r := e.lkcWith([]*os.File{f}, "run", "--bundle", b, e.id()); r.code == 0 {
		t.Fatalf("run without --preserve-fds: fd 3 reached the container: %v", r)
	}
}

// TestCLIPreserveFDsBeyondGiven: --preserve-fds counting more fds than
// lkc was given fails, one line naming the first missing fd, instead of
// handing the container fds lkc opened itself (its state directory's
// among them, a handle outside the container's root); run and create
// leave nothing, exec starts nothing. runc's exec refuses a missing fd
// too; its run passes its own.
func TestCLIPreserveFDsBeyondGiven(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	given := []*os.File{e.tempFile()}
	b := e.bundle([]string{"ls", "/proc/self/fd"}, nil)
	for _, args := range [][]string{{"run"}, {"create"}} {
		id := e.id()
		args = append(args, "--preserve-fds", "3", "--bundle", b, id)
		e.checkOneLineFailure(e.lkcWith(given, args...), `^lkc: `+args[0]+`: --preserve-fds 3: fd 4 was not passed to lkc$`, args)
		e.failLkc("does not exist", "state", id)
	}
	id, _ := e.runningPid(nil)
	args := []string{"exec", "--preserve-fds", "2", id, "ls", "/proc/self/fd"}
	e.checkOneLineFailure(e.lkcWith(given, args...), `^lkc: exec: --preserve-fds 2: fd 4 was not passed to lkc$`, args)
	if out := e.mustLkc("exec", id, "ps", "-o", "pid="); len(strings.Fields(out)) != 2 {
		t.Errorf("container processes after the refused exec: %q, want init and ps", out)
	}
}

func TestCLISpec(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	dir := t.TempDir()
	e.mustLkc("spec", "--bundle", dir)
	data, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var s specs.Spec
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatalf("spec wrote bad JSON: %v", err)
	}
	if s.Version != specs.Version || s.Root == nil || s.Root.Path != "rootfs" || s.Process == nil || !s.Process.Terminal {
		t.Errorf("spec: want runc's defaults, got version %q root %+v process %+v", s.Version, s.Root, s.Process)
	}
	os.WriteFile(filepath.Join(dir, "config.json"), []byte("{}"), 0o644)
	e.failLkc("exists", "spec", "--bundle", dir)
	if data, _ := os.ReadFile(filepath.Join(dir, "config.json")); string(data) != "{}" {
		t.Errorf("spec overwrote an existing config.json")
	}
}

func TestCLIFeatures(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var f struct {
		OCIVersionMax string `json:"ociVersionMax"`
		Linux         struct {
			Namespaces      []string `json:"namespaces"`
			MountExtensions struct {
				IDMap struct {
					Enabled bool `json:"enabled"`
				} `json:"idmap"`
			} `json:"mountExtensions"`
		} `json:"linux"`
	}
	if err := json.Unmarshal([]byte(e.mustLkc("features")), &f); err != nil {
		t.Fatalf("features: %v", err)
	}
	if !f.Linux.MountExtensions.IDMap.Enabled {
		t.Error("features: linux.mountExtensions.idmap.enabled is not true (containerd checks it before it asks for idmapped mounts)")
	}
	have := strings.Join(f.Linux.Namespaces, " ")
	for _, ns := range []string{"user", "time", "pid", "mount"} {
		if !containsWord(ns)(f.Linux.Namespaces) {
			t.Errorf("features: linux.namespaces %q lacks %s", have, ns)
		}
	}
	if f.OCIVersionMax != specs.Version {
		t.Errorf("features: ociVersionMax %q, want %q", f.OCIVersionMax, specs.Version)
	}
}

func TestCLILogJSON(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	logf := filepath.Join(t.TempDir(), "log.json")
	e.failLkc("does not exist", "--log", logf, "--log-format", "json", "state", "it-missing")
	data, err := os.ReadFile(logf)
	if err != nil {
		t.Fatalf("--log: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	var entry map[string]string
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &entry); err != nil {
		t.Fatalf("--log-format json: line %q: %v", lines[len(lines)-1], err)
	}
	if entry["level"] != "error" || !strings.Contains(entry["msg"], "it-missing") ||
		!strings.Contains(entry["msg"], "does not exist") || entry["time"] == "" {
		t.Errorf("--log entry: want level error and the message, got %v", entry)
	}
}

func TestCLIVersion(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	out := e.mustLkc("--version")
	if !regexp.MustCompile(`(?m)^lkc version \S+\nspec: 1\.`).MatchString(out) {
		t.Errorf("--version: got %q", out)
	}
}

func TestCLIConcurrentCreateSameID(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	b := e.bundle([]string{"sleep", "100"}, nil)
	for i := 0; i < 5; i++ {
		id := e.id()
		var results [2]result
		var wg sync.WaitGroup
		for j := range results {
			wg.Add(1)
			go func() {
				defer wg.Done()
				results[j] = e.lkcWith(nil, "create", "--bundle", b, id)
			}()
		}
		wg.Wait()
		ok, loser := 0, result{}
		for _, r := range results {
			if r.code == 0 {
				ok++
			} else {
				loser = r
			}
		}
		if ok != 1 {
			t.Fatalf("two creates of %s: want exactly one success, got %v and %v", id, results[0], results[1])
		}
		if !strings.Contains(loser.stderr, "already exists") {
			t.Errorf("losing create: want \"already exists\", got %v", loser)
		}
		if st := e.state(id); st["status"] != "created" {
			t.Errorf("the winning create: want created, got %v", st)
		}
		e.mustLkc("delete", id)
		e.assertIDGone(id)
	}
}

func TestCLIConcurrentStartDelete(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	b := e.bundle([]string{"sleep", "100"}, nil)
	for i := 0; i < 10; i++ {
		id := e.id()
		e.mustLkc("create", "--bundle", b, id)
		var start, del result
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); start = e.lkc("start", id) }()
		go func() { defer wg.Done(); del = e.lkc("delete", "--force", id) }()
		wg.Wait()
		if del.code != 0 {
			t.Errorf("delete --force racing start: %v", del)
		}
		if start.code != 0 && !regexp.MustCompile(`does not exist|cannot start|init exited before it was started`).MatchString(start.stderr) {
			t.Errorf("start racing delete --force: unexpected failure %v", start)
		}
		e.assertIDGone(id)
	}
}

func TestCLIConcurrentCreateDelete(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	b := e.bundle([]string{"sleep", "100"}, nil)
	for i := 0; i < 20; i++ {
		id := e.id()
		var create, del, del2 result
		var wg sync.WaitGroup
		wg.Add(3)
		go func() { defer wg.Done(); create = e.lkcWith(nil, "create", "--bundle", b, id) }()
		go func() { defer wg.Done(); del = e.lkc("delete", "--force", id) }()
		go func() { defer wg.Done(); del2 = e.lkc("delete", "--force", id) }()
		wg.Wait()
		if del.code != 0 || del2.code != 0 {
			t.Errorf("two delete --force racing create: %v; %v", del, del2)
		}
		// A delete between create's mkdir and its lock removes the new
		// state dir: create must say so in one line.
		if create.code != 0 && !regexp.MustCompile(`^lkc: create: container \S+ was deleted while being created\n$`).MatchString(create.stderr) {
			t.Errorf("create racing delete --force: want success or a clear error, got %v", create)
		}
		// The create may have won: then its container is whole.
		if r := e.lkc("state", id); r.code == 0 && !strings.Contains(r.stdout, `"status": "created"`) {
			t.Errorf("create raced delete and left %v", r)
		}
		e.mustLkc("delete", "--force", id)
		e.assertIDGone(id)
	}
}
