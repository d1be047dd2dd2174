package integration

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// slowCriu returns a CRIU wrapper that, each time lkc starts CRIU's
// service (swrk), adds a line to started and waits a second before CRIU
// runs: time for a test to signal lkc while a dump or restore is under way.
func slowCriu(t *testing.T, started string) string {
	t.Helper()
	return waitingCriu(t, started, "sleep 1")
}

// waitingCriu returns a CRIU wrapper that, each time lkc starts CRIU's
// service (swrk), adds a line to started and runs the shell command wait
// before CRIU runs.
func waitingCriu(t *testing.T, started, wait string) string {
	t.Helper()
	criu := requireCriu(t)
	wrapper := freshCriu(t, criu)
	os.Remove(wrapper + ".launch")
	script := fmt.Sprintf("#!/bin/sh\nif [ \"$1\" = swrk ]; then echo >> %q; %s; fi\nexec %q \"$@\"\n", started, wait, criu)
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return wrapper
}

// startUntil starts cmd and waits until the file started exists (a
// wrapper of one of its children, what, made it); output says what cmd
// wrote, for the failure when it never does.
func startUntil(t *testing.T, cmd *exec.Cmd, started, what string, output func() string) {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(settle); ; time.Sleep(10 * time.Millisecond) {
		if _, err := os.Stat(started); err == nil {
			return
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("%v never started %s: %s", cmd.Args, what, output())
		}
	}
}

