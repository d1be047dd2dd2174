package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// evacManifest is the part of checkpoint --all's manifest the tests read.
type evacManifest struct {
	Complete   bool `json:"complete"`
	Containers []struct {
		ID          string `json:"id"`
		Status      string `json:"status"`
		Error       string `json:"error"`
		RootfsSaved bool   `json:"rootfsSaved"`
		Stopped     bool   `json:"stopped"`
	} `json:"containers"`
}

// readManifestFile reads checkpoint --all's manifest in dir, complete or
// not.
func readManifestFile(t *testing.T, dir string) *evacManifest {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		t.Fatalf("reading the manifest: %v", err)
	}
	var m evacManifest
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("manifest %s: %v", data, err)
	}
	return &m
}

func readEvacManifest(t *testing.T, dir string) map[string]string {
	t.Helper()
	m := readManifestFile(t, dir)
	if !m.Complete {
		t.Errorf("manifest not complete after checkpoint --all returned: %+v", m)
	}
	out := map[string]string{}
	for _, c := range m.Containers {
		out[c.ID] = c.Status
		if c.RootfsSaved {
			out[c.ID] += "+rootfs"
		}
		if c.Stopped {
			out[c.ID] += "+stopped"
		}
	}
	return out
}

// tmpfsDir mounts a tmpfs of size (mount's spelling) on a new directory,
// unmounted at the end of the test, and returns it.
func tmpfsDir(t *testing.T, size string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "tmpfs")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size="+size); err != nil {
		t.Fatalf("mounting a tmpfs: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	return dir
}

// Every running container of a root is dumped into one directory and
// comes back from it: one on disk from its bundle, one whose rootfs was on
// a tmpfs (gone, as after a reboot) from the copy saved with the images,
// with their limits and pids; a created one is listed as skipped and left
// as it was.
func TestCheckpointAllRestoreAll(t *testing.T) {
	requireCriu(t)
	e := newEnv(t)
	disk, diskRoot := e.ckptCounter(nil)
	e.mustLkc("update", "--pids-limit", "77", disk)
	volatileRoot := filepath.Join(tmpfsDir(t, "64m"), "rootfs")
	if out, err := exec.Command("cp", "-a", rootfs, volatileRoot).CombinedOutput(); err != nil {
		t.Fatalf("copying the rootfs: %v: %s", err, out)
	}
	vol := e.id()
	// Its output goes to a log on the tmpfs too, which the reboot takes.
	logPath := filepath.Join(filepath.Dir(volatileRoot), "out.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	run := exec.Command(e.bin, "--root", e.root, "run", "-d", "--bundle", e.bundle([]string{"sh", "-c", "echo started; " + counterScript}, func(s *specs.Spec) {
		s.Root.Path, s.Root.Readonly = volatileRoot, false
	}), vol)
	run.Stdout, run.Stderr = logFile, logFile
	if err := run.Run(); err != nil {
		t.Fatalf("lkc run -d %s: %v", vol, err)
	}
	logFile.Close()
	waitCount(t, volatileRoot, 3)
	volChild := strings.TrimSpace(e.mustLkc("exec", vol, "cat", "/child"))
	created := e.id()
	e.mustLkc("create", "--bundle", e.bundle([]string{"true"}, nil), created)
	term, master := e.createWithConsole([]string{"sh"}, nil)
	e.mustLkc("start", term)
	master.Write([]byte("X=kept; echo ready-$((1+1))\n"))
	readUntil(t, master, "ready-2")

	dir := filepath.Join(t.TempDir(), "images")
	out := e.mustLkc("checkpoint", "--all", "--image-dir", dir, "--parallel", "2")
	got := readEvacManifest(t, dir)
	want := map[string]string{disk: "dumped", vol: "dumped+rootfs", created: "skipped", term: "dumped"}
	for id, w := range want {
		if got[id] != w {
			t.Errorf("manifest: %s is %q, want %q\n%s", id, got[id], w, out)
		}
	}
	for _, id := range []string{disk, vol, term} {
		if r := e.lkc("state", id); r.code == 0 {
			t.Errorf("%s still exists after checkpoint --all: %v", id, r)
		}
	}
	if st := e.state(created); st["status"] != "created" {
		t.Errorf("the created container is %v after checkpoint --all", st["status"])
	}
	savedDisk := readCount(t, diskRoot)
	savedVol := readCount(t, volatileRoot)
	// The reboot: the tmpfs and what was on it are gone.
	if err := unix.Unmount(filepath.Dir(volatileRoot), unix.MNT_DETACH); err != nil {
		t.Fatal(err)
	}

	consoles := t.TempDir()
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: filepath.Join(consoles, term), Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	out = e.mustLkc("restore", "--all", "--image-dir", dir, "--console-dir", consoles)
	if !strings.Contains(out, "restored") {
		t.Errorf("restore --all printed %q", out)
	}
	master2 := recvMaster(t, l)
	master2.Write([]byte("echo $X-$((2+3))\n"))
	readUntil(t, master2, "kept-5")
	waitCount(t, diskRoot, savedDisk+2)
	if got := strings.TrimSpace(e.mustLkc("exec", disk, "cat", cgroupFile("pids", "pids.max", "pids.max"))); got != "77" {
		t.Errorf("pids.max after restore --all %q, want 77 (set by lkc update)", got)
	}
	if data, err := os.ReadFile(filepath.Join(dir, vol, "fd1.log")); err != nil || len(data) != len("started\n") {
		t.Errorf("the stand-in for the tmpfs container's lost log: %q, %v (want as long as the log was)", data, err)
	}
	newRoot := filepath.Join(dir, vol, "bundle", "rootfs")
	if n := waitCount(t, newRoot, savedVol+1); n > savedVol+30 {
		t.Errorf("the tmpfs container's counter restarted: %d after %d", n, savedVol)
	}
	if child := strings.TrimSpace(e.mustLkc("exec", vol, "cat", "/child")); child != volChild {
		t.Errorf("child pid %s after restore, want %s", child, volChild)
	}
	ps := e.mustLkc("exec", vol, "ps", "-o", "pid,args")
	if !psHas(ps, volChild, "sleep 100000") {
		t.Errorf("child %s missing after restore --all:\n%s", volChild, ps)
	}
	if st := e.state(created); st["status"] != "created" {
		t.Errorf("the created container is %v after restore --all", st["status"])
	}
	for _, id := range []string{disk, vol, term} {
		e.mustLkc("delete", "--force", id)
	}
}

