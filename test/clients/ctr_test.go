package clients

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestContainerd runs ctr's task operations through containerd's runc v2
// shim with each runtime as the shim's runc binary, against a containerd
// the test starts with a config, root, state and socket of its own.
func TestContainerd(t *testing.T) {
	requireSetup(t)
	c := startContainerd(t, "")
	for _, rt := range runtimes() {
		t.Run(rt.name, func(t *testing.T) {
			r := newCtrRuntime(t, c, rt)
			r.t = t
			r.importImage()
			for _, tc := range ctrCases {
				t.Run(tc.name, func(t *testing.T) {
					r.t = t
					tc.run(r)
				})
			}
			r.t = t
		})
	}
}

var ctrCases = []struct {
	name string
	run  func(*ctrRuntime)
}{
	{"RunForeground", ctrRunForeground},
	{"RunDetachedOps", ctrDetachedOps},
	{"RunTTY", ctrRunTTY},
	{"ExecTTY", ctrExecTTY},
	{"ErrorMessages", ctrErrorMessages},
	{"CgroupParentLimit", ctrCgroupParentLimit},
}

// importImage imports the OCI archive Podman saved and removes the image
// at the end of the test.
func (r *ctrRuntime) importImage() {
	r.must("images", "import", ociArchive)
	t := r.t
	t.Cleanup(func() {
		r.t = t
		if res := r.tryCtr(r.ns, "images", "rm", r.image); res.code != 0 {
			t.Errorf("%v", res)
		}
	})
	if !strings.Contains(r.must("images", "ls", "-q"), r.image) {
		t.Fatalf("ctr images import %s: no %s among the images", ociArchive, r.image)
	}
}

func ctrRunForeground(r *ctrRuntime) {
	args := append(append([]string{"run", "--rm"}, r.runArgs("fg")...), r.image, "fg",
		"sh", "-c", "echo out; echo err >&2; exit 7")
	res := r.ctr(args...)
	if res.code != 7 || res.stdout != "out\n" || !strings.Contains(res.stderr, "err") {
		r.t.Errorf("got %v; want exit 7, stdout \"out\\n\", err on stderr", res)
	}
	if ids := strings.TrimSpace(r.must("containers", "ls", "-q")); ids != "" {
		r.t.Errorf("ctr run --rm left %s", ids)
	}
}

// ctrDetachedOps drives one task through exec, ps, metrics, pause/resume
// and kill, checking the runtime's own state along with containerd's.
func ctrDetachedOps(r *ctrRuntime) {
	t := r.t
	const id = "d"
	r.runDetached(id, "sh", "-c", `trap 'exit 0' TERM; while true; do sleep 0.1; done`)
	if out := r.must("task", "exec", "--exec-id", "e1", id, "sh", "-c", "echo $((6*7))"); out != "42\n" {
		t.Errorf("exec output %q, want 42", out)
	}
	if res := r.ctr("task", "exec", "--exec-id", "e2", id, "sh", "-c", "exit 3"); res.code != 3 {
		t.Errorf("exec exit code: %v; want 3", res)
	}
	if out := r.must("task", "ps", id); len(strings.Split(strings.TrimSpace(out), "\n")) < 3 {
		t.Errorf("ctr task ps shows fewer than two processes:\n%s", out)
	}
	ctrMetrics(r, id)
	r.must("task", "pause", id)
	if st, rst := r.taskStatus(id), r.state(id); st != "PAUSED" || rst != "paused" {
		t.Errorf("after pause: containerd says %q, %s says %q; want PAUSED/paused", st, r.rt.name, rst)
	}
	r.must("task", "resume", id)
	if st, rst := r.taskStatus(id), r.state(id); st != "RUNNING" || rst != "running" {
		t.Errorf("after resume: containerd says %q, %s says %q; want RUNNING/running", st, r.rt.name, rst)
	}
	r.must("task", "kill", id) // SIGTERM: the trap exits 0
	if !waitFor(10*time.Second, func() bool { return r.taskStatus(id) == "STOPPED" }) {
		t.Fatalf("task %s after ctr task kill, want STOPPED", r.taskStatus(id))
	}
	if rst := r.state(id); rst != "stopped" {
		t.Errorf("after kill: %s says %q, want stopped", r.rt.name, rst)
	}
	r.must("task", "rm", id)
	if st := r.state(id); st != "" {
		t.Errorf("after ctr task rm: %s still has %s (%s)", r.rt.name, id, st)
	}
}

