package clients

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// counterLoop is a container process whose memory tells a restore from a
// restart: it counts in a shell variable and writes the count to
// /tmp/count; a restarted process would start again from 1. It holds
// /tmp/held open all along, a file it made in the container's writable
// layer: CRIU reopens it on restore, so the restored rootfs must have the
// container's changes (as /tmp/count has, while the shell writes it).
var counterLoop = []string{"sh", "-c", `exec 3>/tmp/held; i=0; while true; do i=$((i+1)); echo $i > /tmp/count; sleep 0.05; done`}

// counterFloor is how far the counter must get before a checkpoint: far
// more than a fresh process reaches between a restore and the first read.
const counterFloor = 20

// readCounter reads /tmp/count through exec, retrying while the file is
// missing or being rewritten.
func readCounter(t *testing.T, exec func(...string) result) int {
	t.Helper()
	n := -1
	waitFor(5*time.Second, func() bool {
		r := exec("cat", "/tmp/count")
		v, err := strconv.Atoi(strings.TrimSpace(r.stdout))
		if r.code != 0 || err != nil {
			return false
		}
		n = v
		return true
	})
	if n < 0 {
		t.Fatalf("could not read /tmp/count in the container")
	}
	return n
}

// waitCounter waits until the counter reaches counterFloor and returns it.
func waitCounter(t *testing.T, exec func(...string) result) int {
	t.Helper()
	n := 0
	if !waitFor(10*time.Second, func() bool { n = readCounter(t, exec); return n >= counterFloor }) {
		t.Fatalf("counter at %d after 10s, want %d", n, counterFloor)
	}
	return n
}

// checkRestored checks that the counter went on from before, not from 1.
func checkRestored(t *testing.T, exec func(...string) result, before int) {
	t.Helper()
	if after := readCounter(t, exec); after < before {
		t.Errorf("counter %d after restore, %d before the checkpoint: the process was restarted, not restored", after, before)
	}
}

// requireCriuOnPath fails the test unless the `criu` on PATH is a CRIU 4:
// Podman checks CRIU's version by running it from PATH, and runc, under
// Podman or containerd's shim, runs it from there. scripts/setup.sh puts
// one there (docs/clients.md); nothing here makes its own.
func requireCriuOnPath(t *testing.T) {
	t.Helper()
	p, err := exec.LookPath("criu")
	if err != nil {
		t.Fatalf("no criu on PATH (%s): scripts/setup.sh links /usr/local/sbin/criu to CRIU 4", os.Getenv("PATH"))
	}
	if out, err := exec.Command(p, "--version").CombinedOutput(); err != nil || !strings.Contains(string(out), "Version: 4.") {
		t.Fatalf("%s on PATH is not CRIU 4 (%v: %s): scripts/setup.sh links /usr/local/sbin/criu to one", p, err, out)
	}
}

// TestPodmanCheckpoint runs podman container checkpoint and restore in
// place, then checkpoint --leave-running, with each runtime.
func TestPodmanCheckpoint(t *testing.T) {
	requireSetup(t)
	requireCriuOnPath(t)
	for _, rt := range runtimes() {
		t.Run(rt.name, func(t *testing.T) {
			p := newPodman(t, rt)
			podmanCheckpointRestore(p)
			p.t = t
		})
	}
}

// TestPodmanCheckpointExportImport runs podman container checkpoint
// --export and restore --import, which restores into a new container with
// a fresh copy of the rootfs, with each runtime: the restore creates the
// mount points the new rootfs lacks (Podman's /run/.containerenv,
// /etc/resolv.conf, /etc/hostname...) before CRIU mounts on them, as runc
// does, and the archive's rootfs changes come back (/tmp/held).
func TestPodmanCheckpointExportImport(t *testing.T) {
	requireSetup(t)
	requireCriuOnPath(t)
	for _, rt := range runtimes() {
		t.Run(rt.name, func(t *testing.T) {
			p := newPodman(t, rt)
			podmanExportImport(p)
			p.t = t
		})
	}
}

func (p *podman) execIn(name string) func(...string) result {
	return func(args ...string) result { return p.podman(append([]string{"exec", name}, args...)...) }
}

func podmanCheckpointRestore(p *podman) {
	t := p.t
	id := p.runDetached("ck", nil, counterLoop...)
	defer p.rm("ck", id)
	before := waitCounter(t, p.execIn("ck"))
	p.must("container", "checkpoint", "ck")
	if st := p.status("ck"); st != "exited" {
		t.Errorf("podman says %q after checkpoint, want exited", st)
	}
	if st := runtimeStatus(t, p.rt, id); st != "" && st != "stopped" {
		t.Errorf("%s says %q after checkpoint, want the container stopped or gone", p.rt.name, st)
	}
	p.must("container", "restore", "ck")
	if st, rst := p.status("ck"), runtimeStatus(t, p.rt, id); st != "running" || rst != "running" {
		t.Fatalf("after restore: podman says %q, %s says %q; want running", st, p.rt.name, rst)
	}
	checkRestored(t, p.execIn("ck"), before)
	// --leave-running dumps and lets the container go on.
	p.must("container", "checkpoint", "--leave-running", "ck")
	if st, rst := p.status("ck"), runtimeStatus(t, p.rt, id); st != "running" || rst != "running" {
		t.Errorf("after checkpoint --leave-running: podman says %q, %s says %q; want running", st, p.rt.name, rst)
	}
	if n := readCounter(t, p.execIn("ck")); n < before {
		t.Errorf("counter %d after checkpoint --leave-running, %d before: the process did not go on", n, before)
	}
}