// A container CRIU cannot dump (no mount namespace of its own) is listed
// with the reason and keeps running, the others are dumped, and the exit
// is non-zero; --stop stops it; restore --all brings back the rest and
// names it.
func TestCheckpointAllUndumpable(t *testing.T) {
	requireCriu(t)
	e := newEnv(t)
	good, goodRoot := e.ckptCounter(nil)
	bad := e.id()
	e.mustLkc("run", "-d", "--bundle", e.bundle([]string{"sleep", "1000"}, func(s *specs.Spec) {
		var ns []specs.LinuxNamespace
		for _, n := range s.Linux.Namespaces {
			if n.Type != specs.MountNamespace {
				ns = append(ns, n)
			}
		}
		s.Linux.Namespaces, s.Linux.MaskedPaths, s.Linux.ReadonlyPaths = ns, nil, nil
	}), bad)
	term, master := e.createWithConsole([]string{"sh"}, nil)
	e.mustLkc("start", term)
	master.Write([]byte("echo ready-$((1+1))\n"))
	readUntil(t, master, "ready-2")
	dir := filepath.Join(t.TempDir(), "images")
	msg := e.failLkc("1 of 3 containers not dumped \\("+bad+": .*mount namespace", "checkpoint", "--all", "--image-dir", dir)
	t.Log(msg)
	got := readEvacManifest(t, dir)
	if got[good] != "dumped" || got[bad] != "failed" {
		t.Errorf("manifest: %v", got)
	}
	if st := e.state(bad); st["status"] != "running" {
		t.Errorf("the container that was not dumped is %v, want running", st["status"])
	}
	saved := readCount(t, goodRoot)

	dir2 := filepath.Join(t.TempDir(), "images2")
	e.failLkc("1 of 1 containers not dumped", "checkpoint", "--all", "--stop", "--image-dir", dir2)
	if got := readEvacManifest(t, dir2); got[bad] != "failed+stopped" {
		t.Errorf("manifest after --stop: %v", got)
	}
	if r := e.lkc("state", bad); r.code == 0 {
		t.Errorf("%s still exists after checkpoint --all --stop: %v", bad, r)
	}

	r := e.lkc("restore", "--all", "--image-dir", dir)
	e.checkOneLineFailure(r, "2 of 3 containers not restored \\("+bad+": ", nil)
	if !strings.Contains(r.stdout, good) || !strings.Contains(r.stdout, "1 restored, 2 not restored, 0 skipped in") {
		t.Errorf("restore --all summary %q", r.stdout)
	}
	if !regexp.MustCompile(term + `\s+failed.*needs --console-dir`).MatchString(r.stdout) {
		t.Errorf("restore --all summary does not say the terminal's container needs --console-dir: %q", r.stdout)
	}
	waitCount(t, goodRoot, saved+1)
	e.mustLkc("delete", "--force", good)
}

// Bad input: one-line errors, a non-zero exit, nothing written and every
// container as it was.
func TestCheckpointAllBadInput(t *testing.T) {
	requireCriu(t)
	e := newEnv(t)
	id, countRoot := e.ckptCounter(nil)
	tmp := t.TempDir()
	e.failLkc("--image-dir is required", "checkpoint", "--all")
	e.failLkc("unexpected argument", "checkpoint", "--all", "--image-dir", tmp, id)
	e.failLkc("root /nonexistent-lkc-root: no such file or directory",
		"--root", "/nonexistent-lkc-root", "checkpoint", "--all", "--image-dir", filepath.Join(tmp, "x"))
	e.failLkc("image dir .*/missing/images: no such file or directory",
		"checkpoint", "--all", "--image-dir", filepath.Join(tmp, "missing", "images"))
	full := filepath.Join(tmp, "full")
	os.Mkdir(full, 0o700)
	os.WriteFile(filepath.Join(full, "keep"), nil, 0o600)
	e.failLkc("image dir .*/full is not empty \\(keep\\)", "checkpoint", "--all", "--image-dir", full)
	small := tmpfsDir(t, "256k")
	e.failLkc(`image dir .* has 0 MiB free, the 1 containers need about [0-9]+ MiB \(memory`,
		"checkpoint", "--all", "--image-dir", small)
	small2 := filepath.Join(small, "sub")
	e.failLkc(`has 0 MiB free`, "checkpoint", "--all", "--image-dir", small2)
	for _, d := range []string{small, full} {
		if entries, _ := os.ReadDir(d); len(entries) > 1 || d == small && len(entries) > 0 {
			t.Errorf("left behind in %s: %v", d, names(entries))
		}
	}
	if st := e.state(id); st["status"] != "running" {
		t.Fatalf("the container is %v after the refused checkpoints", st["status"])
	}
	n := readCount(t, countRoot)
	waitCount(t, countRoot, n+1)

	e.failLkc("image dir .*/nothing: no such file or directory", "restore", "--all", "--image-dir", filepath.Join(tmp, "nothing"))
	e.failLkc("holds no manifest.json: not made by checkpoint --all", "restore", "--all", "--image-dir", full)
	bad := filepath.Join(tmp, "bad")
	os.Mkdir(bad, 0o700)
	os.WriteFile(filepath.Join(bad, "manifest.json"), []byte("{"), 0o600)
	e.failLkc("decoding .*manifest.json", "restore", "--all", "--image-dir", bad)
	if entries, _ := os.ReadDir(e.root); len(entries) != 1 {
		t.Errorf("state dirs after the refused restores: %v", names(entries))
	}
}

