package integration

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// becomeSubreaper makes this test process the reaper of the orphans of the
// lkc processes it starts, so a process a killed lkc left behind outside
// the container's cgroup (where the harness would not see it) is found as
// a child. Tests that call it must not run in parallel with others.
func becomeSubreaper(t *testing.T) {
	t.Helper()
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		t.Fatalf("prctl(PR_SET_CHILD_SUBREAPER): %v", err)
	}
	t.Cleanup(func() {
		unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)
		reapOrphans()
	})
}

// children returns the pids of this process's children: state 'Z' or not.
func children() map[int]byte {
	out := map[int]byte{}
	self := os.Getpid()
	entries, _ := os.ReadDir("/proc")
	for _, ent := range entries {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile(filepath.Join("/proc", ent.Name(), "stat"))
		i := bytes.LastIndexByte(data, ')')
		if err != nil || i < 0 {
			continue
		}
		var state byte
		var ppid int
		if _, err := fmt.Sscanf(string(data[i+2:]), "%c %d", &state, &ppid); err == nil && ppid == self {
			out[pid] = state
		}
	}
	return out
}

// reapOrphans reaps the zombie children of this process, which lkc's exited
// descendants become under a subreaper.
func reapOrphans() {
	for pid, state := range children() {
		if state == 'Z' {
			var ws unix.WaitStatus
			unix.Wait4(pid, &ws, unix.WNOHANG, nil)
		}
	}
}

