package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestRulesMoveAllOrNothing gives the engine a rule whose group the
// kernel refuses in one v1 hierarchy (its cpuset has no CPUs: ENOSPC)
// after others took the process: the engine must put each process back
// where it was in every hierarchy (a process half in a group is sticky
// there), and `rules explain` must say the move failed.
func TestRulesMoveAllOrNothing(t *testing.T) {
	r := newRulesEnv(t, "")
	exe := filepath.Join(r.tmp, "lkc-exe-sleep")
	copyExe(t, "/bin/sleep", exe)
	r.writeRules("exe=" + r.tmp + "/lkc-exe-* -> group=cpuless\n")
	cpulessGroup(t, r.env, r.parent)
	r.start()
	// Map order decided which hierarchies came first: three processes
	// make a half move almost sure without the undo.
	for i := 0; i < 3; i++ {
		p := r.inScope(exe, "60").Process.Pid
		r.waitRefusedMove(p)
		for h, path := range cgroupLines(t, p) {
			if path != r.scope {
				t.Errorf("after a refused move, pid %d is in %s in %s, want the scope %s (all: %v)", p, path, h, r.scope, fmt.Sprint(cgroupLines(t, p)))
			}
		}
	}
}

// waitRefusedMove waits until `rules explain` says the engine's move of
// pid into group cpuless (cpulessGroup) failed, and checks it says the
// process was moved back.
func (r *rulesEnv) waitRefusedMove(pid int) {
	r.t.Helper()
	for end := time.Now().Add(settle); ; time.Sleep(20 * time.Millisecond) {
		out := r.explainLine(pid)
		if strings.Contains(out, "not moved: moving "+strconv.Itoa(pid)) {
			if !strings.Contains(out, "no space left on device (moved back)") {
				r.t.Errorf("rules explain %d: %s", pid, out)
			}
			return
		}
		if time.Now().After(end) {
			r.t.Fatalf("the engine never tried to move %d (explain: %s)", pid, out)
		}
	}
}

// TestRulesMoveUndoExitedLeader: the engine reads where a process is
// from a live thread: its leader, exited while another thread runs on,
// shows the root of each v1 hierarchy, which the scope check would take
// for the process's place and a refused move would send the thread to.
// The engine's first scan finds the process (its leader named by prctl).
func TestRulesMoveUndoExitedLeader(t *testing.T) {
	py := python3(t)
	r := newRulesEnv(t, "comm=lkc-exitlead -> group=cpuless\n")
	cpulessGroup(t, r.env, r.parent)
	pid, thread := exitedLeader(t, r, py, "ctypes.CDLL(None).prctl(15, b'lkc-exitlead')\n")
	before, _ := os.ReadFile(thread)
	r.start()
	r.waitRefusedMove(pid)
	if after, _ := os.ReadFile(thread); string(after) != string(before) {
		t.Errorf("after a refused move, the live thread is in\n%s\nwas in\n%s", after, before)
	}
}

// TestRulesLetsGoOfDeletedGroups: the engine keeps the cgroup.procs
// files of its targets open while moves come; once the events stop, it
// must hold none of a group that was deleted (nor of any target), or a
// daemon that runs for months keeps a file of every group and container
// it ever placed a process in.
func TestRulesLetsGoOfDeletedGroups(t *testing.T) {
	r := newRulesEnv(t, "")
	exe := filepath.Join(r.tmp, "lkc-exe-sleep")
	copyExe(t, "/bin/sleep", exe)
	r.writeRules("exe=" + r.tmp + "/lkc-exe-* -> group=gone\n")
	r.mustLkc("group", "create", "gone")
	r.start()
	worker := r.rulesStatus().WorkerPid
	p := r.inScope(exe, "60")
	r.waitInGroup(p.Process.Pid, "gone")
	p.Process.Kill()
	p.Wait()
	r.mustLkc("group", "delete", "gone")
	group := filepath.Join(r.parent, "gone") + "/"
	var held []string
	for end := time.Now().Add(settle); ; time.Sleep(100 * time.Millisecond) {
		held = held[:0]
		fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", worker))
		for _, fd := range fds {
			if l, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", worker, fd.Name())); err == nil && strings.Contains(l, group) {
				held = append(held, l)
			}
		}
		if len(held) == 0 {
			return
		}
		if time.Now().After(end) {
			t.Fatalf("%v after the group was deleted, worker %d still holds %v", settle, worker, held)
		}
	}
}

// TestRulesWaitsForGroupDelete plays a `lkc group delete` under way: the
// test holds the groups' lock, removes the group's cgroups (delete's
// first step) and only then its definition. A process the engine places
// meanwhile must not make the cgroup again (it would outlive the group,
// holding the process): the engine waits for the lock, then finds the
// group gone and leaves the process where it is.
func TestRulesWaitsForGroupDelete(t *testing.T) {
	r := newRulesEnv(t, "")
	exe := filepath.Join(r.tmp, "lkc-exe-sleep")
	copyExe(t, "/bin/sleep", exe)
	r.writeRules("exe=" + r.tmp + "/lkc-exe-* -> group=victim\n")
	r.mustLkc("group", "create", "victim")
	r.start()
	p1 := r.inScope(exe, "60")
	r.waitInGroup(p1.Process.Pid, "victim")
	p1.Process.Kill()
	p1.Wait()
	defs := filepath.Join(r.tmp, "groups")
	lock, err := os.OpenFile(filepath.Join(defs, ".lock"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	dirs := r.dirsOf(filepath.Join(r.parent, "victim"))
	for _, d := range dirs {
		if err := os.Remove(d); err != nil {
			t.Fatal(err)
		}
	}
	p2 := r.inScope(exe, "60").Process.Pid
	time.Sleep(time.Second) // the engine tries to place p2
	if err := os.Remove(filepath.Join(defs, "victim.json")); err != nil {
		t.Fatal(err)
	}
	syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	for end := time.Now().Add(settle); ; time.Sleep(20 * time.Millisecond) {
		if out := r.mustLkc("rules", "explain", strconv.Itoa(p2)); !strings.Contains(out, "not acted on") {
			if !strings.Contains(out, "not moved: group victim: no such group") {
				t.Errorf("rules explain %d:\n%s", p2, out)
			}
			break
		}
		if time.Now().After(end) {
			t.Fatalf("the engine never acted on %d (log:\n%s)", p2, r.log())
		}
	}
	for _, d := range dirs {
		if _, err := os.Stat(d); err == nil {
			t.Errorf("the deleted group's cgroup %s was made again (holding %v)", d, r.procsUnder(filepath.Join(r.parent, "victim")))
		}
	}
	for h, path := range cgroupLines(t, p2) {
		if path != r.scope {
			t.Errorf("pid %d is in %s in %s, want the scope", p2, path, h)
		}
	}
}