// evacuation is migrate --all --json's output.
type evacuation struct {
	Moves []struct {
		ID      string   `json:"id"`
		Status  string   `json:"status"`
		Error   string   `json:"error"`
		Summary *summary `json:"summary"`
	} `json:"moves"`
	TotalMS float64 `json:"total_ms"`
}

// migrateAll runs migrate --all --json from host from to host to.
func (h *testHosts) migrateAll(from, to *testHost, flags ...string) (result, map[string]string) {
	h.t.Helper()
	args := append([]string{"migrate", "--all", "--token-file", h.token, "--json"}, flags...)
	r := h.run(from, append(args, to.ip+":7070")...)
	var ev evacuation
	if err := json.Unmarshal([]byte(r.stdout), &ev); err != nil {
		h.t.Fatalf("migrate --all: %v: output %v", err, r)
	}
	got := map[string]string{}
	for _, m := range ev.Moves {
		got[m.ID] = m.Status
		if m.Status == "moved" && (m.Summary == nil || m.Summary.DowntimeMS <= 0 || m.Summary.DowntimeMS > m.Summary.TotalMS) {
			h.t.Errorf("implausible summary of %s: %+v", m.ID, m.Summary)
		}
	}
	if ev.TotalMS <= 0 {
		h.t.Errorf("total %v ms", ev.TotalMS)
	}
	return r, got
}

// An evacuation: unreachable target refused with every container kept;
// a dry run that names the container the target would refuse (its id is
// taken there) and moves nothing; the move of the others, in parallel
// (the target receives three at a time), each counting on where it was,
// the refused one still running here; a dry run to a target without
// room.
func TestMigrateAll(t *testing.T) {
	h := newTestHosts(t)
	a, b := h.hosts[0], h.hosts[1]
	var ids []string
	for i := 0; i < 3; i++ {
		id, _ := h.runContainer(a, migCounter, nil)
		ids = append(ids, id)
	}
	taken, _ := h.runContainer(a, migCounter, nil)
	// This machine's cgroups are both hosts': B's keeps to its own parent.
	h.runContainerID(b, taken, []string{"sleep", "1000"}, func(s *specs.Spec) { s.Linux.CgroupsPath = b.cgParent + "/" + taken })

	r, got := h.migrateAll(a, b)
	a.e.checkOneLineFailure(r, "4 of 4 containers not moved \\(.*connecting to the receiver: .*connection refused", nil)
	for _, id := range append(ids, taken) {
		if got[id] != "kept" {
			t.Errorf("unreachable target: %s is %q, want kept", id, got[id])
		}
		a.e.waitStatus(id, "running")
	}

	h.startServe(b, "--sessions", "3")
	r, got = h.migrateAll(a, b, "--dry-run")
	a.e.checkOneLineFailure(r, "1 of 4 containers not movable \\("+taken+": .*already exists on the target", nil)
	for _, id := range ids {
		if got[id] != "would move" {
			t.Errorf("dry run: %s is %q, want would move", id, got[id])
		}
		a.e.waitStatus(id, "running")
	}
	if got[taken] != "would fail" {
		t.Errorf("dry run: %s is %q, want would fail", taken, got[taken])
	}

	before := map[string]int{}
	for _, id := range ids {
		before[id] = migCount(t, a.e, id)
	}
	r, got = h.migrateAll(a, b, "--parallel", "3", "--shared-storage", "--mode", "stopcopy")
	a.e.checkOneLineFailure(r, "1 of 4 containers not moved \\("+taken+": ", nil)
	for _, id := range ids {
		if got[id] != "moved" {
			t.Errorf("%s is %q, want moved", id, got[id])
			continue
		}
		if r := a.e.lkc("state", id); r.code == 0 {
			t.Errorf("the source still has %s after the move", id)
		}
		b.e.waitStatus(id, "running")
		n := migCount(t, b.e, id)
		if n < before[id] {
			t.Errorf("%s counts %d on the target, %d before the move", id, n, before[id])
		}
	}
	if got[taken] != "kept" {
		t.Errorf("%s is %q, want kept", taken, got[taken])
	}
	a.e.waitStatus(taken, "running")

	// A target whose bundle directory cannot hold the evacuation.
	b.stopServe()
	b.bundles = tmpfsDir(t, "1m")
	h.startServe(b)
	more, _ := h.runContainer(a, migCounter, nil)
	r, got = h.migrateAll(a, b, "--dry-run")
	a.e.checkOneLineFailure(r, "2 of 2 containers not movable", nil)
	if got[more] != "would fail" || !regexp.MustCompile(`incompatible target: \S+ has \d+ MiB free, the (container|evacuation) needs`).MatchString(r.stdout) {
		t.Errorf("dry run to a full target: %s is %q: %s", more, got[more], r.stdout)
	}
	a.e.waitStatus(more, "running")
	a.e.failLkc("--token-file is required", "migrate", "--all", b.ip+":7070")
	a.e.failLkc("root /nonexistent-lkc-root: no such file or directory",
		"--root", "/nonexistent-lkc-root", "migrate", "--all", "--token-file", h.token, b.ip+":7070")
}

