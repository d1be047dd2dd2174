package integration

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// oomCheckpointDie arms the worker's LKC_TEST_OOM_CHECKPOINT_DIE hook for
// step (freezing, dumping): the first worker to reach it SIGKILLs itself.
// The daemon, autostarted later, inherits it. It returns the hook's file,
// gone once the worker died.
func oomCheckpointDie(t *testing.T, step string) string {
	file := filepath.Join(t.TempDir(), "die")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("LKC_TEST_OOM_CHECKPOINT_DIE", step+":"+file)
	return file
}

// checkpointOnOOMBundle is a bundle on a writable copy of the rootfs
// (root) whose init, once the test makes /armed, allocates twice its
// 32 MiB limit under the policy checkpoint:images.
func (d *daemonEnv) checkpointOnOOMBundle() (root, images, bundle string) {
	root = d.writableRootfs()
	images = filepath.Join(d.t.TempDir(), "oom")
	script := `while [ ! -e /armed ]; do sleep 0.05; done; exec awk 'BEGIN { s = "x"; for (i = 0; i < 26; i++) s = s s; print length(s) }'`
	bundle = d.bundle([]string{"sh", "-c", script}, func(s *specs.Spec) {
		s.Root.Path, s.Root.Readonly = root, false
		s.Annotations = map[string]string{"org.lkc.oom-policy": "checkpoint:" + images}
		s.Linux.Resources = &specs.LinuxResources{Memory: memoryOnly(oomLimit)}
	})
	return root, images, bundle
}

// checkOOMImage checks that the checkpoint policy left container id's
// image in images, holding most of the limit the allocator filled, and
// returns it.
func (d *daemonEnv) checkOOMImage(images, id string) string {
	d.t.Helper()
	dumps, _ := filepath.Glob(filepath.Join(images, id+"-*"))
	var image string
	for _, p := range dumps {
		if fi, err := os.Stat(p); err == nil && fi.IsDir() {
			image = p
		}
	}
	if image == "" {
		d.t.Fatalf("no image in %s (%v); daemon log:\n%s", images, dumps, d.daemonLog())
	}
	if pages := dirBytes(d.t, image, "pages-"); pages < oomLimit*3/4 {
		d.t.Errorf("image holds %d bytes of pages, want at least %d (most of the limit the allocator filled)", pages, oomLimit*3/4)
	}
	return image
}

// runCheckpointOnOOM runs a checkpointOnOOMBundle container and waits
// until the daemon armed it.
func (d *daemonEnv) runCheckpointOnOOM() (id, root, images string) {
	d.t.Helper()
	root, images, b := d.checkpointOnOOMBundle()
	id = d.id()
	d.mustLkc("run", "-d", "--bundle", b, id)
	d.t.Cleanup(func() { d.lkc("delete", "--force", id) })
	waitFor(d.t, func() bool { return strings.Contains(d.daemonLog(), "container "+id+" armed") }, "the daemon to arm the container")
	return id, root, images
}

