package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// background is an lkc started without waiting for it.
type background struct {
	args []string
	cmd  *exec.Cmd
	done chan struct{}
	r    result
}

// startLkc starts lkc in the background; the test's cleanup kills it if
// it still runs.
func (e *env) startLkc(args ...string) *background {
	e.t.Helper()
	b := &background{args: args, done: make(chan struct{})}
	b.cmd = exec.Command(e.bin, append([]string{"--root", e.root}, args...)...)
	out, errf := e.tempFile(), e.tempFile()
	b.cmd.Stdout, b.cmd.Stderr = out, errf
	if err := b.cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	go func() {
		b.cmd.Wait()
		b.r = result{stdout: readAll(out), stderr: readAll(errf), code: b.cmd.ProcessState.ExitCode()}
		out.Close()
		errf.Close()
		close(b.done)
	}()
	e.t.Cleanup(func() {
		b.cmd.Process.Kill()
		<-b.done
	})
	return b
}

func (b *background) running() bool {
	select {
	case <-b.done:
		return false
	default:
		return true
	}
}

// wait returns b's result once it has exited; an lkc that waits longer
// than settle fails the test (a deadlock) instead of hanging it.
func (b *background) wait(t *testing.T) result {
	t.Helper()
	select {
	case <-b.done:
		return b.r
	case <-time.After(settle):
		t.Fatalf("lkc %s still runs after %v", strings.Join(b.args, " "), settle)
		return result{}
	}
}

// pausedWithOut runs a container that sleeps, with /out bound to a
// directory of the host, pauses it, and returns its id, its init's pid
// and the directory.
func (e *env) pausedWithOut() (string, int, string) {
	e.t.Helper()
	out := e.t.TempDir()
	id, init := e.runningPid(func(s *specs.Spec) {
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/out", Type: "bind", Source: out, Options: []string{"rbind", "rw"}})
	})
	e.mustLkc("pause", id)
	return id, init, out
}

// waitExecd waits until container id holds a process besides init, and
// returns its pid.
func (e *env) waitExecd(id string, init int) int {
	e.t.Helper()
	for deadline := time.Now().Add(settle); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		var pids []int
		json.Unmarshal([]byte(e.mustLkc("ps", "--format", "json", id)), &pids)
		if i := slices.IndexFunc(pids, func(p int) bool { return p != init }); i >= 0 {
			return pids[i]
		}
	}
	e.t.Fatalf("no process joined container %s", id)
	return 0
}

// allFrozen reports whether every task of container id is frozen as the
// kernel counts them: v1's freezer.state reads FROZEN, and v2's
// cgroup.events "frozen 1", only once each task in the cgroup has frozen.
func allFrozen(t *testing.T, id string) bool {
	t.Helper()
	for _, dir := range cgroupDirs(id) {
		if data, err := os.ReadFile(filepath.Join(dir, "freezer.state")); err == nil {
			return strings.TrimSpace(string(data)) == "FROZEN"
		}
		if data, err := os.ReadFile(filepath.Join(dir, "cgroup.events")); err == nil && cgroupV2() {
			return strings.Contains(string(data), "frozen 1")
		}
	}
	t.Fatalf("no freezer found for container %s", id)
	return false
}

// cmdline is the command line of pid, its arguments joined by spaces.
func cmdline(t *testing.T, pid int) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
	if err != nil {
		t.Fatalf("process %d: %v", pid, err)
	}
	return strings.TrimSpace(strings.ReplaceAll(string(data), "\x00", " "))
}

// TestExecIgnorePausedDetached: `exec -d --ignore-paused` into a paused
// container starts a process that stays frozen in the container's cgroup,
// before it has exec'd, and waits for it as runc does; resume lets it run
// and exec return.
func TestExecIgnorePausedDetached(t *testing.T) {
	e := newEnv(t)
	id, init, out := e.pausedWithOut()
	pidFile := filepath.Join(t.TempDir(), "pid")
	ex := e.startLkc("exec", "-d", "--ignore-paused", "--pid-file", pidFile, id, "sh", "-c", "echo ran > /out/ran")
	pid := e.waitExecd(id, init)
	// The status says paused from the start; the freezer reads FREEZING
	// until the process moved in has frozen.
	if st := e.state(id)["status"]; st != "paused" {
		t.Errorf("status %v once the exec joined, want paused", st)
	}
	for deadline := time.Now().Add(settle); !allFrozen(t, id); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("container %s has a task that is not frozen %v after the exec joined it", id, settle)
		}
	}
	if got := cmdline(t, pid); got != "lkc init" {
		t.Errorf("process %d of the exec runs %q before resume, want lkc init still waiting", pid, got)
	}
	if _, err := os.Stat(filepath.Join(out, "ran")); err == nil {
		t.Errorf("the exec'd process ran in a paused container")
	}
	if !ex.running() {
		t.Errorf("exec -d returned before resume (%v); runc waits for the process to start", ex.r)
	}
	e.mustLkc("resume", id)
	if r := ex.wait(t); r.code != 0 {
		t.Fatalf("exec -d --ignore-paused after resume: %v", r)
	}
	if _, err := os.Stat(pidFile); err != nil {
		t.Errorf("no pid file after exec -d: %v", err)
	}
	var data []byte
	for deadline := time.Now().Add(settle); len(data) == 0 && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		data, _ = os.ReadFile(filepath.Join(out, "ran"))
	}
	if strings.TrimSpace(string(data)) != "ran" {
		t.Errorf("after resume the process wrote %q, want ran", data)
	}
}