// The --all commands run as many containers at a time as lkc has CPUs,
// and lkc serve receives as many migrations at a time: on two CPUs, four
// at a time made no evacuation faster and kept each container frozen
// twice as long (docs/journal/2026-12-06-evacuate.md,
// 2026-12-07-evacuation-turns.md); migrate --all has no second bound on
// the containers down unless --frozen sets one. Checked on the defaults
// the commands print, on this host's CPUs and on one.
func TestEvacuateParallelDefaultsToCPUs(t *testing.T) {
	if _, err := exec.LookPath("taskset"); err != nil {
		t.Skip("taskset not installed")
	}
	for _, cpus := range []int{runtime.NumCPU(), 1} {
		for _, args := range [][]string{
			{"checkpoint", "--all", "--help"}, {"restore", "--all", "--help"},
			{"migrate", "--all", "--help"}, {"serve", "--help"},
		} {
			cmd := exec.Command(lkcBinary, args...)
			if cpus == 1 {
				cmd = exec.Command("taskset", append([]string{"-c", "0", lkcBinary}, args...)...)
			}
			out, _ := cmd.CombinedOutput()
			flag := "-parallel"
			if args[0] == "serve" {
				flag = "-sessions"
			}
			want := regexp.MustCompile(`(?m)^  ` + flag + ` int\n.*\(default ` + strconv.Itoa(cpus) + `\)$`)
			if !want.Match(out) {
				t.Errorf("lkc %s on %d CPUs: want %s to default to %d, got:\n%s", strings.Join(args, " "), cpus, flag, cpus, out)
			}
			if args[0] == "migrate" && !regexp.MustCompile(`(?m)^  -frozen int\n.*\(default: --parallel\)$`).Match(out) {
				t.Errorf("lkc %s: want -frozen to default to --parallel, got:\n%s", strings.Join(args, " "), out)
			}
		}
	}
}

// TestMigrateAllFrozenBound: migrate --all --frozen 1 has one container
// down at a time while three migrations are under way: no two are ever
// seen frozen here with their restore there not begun (no cgroup there
// yet). Stop-and-copy with shared storage freezes each at once, so all
// three would be dumped together without the bound. The waits show in
// the summaries.
func TestMigrateAllFrozenBound(t *testing.T) {
	h := newTestHosts(t)
	a, b := h.hosts[0], h.hosts[1]
	var ids []string
	for range 3 {
		id, _ := h.runContainer(a, migCounter, nil)
		ids = append(ids, id)
	}
	h.startServe(b, "--sessions", "3")
	// The source's cgroups are found once: a glob of every cgroup tree
	// for each container at each round made rounds slow enough under load
	// to miss a whole frozen window.
	freezers := map[string][]string{}
	for _, id := range ids {
		freezers[id] = freezerFiles(id)
	}
	stop := make(chan struct{})
	most := make(chan int)
	go func() {
		n := 0
		for {
			select {
			case <-stop:
				most <- n
				return
			default:
			}
			down := 0
			for _, id := range ids {
				if sourceFrozen(freezers[id]) && len(cgroupDirsUnder(b.cgParent, id)) == 0 {
					down++
				}
			}
			n = max(n, down)
			time.Sleep(200 * time.Microsecond)
		}
	}()
	r := h.run(a, "migrate", "--all", "--token-file", h.token, "--json", "--parallel", "3", "--frozen", "1",
		"--shared-storage", "--mode", "stopcopy", b.ip+":7070")
	close(stop)
	n := <-most
	var ev evacuation
	if err := json.Unmarshal([]byte(r.stdout), &ev); err != nil || r.code != 0 {
		t.Fatalf("migrate --all: %v: %v", err, r)
	}
	waited := 0
	for _, m := range ev.Moves {
		if m.Status != "moved" {
			t.Errorf("%s is %q, want moved: %s", m.ID, m.Status, m.Error)
			continue
		}
		if m.Summary.WaitMS > 10 {
			waited++
		}
		b.e.waitStatus(m.ID, "running")
	}
	if n != 1 {
		t.Errorf("at most %d containers were seen frozen here and not restoring there at a time, want 1", n)
	}
	if waited < 2 {
		t.Errorf("%d migrations waited for their turn to freeze, want 2: %s", waited, r.stdout)
	}
}

// freezerFiles lists the files of container id's cgroups on the source
// host (the test's own hierarchy, cgroupDirs) that can tell it frozen.
func freezerFiles(id string) []string {
	var out []string
	for _, d := range cgroupDirs(id) {
		out = append(out, filepath.Join(d, "freezer.state"), filepath.Join(d, "cgroup.freeze"))
	}
	return out
}

// sourceFrozen says whether the first of files (freezerFiles) that exists
// tells its cgroup frozen or freezing.
func sourceFrozen(files []string) bool {
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		if filepath.Base(f) == "freezer.state" {
			return strings.TrimSpace(string(b)) != "THAWED"
		}
		return strings.TrimSpace(string(b)) == "1"
	}
	return false
}

// cgroupDirsUnder lists container id's cgroup directories beneath the
// relative cgroup parent (a serve's --cgroup-parent), in every hierarchy.
func cgroupDirsUnder(parent, id string) []string {
	var out []string
	for _, pattern := range []string{"/sys/fs/cgroup/*/" + parent + "/" + id, "/sys/fs/cgroup/*/*/*/" + parent + "/" + id, "/sys/fs/cgroup/" + parent + "/" + id} {
		m, _ := filepath.Glob(pattern)
		out = append(out, m...)
	}
	return out
}

