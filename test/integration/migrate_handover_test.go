package integration

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/migrate"
)

// heldMigration starts a stop-and-copy move of a counting container
// from a to b, b's receiver holding before it says restored
// (migrate.RestoredHoldEnv), and returns once it holds: b restored the
// container, frozen, and migrate waits for its answer. release lets the
// receiver go on; wait waits for migrate.
func heldMigration(t *testing.T) (h *testHosts, a, b *testHost, id string, cmd *exec.Cmd, release func(), wait func() (error, string, string)) {
	t.Helper()
	h = newTestHosts(t)
	a, b = h.hosts[0], h.hosts[1]
	id, _ = h.runContainer(a, migCounter, nil)
	hold := filepath.Join(t.TempDir(), "hold")
	if err := unix.Mkfifo(hold, 0o600); err != nil {
		t.Fatal(err)
	}
	b.serveEnv = []string{migrate.RestoredHoldEnv + "=" + hold}
	h.startServe(b)
	cmd = h.lkcIn(a, "migrate", "--token-file", h.token, "--json", "--shared-storage", "--mode", "stopcopy", id, b.ip+":7070")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	wait = func() (error, string, string) { return <-done, out.String(), errb.String() }
	// Opening the fifo for writing returns once the receiver holds.
	opened := make(chan *os.File, 1)
	go func() {
		f, _ := os.OpenFile(hold, os.O_WRONLY, 0)
		opened <- f
	}()
	select {
	case f := <-opened:
		release = func() { f.Close() }
	case err := <-done:
		if r, oerr := os.OpenFile(hold, os.O_RDONLY|unix.O_NONBLOCK, 0); oerr == nil {
			(<-opened).Close()
			r.Close()
		}
		log, _ := os.ReadFile(b.serveLog)
		t.Fatalf("migrate ended before the target held: %v: %s\nreceiver log:\n%s", err, errb.String(), log)
	}
	return h, a, b, id, cmd, release, wait
}

// frozenCount reads the counter of a frozen container from outside it
// (an exec into it would freeze too).
func frozenCount(t *testing.T, e *env, id string) int {
	t.Helper()
	pid := int(e.state(id)["pid"].(float64))
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/root/dev/shm/count", pid))
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("count %q: %v", b, err)
	}
	return n
}

// heldCopies checks, while b's receiver holds, that both copies are
// frozen at the same count: the target's restored copy has not run.
func heldCopies(t *testing.T, a, b *testHost, id string) int {
	t.Helper()
	b.e.waitStatus(id, "paused")
	if st := a.e.state(id); st["status"] != "paused" {
		t.Fatalf("the source's copy is %v while the target holds, want paused", st["status"])
	}
	n := frozenCount(t, a.e, id)
	if m := frozenCount(t, b.e, id); m != n {
		t.Fatalf("the target's restored copy counts %d, the source's frozen one %d: it ran", m, n)
	}
	return n
}

// TestMigrateAbortAfterTargetRestored: SIGINT reaches lkc migrate after
// the target restored the container, frozen, before it said so. Before
// the commit the source's copy is the container: migrate rolls back and
// resumes it, and the target deletes its copy, which never ran (its
// count stayed the source's at the freeze).
func TestMigrateAbortAfterTargetRestored(t *testing.T) {
	_, a, b, id, cmd, release, wait := heldMigration(t)
	n := heldCopies(t, a, b, id)
	if err := cmd.Process.Signal(unix.SIGINT); err != nil {
		t.Fatal(err)
	}
	err, _, errb := wait()
	if err == nil {
		t.Fatal("migrate, aborted before the commit, succeeded")
	}
	if strings.Contains(errb, "in doubt") {
		t.Errorf("an abort before the commit left the move in doubt: %s", errb)
	}
	if m := frozenCount(t, b.e, id); m != n {
		t.Errorf("the target's copy counts %d after the abort, %d at the freeze: it ran", m, n)
	}
	release()
	a.e.waitStatus(id, "running")
	if n1 := migCount(t, a.e, id); n1 < n {
		t.Errorf("the source's count went back: %d then %d", n, n1)
	}
	waitGone(t, b.e, id)
}

// waitGone waits until e has no container id.
func waitGone(t *testing.T, e *env, id string) {
	t.Helper()
	for try := 0; e.lkc("state", id).code == 0; try++ {
		if try == 500 {
			t.Fatalf("%s is still there", id)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestMigrateTargetDiesAfterRestored: the target's lkc serve dies after
// it restored the container, frozen, before it said so. migrate rolls
// back, the source's copy runs on, and the target's, which never ran, is
// deleted once its receiver restarts.
func TestMigrateTargetDiesAfterRestored(t *testing.T) {
	h, a, b, id, _, release, wait := heldMigration(t)
	n := heldCopies(t, a, b, id)
	b.killServe()
	release()
	err, _, errb := wait()
	if err == nil {
		t.Fatal("migrate succeeded although the target died before it said restored")
	}
	if strings.Contains(errb, "in doubt") {
		t.Errorf("a target dead before the commit left the move in doubt: %s", errb)
	}
	a.e.waitStatus(id, "running")
	if st := b.e.state(id); st["status"] != "paused" {
		t.Errorf("the target's orphaned copy is %v, want paused", st["status"])
	}
	if m := frozenCount(t, b.e, id); m != n {
		t.Errorf("the target's orphaned copy counts %d, %d at the freeze: it ran", m, n)
	}
	h.startServe(b) // a restarted receiver deletes what was not committed
	waitGone(t, b.e, id)
	if n1 := migCount(t, a.e, id); n1 < n {
		t.Errorf("the source's count went back: %d then %d", n, n1)
	}
}

// The hand-over keeps the moved container from running before the commit
// without telling it: its processes get no signal from the move. (Left
// stopped by CRIU and continued, each one's parent got a SIGCHLD for the
// stop and one for the continue.) The shell traps SIGCHLD and logs every
// return of its wait; a USR1 sent after the move, logged too, marks when
// every signal pending by then has been handled.
func TestMigrateSendsNoSignal(t *testing.T) {
	for _, mode := range []string{"stopcopy", ""} {
		name := mode
		if name == "" {
			name = "default"
		}
		t.Run(name, func(t *testing.T) {
			h := newTestHosts(t)
			a, b := h.hosts[0], h.hosts[1]
			h.startServe(b)
			script := "trap 'echo CHLD >> /dev/shm/log' CHLD; trap 'echo USR1 >> /dev/shm/log' USR1; " +
				"echo start >> /dev/shm/log; sleep 100000 & while :; do wait; done"
			id, _ := h.runContainer(a, []string{"sh", "-c", script}, nil)
			log := func(x *testHost) string { return strings.TrimSpace(x.e.mustLkc("exec", id, "cat", "/dev/shm/log")) }
			waitFor(t, func() bool { return log(a) == "start" }, "the shell's first line")
			flags := []string{"--shared-storage"}
			if mode != "" {
				flags = append(flags, "--mode", mode)
			}
			mustMigrate(t, h, a, b, id, flags...)
			b.e.waitStatus(id, "running")
			b.e.mustLkc("kill", id, "USR1")
			waitFor(t, func() bool { return strings.HasSuffix(log(b), "USR1") }, "the shell to handle USR1")
			if got := log(b); got != "start\nUSR1" {
				t.Errorf("the shell's log after the move:\n%s\nwant only start and USR1: the move signalled it", got)
			}
		})
	}
}
