package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// requireCriu skips a test on a host without a working CRIU 4 (CI installs
// it with scripts/deps.sh, so nothing skips there).
func requireCriu(t *testing.T) string {
	t.Helper()
	p := os.Getenv("LKC_CRIU")
	if p == "" {
		p = "/opt/lkc/criu/criu"
	}
	if out, err := exec.Command(p, "check").CombinedOutput(); err != nil {
		t.Skipf("no working CRIU 4 at %s (scripts/install-criu.sh installs it): %v: %s", p, err, out)
	}
	return p
}

// counterScript counts in /count, ten times a second, and keeps a child
// whose pid it writes to /child: what a restore must bring back exactly.
// The count is renamed into place: a freeze (checkpoint, pause) between
// the truncate and the write of `echo > /count` would leave it empty for
// as long as the container stays frozen.
const counterScript = `sleep 100000 & echo $! > /child; i=0; while :; do i=$((i+1)); echo $i > /count.tmp; mv /count.tmp /count; sleep 0.1; done`

// ckptCounter runs a detached counter container on a private rootfs and
// returns its id and rootfs.
func (e *env) ckptCounter(mutate func(*specs.Spec)) (string, string) {
	e.t.Helper()
	root := e.writableRootfs()
	b := e.bundle([]string{"sh", "-c", counterScript}, func(s *specs.Spec) {
		s.Root.Path, s.Root.Readonly = root, false
		if mutate != nil {
			mutate(s)
		}
	})
	id := e.id()
	e.mustLkc("run", "-d", "--bundle", b, id)
	waitCount(e.t, root, 3)
	return id, root
}

// cpusAllowed lists the distinct Cpus_allowed_list values of the threads
// of container id.
func cpusAllowed(t *testing.T, id string) string {
	t.Helper()
	seen := map[string]bool{}
	for _, pid := range processesIn(id) {
		tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", pid))
		for _, f := range tasks {
			data, err := os.ReadFile(f)
			if err != nil {
				continue
			}
			for _, l := range strings.Split(string(data), "\n") {
				if v, ok := strings.CutPrefix(l, "Cpus_allowed_list:"); ok {
					seen[strings.TrimSpace(v)] = true
				}
			}
		}
	}
	if len(seen) == 0 {
		t.Fatalf("no threads of container %s found", id)
	}
	var all []string
	for v := range seen {
		all = append(all, v)
	}
	sort.Strings(all)
	return strings.Join(all, " ")
}