// TestEvacuateParallelBad: a --parallel below 1 (and a migrate --all
// --mode lkc does not know) is refused in one line naming it, before the
// image directory is made or the target asked.
func TestEvacuateParallelBad(t *testing.T) {
	e := newEnv(t)
	dir := filepath.Join(t.TempDir(), "images")
	token := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(token, []byte("0123456789abcdef0123456789abcdef\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"0", "-2"} {
		e.failLkc("--parallel "+n+": want at least 1", "checkpoint", "--all", "--image-dir", dir, "--parallel", n)
		e.failLkc("--parallel "+n+": want at least 1", "restore", "--all", "--image-dir", dir, "--parallel", n)
		e.failLkc("--parallel "+n+": want at least 1", "migrate", "--all", "--token-file", token, "--parallel", n, "127.0.0.1:9")
		e.failLkc("--frozen "+n+": want at least 1", "migrate", "--all", "--token-file", token, "--frozen", n, "127.0.0.1:9")
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("image dir after the refusals: %v", err)
	}
	// With no container to move, only the command can refuse it.
	e.failLkc(`--mode "fast": use precopy, postcopy or stopcopy`, "migrate", "--all", "--token-file", token, "--mode", "fast", "127.0.0.1:9")
}

// TestRestoreAllEditedManifest: a manifest edited by hand into one that
// has no container where an entry should be is refused in one line, with
// nothing made, not a crash.
func TestRestoreAllEditedManifest(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	for _, m := range []string{
		`{"version":1,"complete":true,"containers":[null]}`,
		`{"version":1,"complete":true,"containers":[{"id":"a","status":"skipped"},null]}`,
	} {
		if err := os.WriteFile(filepath.Join(dir, "manifest.json"), []byte(m), 0o600); err != nil {
			t.Fatal(err)
		}
		e.failLkc(`manifest.json: containers\[[01]\] is null`, "restore", "--all", "--image-dir", dir)
	}
	if entries, _ := os.ReadDir(e.root); len(entries) != 0 {
		t.Errorf("state dirs after the refused restores: %v", names(entries))
	}
}

// TestCheckpointAllPaused: a container paused at checkpoint --all comes
// back paused from restore --all, as it was, and counts on once resumed.
func TestCheckpointAllPaused(t *testing.T) {
	requireCriu(t)
	e := newEnv(t)
	id, root := e.ckptCounter(nil)
	e.mustLkc("pause", id)
	dir := filepath.Join(t.TempDir(), "images")
	e.mustLkc("checkpoint", "--all", "--image-dir", dir)
	if got := readEvacManifest(t, dir); got[id] != "dumped" {
		t.Fatalf("manifest: %v", got)
	}
	e.mustLkc("restore", "--all", "--image-dir", dir)
	if st := e.state(id)["status"]; st != "paused" {
		t.Errorf("the paused container is %v after restore --all, want paused", st)
	}
	n := readCount(t, root)
	e.mustLkc("resume", id)
	waitCount(t, root, n+2)
}

// TestCheckpointAllBusyVolatileRootfs: a container that makes and
// removes files in its rootfs on a tmpfs all the time does not make
// checkpoint --all refuse: measuring the rootfs for the space check skips
// what vanished between the listing of a directory and its reading.
func TestCheckpointAllBusyVolatileRootfs(t *testing.T) {
	requireCriu(t)
	e := newEnv(t)
	root := filepath.Join(tmpfsDir(t, "64m"), "rootfs")
	if out, err := exec.Command("cp", "-a", rootfs, root).CombinedOutput(); err != nil {
		t.Fatalf("copying the rootfs: %v: %s", err, out)
	}
	id := e.id()
	e.mustLkc("run", "-d", "--bundle", e.bundle([]string{"sh", "-c", "while :; do mkdir /zz; cd /zz; touch $(seq 500); cd /; rm -r /zz; done"}, func(s *specs.Spec) {
		s.Root.Path, s.Root.Readonly = root, false
	}), id)
	for i := 0; i < 6; i++ {
		dir := filepath.Join(t.TempDir(), "images")
		e.mustLkc("checkpoint", "--all", "--leave-running", "--image-dir", dir)
		if got := readEvacManifest(t, dir); got[id] != "dumped+rootfs" {
			t.Fatalf("manifest: %v", got)
		}
	}
}

// TestMigrateAllContainerGone: a container deleted, or one that stopped,
// while migrate --all moves the others is skipped, not kept (it does not
// run here): the exit is 0 once the rest moved.
func TestMigrateAllContainerGone(t *testing.T) {
	h := newTestHosts(t)
	a, b := h.hosts[0], h.hosts[1]
	started := filepath.Join(t.TempDir(), "started")
	criu := slowCriu(t, started)
	var ids []string
	for i := 0; i < 3; i++ {
		id, _ := h.runContainer(a, migCounter, nil)
		ids = append(ids, id)
	}
	h.startServe(b)
	cmd := h.lkcIn(a, "--criu", criu, "migrate", "--all", "--json", "--parallel", "1", "--shared-storage", "--mode", "stopcopy",
		"--token-file", h.token, b.ip+":7070")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	startUntil(t, cmd, started, "CRIU", func() string { return out.String() + " " + errb.String() })
	// Two that are not being moved: no images directory of theirs yet.
	var idle []string
	for _, id := range ids {
		if dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "lkc-migrate-"+id+"-*")); len(dirs) == 0 {
			idle = append(idle, id)
		}
	}
	if len(idle) < 2 {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("%d containers under way at CRIU's start, want at most 1", 3-len(idle))
	}
	a.e.mustLkc("delete", "--force", idle[0])
	a.e.mustLkc("kill", idle[1], "KILL")
	a.e.waitStatus(idle[1], "stopped")
	err := cmd.Wait()
	var ev evacuation
	if jerr := json.Unmarshal(out.Bytes(), &ev); jerr != nil {
		t.Fatalf("migrate --all: %v, %v: %s %s", err, jerr, out.String(), errb.String())
	}
	if err != nil {
		t.Errorf("migrate --all: %v: %s", err, errb.String())
	}
	got := map[string]string{}
	for _, m := range ev.Moves {
		got[m.ID] = m.Status
	}
	for _, id := range ids {
		want := "moved"
		if id == idle[0] || id == idle[1] {
			want = "skipped"
		}
		if got[id] != want {
			t.Errorf("%s is %q, want %s: %s", id, got[id], want, out.String())
		}
	}
}

