package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
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
	e, g := newGatedCounters(t)
	dir := g.dir
	cmd := exec.Command(e.bin, "--root", e.root, "--criu", g.criu, "checkpoint", "--all", "--parallel", "1", "--image-dir", dir)
	roots, started, gate := g.roots, g.started, g.gate
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
	later := filepath.Join(t.TempDir(), "later")
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

// gatedCounters are two counting containers (by id, the directory each
// counts in) and a CRIU wrapper whose start adds a line to started and
// waits for the file gate, for an --all command on image dir dir.
type gatedCounters struct {
	roots                    map[string]string
	criu, started, gate, dir string
}

func newGatedCounters(t *testing.T) (*env, gatedCounters) {
	t.Helper()
	e := newEnv(t)
	tmp := t.TempDir()
	g := gatedCounters{roots: map[string]string{}, started: filepath.Join(tmp, "started"), gate: filepath.Join(tmp, "gate"),
		dir: filepath.Join(tmp, "images")}
	g.criu = gatedCriu(t, g.started, g.gate)
	for i := 0; i < 2; i++ {
		id, root := e.ckptCounter(nil)
		g.roots[id] = root
	}
	return e, g
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

// TestRestoreAllSignals: restore --all's second signal changes nothing
// in what it does, as a CRIU restore has no safe point: the restore under
// way goes on and its container comes back, none other starts, and lkc
// names on stderr the restore it waits for. The third ends lkc at once.
// CRIU's start waits for a gate, so the signals land while the first
// restore is under way.
func TestRestoreAllSignals(t *testing.T) {
	for _, signals := range []int{2, 3} {
		t.Run(fmt.Sprint(signals), func(t *testing.T) {
			e, g := newGatedCounters(t)
			roots := g.roots
			e.mustLkc("checkpoint", "--all", "--image-dir", g.dir)
			cmd := exec.Command(e.bin, "--root", e.root, "--criu", g.criu, "restore", "--all", "--parallel", "1", "--image-dir", g.dir)
			r := signalGated(t, cmd, g.started, g.gate, "CRIU", func() {}, signals)
			waiting := regexp.MustCompile(`(?m)^lkc: restore --all: a second signal: waiting for the restores under way, ` +
				`which cannot stop half way \(a third signal ends lkc, leaving them half made\): (\S+)$`).FindStringSubmatch(r.stderr)
			if waiting == nil || roots[waiting[1]] == "" {
				t.Fatalf("restore --all after %d signals does not name the restore it waits for: %v", signals, r)
			}
			underWay := waiting[1]
			if signals == 3 {
				if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != unix.SIGINT {
					t.Fatalf("restore --all after three signals: %v, want ended by SIGINT", cmd.ProcessState)
				}
				for id := range roots {
					e.lkc("delete", "--force", id)
					e.assertIDGone(id)
				}
				return
			}
			lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
			if len(lines) != 2 || r.code == 0 || !regexp.MustCompile(`^lkc: restore: 1 of 2 containers not restored \(it-\S+: interrupted \(a signal\) before its restore began\)$`).MatchString(lines[1]) {
				t.Fatalf("restore --all after two signals: %v", r)
			}
			for id, root := range roots {
				if id != underWay {
					e.assertIDGone(id)
					continue
				}
				if st := e.state(id); st["status"] != "running" {
					t.Errorf("%s, whose restore was under way at the signals, is %v", id, st["status"])
				}
				waitCount(t, root, readCount(t, root)+2)
			}
		})
	}
}