// TestExecIgnorePausedForeground: a foreground exec into a paused
// container completes once another process resumes it, with the process's
// output and exit status.
func TestExecIgnorePausedForeground(t *testing.T) {
	e := newEnv(t)
	id, init, _ := e.pausedWithOut()
	ex := e.startLkc("exec", "--ignore-paused", id, "sh", "-c", "echo fg-ran; exit 3")
	e.waitExecd(id, init)
	if !ex.running() {
		t.Fatalf("exec --ignore-paused returned while the container is paused: %v", ex.r)
	}
	e.mustLkc("resume", id)
	r := ex.wait(t)
	if r.code != 3 || strings.TrimSpace(r.stdout) != "fg-ran" {
		t.Errorf("exec --ignore-paused after resume: %v, want exit 3 and fg-ran", r)
	}
	if st := e.state(id)["status"]; st != "running" {
		t.Errorf("status %v after resume", st)
	}
}

// TestExecIgnorePausedDeleteForce: `delete -f` of a paused container with
// an exec waiting in it does not wait for that exec: it kills the frozen
// process with the rest, the exec fails with one line, and nothing is
// left (the env's cleanup checks).
func TestExecIgnorePausedDeleteForce(t *testing.T) {
	e := newEnv(t)
	id, init, _ := e.pausedWithOut()
	ex := e.startLkc("exec", "--ignore-paused", id, "sleep", "1000")
	e.waitExecd(id, init)
	if r := e.startLkc("delete", "-f", id).wait(t); r.code != 0 {
		t.Fatalf("delete -f with an exec waiting: %v", r)
	}
	r := ex.wait(t)
	if r.code != 255 || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
		t.Errorf("exec whose container was deleted: %v, want exit 255 and one line", r)
	}
	e.failLkc("does not exist", "state", id)
}

// TestExecIgnorePausedNeverRan: an exec into a paused container whose
// process never runs fails with one line and exit 255, detached or not,
// and writes no pid file: its execve fails once the container is resumed
// (a file that is executable but no program), or the container is
// deleted with --force, or killed, while the process waits. runc's exec
// returns once its process has exec'd and fails when the exec does, and
// so does lkc's (TestExecFailingExecve for a running container). Both ways of
// finishing an exec are tried: the constructor's, and Go's init (which
// the container's oom score makes the exec take).
func TestExecIgnorePausedNeverRan(t *testing.T) {
	oom := 100
	for _, c := range []struct {
		name   string
		detach bool
		stop   func(e *env, id string)
		want   string
	}{
		{"detached, exec fails", true, func(e *env, id string) { e.mustLkc("resume", id) }, `^lkc: exec: container init: exec /out/bad: exec format error$`},
		{"foreground, exec fails", false, func(e *env, id string) { e.mustLkc("resume", id) }, `^lkc: exec: container init: exec /out/bad: exec format error$`},
		{"detached, delete -f", true, func(e *env, id string) { e.mustLkc("delete", "-f", id) }, `^lkc: exec: `},
		{"detached, kill", true, func(e *env, id string) { e.mustLkc("kill", id, "KILL") }, `^lkc: exec: `},
	} {
		for _, goInit := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s, go init %v", c.name, goInit), func(t *testing.T) {
				e := newEnv(t)
				noPrograms := withNoPrograms(t)
				id, init := e.runningPid(func(s *specs.Spec) {
					noPrograms(s)
					if goInit {
						s.Process.OOMScoreAdj = &oom
					}
				})
				e.mustLkc("pause", id)
				pidFile := filepath.Join(t.TempDir(), "pid")
				args := []string{"exec", "--ignore-paused", "--pid-file", pidFile}
				if c.detach {
					args = append(args, "-d")
				}
				ex := e.startLkc(append(args, id, "/out/bad")...)
				e.waitExecd(id, init)
				c.stop(e, id)
				r := ex.wait(t)
				if r.code != 255 || r.stdout != "" || !regexp.MustCompile(c.want).MatchString(strings.TrimSuffix(r.stderr, "\n")) ||
					strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
					t.Errorf("exec whose process never ran: %v, want exit 255 and one line matching %q", r, c.want)
				}
				if _, err := os.Stat(pidFile); err == nil {
					t.Errorf("exec wrote a pid file for a process that never ran")
				}
			})
		}
	}
}