// ctrMetrics checks `ctr task metrics`: the shim reads the cgroup of the
// task's pid, so it shows whether the processes are where the runtime said.
func ctrMetrics(r *ctrRuntime, id string) {
	out := r.must("task", "metrics", "--format", "json", id)
	var m struct {
		Pids   struct{ Current uint64 }
		Memory struct{ Usage struct{ Usage uint64 } }
		CPU    struct{ Usage struct{ Total uint64 } }
	}
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		r.t.Fatalf("ctr task metrics json: %v: %q", err, out)
	}
	if m.Pids.Current < 2 || m.Memory.Usage.Usage == 0 || m.CPU.Usage.Total == 0 {
		r.t.Errorf("metrics %+v; want >= 2 pids, memory and CPU in use (json %s)", m, out)
	}
}

func ctrRunTTY(r *ctrRuntime) {
	args := append(append([]string{"--address", r.addr, "-n", r.ns, "run", "-t", "--rm"},
		r.runArgs("tty")...), r.image, "tty", "sh")
	out, code := runTTY(r.t, nil, "# ", "tty; stty size; echo $((6*7)); exit 5\r", "ctr", args...)
	checkTTY(r.t, "ctr run -t", out, code, 5)
}

func ctrExecTTY(r *ctrRuntime) {
	r.runDetached("ex", "sleep", "1000")
	out, code := runTTY(r.t, nil, "# ", "tty; stty size; echo $((6*7)); exit 4\r", "ctr",
		"--address", r.addr, "-n", r.ns, "task", "exec", "-t", "--exec-id", "t1", "ex", "sh")
	checkTTY(r.t, "ctr task exec -t", out, code, 4)
}

// checkTTY checks what a shell on a client's terminal showed: a pty, the
// test terminal's size, the shell's output and its exit code.
func checkTTY(t *testing.T, what, out string, code, wantCode int) {
	t.Helper()
	for _, want := range []string{"/dev/pts/", fmt.Sprintf("%d %d", ttyRows, ttyCols), "42"} {
		if !strings.Contains(out, want) {
			t.Errorf("%s: terminal shows no %q:\n%q", what, want, out)
		}
	}
	if code != wantCode {
		t.Errorf("%s exit code %d, want %d; terminal:\n%q", what, code, wantCode, out)
	}
}

// ctrCgroupParentLimit gives the container a cgroup beneath a parent with
// a memory limit, as the kubelet does a pod's: 100 MiB do not fit under
// the parent's 32 MiB.
func ctrCgroupParentLimit(r *ctrRuntime) {
	parent := limitedCgroupParent(r.t, "ctd-limit-"+r.rt.name)
	args := append([]string{"run", "--rm"}, r.runArgs("lim")...)
	args[len(args)-1] = parent + "/lim" // runArgs ends with the --cgroup
	res := r.ctr(append(args, r.image, "lim", "dd", "if=/dev/zero", "of=/dev/null", "bs=100M", "count=1")...)
	if res.code != 137 {
		r.t.Errorf("%v; want an OOM kill (exit 137) under the parent's 32 MiB limit", res)
	}
	if !waitFor(10*time.Second, func() bool { return cgroupsEmpty(parent) }) {
		r.t.Errorf("processes still in %s 10 s after ctr run --rm", parent)
	}
}
