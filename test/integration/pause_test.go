package integration

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// counter runs a detached container that writes an increasing count to
// <dir>/count every 20 ms, and returns its id and a reader of the count.
func (e *env) counter() (string, func() int) {
	e.t.Helper()
	out := e.t.TempDir()
	b := e.bundle([]string{"sh", "-c", "i=0; while :; do i=$((i+1)); echo $i > /out/count.tmp; mv /out/count.tmp /out/count; sleep 0.02; done"},
		func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/out", Type: "bind", Source: out, Options: []string{"rbind", "rw"}})
		})
	id := e.id()
	e.mustLkc("run", "-d", "--bundle", b, id)
	read := func() int {
		data, _ := os.ReadFile(filepath.Join(out, "count"))
		n, _ := strconv.Atoi(strings.TrimSpace(string(data)))
		return n
	}
	deadline := time.Now().Add(settle)
	for read() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	return id, read
}

func TestPauseStopsAndResumeRestarts(t *testing.T) {
	e := newEnv(t)
	id, count := e.counter()
	e.mustLkc("pause", id)
	if st := e.state(id); st["status"] != "paused" {
		t.Fatalf("after pause: status %v", st["status"])
	}
	frozen := count()
	time.Sleep(200 * time.Millisecond)
	if now := count(); now != frozen {
		t.Fatalf("count went on while paused: %d -> %d", frozen, now)
	}
	e.failLkc("cannot pause container .*: it is paused", "pause", id)
	e.mustLkc("resume", id)
	time.Sleep(200 * time.Millisecond)
	if now := count(); now <= frozen {
		t.Fatalf("count did not go on after resume: %d -> %d", frozen, now)
	}
	e.failLkc("cannot resume container .*: it is running", "resume", id)
}

func TestPsListsContainerProcesses(t *testing.T) {
	e := newEnv(t)
	id, _ := e.counter()
	var pids []int
	if err := json.Unmarshal([]byte(e.mustLkc("ps", "--format", "json", id)), &pids); err != nil {
		t.Fatal(err)
	}
	init := int(e.state(id)["pid"].(float64))
	found := false
	for _, p := range pids {
		found = found || p == init
	}
	if !found {
		t.Fatalf("ps json %v lacks init pid %d", pids, init)
	}
	table := e.mustLkc("ps", id)
	if !strings.HasPrefix(table, "UID") || !strings.Contains(table, strconv.Itoa(init)) {
		t.Fatalf("ps table lacks header or init pid %d:\n%s", init, table)
	}
	// As in runc, a ps option ps refuses fails with what ps said, and a
	// format without a PID column fails.
	e.failLkc(`^lkc: ps: running ps --no-such-option: exit status 1: \S`, "ps", id, "--no-such-option")
	e.failLkc(`^lkc: ps: ps output has no PID column$`, "ps", id, "-o", "comm")
}

func TestDeleteForceKillsPausedContainer(t *testing.T) {
	e := newEnv(t)
	id, _ := e.counter()
	e.mustLkc("pause", id)
	e.failLkc("not stopped: it is paused", "delete", id)
	e.mustLkc("delete", "--force", id)
	e.failLkc("does not exist", "state", id)
}

// TestPauseManyProcesses freezes a container of 40 busy processes: none may
// make progress until resume.
func TestPauseManyProcesses(t *testing.T) {
	e := newEnv(t)
	out := t.TempDir()
	script := `for i in $(seq 40); do (n=0; while :; do n=$((n+1)); echo $n > /out/c$i; done) & done; wait`
	b := e.bundle([]string{"sh", "-c", script}, func(s *specs.Spec) {
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/out", Type: "bind", Source: out, Options: []string{"rbind", "rw"}})
	})
	id := e.id()
	e.mustLkc("run", "-d", "--bundle", b, id)
	snapshot := func() string {
		var b strings.Builder
		for i := 1; i <= 40; i++ {
			data, _ := os.ReadFile(filepath.Join(out, "c"+strconv.Itoa(i)))
			b.Write(data)
		}
		return b.String()
	}
	// Every counter has started once its file exists (a file being
	// rewritten may read empty, so its content says nothing).
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(filepath.Join(out, "c40")); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.mustLkc("pause", id)
	frozen := snapshot()
	time.Sleep(300 * time.Millisecond)
	if now := snapshot(); now != frozen {
		t.Fatalf("counters moved while paused")
	}
	var pids []int
	json.Unmarshal([]byte(e.mustLkc("ps", "--format", "json", id)), &pids)
	if len(pids) < 41 {
		t.Fatalf("want 40 counters and their shell in the container, ps lists %d", len(pids))
	}
	e.mustLkc("resume", id)
	for deadline := time.Now().Add(settle); snapshot() == frozen; {
		if time.Now().After(deadline) {
			t.Fatalf("counters did not move after resume")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestNestedCgroupPath puts a sub-container's cgroup beneath a running
// container's. v1 allows it; v2's no-internal-processes rule refuses
// controllers below a cgroup with processes, so there create must fail
// cleanly (docs/cgroups.md).
func TestNestedCgroupPath(t *testing.T) {
	e := newEnv(t)
	parent := e.id()
	e.mustLkc("run", "-d", "--bundle", e.bundle([]string{"sleep", "1000"}, nil), parent)
	child := e.id()
	b := e.bundle([]string{"sleep", "1000"}, func(s *specs.Spec) { s.Linux.CgroupsPath = "lkc/" + parent + "/" + child })
	if cgroupV2() {
		e.failLkc("subtree_control.*device or resource busy", "run", "-d", "--bundle", b, child)
		return
	}
	e.mustLkc("run", "-d", "--bundle", b, child)
	if _, err := os.Stat("/sys/fs/cgroup/pids/lkc/" + parent + "/" + child); err != nil {
		t.Fatalf("nested cgroup: %v", err)
	}
	e.mustLkc("delete", "--force", child)
	if _, err := os.Stat("/sys/fs/cgroup/pids/lkc/" + parent + "/" + child); err == nil {
		t.Fatalf("nested cgroup left after delete")
	}
}