func podmanExportImport(p *podman) {
	t := p.t
	id := p.runDetached("ex", nil, counterLoop...)
	defer p.rm("ex", id)
	archive := filepath.Join(t.TempDir(), "ex.tar.gz")
	before := waitCounter(t, p.execIn("ex"))
	p.must("container", "checkpoint", "--export", archive, "ex")
	if fi, err := os.Stat(archive); err != nil || fi.Size() == 0 {
		t.Fatalf("checkpoint --export wrote no archive: %v", err)
	}
	p.rm("ex", id)
	defer p.rm("im", "") // a failed restore leaves the container Podman made
	newID := strings.TrimSpace(p.must("container", "restore", "--import", archive, "--name", "im"))
	if st, rst := p.status("im"), runtimeStatus(t, p.rt, newID); st != "running" || rst != "running" {
		t.Fatalf("after restore --import: podman says %q, %s says %q; want running", st, p.rt.name, rst)
	}
	checkRestored(t, p.execIn("im"), before)
}

// TestContainerdCheckpoint runs ctr's checkpoints with each runtime: a
// container checkpoint into containerd's content store restored live, and
// a task checkpoint into an image directory that stops the task.
func TestContainerdCheckpoint(t *testing.T) {
	requireSetup(t)
	requireCriuOnPath(t)
	c := startContainerd(t, "")
	for _, rt := range runtimes() {
		t.Run(rt.name, func(t *testing.T) {
			r := newCtrRuntime(t, c, rt)
			r.t = t
			r.importImage()
			t.Run("ContainerCheckpointRestore", func(t *testing.T) { r.t = t; ctrCheckpointRestore(r) })
			t.Run("TaskCheckpointImagePath", func(t *testing.T) { r.t = t; ctrTaskCheckpoint(r) })
			r.t = t
		})
	}
}

func (r *ctrRuntime) execIn(id string) func(...string) result {
	n := 0
	return func(args ...string) result {
		n++
		return r.ctr(append([]string{"task", "exec", "--exec-id", "x" + strconv.Itoa(n), id}, args...)...)
	}
}

// ctrCheckpointRestore checkpoints a container with its writable layer
// (--rw) and restores it live from that. Without the layer the restore
// starts from a fresh snapshot of the image, where the files the
// container made and holds open are missing: CRIU cannot reopen
// /tmp/held, and the restore fails, with runc as with lkc, leaving a task
// that never ran, which must go as cleanly.
func ctrCheckpointRestore(r *ctrRuntime) {
	t := r.t
	const id = "ck"
	ref := "localhost/lkc-clients-checkpoint:" + r.rt.name
	r.runDetached(id, counterLoop...)
	before := waitCounter(t, r.execIn(id))
	r.must("containers", "checkpoint", "--rw", "--task", id, ref)
	t.Cleanup(func() {
		if res := r.tryCtr(r.ns, "images", "rm", ref); res.code != 0 {
			t.Errorf("%v", res)
		}
	})
	if st := r.taskStatus(id); st != "RUNNING" {
		t.Errorf("task %s after checkpoint, want RUNNING (ctr leaves it running)", st)
	}
	r.remove(id)
	if res := r.ctr("containers", "restore", "--live", id, ref); res.code == 0 {
		t.Errorf("restore without the writable layer succeeded, want CRIU to miss /tmp/held: %v", res)
	}
	r.remove(id)
	r.must("containers", "restore", "--live", "--rw", id, ref)
	if st, rst := r.taskStatus(id), r.state(id); st != "RUNNING" || rst != "running" {
		t.Fatalf("after restore: containerd says %q, %s says %q; want RUNNING/running", st, r.rt.name, rst)
	}
	checkRestored(t, r.execIn(id), before)
}

func ctrTaskCheckpoint(r *ctrRuntime) {
	t := r.t
	const id = "tk"
	images := filepath.Join(t.TempDir(), "images")
	r.runDetached(id, counterLoop...)
	waitCounter(t, r.execIn(id))
	r.must("task", "checkpoint", "--exit", "--image-path", images, id)
	if _, err := os.Stat(filepath.Join(images, "inventory.img")); err != nil {
		t.Errorf("no CRIU image in %s after task checkpoint: %v", images, err)
	}
	if !waitFor(10*time.Second, func() bool { return r.taskStatus(id) == "STOPPED" }) {
		t.Errorf("task %s after checkpoint --exit, want STOPPED", r.taskStatus(id))
	}
}
