package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// TestCheckpointAllSecondSignal: the second signal to checkpoint --all
// stops the dump under way as a signal to lkc checkpoint does: CRIU
// stopped at its first notification, the container running as before
// (not left frozen), its partial images removed, and the manifest,
// complete, naming it not dumped with the reason, as the one whose turn
// had not come. restore --all then restores nothing and says why, and a
// later checkpoint --all dumps both. CRIU's start waits for a gate, so
// both signals land while the first dump is under way.
func TestCheckpointAllSecondSignal(t *testing.T) {
	e := newEnv(t)
	tmp := t.TempDir()
	started, gate := filepath.Join(tmp, "started"), filepath.Join(tmp, "gate")
	criu := gatedCriu(t, started, gate)
	roots := map[string]string{}
	for i := 0; i < 2; i++ {
		id, root := e.ckptCounter(nil)
		roots[id] = root
	}
	dir := filepath.Join(tmp, "images")
	cmd := exec.Command(e.bin, "--root", e.root, "--criu", criu, "checkpoint", "--all", "--parallel", "1", "--image-dir", dir)
	underWay := ""
	r := signalGated(t, cmd, started, gate, "CRIU", func() {
		for id := range roots {
			if _, err := os.Stat(filepath.Join(dir, id)); err == nil {
				underWay = id
			}
		}
	}, 2)
	stopped := `checkpointing container it-.*: interrupted by a second signal: CRIU stopped, the container is left as it was`
	e.checkOneLineFailure(r, `2 of 2 containers not dumped \(it-.*: (interrupted \(a signal\) before its dump began|`+stopped+`)\)`, nil)
	m := readManifestFile(t, dir)
	if !m.Complete || underWay == "" || len(m.Containers) != 2 {
		t.Fatalf("the dump under way at the signals: %q; manifest %+v", underWay, m)
	}
	for _, c := range m.Containers {
		want := "interrupted (a signal) before its dump began"
		if c.ID == underWay {
			want = "checkpointing container " + c.ID + ": interrupted by a second signal: CRIU stopped, the container is left as it was"
		}
		e.checkNotDumped(dir, c.ID, c.Status, c.Error, want)
		waitCount(t, roots[c.ID], readCount(t, roots[c.ID])+2)
	}
	e.checkOneLineFailure(e.lkc("restore", "--all", "--image-dir", dir), `2 of 2 containers not restored \(it-.*: .*interrupted`, nil)
	later := filepath.Join(tmp, "later")
	e.mustLkc("checkpoint", "--all", "--leave-running", "--image-dir", later)
	for id, status := range readEvacManifest(t, later) {
		if status != "dumped" {
			t.Errorf("later checkpoint --all: %s is %s", id, status)
		}
	}
}

// TestCheckpointAllSecondSignalSavingRootfs: the second signal while
// checkpoint --all archives a rootfs on a tmpfs, its container paused
// for that, stops tar (or, once tar is done, CRIU before it begins), and
// the container runs again: not dumped, no image dir left. tar's start
// waits for a gate.
func TestCheckpointAllSecondSignalSavingRootfs(t *testing.T) {
	requireCriu(t)
	e := newEnv(t)
	tmp := t.TempDir()
	started, gate := filepath.Join(tmp, "started"), filepath.Join(tmp, "gate")
	env := waitingTar(t, started, waitGate(gate))
	id, root := e.runOnTmpfs()
	dir := filepath.Join(tmp, "images")
	cmd := exec.Command(e.bin, "--root", e.root, "checkpoint", "--all", "--image-dir", dir)
	cmd.Env = env
	r := signalGated(t, cmd, started, gate, "tar", func() {}, 2)
	why := `(saving the rootfs ` + regexp.QuoteMeta(root) + `: interrupted by a second signal: tar stopped|checkpointing container ` + id +
		`: interrupted by a second signal: CRIU stopped), the container is left as it was`
	e.checkOneLineFailure(r, `1 of 1 containers not dumped \(`+id+`: `+why+`\)`, nil)
	m := readManifestFile(t, dir)
	if !m.Complete || len(m.Containers) != 1 {
		t.Fatalf("manifest %+v", m)
	}
	c := m.Containers[0]
	e.checkNotDumped(dir, c.ID, c.Status, c.Error, "")
}

// checkNotDumped checks that container id, recorded with status and
// reason why (want, or any when want is ""), was not dumped: failed, no
// image dir, running.
func (e *env) checkNotDumped(dir, id, status, why, want string) {
	e.t.Helper()
	if status != "failed" || want != "" && why != want {
		e.t.Errorf("manifest: %s is %s (%s), want failed (%s)", id, status, why, want)
	}
	if _, err := os.Stat(filepath.Join(dir, id)); !os.IsNotExist(err) {
		e.t.Errorf("%s, not dumped, has an image dir (%v)", id, err)
	}
	if st := e.state(id); st["status"] != "running" {
		e.t.Errorf("%s is %v after checkpoint --all ended on two signals", id, st["status"])
	}
}

// TestCheckpointAllThirdSignal: the third signal ends checkpoint --all at
// once, while CRIU still waits to begin the dump: the manifest on disk,
// incomplete, says the dump under way never finished, and its container,
// frozen for it, runs again after lkc resume.
func TestCheckpointAllThirdSignal(t *testing.T) {
	e := newEnv(t)
	tmp := t.TempDir()
	started, gate := filepath.Join(tmp, "started"), filepath.Join(tmp, "gate")
	criu := gatedCriu(t, started, gate)
	id, root := e.ckptCounter(nil)
	dir := filepath.Join(tmp, "images")
	cmd := exec.Command(e.bin, "--root", e.root, "--criu", criu, "checkpoint", "--all", "--image-dir", dir)
	signalGated(t, cmd, started, gate, "CRIU", func() {}, 3)
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != unix.SIGINT {
		t.Fatalf("checkpoint --all after three signals: %v, want ended by SIGINT", cmd.ProcessState)
	}
	m := readManifestFile(t, dir)
	if m.Complete || len(m.Containers) != 1 || m.Containers[0].Status != "pending" {
		t.Fatalf("manifest of the checkpoint --all ended by a third signal: %+v", m)
	}
	e.checkOneLineFailure(e.lkc("restore", "--all", "--image-dir", dir), `1 of 1 containers not restored \(`+id+`: its dump never finished`, nil)
	if st := e.state(id); st["status"] == "paused" {
		e.mustLkc("resume", id)
	}
	waitCount(t, root, readCount(t, root)+2)
}
