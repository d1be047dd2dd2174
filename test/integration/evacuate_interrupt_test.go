package integration

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/cli"
	"github.com/lkc-containers/lkc/internal/migrate"
)

// TestCheckpointAllInterruptedWhilePlanning: Ctrl-C while checkpoint
// --all reads the containers, before any dump began, ends it in one line
// with nothing written: no manifest naming every container "interrupted"
// (restore --all would have nothing to bring back, and the directory,
// no longer empty, would refuse the next checkpoint --all), the image dir
// as it was found (an empty one kept empty, a missing one not made), and
// the container running. The test holds the container's lock, as another
// lkc command does while it works, so that checkpoint --all waits in its
// planning for as long as the test needs.
func TestCheckpointAllInterruptedWhilePlanning(t *testing.T) {
	requireCriu(t)
	e := newEnv(t)
	id, root := e.ckptCounter(nil)
	empty := t.TempDir()
	missing := filepath.Join(t.TempDir(), "images")
	for _, dir := range []string{empty, missing} {
		r := e.interruptWhileLocked(id, "checkpoint", "--all", "--image-dir", dir)
		e.checkOneLineFailure(r, `interrupted \(a signal\) before any dump began: nothing was dumped`, nil)
		if dir == empty {
			if entries, err := os.ReadDir(dir); err != nil || len(entries) != 0 {
				t.Errorf("the interrupted checkpoint left %v in the empty image dir (%v)", names(entries), err)
			}
		} else if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("the interrupted checkpoint made the image dir: %v", err)
		}
		if st := e.state(id); st["status"] != "running" {
			t.Fatalf("%s is %v after the interrupted checkpoint --all", id, st["status"])
		}
	}
	waitCount(t, root, readCount(t, root)+2)
	// The same empty directory takes the next checkpoint --all.
	e.mustLkc("checkpoint", "--all", "--leave-running", "--image-dir", empty)
	if got := readEvacManifest(t, empty); got[id] != "dumped" {
		t.Errorf("manifest of the checkpoint after the interrupted one: %v", got)
	}
}

// interruptWhileLocked runs lkc with args as a terminal's job (a process
// group of its own) while the test holds container id's lock, sends the
// group SIGINT (Ctrl-C) once lkc waits for that lock, lets go of it once
// lkc has acted on the signal (cli.SignalledEnv), and returns how lkc
// ended.
func (e *env) interruptWhileLocked(id string, args ...string) result {
	e.t.Helper()
	lock, err := os.Open(filepath.Join(e.root, id))
	if err != nil {
		e.t.Fatal(err)
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		e.t.Fatal(err)
	}
	cmd := exec.Command(e.bin, append([]string{"--root", e.root}, args...)...)
	cmd.SysProcAttr = &unix.SysProcAttr{Setpgid: true}
	signalled := filepath.Join(e.t.TempDir(), "signalled")
	cmd.Env = append(os.Environ(), cli.SignalledEnv+"="+signalled)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	waitBlockedOnFlock(e.t, cmd.Process.Pid, done)
	unix.Kill(-cmd.Process.Pid, unix.SIGINT)
	waitLines(e.t, signalled, 1, done, "acted on Ctrl-C")
	lock.Close()
	select {
	case err = <-done:
	case <-time.After(settle):
		cmd.Process.Kill()
		<-done
		e.t.Fatalf("lkc %v still running %v after Ctrl-C: %s %s", args, settle, out.String(), errb.String())
	}
	r := result{stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		r.code = ee.ExitCode()
	}
	return r
}

