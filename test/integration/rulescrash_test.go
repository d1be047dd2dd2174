package integration

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// halfMoveEnv is a rules engine, not started, whose rule moves the
// program exe into group half, and whose first worker to move it dies
// after the first hierarchy's write (LKC_TEST_RULES_MOVE_DIE, whose file
// die goes once it fired). It skips on cgroup v2 (one hierarchy, so no
// move is half made).
func halfMoveEnv(t *testing.T) (r *rulesEnv, exe, die string) {
	if cgroupV2() {
		t.Skip("cgroup v2: one hierarchy, so no move is half made")
	}
	r = newRulesEnv(t, "")
	exe = filepath.Join(r.tmp, "lkchalf")
	copyExe(t, "/bin/sleep", exe)
	r.writeRules("exe=" + exe + " -> group=half\n")
	r.mustLkc("group", "create", "half")
	die = filepath.Join(r.tmp, "die")
	if err := os.WriteFile(die, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("LKC_TEST_RULES_MOVE_DIE", die)
	return r, exe, die
}

// waitWhole waits until pid is in cgroup want in every hierarchy.
func waitWhole(t *testing.T, pid int, want string) {
	t.Helper()
	waitFor(t, func() bool {
		for _, p := range cgroupLines(t, pid) {
			if p != want {
				return false
			}
		}
		return true
	}, "the process whole in "+want)
}

// TestRulesMoveKilledIsFinished: the worker is SIGKILLed in the middle
// of a rule's move, after the first hierarchy's cgroup.procs write (the
// LKC_TEST_RULES_MOVE_DIE hook): the process is half in its group. The
// next worker's start scan finds it by the same rule and writes the
// other hierarchies; the group's stickiness (a process in a resource
// group is never moved again) does not keep it half placed.
func TestRulesMoveKilledIsFinished(t *testing.T) {
	r, exe, die := halfMoveEnv(t)
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
	waitWhole(t, pid, want)
	r.mustLkc("group", "delete", "--force", "half")
}

// TestRulesMoveKilledRulesChanged: as TestRulesMoveKilledIsFinished, but
// the holder is stopped so that no worker runs while the test checks the
// process is half in group half and changes the rules to another group.
// The next worker places it whole in group half all the same (a process
// placed in a group stays there, whole), not half there for good.
func TestRulesMoveKilledRulesChanged(t *testing.T) {
	r, exe, die := halfMoveEnv(t)
	r.mustLkc("group", "create", "other")
	st := r.start()
	if err := syscall.Kill(st.HolderPid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	continued := false
	cont := func() {
		if !continued {
			syscall.Kill(st.HolderPid, syscall.SIGCONT)
			continued = true
		}
	}
	t.Cleanup(cont)
	cmd := r.inScope(exe, "600")
	pid := cmd.Process.Pid
	waitFor(t, func() bool {
		_, err := os.Stat(die)
		// The stopped holder reaps nothing: the dead worker is a zombie.
		stat, _ := os.ReadFile("/proc/" + strconv.Itoa(st.WorkerPid) + "/stat")
		return os.IsNotExist(err) && (len(stat) == 0 || strings.Contains(string(stat), ") Z "))
	}, "the worker to die in the move")
	want := r.parent + "/half"
	in, out := 0, 0
	for _, p := range cgroupLines(t, pid) {
		if p == want {
			in++
		} else {
			out++
		}
	}
	if in == 0 || out == 0 {
		t.Fatalf("after the kill the process is in %v: want it half in %s", cgroupLines(t, pid), want)
	}
	r.writeRules("exe=" + exe + " -> group=other\n")
	cont()
	waitWhole(t, pid, want)
	r.mustLkc("group", "delete", "--force", "half")
	r.mustLkc("group", "delete", "--force", "other")
}