// signalOnceStarted runs lkc with args, sends it SIGTERM once CRIU's
// first service has started (started has a line), and returns how lkc
// ended; before is checked just before the signal.
func (e *env) signalOnceStarted(started string, before func(), args ...string) result {
	e.t.Helper()
	cmd := exec.Command(e.bin, append([]string{"--root", e.root}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(started); err == nil {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			<-done
			e.t.Fatalf("lkc %s never started CRIU: %s %s", strings.Join(args, " "), out.String(), errb.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	before()
	cmd.Process.Signal(unix.SIGTERM)
	var err error
	select {
	case err = <-done:
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		<-done
		e.t.Fatalf("lkc %s still running a minute after SIGTERM", strings.Join(args, " "))
	}
	r := result{stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		r.code = ee.ExitCode()
	}
	return r
}

// restoreAllLocks counts restore --all's lock rules in the INPUT chain
// of the network namespace at path.
func restoreAllLocks(t *testing.T, path string) int {
	t.Helper()
	out, err := exec.Command("nsenter", "--net="+path, "iptables", "-w", "-S", "INPUT").CombinedOutput()
	if err != nil {
		t.Fatalf("listing INPUT in %s: %v: %s", path, err, out)
	}
	return strings.Count(string(out), "lkc-restore-all-lock")
}

// SIGTERM during restore --all: the restore under way finishes, no other
// starts, the lock of the containers' network namespace is taken off,
// and lkc says in one line what did not come back.
func TestRestoreAllStopsOnSignal(t *testing.T) {
	e := newEnv(t)
	started := filepath.Join(t.TempDir(), "started")
	criu := slowCriu(t, started)
	nsPath, _ := vethNetns(t)
	ids := make([]string, 2)
	for i := range ids {
		ids[i], _ = e.ckptCounter(joinNetns(nsPath))
	}
	dir := filepath.Join(t.TempDir(), "images")
	e.mustLkc("checkpoint", "--all", "--image-dir", dir)
	t.Cleanup(func() {
		// A failed run's lock: the namespace would drop every packet.
		for i := 0; i < 4 && exec.Command("nsenter", "--net="+nsPath, "iptables", "-w", "-D", "INPUT", "-m", "comment",
			"--comment", "lkc-restore-all-lock", "-j", "DROP").Run() == nil; i++ {
		}
	})
	r := e.signalOnceStarted(started, func() {
		if n := restoreAllLocks(t, nsPath); n != 1 {
			t.Fatalf("%d lock rules while restore --all runs, want 1", n)
		}
	}, "--criu", criu, "restore", "--all", "--tcp-established", "--parallel", "1", "--image-dir", dir)
	e.checkOneLineFailure(r, `1 of 2 containers not restored \(it-.*: interrupted \(a signal\) before its restore began\)`, nil)
	if n := restoreAllLocks(t, nsPath); n != 0 {
		t.Errorf("%d lock rules left after restore --all ended on SIGTERM", n)
	}
	running := 0
	for _, id := range ids {
		if !strings.Contains(r.stdout, id) {
			t.Errorf("restore --all's report does not name %s: %q", id, r.stdout)
		}
		if e.lkc("state", id).code == 0 && e.state(id)["status"] == "running" {
			running++
		} else {
			e.assertIDGone(id)
		}
	}
	if running != 1 {
		t.Errorf("%d containers running after restore --all ended on SIGTERM, want the 1 under way: %s", running, r.stdout)
	}
}

// SIGTERM during checkpoint --all: the dump under way finishes, no other
// starts, the manifest is complete and says so, and the container not
// dumped keeps running, --stop or not.
func TestCheckpointAllStopsOnSignal(t *testing.T) {
	e := newEnv(t)
	started := filepath.Join(t.TempDir(), "started")
	criu := slowCriu(t, started)
	roots := map[string]string{}
	for i := 0; i < 2; i++ {
		id, root := e.ckptCounter(nil)
		roots[id] = root
	}
	dir := filepath.Join(t.TempDir(), "images")
	r := e.signalOnceStarted(started, func() {}, "--criu", criu, "checkpoint", "--all", "--stop", "--parallel", "1", "--image-dir", dir)
	e.checkOneLineFailure(r, `1 of 2 containers not dumped \(it-.*: interrupted \(a signal\) before its dump began\)`, nil)
	got := readEvacManifest(t, dir)
	dumped := 0
	for id, root := range roots {
		switch got[id] {
		case "dumped":
			dumped++
		case "failed":
			if st := e.state(id); st["status"] != "running" {
				t.Errorf("%s, not dumped, is %v after checkpoint --all ended on SIGTERM", id, st["status"])
			}
			waitCount(t, root, readCount(t, root)+2)
		default:
			t.Errorf("manifest: %s is %q", id, got[id])
		}
	}
	if dumped != 1 {
		t.Errorf("%d containers dumped, want the 1 under way at the signal: %v", dumped, got)
	}
}

// TestCheckpointAllContainerGone: a container deleted, or one that
// stopped, while checkpoint --all dumps another is skipped, as one that
// was not running at the start: nothing is kept for it, the exit is 0,
// and restore --all then restores the rest and exits 0 too.
func TestCheckpointAllContainerGone(t *testing.T) {
	e := newEnv(t)
	started := filepath.Join(t.TempDir(), "started")
	criu := slowCriu(t, started)
	ids := make([]string, 3)
	for i := range ids {
		ids[i], _ = e.ckptCounter(nil)
	}
	dir := filepath.Join(t.TempDir(), "images")
	cmd := exec.Command(e.bin, "--root", e.root, "--criu", criu, "checkpoint", "--all", "--parallel", "1", "--image-dir", dir)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	startUntil(t, cmd, started, "CRIU", out.String)
	var others []string
	for _, id := range ids {
		if _, err := os.Stat(filepath.Join(dir, id)); err != nil {
			others = append(others, id)
		}
	}
	if len(others) != 2 {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("%d containers under way at CRIU's start, want 1", 3-len(others))
	}
	e.mustLkc("delete", "--force", others[0])
	e.mustLkc("kill", others[1], "KILL")
	e.waitStatus(others[1], "stopped")
	if err := cmd.Wait(); err != nil {
		t.Errorf("checkpoint --all: %v: %s", err, out.String())
	}
	got := readEvacManifest(t, dir)
	for _, id := range others {
		if got[id] != "skipped" {
			t.Errorf("manifest: %s is %q, want skipped: %s", id, got[id], out.String())
		}
		if _, err := os.Stat(filepath.Join(dir, id)); err == nil {
			t.Errorf("checkpoint --all kept a directory for %s, which it did not dump", id)
		}
	}
	r := e.lkc("restore", "--all", "--image-dir", dir)
	if r.code != 0 {
		t.Errorf("restore --all: %v", r)
	}
}

// TestCheckpointAllDiskFillsUp: the image dir's filesystem fills up
// after one container was dumped (and so stopped) and before the next:
// that one fails and keeps running, and the manifest still says what was
// dumped, so restore --all brings the first one back.
func TestCheckpointAllDiskFillsUp(t *testing.T) {
	e := newEnv(t)
	started := filepath.Join(t.TempDir(), "started")
	criu := slowCriu(t, started)
	roots := map[string]string{}
	for i := 0; i < 2; i++ {
		id, root := e.ckptCounter(nil)
		roots[id] = root
	}
	fs := tmpfsDir(t, "64m")
	dir := filepath.Join(fs, "images")
	cmd := exec.Command(e.bin, "--root", e.root, "--criu", criu, "checkpoint", "--all", "--parallel", "1", "--image-dir", dir)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// The second container's directory is made once the first is dumped,
	// and its CRIU waits a second: the disk fills meanwhile.
	for deadline := time.Now().Add(settle); ; time.Sleep(10 * time.Millisecond) {
		dirs := 0
		entries, _ := os.ReadDir(dir)
		for _, d := range entries {
			if d.IsDir() {
				dirs++
			}
		}
		if dirs == 2 {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("checkpoint --all never began its second dump: %s", out.String())
		}
	}
	filler, err := os.Create(filepath.Join(fs, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	for buf := make([]byte, 1<<20); err == nil; {
		_, err = filler.Write(buf)
	}
	filler.Close()
	cmd.Wait()
	t.Logf("checkpoint --all on a disk that filled up: %s", out.String())
	os.Remove(filler.Name())
	got := readEvacManifest(t, dir)
	dumped := ""
	for id, root := range roots {
		switch got[id] {
		case "dumped":
			dumped = id
		case "failed":
			if st := e.state(id); st["status"] != "running" {
				t.Errorf("%s, not dumped, is %v", id, st["status"])
			}
			waitCount(t, root, readCount(t, root)+2)
		default:
			t.Errorf("manifest: %s is %q, want dumped or failed", id, got[id])
		}
	}
	if dumped == "" {
		t.Fatalf("no container dumped: %v", got)
	}
	e.lkc("restore", "--all", "--image-dir", dir)
	e.waitStatus(dumped, "running")
}

// TestCheckpointAllCtrlCWhileSavingRootfs: Ctrl-C on checkpoint --all's
// terminal signals its whole process group while tar archives a rootfs
// on a tmpfs: the archive and the dump under way finish, as a signal to
// lkc alone lets them, rather than tar dying with the signal and the
// container left undumped.
func TestCheckpointAllCtrlCWhileSavingRootfs(t *testing.T) {
	requireCriu(t)
	e := newEnv(t)
	started := filepath.Join(t.TempDir(), "started")
	env := waitingTar(t, started, "sleep 1")
	id, _ := e.runOnTmpfs()
	dir := filepath.Join(t.TempDir(), "images")
	cmd := exec.Command(e.bin, "--root", e.root, "checkpoint", "--all", "--image-dir", dir)
	cmd.Env = env
	out := ctrlCOnceStarted(t, cmd, started, "tar")
	if got := readEvacManifest(t, dir); got[id] != "dumped+rootfs" {
		t.Errorf("manifest after Ctrl-C during the rootfs's archive: %v: %s", got, out)
	}
}

// waitingTar makes a tar wrapper that adds a line to started and runs the
// shell command wait before tar runs, and returns lkc's environment with
// the wrapper first in PATH.
func waitingTar(t *testing.T, started, wait string) []string {
	t.Helper()
	tarPath, err := exec.LookPath("tar")
	if err != nil {
		t.Skip("no tar")
	}
	bin := t.TempDir()
	script := fmt.Sprintf("#!/bin/sh\necho >> %q; %s; exec %q \"$@\"\n", started, wait, tarPath)
	if err := os.WriteFile(filepath.Join(bin, "tar"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"))
}

// runOnTmpfs runs a container (sleep) whose rootfs, a copy of the
// shared one, is on a tmpfs: checkpoint --all saves it. It returns the
// id and the rootfs.
func (e *env) runOnTmpfs() (string, string) {
	e.t.Helper()
	root := filepath.Join(tmpfsDir(e.t, "64m"), "rootfs")
	if out, err := exec.Command("cp", "-a", rootfs, root).CombinedOutput(); err != nil {
		e.t.Fatalf("copying the rootfs: %v: %s", err, out)
	}
	id := e.id()
	e.mustLkc("run", "-d", "--bundle", e.bundle([]string{"sleep", "1000"}, func(s *specs.Spec) {
		s.Root.Path, s.Root.Readonly = root, false
	}), id)
	return id, root
}

// ctrlCOnceStarted runs cmd as a terminal's job (a process group of its
// own) and, once the file started exists (what, a wrapper of one of its
// children, made it), sends the group SIGINT, as Ctrl-C does. It returns
// cmd's output.
func ctrlCOnceStarted(t *testing.T, cmd *exec.Cmd, started, what string) string {
	t.Helper()
	cmd.SysProcAttr = &unix.SysProcAttr{Setpgid: true}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	startUntil(t, cmd, started, what, out.String)
	unix.Kill(-cmd.Process.Pid, unix.SIGINT)
	cmd.Wait()
	return out.String()
}

// TestCheckpointAllCtrlCWhileCriuDumps: Ctrl-C on the terminal reaches
// its foreground process group. CRIU runs in a group of its own, so the
// dump under way finishes (lkc lets it, as it says) instead of CRIU dying
// in the middle ("reading criu's answer: connection reset by peer").
func TestCheckpointAllCtrlCWhileCriuDumps(t *testing.T) {
	e := newEnv(t)
	started := filepath.Join(t.TempDir(), "started")
	wrapper := slowCriu(t, started)
	id := e.id()
	e.mustLkc("run", "-d", "--bundle", e.bundle([]string{"sleep", "1000"}, nil), id)
	dir := filepath.Join(t.TempDir(), "images")
	cmd := exec.Command(e.bin, "--root", e.root, "--criu", wrapper, "checkpoint", "--all", "--image-dir", dir)
	out := ctrlCOnceStarted(t, cmd, started, "criu")
	if got := readEvacManifest(t, dir); !strings.HasPrefix(got[id], "dumped") {
		t.Errorf("manifest after Ctrl-C while criu dumps: %v: %s", got, out)
	}
}

// gatedCriu returns a CRIU wrapper that, each time lkc starts CRIU's
// service (swrk), adds a line to started and waits until the file gate
// exists before CRIU runs.
func gatedCriu(t *testing.T, started, gate string) string {
	t.Helper()
	return waitingCriu(t, started, waitGate(gate))
}

// waitGate is the shell command that waits until the file gate exists,
// or its directory is gone (the test ended without opening it).
func waitGate(gate string) string {
	return fmt.Sprintf("while [ ! -e %q ] && [ -d %q ]; do sleep 0.05; done", gate, filepath.Dir(gate))
}

// TestCheckpointAllContainerCreatedMeanwhile: a container created while
// checkpoint --all dumps another, after it listed the root, is in the
// manifest as failed, with the reason, and keeps running: the exit says
// that not everything was dumped.
func TestCheckpointAllContainerCreatedMeanwhile(t *testing.T) {
	e := newEnv(t)
	tmp := t.TempDir()
	started, gate := filepath.Join(tmp, "started"), filepath.Join(tmp, "gate")
	criu := gatedCriu(t, started, gate)
	first, _ := e.ckptCounter(nil)
	dir := filepath.Join(tmp, "images")
	cmd := exec.Command(e.bin, "--root", e.root, "--criu", criu, "checkpoint", "--all", "--image-dir", dir)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	startUntil(t, cmd, started, "CRIU", out.String)
	late, lateRoot := e.ckptCounter(nil)
	os.WriteFile(gate, nil, 0o600)
	if err := cmd.Wait(); err == nil || !strings.Contains(out.String(), "1 of 2 containers not dumped ("+late+": it was created while checkpoint --all ran") {
		t.Errorf("checkpoint --all: %v: %s", err, out.String())
	}
	got := readEvacManifest(t, dir)
	if got[first] != "dumped" || got[late] != "failed" {
		t.Errorf("manifest: %v", got)
	}
	if st := e.state(late); st["status"] != "running" {
		t.Errorf("the container created meanwhile is %v", st["status"])
	}
	waitCount(t, lateRoot, readCount(t, lateRoot)+1)
	e.mustLkc("delete", "--force", late)
}

// TestMigrateAllContainerCreatedMeanwhile: a container created while
// migrate --all moves another, after it listed the root, is kept (it
// runs here, not moved), with the reason, and the exit says so.
func TestMigrateAllContainerCreatedMeanwhile(t *testing.T) {
	h := newTestHosts(t)
	a, b := h.hosts[0], h.hosts[1]
	tmp := t.TempDir()
	started, gate := filepath.Join(tmp, "started"), filepath.Join(tmp, "gate")
	criu := gatedCriu(t, started, gate)
	first, _ := h.runContainer(a, migCounter, nil)
	h.startServe(b)
	cmd := h.lkcIn(a, "--criu", criu, "migrate", "--all", "--json", "--shared-storage", "--mode", "stopcopy",
		"--token-file", h.token, b.ip+":7070")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	startUntil(t, cmd, started, "CRIU", func() string { return out.String() + " " + errb.String() })
	late, _ := h.runContainer(a, migCounter, nil)
	os.WriteFile(gate, nil, 0o600)
	if err := cmd.Wait(); err == nil || !strings.Contains(errb.String(), "1 of 2 containers not moved ("+late+": it was created while migrate --all ran") {
		t.Errorf("migrate --all: %v: %s %s", err, out.String(), errb.String())
	}
	b.e.waitStatus(first, "running")
	a.e.waitStatus(late, "running")
}
