package integration

import (
	"os"
	"path/filepath"
	"testing"
)

// TestRulesMoveKilledIsFinished: the worker is SIGKILLed in the middle
// of a rule's move, after the first hierarchy's cgroup.procs write (the
// LKC_TEST_RULES_MOVE_DIE hook): the process is half in its group. The
// next worker's start scan finds it by the same rule and writes the
// other hierarchies; the group's stickiness (a process in a resource
// group is never moved again) does not keep it half placed.
func TestRulesMoveKilledIsFinished(t *testing.T) {
	if cgroupV2() {
		t.Skip("cgroup v2: one hierarchy, so no move is half made")
	}
	r := newRulesEnv(t, "")
	exe := filepath.Join(r.tmp, "lkchalf")
	copyExe(t, "/bin/sleep", exe)
	r.writeRules("exe=" + exe + " -> group=half\n")
	r.mustLkc("group", "create", "half")
	die := filepath.Join(r.tmp, "die")
	if err := os.WriteFile(die, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("LKC_TEST_RULES_MOVE_DIE", die)
	before := r.start()
	cmd := r.inScope(exe, "600")
	pid := cmd.Process.Pid
	waitFor(t, func() bool {
		_, err := os.Stat(die)
		return os.IsNotExist(err)
	}, "the worker to die in the move")
	if st := r.status(); st.WorkerPid == before.WorkerPid {
		t.Fatalf("worker %d still serves after the hook", st.WorkerPid)
	}
	want := r.parent + "/half"
	waitFor(t, func() bool {
		for _, p := range cgroupLines(t, pid) {
			if p != want {
				return false
			}
		}
		return true
	}, "the process whole in group half")
	r.mustLkc("group", "delete", "--force", "half")
}