// waitLines waits until the file path has n lines (a hook of lkc wrote
// them), failing when exited (lkc's end) comes first.
func waitLines(t *testing.T, path string, n int, exited <-chan error, what string) {
	t.Helper()
	for deadline := time.Now().Add(settle); time.Now().Before(deadline); {
		data, _ := os.ReadFile(path)
		if bytes.Count(data, []byte("\n")) >= n {
			return
		}
		select {
		case err := <-exited:
			t.Fatalf("lkc ended before %s: %v", what, err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	t.Fatalf("lkc never %s", what)
}

// signalGated starts cmd (lkc) until the file started exists (what, a
// wrapper of one of its children that waits for the file gate, made it),
// runs at, and sends lkc SIGINT signals times, each once lkc has acted on
// the one before (cli.SignalledEnv). It opens the gate once lkc has acted
// on the last signal, or, after a third (which ends lkc at once), once
// lkc has ended; it returns how lkc ended.
func signalGated(t *testing.T, cmd *exec.Cmd, started, gate, what string, at func(), signals int) result {
	t.Helper()
	signalled := filepath.Join(t.TempDir(), "signalled")
	if cmd.Env == nil {
		cmd.Env = os.Environ()
	}
	cmd.Env = append(cmd.Env, cli.SignalledEnv+"="+signalled)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	startUntil(t, cmd, started, what, func() string { return out.String() + errb.String() })
	at()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer os.WriteFile(gate, nil, 0o600)
	for n := 1; n <= signals; n++ {
		cmd.Process.Signal(unix.SIGINT)
		if n < 3 {
			waitLines(t, signalled, n, done, "acted on the signal")
		}
	}
	if signals < 3 {
		os.WriteFile(gate, nil, 0o600)
	}
	var err error
	select {
	case err = <-done:
	case <-time.After(settle):
		cmd.Process.Kill()
		<-done
		t.Fatalf("%v still running after %d signals: %s %s", cmd.Args, signals, out.String(), errb.String())
	}
	r := result{stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		r.code = ee.ExitCode()
	}
	return r
}

// migrationGatedCriu returns a CRIU wrapper that, when lkc starts CRIU's
// service for the migration of one of ids, adds a line to the file
// dumping and waits until the file gate exists. Only a migration's CRIU
// waits, not those that read CRIU's features: a migration under way has
// its images directory.
func migrationGatedCriu(t *testing.T, ids []string, dumping, gate string) string {
	t.Helper()
	var dirs []string
	for _, id := range ids {
		dirs = append(dirs, filepath.Join(os.TempDir(), "lkc-migrate-"+id+"-*"))
	}
	return waitingCriu(t, dumping+".started", fmt.Sprintf(
		"if [ -n \"$(ls -d %s 2>/dev/null)\" ]; then echo >> %q; %s; fi",
		strings.Join(dirs, " "), dumping, waitGate(gate)))
}

// gatedMigrateAll is migrate --all --json from host from to host to's
// receiver, one stop-and-copy migration at a time with shared storage,
// with CRIU criu.
func (h *testHosts) gatedMigrateAll(from, to *testHost, criu string) *exec.Cmd {
	return h.lkcIn(from, "--criu", criu, "migrate", "--all", "--json", "--parallel", "1", "--shared-storage", "--mode", "stopcopy",
		"--token-file", h.token, to.ip+":7070")
}

// startGatedMigrateAll starts gatedMigrateAll and returns once the file
// marker exists (criu's sign that a migration's CRIU waits).
func (h *testHosts) startGatedMigrateAll(from, to *testHost, criu, marker string) (cmd *exec.Cmd, out, errb *bytes.Buffer) {
	h.t.Helper()
	cmd = h.gatedMigrateAll(from, to, criu)
	out, errb = &bytes.Buffer{}, &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = out, errb
	startUntil(h.t, cmd, marker, "a migration's CRIU", func() string { return out.String() + " " + errb.String() })
	return cmd, out, errb
}

// TestMigrateAllSignals: the first Ctrl-C stops migrate --all from
// starting migrations, and the one under way finishes (moved); the
// second aborts the one under way, whose dump stops as checkpoint --all's
// does (CRIU stopped before it touched the container, not run to its
// end), and which rolls back: its container runs here as before (not
// paused), and the target, whose sender went away, drops what it had
// staged (no container, no bundle). In both cases the container whose
// turn had not come runs here, kept, and the exit says what did not move.
// CRIU's start on the source waits for a gate, so each signal lands while
// the first migration's dump is under way.
func TestMigrateAllSignals(t *testing.T) {
	h := newTestHosts(t)
	a, b := h.hosts[0], h.hosts[1]
	h.startServe(b)
	for signals := 1; signals <= 2; signals++ {
		tmp := t.TempDir()
		dumping, gate := filepath.Join(tmp, "dumping"), filepath.Join(tmp, "gate")
		ids := make([]string, 2)
		for i := range ids {
			ids[i], _ = h.runContainer(a, migCounter, nil)
		}
		criu := migrationGatedCriu(t, ids, dumping, gate)
		r := signalGated(t, h.gatedMigrateAll(a, b, criu), dumping, gate, "a migration's CRIU", func() {}, signals)
		var ev evacuation
		if jerr := json.Unmarshal([]byte(r.stdout), &ev); jerr != nil || r.code == 0 {
			t.Fatalf("%d signals: migrate --all: %v, %v", signals, r, jerr)
		}
		lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
		if last := lines[len(lines)-1]; !strings.Contains(last, "containers not moved (") {
			t.Errorf("%d signals: last line of stderr %q", signals, last)
		}
		interrupted, underWay := "", ""
		for _, m := range ev.Moves {
			switch {
			case m.Status == "kept" && strings.Contains(m.Error, "interrupted (a signal) before its migration began"):
				interrupted = m.ID
			case signals == 1 && m.Status == "moved",
				signals == 2 && m.Status == "kept" && strings.Contains(m.Error, "aborted (a second signal) and rolled back") &&
					strings.Contains(m.Error, "checkpointing container "+m.ID+": interrupted by a second signal: CRIU stopped, the container is left as it was"):
				underWay = m.ID
			default:
				t.Errorf("%d signals: %s is %s (%s)", signals, m.ID, m.Status, m.Error)
			}
		}
		if interrupted == "" || underWay == "" {
			t.Fatalf("%d signals: %s", signals, r.stdout)
		}
		a.e.waitStatus(interrupted, "running")
		a.e.mustLkc("delete", "--force", interrupted)
		if signals == 1 {
			b.e.waitStatus(underWay, "running")
			if r := a.e.lkc("state", underWay); r.code == 0 {
				t.Errorf("the source still has %s, which moved", underWay)
			}
			continue
		}
		if st := a.e.state(underWay); st["status"] != "running" {
			t.Errorf("%s, rolled back, is %v on the source", underWay, st["status"])
		}
		n := migCount(t, a.e, underWay)
		waitFor(t, func() bool { return migCount(t, a.e, underWay) > n }, underWay+" counting on the source")
		if r := b.e.lkc("state", underWay); r.code == 0 {
			t.Errorf("the target has %s, whose migration was aborted: %v", underWay, r)
		}
		waitFor(t, func() bool {
			_, err := os.Stat(filepath.Join(b.bundles, underWay))
			return os.IsNotExist(err)
		}, "the target to drop the bundle of "+underWay+", whose migration was aborted")
	}
}

// TestCheckpointAllKilledKeepsRecord: checkpoint --all killed (SIGKILL,
// as a third Ctrl-C ends it) after one container was dumped, and so
// stopped, and while the next one's dump waits: the manifest on disk
// already says the first was dumped, so restore --all brings it back
// and names the other, whose dump never finished (it is still here,
// frozen for the dump its CRIU never began, and resumes).
func TestCheckpointAllKilledKeepsRecord(t *testing.T) {
	e := newEnv(t)
	tmp := t.TempDir()
	roots := map[string]string{}
	var ids []string
	for i := 0; i < 2; i++ {
		id, root := e.ckptCounter(nil)
		roots[id] = root
		ids = append(ids, id)
	}
	dir := filepath.Join(tmp, "images")
	waiting, gate := filepath.Join(tmp, "waiting"), filepath.Join(tmp, "gate")
	// With both directories made, the first dump has ended.
	criu := waitingCriu(t, filepath.Join(tmp, "started"), fmt.Sprintf(
		"if [ -d %q ] && [ -d %q ]; then echo >> %q; %s; fi",
		filepath.Join(dir, ids[0]), filepath.Join(dir, ids[1]), waiting, waitGate(gate)))
	cmd := exec.Command(e.bin, "--root", e.root, "--criu", criu, "checkpoint", "--all", "--parallel", "1", "--image-dir", dir)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	startUntil(t, cmd, waiting, "its second dump", out.String)
	cmd.Process.Kill()
	cmd.Wait()
	os.WriteFile(gate, nil, 0o600)
	m := readManifestFile(t, dir)
	got := map[string]string{}
	for _, c := range m.Containers {
		got[c.ID] = c.Status
	}
	dumped, pending := ids[0], ids[1]
	if got[dumped] != "dumped" {
		dumped, pending = ids[1], ids[0]
	}
	if m.Complete || got[dumped] != "dumped" || got[pending] != "pending" {
		t.Fatalf("manifest of the killed checkpoint --all: %+v", m)
	}
	saved := readCount(t, roots[dumped])
	r := e.lkc("restore", "--all", "--image-dir", dir)
	e.checkOneLineFailure(r, `1 of 2 containers not restored \(`+pending+`: its dump never finished`, nil)
	waitCount(t, roots[dumped], saved+1)
	if st := e.state(pending); st["status"] != "paused" && st["status"] != "running" {
		t.Errorf("%s, whose dump never ran, is %v", pending, st["status"])
	} else if st["status"] == "paused" {
		e.mustLkc("resume", pending)
	}
	waitCount(t, roots[pending], readCount(t, roots[pending])+1)
	for _, id := range ids {
		e.mustLkc("delete", "--force", id)
	}
}

// TestCheckpointAllPausedMeanwhile: a container paused after checkpoint
// --all planned it, while another is dumped, is recorded as paused at
// its dump, and restore --all brings it back paused, as it was.
func TestCheckpointAllPausedMeanwhile(t *testing.T) {
	e := newEnv(t)
	tmp := t.TempDir()
	started, gate := filepath.Join(tmp, "started"), filepath.Join(tmp, "gate")
	criu := gatedCriu(t, started, gate)
	ids := make([]string, 2)
	for i := range ids {
		ids[i], _ = e.ckptCounter(nil)
	}
	dir := filepath.Join(tmp, "images")
	cmd := exec.Command(e.bin, "--root", e.root, "--criu", criu, "checkpoint", "--all", "--parallel", "1", "--image-dir", dir)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	startUntil(t, cmd, started, "CRIU", out.String)
	later := ""
	for _, id := range ids {
		if _, err := os.Stat(filepath.Join(dir, id)); err != nil {
			later = id
		}
	}
	if later == "" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatal("both dumps under way at CRIU's start, want one")
	}
	e.mustLkc("pause", later)
	os.WriteFile(gate, nil, 0o600)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("checkpoint --all: %v: %s", err, out.String())
	}
	e.mustLkc("restore", "--all", "--image-dir", dir)
	if st := e.state(later)["status"]; st != "paused" {
		t.Errorf("%s, paused before its dump, is %v after restore --all", later, st)
	}
	for _, id := range ids {
		e.mustLkc("delete", "--force", id)
	}
}

// TestMigrateAllTargetGone: the target's lkc serve dies while migrate
// --all dumps its first container: that migration rolls back and the
// next one cannot connect; both containers are kept, running here (not
// left frozen), and the exit says so.
func TestMigrateAllTargetGone(t *testing.T) {
	h := newTestHosts(t)
	a, b := h.hosts[0], h.hosts[1]
	tmp := t.TempDir()
	dumping, gate := filepath.Join(tmp, "dumping"), filepath.Join(tmp, "gate")
	ids := make([]string, 2)
	for i := range ids {
		ids[i], _ = h.runContainer(a, migCounter, nil)
	}
	criu := migrationGatedCriu(t, ids, dumping, gate)
	h.startServe(b)
	cmd, out, errb := h.startGatedMigrateAll(a, b, criu, dumping)
	b.killServe()
	os.WriteFile(gate, nil, 0o600)
	err := cmd.Wait()
	var ev evacuation
	if jerr := json.Unmarshal(out.Bytes(), &ev); jerr != nil || err == nil {
		t.Fatalf("migrate --all to a target that died: %v, %v: %s %s", err, jerr, out.String(), errb.String())
	}
	if !strings.Contains(errb.String(), "2 of 2 containers not moved") {
		t.Errorf("stderr %q", errb.String())
	}
	for _, m := range ev.Moves {
		if m.Status != "kept" {
			t.Errorf("%s is %s (%s), want kept", m.ID, m.Status, m.Error)
		}
	}
	for _, id := range ids {
		if st := a.e.state(id); st["status"] != "running" {
			t.Errorf("%s is %v on the source after its target died", id, st["status"])
		}
		if r := b.e.lkc("state", id); r.code == 0 {
			t.Errorf("the dead target has %s: %v", id, r)
		}
	}
}

// TestMigrateAllCommitUnconfirmed: the target's lkc serve dies after it
// committed a migration and before it confirmed the commit (its
// migrate.CommitDieEnv hook): the container runs there, and migrate --all
// cannot know it. It reports the container "in doubt", not kept (which
// says it runs here as before), and leaves the source's copy paused, so
// that it never runs in both places; the exit says so.
func TestMigrateAllCommitUnconfirmed(t *testing.T) {
	h := newTestHosts(t)
	a, b := h.hosts[0], h.hosts[1]
	id, _ := h.runContainer(a, migCounter, nil)
	die := filepath.Join(t.TempDir(), "die")
	if err := os.WriteFile(die, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	b.serveEnv = []string{migrate.CommitDieEnv + "=" + die}
	h.startServe(b)
	r, got := h.migrateAll(a, b, "--shared-storage", "--mode", "stopcopy")
	a.e.checkOneLineFailure(r, `1 of 1 containers not moved \(`+id+`: .*the target did not confirm the commit; the source copy stays paused`, nil)
	if got[id] != "in doubt" {
		t.Errorf("%s is %q, want in doubt", id, got[id])
	}
	if st := a.e.state(id); st["status"] != "paused" {
		t.Errorf("the source's copy of %s is %v, want paused", id, st["status"])
	}
	b.e.waitStatus(id, "running")
}