// readCount reads the counter, retrying over a write in progress.
func readCount(t *testing.T, root string) int {
	t.Helper()
	for i := 0; ; i++ {
		data, err := os.ReadFile(filepath.Join(root, "count"))
		n, cerr := strconv.Atoi(strings.TrimSpace(string(data)))
		if err == nil && cerr == nil {
			return n
		}
		if i == 50 {
			t.Fatalf("reading the counter: %v %v (%q)", err, cerr, data)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitCount waits until the counter reaches at least n.
func waitCount(t *testing.T, root string, n int) int {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		if c := readCount(t, root); c >= n {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("the counter never reached %d (at %d)", n, readCount(t, root))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkpointStops checkpoints id (which stops and deletes it, as runc does)
// and returns the counter's value at the checkpoint.
func (e *env) checkpointStops(id, root, images string, extra ...string) int {
	e.t.Helper()
	e.mustLkc(append(append([]string{"checkpoint", "--image-path", images}, extra...), id)...)
	if r := e.lkc("state", id); r.code == 0 {
		e.t.Fatalf("container %s still exists after a checkpoint without --leave-running: %v", id, r)
	}
	saved := readCount(e.t, root)
	time.Sleep(300 * time.Millisecond)
	if now := readCount(e.t, root); now != saved {
		e.t.Fatalf("the counter went on after the checkpoint: %d -> %d", saved, now)
	}
	return saved
}

// restoreDetached restores images as id from bundle and checks that the
// counter goes on from saved, not from zero: its first value is no more
// above saved than its 0.1 s steps since the restore began allow (a
// loaded emulated guest takes seconds between the restore and the read).
func (e *env) restoreDetached(id, bundle, root, images string, saved int, extra ...string) {
	e.t.Helper()
	began := time.Now()
	e.mustLkc(append(append([]string{"restore", "-d", "--bundle", bundle, "--image-path", images}, extra...), id)...)
	if st := e.state(id); st["status"] != "running" {
		e.t.Fatalf("restored container %s is %v", id, st["status"])
	}
	first := waitCount(e.t, root, saved+1)
	if steps := int(time.Since(began) / (100 * time.Millisecond)); first > saved+steps+5 {
		e.t.Fatalf("after restore the counter is at %d, saved at %d, %d steps of 0.1 s later", first, saved, steps)
	}
}

// restoreCopy restores images, of a counter container on rootfs root
// checkpointed with --leave-running at count saved, as a new container on
// a copy of root, and returns its id and rootfs.
func (e *env) restoreCopy(root, images string, saved int, extra ...string) (string, string) {
	e.t.Helper()
	root2 := filepath.Join(e.t.TempDir(), "rootfs")
	// The counter, still running, renames /count.tmp over /count every
	// 0.1 s: a copy that lists count.tmp and then finds it gone fails, and
	// another one will not.
	var out []byte
	var err error
	for try := 0; try < 5; try++ {
		os.RemoveAll(root2)
		if out, err = exec.Command("cp", "-a", root, root2).CombinedOutput(); err == nil {
			break
		}
	}
	if err != nil {
		e.t.Fatalf("copying rootfs: %v: %s", err, out)
	}
	os.WriteFile(filepath.Join(root2, "count"), []byte(strconv.Itoa(saved)), 0o644)
	b2 := e.bundle([]string{"sh", "-c", counterScript}, func(s *specs.Spec) { s.Root.Path, s.Root.Readonly = root2, false })
	id2 := e.id()
	e.restoreDetached(id2, b2, root2, images, saved, extra...)
	return id2, root2
}

func bundleOf(e *env, id string) string {
	e.t.Helper()
	return e.state(id)["bundle"].(string)
}

func TestCheckpointRestoreCounter(t *testing.T) {
	requireCriu(t)
	e := newEnv(t)
	id, root := e.ckptCounter(nil)
	bundle := bundleOf(e, id)
	child := strings.TrimSpace(e.mustLkc("exec", id, "cat", "/child"))
	images := filepath.Join(t.TempDir(), "images")
	saved := e.checkpointStops(id, root, images)
	e.restoreDetached(id, bundle, root, images, saved)

	// The same pids inside: the child sleep is still there under its pid.
	ps := e.mustLkc("exec", id, "ps", "-o", "pid,args")
	if !psHas(ps, child, "sleep 100000") {
		t.Fatalf("child %s (sleep 100000) missing after restore:\n%s", child, ps)
	}
	checkMaskedDir(e, id, "/sys/firmware")
	// A normal container again: pause, resume, checkpoint again, kill, delete.
	e.mustLkc("pause", id)
	if st := e.state(id); st["status"] != "paused" {
		t.Fatalf("paused restored container is %v", st["status"])
	}
	e.mustLkc("resume", id)
	waitCount(t, root, readCount(t, root)+2)
	images2 := filepath.Join(t.TempDir(), "images2")
	saved = e.checkpointStops(id, root, images2)
	e.restoreDetached(id, bundle, root, images2, saved)
	checkMaskedDir(e, id, "/sys/firmware")
	e.mustLkc("kill", id, "KILL")
	e.waitStatus(id, "stopped")
	e.mustLkc("delete", id)
}

// checkMaskedDir checks that masked directory dir of container id is
// what a restore must bring back: an empty, read-only tmpfs.
func checkMaskedDir(e *env, id, dir string) {
	e.t.Helper()
	if out := e.mustLkc("exec", id, "ls", "-A", dir); strings.TrimSpace(out) != "" {
		e.t.Errorf("masked %s lists %q", dir, out)
	}
	if r := e.lkc("exec", id, "mkdir", dir+"/x"); r.code == 0 {
		e.t.Errorf("mkdir in masked %s succeeded", dir)
	}
	info := e.mustLkc("exec", id, "cat", "/proc/self/mountinfo")
	for _, line := range strings.Split(info, "\n") {
		pre, post, _ := strings.Cut(line, " - ")
		if f := strings.Fields(pre); len(f) > 5 && f[4] == dir {
			if !strings.HasPrefix(post, "tmpfs ") || !strings.HasPrefix(f[5], "ro") {
				e.t.Errorf("masked %s is mounted as %q", dir, line)
			}
			return
		}
	}
	e.t.Errorf("masked %s is not a mount point:\n%s", dir, info)
}

// psHas reports whether a `ps -o pid,args` listing has pid running
// args.
func psHas(ps, pid, args string) bool {
	for _, line := range strings.Split(ps, "\n") {
		f := strings.Fields(line)
		if len(f) > 1 && f[0] == pid && strings.Join(f[1:], " ") == args {
			return true
		}
	}
	return false
}

// cgroupOf returns the cgroup path of hierarchy ctrl (v1) or the v2 path
// of a host pid, from /proc/<pid>/cgroup.
func cgroupOf(t *testing.T, pid int, ctrl string) string {
	t.Helper()
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) == 3 && (parts[1] == ctrl || (cgroupV2() && parts[0] == "0")) {
			return parts[2]
		}
	}
	t.Fatalf("pid %d has no %s cgroup:\n%s", pid, ctrl, data)
	return ""
}

func initPid(e *env, id string) int {
	e.t.Helper()
	return int(e.state(id)["pid"].(float64))
}

// The old container is gone (checkpoint deletes it); the copy restored
// under a new id lives in the new id's cgroup with the config's limits.
func TestCheckpointRestoreNewID(t *testing.T) {
	requireCriu(t)
	e := newEnv(t)
	limit := int64(200 << 20)
	withLimit := func(s *specs.Spec) { s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: &limit} }
	id, root := e.ckptCounter(withLimit)
	bundle := bundleOf(e, id)
	images := filepath.Join(t.TempDir(), "images")
	saved := e.checkpointStops(id, root, images)
	id2 := e.id()
	e.restoreDetached(id2, bundle, root, images, saved)
	cg := cgroupOf(t, initPid(e, id2), "memory")
	if !strings.HasSuffix(cg, "/lkc/"+id2) {
		t.Fatalf("restored init is in memory cgroup %s, want .../lkc/%s", cg, id2)
	}
	file := "/sys/fs/cgroup/memory" + cg + "/memory.limit_in_bytes"
	if cgroupV2() {
		file = "/sys/fs/cgroup" + cg + "/memory.max"
	}
	got, err := os.ReadFile(file)
	if err != nil || strings.TrimSpace(string(got)) != strconv.FormatInt(limit, 10) {
		t.Fatalf("memory limit of the restored container: %q (%v), want %d", got, err, limit)
	}
	e.mustLkc("delete", "-f", id2)
}

// --leave-running keeps the container going; its images restore a second,
// independent copy (on a copy of the rootfs) under another id.
func TestCheckpointLeaveRunningCopy(t *testing.T) {
	requireCriu(t)
	e := newEnv(t)
	id, root := e.ckptCounter(nil)
	images := filepath.Join(t.TempDir(), "images")
	cpus := cpusAllowed(t, id)
	e.mustLkc("checkpoint", "--leave-running", "--image-path", images, id)
	saved := readCount(t, root)
	if st := e.state(id); st["status"] != "running" {
		t.Fatalf("container is %v after checkpoint --leave-running", st["status"])
	}
	// The dump holds the tasks on one CPU while it runs (checkpoint_cpu.go).
	if after := cpusAllowed(t, id); after != cpus {
		t.Errorf("the container's CPUs: %q before the checkpoint, %q after", cpus, after)
	}
	waitCount(t, root, saved+3)

	id2, _ := e.restoreCopy(root, images, saved)
	if p1, p2 := initPid(e, id), initPid(e, id2); p1 == p2 {
		t.Fatalf("both containers report init pid %d", p1)
	}
	if restored := cpusAllowed(t, id2); restored != cpus {
		t.Errorf("the restored copy's CPUs: %q, the original's %q", restored, cpus)
	}
	c1 := readCount(t, root)
	waitCount(t, root, c1+3) // the original still counts, on its own
	e.mustLkc("delete", "-f", id2)
	e.mustLkc("delete", "-f", id)
}

// A checkpoint that fails leaves the container running and unchanged; a
// restore that fails leaves nothing behind; no CRIU is said in one line.
func TestCheckpointFailures(t *testing.T) {
	criu := requireCriu(t)
	e := newEnv(t)
	id, root := e.ckptCounter(nil)
	images := filepath.Join(t.TempDir(), "images")
	cpus := cpusAllowed(t, id)
	// Nobody listens on the page server's port: CRIU fails mid-dump.
	e.failLkc(`checkpoint: checkpointing container .*: page server 127.0.0.1:1: connection refused`, "checkpoint", "--page-server", "127.0.0.1:1", "--image-path", images, id)
	if st := e.state(id); st["status"] != "running" {
		t.Fatalf("container is %v after a failed checkpoint", st["status"])
	}
	if after := cpusAllowed(t, id); after != cpus {
		t.Errorf("the container's CPUs: %q before the failed checkpoint, %q after", cpus, after)
	}
	waitCount(t, root, readCount(t, root)+3)

	bundle := bundleOf(e, id)
	empty := t.TempDir()
	id2 := e.id()
	e.failLkc(`restore: restoring container `+id2+`: criu: `, "restore", "-d", "--bundle", bundle, "--image-path", empty, id2)
	if r := e.lkc("state", id2); r.code == 0 {
		t.Fatalf("a failed restore left container %s: %v", id2, r)
	}
	e.failLkc(`already exists`, "restore", "-d", "--bundle", bundle, "--image-path", empty, id)
	e.failLkc(`install-criu.sh`, "--criu", "/nonexistent/criu", "checkpoint", id)
	e.failLkc(`--manage-cgroups-mode "bogus"`, "--criu", criu, "checkpoint", "--manage-cgroups-mode", "bogus", "--image-path", images, id)
	e.failLkc(`wrong state|does not exist`, "checkpoint", "--image-path", images, "nosuch-"+id)
	e.mustLkc("delete", "-f", id)
}

// TestCheckpointRelativeRoot checkpoints and restores with a relative
// --root, as a user in their state directory's parent would type it: CRIU
// and init get absolute paths all the same.
func TestCheckpointRelativeRoot(t *testing.T) {
	requireCriu(t)
	e := newEnv(t)
	id, root := e.ckptCounter(nil)
	images := filepath.Join(t.TempDir(), "images")
	rel := func(args ...string) {
		t.Helper()
		cmd := exec.Command(lkcBinary, append([]string{"--root", filepath.Base(e.root)}, args...)...)
		cmd.Dir = filepath.Dir(e.root)
		// A file, as the container had: CRIU restores its offset.
		out := e.tempFile()
		defer out.Close()
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Run(); err != nil {
			t.Fatalf("lkc --root %s %v: %v: %s", filepath.Base(e.root), args, err, readAll(out))
		}
	}
	bundle := e.state(id)["bundle"].(string)
	rel("checkpoint", "--image-path", images, id)
	before := readCount(t, root)
	rel("restore", "-d", "--image-path", images, "--bundle", bundle, id)
	waitCount(t, root, before+3)
}

// TestCheckpointPausedAndKdatCache checkpoints a paused container, which
// stays paused, then a running one twice: lkc freezes it for CRIU and
// thaws it after, and the second CRIU finds the kernel-feature cache the
// first one left (docs/criu.md: CRIU keeps it only on a tmpfs /run, which
// this host's /run is not, and lkc gives CRIU one). It does so on a fresh
// machine: with no cache kept yet for this CRIU, and the empty
// criu.kdat.tmp that any CRIU run on a disk-backed /run leaves there.
func TestCheckpointPausedAndKdatCache(t *testing.T) {
	criu := requireCriu(t)
	e := newEnv(t)
	id, root := e.ckptCounter(nil)
	e.mustLkc("pause", id)
	e.mustLkc("checkpoint", "--leave-running", "--image-path", filepath.Join(t.TempDir(), "paused"), id)
	if st := e.state(id); st["status"] != "paused" {
		t.Fatalf("paused container is %v after checkpoint --leave-running", st["status"])
	}
	e.mustLkc("resume", id)
	waitCount(t, root, readCount(t, root)+2)

	hostRunTmpfs := isTmpfs(t, "/run")
	if !hostRunTmpfs {
		criu = freshCriu(t, criu)
		staleKdatTmp(t)
	}
	for i := 0; i < 2; i++ {
		images := filepath.Join(t.TempDir(), "images")
		e.mustLkc("--debug", "--criu", criu, "checkpoint", "--leave-running", "--image-path", images, id)
		if st := e.state(id); st["status"] != "running" {
			t.Fatalf("container is %v after checkpoint --leave-running", st["status"])
		}
		waitCount(t, root, readCount(t, root)+2)
		log, err := os.ReadFile(filepath.Join(images, "dump.log"))
		if err != nil {
			t.Fatal(err)
		}
		loaded := strings.Contains(string(log), "Loaded kdat cache")
		if i == 0 && loaded && !hostRunTmpfs {
			t.Fatalf("the first CRIU run of a fresh CRIU binary found a kdat cache: the test did not start from a fresh machine's state")
		}
		if i == 1 && !loaded {
			t.Errorf("the second CRIU run probed the kernel again: no %q in its dump.log", "Loaded kdat cache")
		}
	}
	if _, err := os.Stat("/run/criu.kdat"); err == nil && !hostRunTmpfs {
		t.Errorf("/run/criu.kdat on the host's disk-backed /run: a CRIU after a reboot would trust it")
	}
	e.mustLkc("delete", "-f", id)
}

// kdatStore is where lkc keeps CRIU's kernel-probe cache, headed by the
// boot and the CRIU binary it belongs to (internal/checkpoint/kdat.go).
const kdatStore = "/var/cache/lkc/criu.kdat"

// freshCriu returns a copy of the CRIU wrapper criu (and of its launch
// file) under a new path: lkc has kept no kernel-probe cache for it, as on
// a fresh machine. The cache kept for the other CRIUs is put back at the
// end, unless some other run has replaced the test's by then.
func freshCriu(t *testing.T, criu string) string {
	t.Helper()
	fresh := filepath.Join(t.TempDir(), "criu")
	for _, suffix := range []string{"", ".launch"} {
		data, err := os.ReadFile(criu + suffix)
		if suffix != "" && os.IsNotExist(err) {
			continue
		}
		if err == nil {
			err = os.WriteFile(fresh+suffix, data, 0o755)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	kept, keptErr := os.ReadFile(kdatStore)
	t.Cleanup(func() {
		now, err := os.ReadFile(kdatStore)
		head, _, _ := strings.Cut(string(now), "\n")
		if err != nil || !strings.Contains(head, " "+fresh+" ") {
			return
		}
		if keptErr != nil {
			os.Remove(kdatStore)
			return
		}
		tmp := kdatStore + fmt.Sprintf(".test-%d", os.Getpid())
		if err := os.WriteFile(tmp, kept, 0o600); err != nil || os.Rename(tmp, kdatStore) != nil {
			os.Remove(tmp)
		}
	})
	return fresh
}

// staleKdatTmp puts in the host's disk-backed /run the empty
// criu.kdat.tmp that every CRIU run there leaves (install-criu.sh's `criu
// check`, runc's checkpoints), unless one is there already, and removes
// the one it made at the end. Other runs do not mind: on a disk-backed
// /run CRIU never saves its cache.
func staleKdatTmp(t *testing.T) {
	t.Helper()
	const p = "/run/criu.kdat.tmp"
	f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if os.IsExist(err) {
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	t.Cleanup(func() { os.Remove(p) })
}

func isTmpfs(t *testing.T, path string) bool {
	t.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Type == unix.TMPFS_MAGIC
}

// The tmpfs mounts lkc rebuilds instead of CRIU's archives (an empty
// /dev/shm, the cgroup view's tmpfs, /dev as lkc made it) come back the
// same, and a /dev/shm that holds a file, or a /dev the container added
// to, keeps it.
func TestCheckpointTmpfsRebuilt(t *testing.T) {
	requireCriu(t)
	e := newEnv(t)
	id, root := e.ckptCounter(nil)
	bundle := bundleOf(e, id)
	look := `stat -c '%A %u:%g' /dev/shm; ls -A /dev/shm; ls -l /sys/fs/cgroup | sed 's/ [A-Z][a-z][a-z] .* / /'; grep -E ' /(dev|dev/shm|sys/fs/cgroup) ' /proc/self/mountinfo | cut -d' ' -f5,6,9-; ls -lna /dev | sed 's/ [A-Z][a-z][a-z] .* / /'`
	before := e.mustLkc("exec", id, "sh", "-c", look)
	images := filepath.Join(t.TempDir(), "images")
	saved := e.checkpointStops(id, root, images)
	e.restoreDetached(id, bundle, root, images, saved)
	if n := tmpfsArchives(t, images); n != 0 {
		t.Errorf("CRIU archived %d tmpfs mounts, want none", n)
	}
	if after := e.mustLkc("exec", id, "sh", "-c", look); after != before {
		t.Fatalf("/dev, /dev/shm and /sys/fs/cgroup before the checkpoint:\n%s\nafter the restore:\n%s", before, after)
	}
	if r := e.lkc("exec", id, "touch", "/sys/fs/cgroup/x"); r.code == 0 {
		t.Errorf("the restored cgroup view is writable")
	}
	e.mustLkc("exec", id, "sh", "-c", "echo kept > /dev/shm/data; echo too > /dev/added")
	images2 := filepath.Join(t.TempDir(), "images2")
	saved = e.checkpointStops(id, root, images2)
	if n := tmpfsArchives(t, images2); n != 2 {
		t.Errorf("CRIU archived %d tmpfs mounts, want 2 (/dev and /dev/shm)", n)
	}
	e.restoreDetached(id, bundle, root, images2, saved)
	if got := strings.TrimSpace(e.mustLkc("exec", id, "cat", "/dev/shm/data", "/dev/added")); got != "kept\ntoo" {
		t.Fatalf("/dev/shm/data and /dev/added after the restore: %q, want kept and too", got)
	}
	e.mustLkc("delete", "-f", id)
}

// tmpfsArchives counts CRIU's archives of tmpfs mounts in a checkpoint.
func tmpfsArchives(t *testing.T, images string) int {
	t.Helper()
	tars, err := filepath.Glob(filepath.Join(images, "tmpfs-dev-*.tar.gz.img"))
	if err != nil {
		t.Fatal(err)
	}
	return len(tars)
}

// TestRestoreAutoDedup: restore --auto-dedup, as runc's, has CRIU punch
// each page out of the images once it is restored, so images kept on a
// tmpfs give their memory back. The flag was accepted and dropped once:
// the page images kept every block.
func TestRestoreAutoDedup(t *testing.T) {
	requireCriu(t)
	e := newEnv(t)
	id, root := e.ckptCounter(nil)
	bundle := bundleOf(e, id)
	images := filepath.Join(t.TempDir(), "images")
	saved := e.checkpointStops(id, root, images)
	before := pageBlocks(t, images)
	if before == 0 {
		t.Fatalf("the checkpoint wrote no page image blocks in %s", images)
	}
	e.restoreDetached(id, bundle, root, images, saved, "--auto-dedup")
	if after := pageBlocks(t, images); after > before/2 {
		t.Errorf("page images hold %d of their %d blocks after restore --auto-dedup", after, before)
	}
	e.mustLkc("delete", "--force", id)
}

// pageBlocks is the 512-byte blocks allocated to the page images in dir.
func pageBlocks(t *testing.T, dir string) int64 {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "pages-*.img"))
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, f := range files {
		var st unix.Stat_t
		if err := unix.Stat(f, &st); err != nil {
			t.Fatal(err)
		}
		n += st.Blocks
	}
	return n
}

// A task may hold the container's stdio at another fd at the moment of a
// checkpoint: busybox sh keeps stdout at fd 10 while a builtin's output
// goes to a file (`echo $i > /count.tmp`). Here init keeps the caller's
// stdout at fd 9 for good and points fd 1 into its rootfs. The dump must
// find the caller's file at fd 9 (CRIU cannot dump it), and the restore
// hand fd 9 the restoring lkc's stdout (the same log file, as a caller
// that restores where it checkpointed gives).
func TestCheckpointStdioMovedAway(t *testing.T) {
	requireCriu(t)
	e := newEnv(t)
	id, root := e.ckptCounter(func(s *specs.Spec) {
		s.Process.Args = []string{"sh", "-c", "exec 9>&1 >/moved; " +
			strings.Replace(counterScript, "mv /count.tmp /count;", "mv /count.tmp /count; echo tick $i >&9;", 1)}
	})
	bundle := bundleOf(e, id)
	// The restore gets the same file: CRIU wants the mode and size it had.
	out, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/9", initPid(e, id)))
	if err != nil {
		t.Fatal(err)
	}
	images := filepath.Join(t.TempDir(), "images")
	saved := e.checkpointStops(id, root, images)
	f, err := os.OpenFile(out, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	errf := e.tempFile() // stderr, as empty as the one the dump saw
	defer errf.Close()
	cmd := exec.Command(e.bin, "--root", e.root, "restore", "-d", "--bundle", bundle, "--image-path", images, id)
	cmd.Stdout, cmd.Stderr = f, errf
	if err := cmd.Run(); err != nil {
		msg := readAll(errf)
		t.Fatalf("lkc restore: %v: %s%s", err, msg, criuLogTail(msg))
	}
	defer e.lkc("delete", "-f", id)
	waitCount(t, root, saved+3)
	deadline := time.Now().Add(settle)
	for {
		data, _ := os.ReadFile(out)
		if strings.Contains(string(data), fmt.Sprintf("tick %d\n", saved+2)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("fd 9 of the restored init does not reach restore's stdout: %q", data)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
