package integration

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestRulesWarmThread checks the engine's warming thread on a host with
// v1 hierarchies (internal/rulesengine/warm.go): after a move, a thread of
// the worker sits in its cgroup beneath the groups' parent; a second after
// the last move it is gone; lkc daemon stop removes the cgroup.
func TestRulesWarmThread(t *testing.T) {
	if cgroupV2() {
		t.Skip("a host with cgroup v2 only leaves fast moves to the favordynmods mount option")
	}
	r := newRulesEnv(t, "")
	exe := filepath.Join(r.tmp, "lkc-exe-sleep")
	copyExe(t, "/bin/sleep", exe)
	r.writeRules("exe=" + exe + " -> group=one\n")
	r.mustLkc("group", "create", "one")
	worker := r.start().WorkerPid
	warm := ""
	for _, d := range r.dirsOf(r.parent) {
		if strings.HasSuffix(filepath.Dir(d), "/freezer") || strings.Contains(d, "/freezer/") {
			warm = filepath.Join(d, ".warm")
		}
	}
	if warm == "" {
		t.Skip("no freezer hierarchy")
	}
	p := r.inScope(exe, "60")
	r.waitInGroup(p.Process.Pid, "one")
	tasks := func() []string {
		data, _ := os.ReadFile(filepath.Join(warm, "tasks"))
		return strings.Fields(string(data))
	}
	// The thread starts after the move (warmer.moved): a loaded host may
	// show the process in its group first.
	got := tasks()
	for end := time.Now().Add(settle); len(got) != 1 && time.Now().Before(end); got = tasks() {
		time.Sleep(5 * time.Millisecond)
	}
	if len(got) != 1 {
		t.Fatalf("after a move, %s/tasks holds %v, want one thread of the worker", warm, got)
	}
	if _, err := os.Stat("/proc/" + strconv.Itoa(worker) + "/task/" + got[0]); err != nil {
		t.Errorf("the thread %s in %s is not the worker's (%d): %v", got[0], warm, worker, err)
	}
	for end := time.Now().Add(10 * time.Second); len(tasks()) > 0; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("10 s after the last move, %s still holds %v", warm, tasks())
		}
	}
	q := r.inScope(exe, "60")
	r.waitInGroup(q.Process.Pid, "one")
	for end := time.Now().Add(settle); len(tasks()) != 1 && time.Now().Before(end); {
		time.Sleep(5 * time.Millisecond)
	}
	if len(tasks()) != 1 {
		t.Errorf("after a later move, %s holds %v, want the warming thread again", warm, tasks())
	}
	r.stop()
	if _, err := os.Stat(warm); !os.IsNotExist(err) {
		t.Errorf("after lkc daemon stop, %s is still there (%v)", warm, err)
	}
}
