package integration

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCheckpointDeleteForceDuringDump runs `delete -f` while `lkc
// checkpoint` of the same container is under way: once with the
// container frozen for CRIU to seize its tasks, and once with CRIU
// writing their memory (the container holds 128 MiB, so the dump takes a
// moment). Killing the tasks there made the dump fail (CRIU's
// "Unseizable" or "si_code=2 ... si_status=9") and could leave CRIU
// waiting for good on a task with a SIGKILL pending that it never acted
// on, the delete waiting behind it. delete -f must wait for the
// checkpoint instead: the dump succeeds with all of the memory in its
// images, and after the delete nothing of the container is left (state,
// cgroup, frozen or not, process).
func TestCheckpointDeleteForceDuringDump(t *testing.T) {
	requireCriu(t)
	for _, when := range []string{"seize", "pages"} {
		t.Run(when, func(t *testing.T) {
			e := newEnv(t)
			const size = 128 << 20
			id, _, _ := e.holder(size)
			images := filepath.Join(t.TempDir(), "images")
			dump := e.startDump(nil, "--image-path", images, id)
			waitDumping(t, dump, id, images, when)
			e.mustLkc("delete", "-f", id)
			if err := dump.wait(t); err != nil {
				t.Fatalf("checkpoint with a delete -f during it: %v: %s", err, dump.stderr.String())
			}
			if pages := dirBytes(t, images, "pages-"); pages < size {
				t.Errorf("images hold %d bytes of pages, want at least %d", pages, size)
			}
			e.assertIDGone(id)
		})
	}
}

// dumpRun is an `lkc checkpoint` started in the background.
type dumpRun struct {
	cmd    *exec.Cmd
	stderr bytes.Buffer
	done   chan error
}

// startDump starts `lkc checkpoint args...` with extra as its fds 3, 4,
// ...; the test's cleanup kills it if it still runs.
func (e *env) startDump(extra []*os.File, args ...string) *dumpRun {
	e.t.Helper()
	d := &dumpRun{done: make(chan error, 1)}
	d.cmd = exec.Command(e.bin, append([]string{"--root", e.root, "checkpoint"}, args...)...)
	d.cmd.ExtraFiles = extra
	d.cmd.Stderr = &d.stderr
	if err := d.cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	go func() { d.done <- d.cmd.Wait() }()
	e.t.Cleanup(func() {
		d.cmd.Process.Kill()
		d.wait(e.t)
	})
	return d
}

// wait returns the checkpoint's outcome once it has exited; one that
// runs longer than settle fails the test.
func (d *dumpRun) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-d.done:
		d.done <- err
		return err
	case <-time.After(settle):
		t.Fatalf("lkc %s still runs after %v", strings.Join(d.cmd.Args[1:], " "), settle)
		return nil
	}
}

// waitDumping waits until dump, the checkpoint of container id, is under
// way: its cgroup frozen for CRIU to seize the tasks (seize), or CRIU
// writing their memory to images (pages). A dump that ended first, or
// that is not there by settle, fails the test with its stderr. CRIU thaws
// the cgroup once it has seized the tasks, a window of a few milliseconds
// (about 20 here), so seize polls the freezer's files without sleeping,
// and finds them once: a glob of the cgroup trees at each round took long
// enough to miss the window under load.
func waitDumping(t *testing.T, dump *dumpRun, id, images, when string) {
	t.Helper()
	var freezers []string
	for _, d := range cgroupDirs(id) {
		freezers = append(freezers, filepath.Join(d, "freezer.state"), filepath.Join(d, "cgroup.freeze"))
	}
	pause := time.Millisecond
	if when == "seize" {
		pause = 0
	}
	for deadline := time.Now().Add(settle); ; time.Sleep(pause) {
		select {
		case err := <-dump.done:
			dump.done <- err
			t.Fatalf("the checkpoint of %s ended (%v) before it reached %s: %s", id, err, when, dump.stderr.String())
		default:
		}
		switch when {
		case "seize":
			for _, f := range freezers {
				if b, _ := os.ReadFile(f); strings.TrimSpace(string(b)) == "FROZEN" || strings.TrimSpace(string(b)) == "1" {
					return
				}
			}
		case "pages":
			if m, _ := filepath.Glob(filepath.Join(images, "pages-*.img")); len(m) > 0 {
				if fi, err := os.Stat(m[0]); err == nil && fi.Size() > 0 {
					return
				}
			}
		}
		if time.Now().After(deadline) {
			dump.cmd.Process.Kill()
			err := <-dump.done
			dump.done <- err
			t.Fatalf("the checkpoint of %s never reached %s in %v (killed: %v): %s", id, when, settle, err, dump.stderr.String())
		}
	}
}

// TestCheckpointPausedExecPending checkpoints a paused container while an
// `exec --ignore-paused` waits in it: the exec's `lkc init` sits frozen in
// the container's cgroup, not yet in its namespaces nor a child of its
// init, so no restore could give it back. The checkpoint is refused in one
// line naming the pending exec; the container stays paused with the exec
// still waiting, which a resume then completes.
func TestCheckpointPausedExecPending(t *testing.T) {
	requireCriu(t)
	e := newEnv(t)
	id, init, out := e.pausedWithOut()
	ex := e.startLkc("exec", "-d", "--ignore-paused", id, "sh", "-c", "echo ran > /out/ran")
	e.waitExecd(id, init)
	images := filepath.Join(t.TempDir(), "images")
	t.Log(e.failLkc(`checkpoint: .*an exec is pending in the paused container`, "checkpoint", "--image-path", images, id))
	if _, err := os.Stat(images); err == nil {
		t.Errorf("the refused checkpoint made its image directory %s", images)
	}
	if _, err := os.Lstat(filepath.Join(e.root, id, "dumping")); err == nil {
		t.Error("the refused checkpoint left the container marked as being dumped")
	}
	if st := e.state(id)["status"]; st != "paused" {
		t.Fatalf("status %v after the refused checkpoint, want paused", st)
	}
	if !ex.running() {
		t.Fatalf("the pending exec ended with the refused checkpoint: %v", ex.r)
	}
	e.mustLkc("resume", id)
	if r := ex.wait(t); r.code != 0 {
		t.Fatalf("exec -d --ignore-paused after the refused checkpoint and a resume: %v", r)
	}
	var data []byte
	for deadline := time.Now().Add(settle); len(data) == 0 && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		data, _ = os.ReadFile(filepath.Join(out, "ran"))
	}
	if strings.TrimSpace(string(data)) != "ran" {
		t.Errorf("after resume the exec'd process wrote %q, want ran", data)
	}
}
