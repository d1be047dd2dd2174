package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// memoryCgroup makes a memory cgroup limited to limit bytes beneath this
// process's own (removed at the end of the test, once empty) and returns
// its directory; it skips where the memory controller is not this
// process's to use. Call it before whatever starts a process that stays
// in it, so that the removal, a cleanup, runs after that process's stop.
func memoryCgroup(t *testing.T, name string, limit int64) string {
	t.Helper()
	hs, err := ownHierarchies()
	if err != nil {
		t.Fatal(err)
	}
	file := "memory.limit_in_bytes"
	if cgroupV2() {
		file = "memory.max"
	}
	for _, h := range hs {
		if h.name != "memory" && h.name != "" {
			continue
		}
		dir := filepath.Join(h.mnt, h.own, fmt.Sprintf("lkc-it-%d-%s", os.Getpid(), name))
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Skipf("making a memory cgroup: %v", err)
		}
		t.Cleanup(func() { removeCgroupDir(t, dir) })
		if err := os.WriteFile(filepath.Join(dir, file), []byte(fmt.Sprint(limit)), 0o644); err != nil {
			t.Skipf("limiting memory cgroup %s: %v", dir, err)
		}
		return dir
	}
	t.Skip("no memory cgroup of this process's own")
	return ""
}

// inCgroupDir returns cmd run by a shell that first joins the cgroup at
// dir.
func inCgroupDir(dir string, cmd *exec.Cmd) *exec.Cmd {
	script := `echo $$ > "$0"/cgroup.procs && exec "$@"`
	return exec.Command("/bin/sh", append([]string{"-c", script, dir, cmd.Path}, cmd.Args[1:]...)...)
}

// bigRootfs copies the test rootfs into dir with a file of mib MiB
// (written here, so that the container's own memory stays small) and
// returns it.
func bigRootfs(t *testing.T, dir string, mib int) string {
	t.Helper()
	root := filepath.Join(dir, "rootfs")
	if out, err := exec.Command("cp", "-a", rootfs, root).CombinedOutput(); err != nil {
		t.Fatalf("copying the rootfs: %v: %s", err, out)
	}
	if out, err := exec.Command("dd", "if=/dev/zero", "of="+filepath.Join(root, "big"), "bs=1M", fmt.Sprint("count=", mib)).CombinedOutput(); err != nil {
		t.Fatalf("dd: %v: %s", err, out)
	}
	return root
}

// TestCheckpointAllTmpfsMemory: an image dir on a tmpfs whose size is
// far more than the memory its files would take: checkpoint --all counts
// the memory lkc may still take (here its cgroup's limit, 40 MiB) as well
// as the tmpfs's free space, and refuses at the start, in one line naming
// the dir, the need and what is available, with nothing written and the
// container running. The dumps would save a 48 MiB rootfs.
func TestCheckpointAllTmpfsMemory(t *testing.T) {
	requireCriu(t)
	e := newEnv(t)
	cg := memoryCgroup(t, "ckpt-room", 40<<20)
	root := bigRootfs(t, tmpfsDir(t, "128m"), 48)
	id := e.id()
	e.mustLkc("run", "-d", "--bundle", e.bundle([]string{"sleep", "1000"}, func(s *specs.Spec) {
		s.Root.Path, s.Root.Readonly = root, false
	}), id)
	dir := filepath.Join(tmpfsDir(t, "1g"), "images")
	cmd := inCgroupDir(cg, exec.Command(e.bin, "--root", e.root, "checkpoint", "--all", "--image-dir", dir))
	out, errb := e.tempFile(), e.tempFile()
	defer out.Close()
	defer errb.Close()
	cmd.Stdout, cmd.Stderr = out, errb
	err := cmd.Run()
	r := result{stdout: readAll(out), stderr: readAll(errb)}
	if err == nil {
		t.Fatalf("checkpoint --all into a tmpfs larger than the memory left succeeded: %v", r)
	}
	r.code = 1
	want := `image dir ` + regexp.QuoteMeta(dir) + ` has \d+ MiB free \(a tmpfs with 10\d\d MiB free, whose files take memory: \d+ MiB left under the limit of memory cgroup ` +
		regexp.QuoteMeta(cg) + `\), the 1 containers need about (5\d|6\d) MiB \(memory \d+ MiB, rootfs copies 4\d MiB`
	e.checkOneLineFailure(r, want, nil)
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("the refused checkpoint left its image dir: %v", err)
	}
	if st := e.state(id); st["status"] != "running" {
		t.Errorf("%s is %v after the refused checkpoint", id, st["status"])
	}
}

// TestMigrateAllDryRunTmpfsMemory: a target whose bundle directory is a
// tmpfs far larger than the memory its receiver may still take (its
// cgroup's limit, 40 MiB): the dry run says the container, whose rootfs
// holds 48 MiB, would fail, naming the directory, what is available and
// why, and the need.
func TestMigrateAllDryRunTmpfsMemory(t *testing.T) {
	room := memoryCgroup(t, "serve-room", 40<<20)
	h := newTestHosts(t)
	a, b := h.hosts[0], h.hosts[1]
	b.serveIn = room
	b.bundles = tmpfsDir(t, "1g")
	root := bigRootfs(t, t.TempDir(), 48)
	id, _ := h.runContainer(a, migCounter, func(s *specs.Spec) { s.Root.Path, s.Root.Readonly = root, false })
	h.startServe(b)
	r, got := h.migrateAll(a, b, "--dry-run")
	a.e.checkOneLineFailure(r, "1 of 1 containers not movable", nil)
	want := regexp.MustCompile(`incompatible target: ` + regexp.QuoteMeta(b.bundles) + ` has \d+ MiB free \(a tmpfs with 10\d\d MiB free, whose files take memory: \d+ MiB left under the limit of memory cgroup \S+serve-room\), the (container|evacuation) needs (5\d|6\d) MiB`)
	if got[id] != "would fail" || !want.MatchString(r.stdout) {
		t.Errorf("dry run to a target with a big tmpfs and little memory: %s is %q: %s", id, got[id], r.stdout)
	}
	if !strings.Contains(r.stdout, id) {
		t.Errorf("the dry run does not name %s: %s", id, r.stdout)
	}
	a.e.waitStatus(id, "running")
}

// TestCheckpointAllRamfs: a ramfs has no size, and statfs says it has no
// free block: checkpoint --all into one counts the memory lkc may take
// instead of refusing it as full.
func TestCheckpointAllRamfs(t *testing.T) {
	requireCriu(t)
	e := newEnv(t)
	id, _ := e.ckptCounter(nil)
	fs := filepath.Join(t.TempDir(), "ramfs")
	if err := os.Mkdir(fs, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("ramfs", fs, "ramfs", 0, ""); err != nil {
		t.Skipf("mounting a ramfs: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(fs, unix.MNT_DETACH) })
	dir := filepath.Join(fs, "images")
	e.mustLkc("checkpoint", "--all", "--leave-running", "--image-dir", dir)
	if got := readEvacManifest(t, dir); got[id] != "dumped" {
		t.Errorf("manifest: %v", got)
	}
}
