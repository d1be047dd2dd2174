package integration

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// timed runs lkc and fails the test if it took longer than limit.
func (e *env) timed(limit time.Duration, args ...string) result {
	e.t.Helper()
	start := time.Now()
	r := e.lkc(args...)
	if d := time.Since(start); d > limit {
		e.t.Errorf("lkc %s took %v, want under %v", strings.Join(args, " "), d, limit)
	}
	return r
}

// groupAlive reports whether any process is in process group pgid.
func groupAlive(pgid int) bool {
	entries, _ := os.ReadDir("/proc")
	for _, ent := range entries {
		data, err := os.ReadFile(filepath.Join("/proc", ent.Name(), "stat"))
		if err != nil {
			continue
		}
		f := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+1:]))
		if len(f) > 2 && f[2] == strconv.Itoa(pgid) && f[0] != "Z" {
			return true
		}
	}
	return false
}

// TestSlowCreateBlocksNothing checks that a create stuck in a createRuntime
// hook without timeout holds up neither list nor state, which show it as
// creating, and that delete --force ends it: the hook and init are killed,
// the create fails with one line, runs the poststop hooks once (the
// delete, which finds nothing once it has the lock, runs none) and leaves
// nothing behind.
func TestSlowCreateBlocksNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	other := e.id()
	e.mustLkc("run", "-d", "--bundle", e.bundle([]string{"sleep", "1000"}, nil), other)
	dir := t.TempDir()
	id := e.id()
	b := e.bundle([]string{"sleep", "1000"}, func(s *specs.Spec) {
		s.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{
			// Far longer than the limits below (which leave room for the
			// slow v2 VM), bounded so that an lkc that waits fails the
			// test rather than hangs it.
			shHook(`echo $$ > "$D/pid"; sleep 60`, "D="+dir),
		}, Poststop: []specs.Hook{recordingHook("poststop", dir)}}
	})
	create := exec.Command(lkcBinary, "--root", e.root, "create", "--bundle", b, id)
	var stderr bytes.Buffer
	create.Stderr = &stderr
	if err := create.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- create.Wait() }()
	t.Cleanup(func() { create.Process.Kill() })
	hook, _ := strconv.Atoi(waitOutFile(t, filepath.Join(dir, "pid"), func(l []string) bool { return len(l) == 1 })[0])
	t.Cleanup(func() { syscall.Kill(-hook, syscall.SIGKILL) }) // should the test fail

	var list []map[string]any
	r := e.timed(5*time.Second, "list", "--format", "json")
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil || r.code != 0 {
		t.Fatalf("list during a create: %v", r)
	}
	got := map[string]any{}
	for _, s := range list {
		got[s["id"].(string)] = s["status"]
	}
	if got[id] != "creating" || got[other] != "running" {
		t.Errorf("list during a create: statuses %v, want %s creating and %s running", got, id, other)
	}
	if r := e.timed(5*time.Second, "state", id); !strings.Contains(r.stdout, `"status": "creating"`) {
		t.Errorf("state during a create: %v", r)
	}

	e.timed(10*time.Second, "delete", "--force", id)
	select {
	case err := <-exited:
		if err == nil {
			t.Errorf("create succeeded after delete --force of its container")
		}
		msg := strings.TrimRight(stderr.String(), "\n")
		if msg != "lkc: create: container "+id+" was deleted while being created" {
			t.Errorf("create's error: %q, want one line saying it was deleted", msg)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("create still runs 20s after delete --force")
	}
	if groupAlive(hook) {
		t.Errorf("the createRuntime hook (process group %d) outlived the create", hook)
	}
	e.assertIDGone(id)
	if got := readTrim(t, filepath.Join(dir, "order")); got != "poststop" {
		t.Errorf("hooks run after the create was deleted: %q, want poststop once", got)
	}
	if st := e.state(other); st["status"] != "running" {
		t.Errorf("the other container: %v", st)
	}
}

// TestCorruptStateListAndDelete checks that a container whose state.json is
// cut short hides no other from list (it is left out with a warning) and
// that delete --force still kills its processes and removes its cgroup and
// state directory, from what is left of the file or, when nothing is, from
// the cgroup lkc names by default.
func TestCorruptStateListAndDelete(t *testing.T) {
	t.Parallel()
	for _, keep := range []float64{0.5, 0} {
		t.Run(strconv.FormatFloat(keep, 'f', -1, 64), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			other, id := e.id(), e.id()
			e.mustLkc("run", "-d", "--bundle", e.bundle([]string{"sleep", "1000"}, nil), other)
			e.mustLkc("run", "-d", "--bundle", e.bundle([]string{"sleep", "1000"}, nil), id)
			pid := int(e.state(id)["pid"].(float64))
			path := filepath.Join(e.root, id, "state.json")
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, data[:int(float64(len(data))*keep)], 0o600); err != nil {
				t.Fatal(err)
			}

			r := e.lkc("list", "-q")
			if r.code != 0 || r.stdout != other+"\n" {
				t.Errorf("list with a corrupt state: %v, want only %s", r, other)
			}
			if !strings.Contains(r.stderr, "warning: container "+id+": ") {
				t.Errorf("list with a corrupt state warned %q, want a warning naming %s", r.stderr, id)
			}
			e.failLkc(`^lkc: delete: corrupt state .*delete --force`, "delete", id)
			e.mustLkc("delete", "--force", id)
			if stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); err == nil && !bytes.Contains(stat, []byte(") Z ")) {
				t.Errorf("init %d of %s still runs: %s", pid, id, stat)
			}
			e.assertIDGone(id)
			if st := e.state(other); st["status"] != "running" {
				t.Errorf("the other container: %v", st)
			}
		})
	}
}

// TestBusyCreatedStaysCreated checks that a created container another
// command holds (a start whose startContainer hook runs) reads as created,
// not creating: only a create or restore under way is creating.
func TestBusyCreatedStaysCreated(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	id := e.id()
	b := e.bundle([]string{"sleep", "1000"}, func(s *specs.Spec) {
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/out", Type: "bind", Source: dir, Options: []string{"rbind", "rw"}})
		s.Hooks = &specs.Hooks{StartContainer: []specs.Hook{shHook(`echo $$ > /out/pid; sleep 60`)}}
	})
	e.mustLkc("create", "--bundle", b, id)
	start := exec.Command(lkcBinary, "--root", e.root, "start", id)
	if err := start.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { start.Process.Kill(); start.Wait() })
	waitOutFile(t, filepath.Join(dir, "pid"), func(l []string) bool { return len(l) == 1 })
	if r := e.timed(5*time.Second, "state", id); !strings.Contains(r.stdout, `"status": "created"`) {
		t.Errorf("state of a created container while start holds it: %v", r)
	}
	e.timed(10*time.Second, "delete", "--force", id)
}