// TestRestoreAllStdioFifo: a container whose stdout and stderr were a
// named pipe whose reader has gone since the dump fails to restore at
// once, saying so, rather than restore --all waiting forever in the open
// of the pipe for a reader; with a reader again, it is restored.
func TestRestoreAllStdioFifo(t *testing.T) {
	requireCriu(t)
	e := newEnv(t)
	fifo := filepath.Join(t.TempDir(), "out.fifo")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	reader := exec.Command("cat", fifo)
	if err := reader.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reader.Process.Kill(); reader.Wait() })
	f, err := os.OpenFile(fifo, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	id := e.id()
	run := exec.Command(e.bin, "--root", e.root, "run", "-d", "--bundle", e.bundle([]string{"sh", "-c", "while :; do echo x; sleep 0.1; done"}, nil), id)
	run.Stdout, run.Stderr = f, f
	err = run.Run()
	f.Close()
	if err != nil {
		t.Fatalf("lkc run -d %s: %v", id, err)
	}
	dir := filepath.Join(t.TempDir(), "images")
	e.mustLkc("checkpoint", "--all", "--image-dir", dir)
	reader.Process.Kill()
	reader.Wait()
	restore := exec.Command(e.bin, "--root", e.root, "restore", "--all", "--image-dir", dir)
	done := make(chan error, 1)
	var out bytes.Buffer
	restore.Stdout, restore.Stderr = &out, &out
	if err := restore.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- restore.Wait() }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(out.String(), "named pipe "+fifo+", which nobody reads now") {
			t.Fatalf("restore --all with nobody reading the pipe: %v: %s", err, out.String())
		}
	case <-time.After(settle):
		restore.Process.Kill()
		<-done
		t.Fatalf("restore --all still running after %v (opening the named pipe?): %s", settle, out.String())
	}
	e.assertIDGone(id)
	reader = exec.Command("cat", fifo)
	if err := reader.Start(); err != nil {
		t.Fatal(err)
	}
	e.mustLkc("restore", "--all", "--image-dir", dir)
	e.waitStatus(id, "running")
	e.mustLkc("delete", "--force", id)
}

// TestCheckpointAllHostTerminal: a container without a terminal of its
// own whose stdio is the host terminal it was started from (`lkc run -d`
// in a shell, not redirected) is not dumped, by checkpoint --all or
// checkpoint, since no restore could give it a terminal back (CRIU:
// "slave peer without master"): it is failed with that reason and keeps
// running, not stopped for good.
func TestCheckpointAllHostTerminal(t *testing.T) {
	requireCriu(t)
	e := newEnv(t)
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer master.Close()
	n, err := unix.IoctlGetInt(int(master.Fd()), unix.TIOCGPTN)
	if err == nil {
		err = unix.IoctlSetPointerInt(int(master.Fd()), unix.TIOCSPTLCK, 0)
	}
	if err != nil {
		t.Fatal(err)
	}
	slave, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	go io.Copy(io.Discard, master)
	root := e.writableRootfs()
	id := e.id()
	run := exec.Command(e.bin, "--root", e.root, "run", "-d", "--bundle", e.bundle([]string{"sh", "-c", counterScript}, func(s *specs.Spec) {
		s.Root.Path, s.Root.Readonly = root, false
	}), id)
	run.Stdin, run.Stdout, run.Stderr = slave, slave, slave
	err = run.Run()
	slave.Close()
	if err != nil {
		t.Fatalf("lkc run -d %s: %v", id, err)
	}
	waitCount(t, root, 2)
	dir := filepath.Join(t.TempDir(), "images")
	e.failLkc(`1 of 1 containers not dumped \(`+id+`: its fd 0 is the terminal /dev/pts/`, "checkpoint", "--all", "--image-dir", dir)
	if st := e.state(id); st["status"] != "running" {
		t.Fatalf("the container is %v after checkpoint --all, want running", st["status"])
	}
	waitCount(t, root, readCount(t, root)+2)
	// `lkc checkpoint` of the one container likewise.
	e.failLkc(`its fd 0 is the terminal /dev/pts/\d+, which no restore can give back`,
		"checkpoint", "--image-path", filepath.Join(t.TempDir(), "one"), id)
	if st := e.state(id); st["status"] != "running" {
		t.Fatalf("the container is %v after checkpoint, want running", st["status"])
	}
	waitCount(t, root, readCount(t, root)+2)
}

// TestCheckpointAllVolatileImageDir: checkpoint --all into a directory on
// a tmpfs, which the reboot it prepares would empty (images of containers
// it stops), warns; with --leave-running, which stops none, it does not.
func TestCheckpointAllVolatileImageDir(t *testing.T) {
	requireCriu(t)
	e := newEnv(t)
	e.ckptCounter(nil)
	fs := tmpfsDir(t, "64m")
	warning := "lkc: warning: image dir " + fs + "/kept is on memory-backed storage"
	r := e.lkc("checkpoint", "--all", "--leave-running", "--image-dir", filepath.Join(fs, "kept"))
	if r.code != 0 || strings.Contains(r.stderr, "warning") {
		t.Errorf("checkpoint --all --leave-running into a tmpfs: %v", r)
	}
	r = e.lkc("checkpoint", "--all", "--image-dir", filepath.Join(fs, "stopped"))
	if r.code != 0 || !strings.Contains(r.stderr, strings.Replace(warning, "/kept", "/stopped", 1)) {
		t.Errorf("checkpoint --all into a tmpfs: %v, want the warning %q", r, warning)
	}
}