// startAllocating lets a runCheckpointOnOOM container's init allocate.
func startAllocating(t *testing.T, root string) {
	if err := os.WriteFile(filepath.Join(root, "armed"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
}

// daemonLog is the daemon's log so far.
func (d *daemonEnv) daemonLog() string {
	b, _ := os.ReadFile(filepath.Join(d.dir, "daemon.log"))
	return string(b)
}

// TestOOMCheckpointWorkerKilledFreezing: the worker is SIGKILLed right
// after the checkpoint policy asked the freezer and raised the limit,
// before any dump: its successor finds the container frozen with its
// record (oom-dump.json) and finishes the checkpoint, so the container is
// neither left frozen nor lost: it is dumped and stopped, and the image
// holds its memory.
func TestOOMCheckpointWorkerKilledFreezing(t *testing.T) {
	requireCriu(t)
	die := oomCheckpointDie(t, "freezing")
	d := newDaemonEnv(t)
	id, root, images := d.runCheckpointOnOOM()
	worker := d.status().WorkerPid
	startAllocating(t, root)
	waitFor(t, func() bool {
		_, err := os.Stat(die)
		return os.IsNotExist(err)
	}, "the worker to die at the freeze")
	waitFor(t, func() bool {
		return strings.Contains(d.daemonLog(), "container "+id+": checkpointed to ") && d.lkc("state", id).code != 0
	}, "the successor to finish the checkpoint")
	if w := d.status().WorkerPid; w == worker {
		t.Fatalf("worker %d still serves: the hook did not kill it", w)
	}
	d.checkOOMImage(images, id)
}

// TestOOMCheckpointWorkerKilledDumping: the worker is SIGKILLed right
// after it started `lkc checkpoint`, whose dump then fails (CRIU is
// /bin/false): the successor finds the dump ended and the container left
// frozen, thaws it, removes the failed image (no directory a restore
// could take for a good one) and the fallback kills the allocator; the
// container runs on with its limit back.
func TestOOMCheckpointWorkerKilledDumping(t *testing.T) {
	requireOOMHold(t)
	t.Setenv("LKC_CRIU", "/bin/false")
	die := oomCheckpointDie(t, "dumping")
	d := newDaemonEnv(t)
	images := t.TempDir()
	id, cgroup := d.oomContainer(map[string]string{
		"org.lkc.oom-policy":   "checkpoint:" + images,
		"org.lkc.oom-fallback": "kill-largest",
	})
	done := make(chan result, 1)
	go func() { r, _ := d.allocate(id); done <- r }()
	select {
	case r := <-done:
		if r.code != 137 {
			t.Fatalf("allocator: %v, want the fallback's SIGKILL; events %v", r, d.policyEvents(id))
		}
	case <-time.After(settle):
		t.Fatalf("the allocator still waits after %v (container %v); daemon log:\n%s", settle, d.state(id)["status"], d.daemonLog())
	}
	if _, err := os.Stat(die); !os.IsNotExist(err) {
		t.Fatalf("the worker did not reach the dump (hook file: %v)", err)
	}
	if st := d.state(id)["status"]; st != "running" {
		t.Errorf("container after the failed dump: %v, want running (thawed)", st)
	}
	waitFor(t, func() bool { return readLimit(cgroup) == oomLimit }, "the limit back at 32 MiB")
	ents, _ := os.ReadDir(images)
	for _, e := range ents {
		if e.IsDir() {
			t.Errorf("failed image %s left in %s", e.Name(), images)
		}
	}
	if _, err := os.Stat(filepath.Join(d.root, id, "oom-dump.json")); !os.IsNotExist(err) {
		t.Errorf("the dump's record is left: %v", err)
	}
}

// TestOOMGrowWorkerKilledRaising: grow's first raise is SIGKILLed
// (LKC_TEST_OOM_RAISE_DIE) after it wrote memory+swap and before the
// memory limit. The successor raises again from the same limit: memory+swap
// ends at the limit plus the container's swap allowance (16 MiB here), not
// that plus the killed raise's step.
func TestOOMGrowWorkerKilledRaising(t *testing.T) {
	requireOOMHold(t)
	const allowance = 16 << 20
	die := filepath.Join(t.TempDir(), "die")
	if err := os.WriteFile(die, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("LKC_TEST_OOM_RAISE_DIE", die)
	d := newDaemonEnv(t)
	limit, swap := int64(oomLimit), int64(oomLimit+allowance)
	id, cgroup := d.oomContainerWith(map[string]string{"org.lkc.oom-policy": "grow:256M"}, &specs.LinuxMemory{Limit: &limit, Swap: &swap})
	worker := d.status().WorkerPid
	if r, _ := d.allocate(id); r.code != 0 {
		t.Fatalf("allocation under grow: %v, want success; events %v", r, d.policyEvents(id))
	}
	if _, err := os.Stat(die); !os.IsNotExist(err) {
		t.Fatalf("the worker did not reach the raise (hook file: %v)", err)
	}
	if w := d.status().WorkerPid; w == worker {
		t.Fatalf("worker %d still serves: the hook did not kill it", w)
	}
	limit = readLimit(cgroup)
	b, _ := os.ReadFile(filepath.Join(cgroup, "memory.memsw.limit_in_bytes"))
	memsw, _ := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if limit <= oomLimit || memsw-limit != allowance {
		t.Errorf("after the grows: limit %d, memory+swap %d: swap allowance %d, want %d; events %v", limit, memsw, memsw-limit, allowance, d.policyEvents(id))
	}
}

// failingCriu makes LKC_CRIU a CRIU that waits until the file it
// returns exists, then fails.
func failingCriu(t *testing.T) string {
	dir := t.TempDir()
	gate, script := filepath.Join(dir, "gate"), filepath.Join(dir, "criu")
	if err := os.WriteFile(script, []byte("#!/bin/sh\n"+waitGate(gate)+"\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("LKC_CRIU", script)
	return gate
}

func openGate(t *testing.T, gate string) {
	if err := os.WriteFile(gate, nil, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestOOMCheckpointDumpFailsAfterDaemonStop: `lkc daemon stop` comes
// while the checkpoint policy's dump runs, and the dump then fails (CRIU
// waits at a gate, then exits 1). No daemon is left to thaw the container:
// the dump's own shell does, so the container is not left frozen (its
// init, the allocator, then meets the kernel's OOM killer, back on with
// the daemon's stop).
func TestOOMCheckpointDumpFailsAfterDaemonStop(t *testing.T) {
	requireOOMHold(t)
	gate := failingCriu(t)
	d := newDaemonEnv(t)
	id, root, _ := d.runCheckpointOnOOM()
	startAllocating(t, root)
	waitFor(t, func() bool { return strings.Contains(d.daemonLog(), `"result":"dumping"`) }, "the dump to start")
	if st := d.state(id)["status"]; st != "paused" {
		t.Fatalf("container while it is dumped: %v, want paused (frozen)", st)
	}
	d.mustLkc("daemon", "stop")
	openGate(t, gate)
	waitFor(t, func() bool { return d.state(id)["status"] != "paused" }, "the failed dump to thaw the container")
}

// TestOOMCheckpointWorkerKilledStarted: the worker is SIGKILLed right
// after it started `lkc checkpoint`, before it recorded the dump's pid
// (LKC_TEST_OOM_CHECKPOINT_DIE=started; CRIU waits at a gate meanwhile).
// The successor finds that dump by its image and follows it instead of
// starting a second one beside it: the container is checkpointed, the
// log says so and no failure, and the image holds its memory.
func TestOOMCheckpointWorkerKilledStarted(t *testing.T) {
	tmp := t.TempDir()
	gate := filepath.Join(tmp, "gate")
	t.Setenv("LKC_CRIU", gatedCriu(t, filepath.Join(tmp, "started"), gate))
	die := oomCheckpointDie(t, "started")
	d := newDaemonEnv(t)
	id, root, images := d.runCheckpointOnOOM()
	startAllocating(t, root)
	waitFor(t, func() bool {
		_, err := os.Stat(die)
		log := d.daemonLog()
		return os.IsNotExist(err) && (strings.Contains(log, "container "+id+": following") || strings.Contains(log, "container "+id+": resuming"))
	}, "the worker to die as the dump started and its successor to take the checkpoint on")
	openGate(t, gate)
	waitFor(t, func() bool {
		return d.lkc("state", id).code != 0 && strings.Contains(d.daemonLog(), "container "+id+": checkpointed to ")
	}, "the checkpoint to stop the container and the successor to log it")
	if log := d.daemonLog(); strings.Contains(log, `"result":"failed"`) {
		t.Errorf("daemon log: want no failure:\n%s", log)
	}
	d.checkOOMImage(images, id)
}
