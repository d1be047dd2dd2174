package integration

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func withCgroupsPath(p string) func(*specs.Spec) {
	return func(s *specs.Spec) { s.Linux.CgroupsPath = p }
}

// runAt starts a sleeping container whose linux.cgroupsPath is p and
// returns its id and init's host pid.
func (e *env) runAt(p func(id string) string) (string, int) {
	e.t.Helper()
	id := e.id()
	e.mustLkc("run", "-d", "--bundle", e.bundle([]string{"sleep", "1000"}, withCgroupsPath(p(id))), id)
	return id, int(e.state(id)["pid"].(float64))
}

// procCgroups maps each hierarchy's controllers to pid's cgroup in it.
func procCgroups(t *testing.T, pid int) map[string]string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cgroup"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if parts := strings.SplitN(line, ":", 3); len(parts) == 3 {
			out[parts[1]] = parts[2]
		}
	}
	return out
}

// checkPlaced fails unless pid is in the cgroup at path (from the
// hierarchy root) in every hierarchy, and that directory exists.
func checkPlaced(t *testing.T, pid int, path func(h cgHierarchy) string) {
	t.Helper()
	hs, _ := ownHierarchies()
	got := procCgroups(t, pid)
	for _, h := range hs {
		want := path(h)
		if got[h.name] != want {
			t.Errorf("%s: init is in cgroup %q, want %q", h.name, got[h.name], want)
		}
		if !isDir(filepath.Join(h.mnt, want)) {
			t.Errorf("%s: cgroup directory %s missing", h.name, filepath.Join(h.mnt, want))
		}
	}
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

// checkGone fails if any hierarchy still has a directory at path.
func checkGone(t *testing.T, what string, path func(h cgHierarchy) string) {
	t.Helper()
	hs, _ := ownHierarchies()
	for _, h := range hs {
		if d := filepath.Join(h.mnt, path(h)); isDir(d) {
			t.Errorf("%s %s left after delete", what, d)
		}
	}
}

// TestCgroupPathAbsolute: an absolute linux.cgroupsPath is taken from the
// root of every hierarchy, as the runtime spec says (the path is beneath
// this test's own cgroup: testCgroupBase), and delete removes the cgroup
// and the parent lkc made for it.
func TestCgroupPathAbsolute(t *testing.T) {
	e := newEnv(t)
	parent := e.cgroupParent("abs")
	id, pid := e.runAt(func(id string) string { return parent + "/" + id })
	checkPlaced(t, pid, func(cgHierarchy) string { return parent + "/" + id })
	e.mustLkc("delete", "--force", id)
	checkGone(t, "cgroup parent made by lkc", func(cgHierarchy) string { return parent })
}

// TestCgroupPathRelative: a relative linux.cgroupsPath, and none, stay
// beneath lkc's own cgroup in every hierarchy; delete removes the parent
// lkc made for the relative one.
func TestCgroupPathRelative(t *testing.T) {
	e := newEnv(t)
	rel := e.relativeCgroupParent("rel")
	id, pid := e.runAt(func(id string) string { return rel + "/" + id })
	checkPlaced(t, pid, func(h cgHierarchy) string { return filepath.Join(h.own, rel, id) })
	def, defPid := e.runAt(func(string) string { return "" })
	checkPlaced(t, defPid, func(h cgHierarchy) string { return filepath.Join(h.own, "lkc", def) })
	e.mustLkc("delete", "--force", id)
	checkGone(t, "cgroup parent made by lkc", func(h cgHierarchy) string { return filepath.Join(h.own, rel) })
}

// TestCgroupPathParentLimit: a limit set on the parent of an absolute
// cgroupsPath (as Kubernetes sets a pod's) holds the container: 100 MiB
// do not fit under the parent's 32 MiB.
func TestCgroupPathParentLimit(t *testing.T) {
	e := newEnv(t)
	parent := e.cgroupParent("limit")
	// The first container makes the parent, with the controllers enabled
	// for its children on v2.
	e.runAt(func(id string) string { return parent + "/" + id })
	limit := filepath.Join("/sys/fs/cgroup/memory", parent, "memory.limit_in_bytes")
	if cgroupV2() {
		limit = filepath.Join("/sys/fs/cgroup", parent, "memory.max")
	}
	if err := os.WriteFile(limit, []byte("33554432"), 0); err != nil {
		t.Fatalf("limiting the parent: %v", err)
	}
	id := e.id()
	b := e.bundle([]string{"dd", "if=/dev/zero", "of=/dev/null", "bs=100M", "count=1"}, withCgroupsPath(parent+"/"+id))
	if r := e.lkc("run", "--bundle", b, id); r.code != 137 {
		t.Errorf("allocating 100 MiB under a parent limited to 32 MiB: want OOM kill (exit 137), got %v", r)
	}
}

// TestCgroupPathDeleteRemovesOnlyItsOwn: delete removes the parents lkc
// made for the container only once they are empty, and never a cgroup lkc
// did not make.
func TestCgroupPathDeleteRemovesOnlyItsOwn(t *testing.T) {
	e := newEnv(t)
	// Parent made by the first container, shared with a second: deleting
	// the second keeps it, deleting the first (its maker) removes it.
	shared := e.cgroupParent("shared")
	first, _ := e.runAt(func(id string) string { return shared + "/" + id })
	second, _ := e.runAt(func(id string) string { return shared + "/" + id })
	e.mustLkc("delete", "--force", second)
	checkPlaced(t, int(e.state(first)["pid"].(float64)), func(cgHierarchy) string { return shared + "/" + first })
	e.mustLkc("delete", "--force", first)
	checkGone(t, "cgroup parent made by lkc", func(cgHierarchy) string { return shared })

	// Deleting the maker first leaves the parent to the other container.
	busy := e.keptCgroupParent("busy")
	maker, _ := e.runAt(func(id string) string { return busy + "/" + id })
	user, userPid := e.runAt(func(id string) string { return busy + "/" + id })
	e.mustLkc("delete", "--force", maker)
	checkPlaced(t, userPid, func(cgHierarchy) string { return busy + "/" + user })
	e.mustLkc("delete", "--force", user)

	// A parent lkc did not make stays.
	own := e.keptCgroupParent("own")
	hs, _ := ownHierarchies()
	mem := hs[0]
	for _, h := range hs {
		if h.name == "memory" {
			mem = h
		}
	}
	if err := os.Mkdir(filepath.Join(mem.mnt, own), 0o755); err != nil {
		t.Fatal(err)
	}
	id, _ := e.runAt(func(id string) string { return own + "/" + id })
	e.mustLkc("delete", "--force", id)
	if !isDir(filepath.Join(mem.mnt, own)) {
		t.Errorf("delete removed %s, which lkc did not make", filepath.Join(mem.mnt, own))
	}
}

// TestCgroupPathAbsoluteRestore: a checkpointed container with an absolute
// cgroupsPath is restored at that path again.
func TestCgroupPathAbsoluteRestore(t *testing.T) {
	requireCriu(t)
	e := newEnv(t)
	path := e.cgroupParent("restore") + "/c"
	id, root := e.ckptCounter(withCgroupsPath(path))
	bundle := bundleOf(e, id)
	images := filepath.Join(t.TempDir(), "images")
	saved := e.checkpointStops(id, root, images)
	e.restoreDetached(id, bundle, root, images, saved)
	checkPlaced(t, initPid(e, id), func(cgHierarchy) string { return path })
}

// TestMigrateAbsoluteCgroupPath: a container with an absolute cgroupsPath
// moves to a receiver whose --cgroup-parent is absolute too: it lands at
// <parent>/<id> from the hierarchy root, and the source's cgroup and the
// parent lkc made for it are gone.
func TestMigrateAbsoluteCgroupPath(t *testing.T) {
	h := newTestHosts(t)
	a, b := h.hosts[0], h.hosts[1]
	b.cgParent = b.e.cgroupParent("serve")
	h.startServe(b)
	src := a.e.cgroupParent("src")
	id, _ := h.runContainer(a, migCounter, withCgroupsPath(src+"/c"))
	checkPlaced(t, initPid(a.e, id), func(cgHierarchy) string { return src + "/c" })
	mustMigrate(t, h, a, b, id, "--shared-storage", "--mode", "stopcopy")
	b.e.waitStatus(id, "running")
	checkPlaced(t, initPid(b.e, id), func(cgHierarchy) string { return b.cgParent + "/" + id })
	checkGone(t, "the source's cgroup parent made by lkc", func(cgHierarchy) string { return src })
}

// TestCgroupPathEmptyCpusetParent: a v1 cpuset parent made by another
// tool without CPUs or memory nodes (a pod's parent made before its first
// container) takes no task; lkc gives it its own parent's, as runc does,
// instead of failing create with ENOSPC.
func TestCgroupPathEmptyCpusetParent(t *testing.T) {
	if cgroupV2() {
		t.Skip("v2 cpusets are never empty: they use the parent's CPUs")
	}
	e := newEnv(t)
	parent := e.keptCgroupParent("emptycpuset")
	dir := filepath.Join("/sys/fs/cgroup/cpuset", parent)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if got := readTrim(t, filepath.Join(dir, "cpuset.cpus")); got != "" {
		t.Fatalf("a new v1 cpuset has cpus %q; want none", got)
	}
	id, pid := e.runAt(func(id string) string { return parent + "/" + id })
	checkPlaced(t, pid, func(cgHierarchy) string { return parent + "/" + id })
	want := readTrim(t, filepath.Join(filepath.Dir(dir), "cpuset.effective_cpus"))
	for _, d := range []string{dir, filepath.Join(dir, id)} {
		if got := readTrim(t, filepath.Join(d, "cpuset.cpus")); got != want {
			t.Errorf("%s: cpuset.cpus %q; want the parent's %q", d, got, want)
		}
	}
	e.mustLkc("delete", "--force", id)
}