// restore --all without --root brings the containers back into the root
// they were dumped from (the manifest's), not into the default one.
func TestRestoreAllIntoManifestRoot(t *testing.T) {
	requireCriu(t)
	e := newEnv(t)
	id, countRoot := e.ckptCounter(nil)
	dir := filepath.Join(t.TempDir(), "images")
	e.mustLkc("checkpoint", "--all", "--image-dir", dir)
	saved := readCount(t, countRoot)
	t.Cleanup(func() {
		// Where a wrong restore put it.
		exec.Command(e.bin, "delete", "--force", id).Run()
	})
	out := e.tempFile()
	defer out.Close()
	cmd := exec.Command(e.bin, "restore", "--all", "--image-dir", dir)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Run(); err != nil {
		t.Fatalf("restore --all without --root: %v: %s", err, readAll(out))
	}
	if st := e.state(id); st["status"] != "running" {
		t.Fatalf("%s is %v in the root it was dumped from after restore --all", id, st["status"])
	}
	waitCount(t, countRoot, saved+1)
	e.mustLkc("delete", "--force", id)
}

// The space checkpoint --all wants is what CRIU writes: a container that
// wrote a big file on disk holds that much page cache in its cgroup, but
// the dump does not write it, so a small image dir is enough.
func TestCheckpointAllPageCacheNotCounted(t *testing.T) {
	requireCriu(t)
	e := newEnv(t)
	id, _ := e.ckptCounter(func(s *specs.Spec) {
		s.Process.Args = []string{"sh", "-c", "dd if=/dev/zero of=/big bs=1M count=96 2>/dev/null; " + counterScript}
	})
	dir := filepath.Join(tmpfsDir(t, "48m"), "images")
	out := e.mustLkc("checkpoint", "--all", "--image-dir", dir)
	if got := readEvacManifest(t, dir); got[id] != "dumped" {
		t.Errorf("manifest: %v\n%s", got, out)
	}
}

// dumpVolatileCounter runs a counter on a copy of the rootfs in fs (a
// tmpfs), with a file of mib MiB in it, and checkpoint --all dumps it into
// fs/images; it returns the rootfs, the container and the image dir.
func (e *env) dumpVolatileCounter(fs string, mib int) (string, string, string) {
	t := e.t
	t.Helper()
	volatileRoot := filepath.Join(fs, "rootfs")
	if out, err := exec.Command("cp", "-a", rootfs, volatileRoot).CombinedOutput(); err != nil {
		t.Fatalf("copying the rootfs: %v: %s", err, out)
	}
	// Written here, not by the container: its memory stays small.
	if out, err := exec.Command("dd", "if=/dev/urandom", "of="+filepath.Join(volatileRoot, "big"), "bs=1M", "count="+strconv.Itoa(mib)).CombinedOutput(); err != nil {
		t.Fatalf("dd: %v: %s", err, out)
	}
	id := e.id()
	e.mustLkc("run", "-d", "--bundle", e.bundle([]string{"sh", "-c", counterScript}, func(s *specs.Spec) {
		s.Root.Path, s.Root.Readonly = volatileRoot, false
	}), id)
	waitCount(t, volatileRoot, 3)
	dir := filepath.Join(fs, "images")
	e.mustLkc("checkpoint", "--all", "--image-dir", dir)
	if got := readEvacManifest(t, dir); got[id] != "dumped+rootfs" {
		t.Fatalf("manifest: %v", got)
	}
	return volatileRoot, id, dir
}