// assertNoOrphans fails if a descendant of a killed lkc still lives after
// the container was deleted. Init's helpers exit on their own once their
// parent is gone: give them a moment.
func assertNoOrphans(t *testing.T, what string) {
	t.Helper()
	deadline := time.Now().Add(settle)
	for {
		reapOrphans()
		live := children()
		if len(live) == 0 {
			return
		}
		if time.Now().After(deadline) {
			for pid := range live {
				cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
				t.Errorf("%s: orphan process %d (%q) outlived the delete", what, pid, bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '}))
				syscall.Kill(pid, syscall.SIGKILL)
			}
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// killedAfter runs lkc args with its stdio on /dev/null and SIGKILLs it
// after delay unless it exits first; it reports whether the kill landed.
func (e *env) killedAfter(delay time.Duration, args ...string) bool {
	e.t.Helper()
	cmd := exec.Command(lkcBinary, append([]string{"--root", e.root}, args...)...)
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	timer := time.AfterFunc(delay, func() { cmd.Process.Kill() })
	err := cmd.Wait()
	timer.Stop()
	if err == nil {
		return false
	}
	ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		e.t.Fatalf("lkc %v failed on its own: %v", args, err)
	}
	return true
}

func TestCrashCreateKilled(t *testing.T) {
	e := newEnv(t)
	becomeSubreaper(t)
	b := e.bundle([]string{"sleep", "100"}, nil)
	// Spread the kills over the time a whole create takes, and a bit past.
	id := e.id()
	began := time.Now()
	e.mustLkc("create", "--bundle", b, id)
	took := time.Since(began)
	e.mustLkc("delete", "--force", id)
	killed, n := 0, rounds(32, 12)
	for i := 0; i < n; i++ {
		id := e.id()
		delay := took * time.Duration(i) / time.Duration(n-n/8)
		if e.killedAfter(delay, "create", "--bundle", b, id) {
			killed++
		}
		// Whatever the create left must not break the other commands.
		if r := e.lkc("list", "--format", "json"); r.code != 0 {
			t.Errorf("list after create killed at %v: %v", delay, r)
		}
		if r := e.lkc("state", id); r.code != 0 && !strings.Contains(r.stderr, "does not exist") {
			t.Errorf("state after create killed at %v: %v", delay, r)
		} else if r.code == 0 && !regexp.MustCompile(`"status": "(created|stopped)"`).MatchString(r.stdout) {
			t.Errorf("state after create killed at %v: want created or stopped, got %v", delay, r)
		}
		e.mustLkc("delete", "--force", id)
		e.assertIDGone(id)
		assertNoOrphans(t, fmt.Sprintf("create killed after %v", delay))
		if t.Failed() {
			t.Fatalf("create killed after %v: delete --force left the above behind", delay)
		}
	}
	t.Logf("%d of %d creates (of %v each) killed before they finished", killed, n, took)
	if killed == 0 {
		t.Errorf("no create was killed while it ran: the test proved nothing")
	}
}

func TestCrashDeleteKilled(t *testing.T) {
	e := newEnv(t)
	becomeSubreaper(t)
	b := e.bundle([]string{"sleep", "100"}, nil)
	for i := 0; i < 16; i++ {
		id := e.id()
		e.mustLkc("create", "--bundle", b, id)
		if i%2 == 1 {
			e.mustLkc("start", id)
		}
		delay := time.Duration(i/2) * 500 * time.Microsecond
		e.killedAfter(delay, "delete", "--force", id)
		e.mustLkc("delete", "--force", id)
		e.assertIDGone(id)
		assertNoOrphans(t, fmt.Sprintf("delete killed after %v", delay))
		if t.Failed() {
			t.Fatalf("delete killed after %v: a second delete --force left the above behind", delay)
		}
	}
}

func TestCrashInitKilledFromOutside(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, start := range []bool{false, true} {
		id := e.createdID([]string{"sleep", "100"}, nil)
		if start {
			e.mustLkc("start", id)
		}
		pid := int(e.state(id)["pid"].(float64))
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatalf("kill -9 %d: %v", pid, err)
		}
		e.waitStatus(id, "stopped")
		if st := e.state(id); st["pid"] != float64(0) {
			t.Errorf("container whose init died: want pid 0, got %v", st)
		}
		e.failLkc(`cannot start container .*: it is stopped`, "start", id)
		e.mustLkc("delete", id)
		e.assertIDGone(id)
	}
}

// TestCrashLeftoverStateDir recreates by hand what a create or delete killed
// between two steps leaves in the state root, in the windows too short for
// TestCrashCreateKilled to hit reliably: a state dir with no state yet, or
// only a half-written temp file.
func TestCrashLeftoverStateDir(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, leftover := range []string{"", ".state.tmp", "exec.fifo"} {
		for _, force := range []bool{true, false} {
			id := e.id()
			dir := filepath.Join(e.root, id)
			if err := os.MkdirAll(dir, 0o711); err != nil {
				t.Fatal(err)
			}
			if leftover != "" {
				os.WriteFile(filepath.Join(dir, leftover), []byte(`{"id":`), 0o600)
			}
			if out := e.mustLkc("list", "-q"); strings.Contains(out, id) {
				t.Errorf("list shows a container with no state (%q left): %q", leftover, out)
			}
			args := []string{"delete", id}
			if force {
				args = []string{"delete", "--force", id}
			}
			e.mustLkc(args...)
			e.assertIDGone(id)
		}
	}
}

// TestCrashStartKilledAfterRelease leaves what a `lkc start` killed between
// releasing init (the byte written to exec.fifo) and removing the fifo
// leaves: a container that runs its process. It must show as running, not
// as a created container that can never be started.
func TestCrashStartKilledAfterRelease(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	out := t.TempDir()
	id := e.createdID([]string{"sh", "-c", "echo started >/tmp/started; exec sleep 100"}, withOutDir(out))
	fifo, err := os.OpenFile(filepath.Join(e.root, id, "exec.fifo"), os.O_WRONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.Fatalf("opening the exec fifo as start does: %v", err)
	}
	_, err = fifo.Write([]byte{0})
	fifo.Close()
	if err != nil {
		t.Fatal(err)
	}
	waitOutFile(t, filepath.Join(out, "started"), containsWord("started"))
	e.waitStatus(id, "running")
	e.failLkc(`cannot start container .*: it is running`, "start", id)
	e.failLkc(`it is running \(use --force\)`, "delete", id)
	e.mustLkc("delete", "--force", id)
	e.assertIDGone(id)
}

// TestCrashRunKilled kills a foreground `lkc run` with SIGKILL: the
// container it started outlives it, shows as running, and delete --force
// removes it whole.
func TestCrashRunKilled(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	cmd, id := e.startRun([]string{"sh", "-c", "echo ready; exec sleep 100"})
	cmd.Process.Kill()
	cmd.Wait()
	if st := e.state(id); st["status"] != "running" {
		t.Fatalf("after lkc run was killed: want the container running, got %v", st)
	}
	e.mustLkc("delete", "--force", id)
	e.assertIDGone(id)
}
