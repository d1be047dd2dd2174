package integration

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestRestoreCgroupsModeIgnore: with --manage-cgroups-mode ignore CRIU
// leaves the restored tasks where it runs; runc runs it in the
// container's cgroups, and so must lkc, or the tasks are outside them (in
// the caller's), where `delete --force` does not find them. On cgroup v2,
// where lkc cannot start CRIU there, the restore is refused in one line.
func TestRestoreCgroupsModeIgnore(t *testing.T) {
	requireCriu(t)
	e := newEnv(t)
	id, root, images := e.leftRunning()
	saved := readCount(t, root)
	if cgroupV2() {
		id2 := e.id()
		e.failLkc(`--manage-cgroups-mode ignore: not supported on this host on cgroup v2`,
			"restore", "-d", "--manage-cgroups-mode", "ignore", "--bundle", bundleOf(e, id), "--image-path", images, id2)
		return
	}
	id2, _ := e.restoreCopy(root, images, saved, "--manage-cgroups-mode", "ignore")
	pids := processesIn(id2)
	if len(pids) < 2 {
		t.Fatalf("restored container %s has %v in its cgroups, want its init and the sleep", id2, pids)
	}
	for _, ctrl := range []string{"memory", "pids", "freezer"} {
		if cg := cgroupOf(t, initPid(e, id2), ctrl); !strings.HasSuffix(cg, "/lkc/"+id2) {
			t.Errorf("restored init is in %s cgroup %s, want .../lkc/%s", ctrl, cg, id2)
		}
	}
	e.mustLkc("delete", "-f", id2)
	e.mustLkc("delete", "-f", id)
}

// TestRestoreCgroupsModeStrict: CRIU's strict mode aborts on cgroups
// that exist, and lkc makes the container's before CRIU restores into
// them: the restore is refused up front in one line, and leaves nothing.
func TestRestoreCgroupsModeStrict(t *testing.T) {
	requireCriu(t)
	e := newEnv(t)
	id, _, images := e.leftRunning()
	id2 := e.id()
	e.failLkc(`--manage-cgroups-mode strict: CRIU would refuse the cgroups lkc makes for the container; use soft or full`,
		"restore", "-d", "--manage-cgroups-mode", "strict", "--bundle", bundleOf(e, id), "--image-path", images, id2)
	if r := e.lkc("state", id2); r.code == 0 {
		t.Errorf("a refused restore left container %s: %v", id2, r)
	}
	e.mustLkc("delete", "-f", id)
}

// TestRestoreCgroupsModeFull: --manage-cgroups-mode full restores the
// images' cgroup properties, the freezer state among them. A running
// container comes back running, as with runc, although lkc froze it for
// the dump (which CRIU records as frozen); a paused one comes back paused
// on cgroup v1 (on v2 CRIU brings back no freeze).
func TestRestoreCgroupsModeFull(t *testing.T) {
	requireCriu(t)
	e := newEnv(t)
	id, root, images := e.leftRunning()
	bundle := bundleOf(e, id)
	id2, _ := e.restoreCopy(root, images, readCount(t, root), "--manage-cgroups-mode", "full")
	e.mustLkc("delete", "-f", id2)

	e.mustLkc("pause", id)
	paused := filepath.Join(t.TempDir(), "paused")
	e.mustLkc("checkpoint", "--image-path", paused, id)
	id3 := e.id()
	e.mustLkc("restore", "-d", "--manage-cgroups-mode", "full", "--bundle", bundle, "--image-path", paused, id3)
	if st := e.state(id3); st["status"] != "paused" && !cgroupV2() {
		t.Fatalf("a paused container's checkpoint restored with --manage-cgroups-mode full is %v", st["status"])
	}
	e.mustLkc("delete", "-f", id3)
}

// leftRunning runs a counter and checkpoints it with --leave-running: its
// id, its rootfs and the images.
func (e *env) leftRunning() (id, root, images string) {
	e.t.Helper()
	id, root = e.ckptCounter(nil)
	images = filepath.Join(e.t.TempDir(), "images")
	e.mustLkc("checkpoint", "--leave-running", "--image-path", images, id)
	return id, root, images
}