// restore --all refuses, in one line and before restoring anything, an
// image dir whose filesystem cannot hold the saved rootfs it would unpack
// there; with room made, the same directory restores.
func TestRestoreAllNoRoomForRootfs(t *testing.T) {
	requireCriu(t)
	e := newEnv(t)
	fs := tmpfsDir(t, "96m")
	volatileRoot, id, dir := e.dumpVolatileCounter(fs, 24)
	// The rootfs is gone, as after a reboot; the rest of the tmpfs fills
	// up but for 8 MiB.
	os.RemoveAll(volatileRoot)
	var st unix.Statfs_t
	if err := unix.Statfs(fs, &st); err != nil {
		t.Fatal(err)
	}
	filler := filepath.Join(fs, "filler")
	if err := os.WriteFile(filler, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("fallocate", "-l", strconv.FormatInt(int64(st.Bavail)*st.Bsize-8<<20, 10), filler).CombinedOutput(); err != nil {
		t.Fatalf("fallocate: %v: %s", err, out)
	}
	e.failLkc(`image dir .*/images has [0-9]+ MiB free, unpacking the saved rootfs of 1 containers needs about 2[0-9] MiB`,
		"restore", "--all", "--image-dir", dir)
	if _, err := os.Stat(filepath.Join(dir, id, "bundle")); !os.IsNotExist(err) {
		t.Errorf("the refused restore left its bundle: %v", err)
	}
	if r := e.lkc("state", id); r.code == 0 {
		t.Errorf("%s exists after the refused restore: %v", id, r)
	}
	os.Remove(filler)
	e.mustLkc("restore", "--all", "--image-dir", dir)
	e.mustLkc("delete", "--force", id)
}

// An image dir another checkpoint or restore --all holds is refused in
// one line by both, with nothing written or restored.
func TestEvacuateImageDirInUse(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	held, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	if err := unix.Flock(int(held.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	e.failLkc(`image dir .* is in use by another checkpoint or restore --all`, "checkpoint", "--all", "--image-dir", dir)
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("the refused checkpoint wrote %v", names(entries))
	}
	m := fmt.Sprintf(`{"version":1,"complete":true,"root":%q,"containers":[{"id":"a","status":"dumped"}]}`, e.root)
	if err := os.WriteFile(filepath.Join(dir, "manifest.json"), []byte(m), 0o600); err != nil {
		t.Fatal(err)
	}
	e.failLkc(`image dir .* is in use by another checkpoint or restore --all`, "restore", "--all", "--image-dir", dir)
	if entries, _ := os.ReadDir(e.root); len(entries) != 0 {
		t.Errorf("state dirs after the refused restore: %v", names(entries))
	}
}

// A saved rootfs whose archive is cut short fails its container's restore
// with tar's reason (its first complaint, not its closing line), and
// leaves nothing of it behind.
func TestRestoreAllBrokenRootfsArchive(t *testing.T) {
	requireCriu(t)
	e := newEnv(t)
	_, id, dir := e.dumpVolatileCounter(tmpfsDir(t, "64m"), 4)
	if err := os.Truncate(filepath.Join(dir, id, "rootfs.tar"), 1<<20); err != nil {
		t.Fatal(err)
	}
	e.failLkc(`1 of 1 containers not restored \(`+id+`: unpacking the rootfs into .*: tar: exit status 2: tar: Unexpected EOF in archive\)`,
		"restore", "--all", "--image-dir", dir)
	if _, err := os.Stat(filepath.Join(dir, id, "bundle")); !os.IsNotExist(err) {
		t.Errorf("the failed restore left its bundle: %v", err)
	}
	if r := e.lkc("state", id); r.code == 0 {
		t.Errorf("%s exists after its failed restore: %v", id, r)
	}
}

// TestMigrateAllPaused: a paused container is not moved, and an
// evacuation does not pass over it as it does a stopped one: it would
// fail in a dry run, is kept (paused, here) by the move, with the
// reason, and the exit says so; the running one moves.
func TestMigrateAllPaused(t *testing.T) {
	h := newTestHosts(t)
	a, b := h.hosts[0], h.hosts[1]
	running, _ := h.runContainer(a, migCounter, nil)
	paused, _ := h.runContainer(a, migCounter, nil)
	a.e.mustLkc("pause", paused)
	h.startServe(b)
	for _, flags := range [][]string{{"--dry-run"}, {"--shared-storage", "--mode", "stopcopy"}} {
		r, got := h.migrateAll(a, b, flags...)
		a.e.checkOneLineFailure(r, "1 of 2 containers not (moved|movable) \\("+paused+": it is paused: only a running container migrates", nil)
		want := map[string]string{running: "moved", paused: "kept"}
		if flags[0] == "--dry-run" {
			want = map[string]string{running: "would move", paused: "would fail"}
		}
		for id, w := range want {
			if got[id] != w {
				t.Errorf("%v: %s is %q, want %s", flags, id, got[id], w)
			}
		}
		a.e.waitStatus(paused, "paused")
	}
	b.e.waitStatus(running, "running")
	a.e.mustLkc("delete", "--force", paused)
}

// TestRestoreAllOverlayRootfsGone: a rootfs that is an overlay mounted at
// its path (as podman and containerd make them), with its layers on disk,
// is not saved, but the reboot takes the mount: restore --all says so for
// that container, rather than restore it onto an empty directory, and
// restores it once the overlay is mounted again.
func TestRestoreAllOverlayRootfsGone(t *testing.T) {
	requireCriu(t)
	e := newEnv(t)
	base := t.TempDir()
	lower := e.writableRootfs()
	upper, work, merged := filepath.Join(base, "upper"), filepath.Join(base, "work"), filepath.Join(base, "merged")
	for _, d := range []string{upper, work, merged} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	opts := "lowerdir=" + lower + ",upperdir=" + upper + ",workdir=" + work
	mountOverlay := func() {
		if err := unix.Mount("overlay", merged, "overlay", 0, opts); err != nil {
			t.Skipf("mounting an overlay: %v", err)
		}
	}
	mountOverlay()
	t.Cleanup(func() { unix.Unmount(merged, unix.MNT_DETACH) })
	id := e.id()
	e.mustLkc("run", "-d", "--bundle", e.bundle([]string{"sh", "-c", counterScript}, func(s *specs.Spec) {
		s.Root.Path, s.Root.Readonly = merged, false
	}), id)
	waitCount(t, merged, 3)
	dir := filepath.Join(t.TempDir(), "images")
	e.mustLkc("checkpoint", "--all", "--image-dir", dir)
	if got := readEvacManifest(t, dir); got[id] != "dumped" {
		t.Fatalf("manifest: %v", got)
	}
	saved := readCount(t, merged)
	if err := unix.Unmount(merged, 0); err != nil {
		t.Fatal(err)
	}
	e.failLkc(`1 of 1 containers not restored \(`+id+`: its rootfs .*/merged was an overlay mount, which is gone`,
		"restore", "--all", "--image-dir", dir)
	if r := e.lkc("state", id); r.code == 0 {
		t.Errorf("%s exists after its refused restore: %v", id, r)
	}
	mountOverlay()
	e.mustLkc("restore", "--all", "--image-dir", dir)
	waitCount(t, merged, saved+1)
	e.mustLkc("delete", "--force", id)
}
