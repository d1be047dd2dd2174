package clients

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lkc-containers/lkc/internal/testutil/cri"
)

// TestCRI drives pods through containerd's CRI plugin with crictl, as the
// kubelet does, on containerd 1.6 and 2.x, with lkc as the pods' runtime
// handler and runc, the reference, through the same cases.
func TestCRI(t *testing.T) {
	requireSetup(t)
	for i, b := range criBuilds() {
		t.Run("containerd-"+b.Name, func(t *testing.T) {
			requireCRI(t, b)
			d := startCRI(t, b, i)
			for _, rt := range runtimes() {
				t.Run(rt.name, func(t *testing.T) {
					root := filepath.Join(cri.RuntimeRoot(d.dir, rt.name), cri.Namespace)
					t.Cleanup(func() { checkNoState(t, root) })
					for _, c := range criCases {
						t.Run(c.name, func(t *testing.T) {
							if c.v2 && b.Name == "1.6" {
								t.Skip("containerd 1.6's CRI plugin has no CheckpointContainer")
							}
							c.run(&criRuntime{d: d, t: t, rt: rt, root: root})
						})
					}
				})
			}
		})
	}
}

var criCases = []struct {
	name string
	run  func(*criRuntime)
	v2   bool // containerd 2.x only
}{
	{"pod", criPodLifecycle, false},
	{"shared namespaces", criSharedNamespaces, false},
	{"host namespaces", criHostNamespaces, false},
	{"read-only rootfs", criReadOnlyRootfs, false},
	{"pod cgroup limits", criPodCgroupLimits, false},
	{"checkpoint export", criCheckpointExport, true},
}

// criPodLifecycle runs a pod and a container in it through the CRI
// operations the kubelet uses: runp, create/start, inspect/inspectp,
// exec (streamed, synchronous, with a terminal), logs, stats/statsp,
// update, attach, logs --follow, stop/rm, stopp/rmp.
func criPodLifecycle(r *criRuntime) {
	t := r.t
	t0 := time.Now()
	pod := r.runPod("life", "", map[string]int{"pid": nsContainer})
	t1 := time.Now()
	criCheckSandbox(r, pod)
	app := pod.start(pod.container("app", []string{"sh", "-c",
		"trap 'echo bye; exit 0' TERM; echo out; echo err >&2; while :; do sleep 1 & wait $!; done"}, nil))
	t.Logf("%s: runp %v, create+start %v", r.rt.name, t1.Sub(t0).Round(time.Millisecond), time.Since(t1).Round(time.Millisecond))
	checkCgroupPlacement(t, r.rt, r.root, app, pod.parent)
	in := r.inspect(app)
	if st := ociState(t, r.rt, r.root, app); in.Status.State != "CONTAINER_RUNNING" || in.Info.Pid != st.Pid || in.Info.RuntimeOptions.BinaryName != r.rt.path {
		t.Errorf("crictl inspect: state %q, pid %d, binary %q; want CONTAINER_RUNNING, %d (the runtime's), %s",
			in.Status.State, in.Info.Pid, in.Info.RuntimeOptions.BinaryName, st.Pid, r.rt.path)
	}

	criCheckExec(r, app)
	if res := r.crictl("logs", app); res.stdout != "out\n" || res.stderr != "err\n" {
		t.Errorf("%v; want out on stdout, err on stderr", res)
	}
	criCheckStats(r, pod.id, app)

	criCheckUpdate(r, app)
	criCheckAttachAndFollow(r, pod)
	criCheckStop(r, app)
	pod.remove()
}

// criCheckSandbox checks that the handler's runtime runs the pod's
// sandbox and that crictl inspectp names the handler.
func criCheckSandbox(r *criRuntime, pod *criPod) {
	t := r.t
	if st := ociStatus(t, r.rt, r.root, pod.id); st != "running" {
		t.Fatalf("%s state of the sandbox %s after crictl runp: %q, want running", r.rt.name, pod.id, st)
	}
	// containerd 1.6 names the handler in its info, 2.x in the status.
	var sb struct {
		Status struct {
			State          string
			RuntimeHandler string `json:"runtimeHandler"`
		}
		Info struct {
			RuntimeHandler string `json:"runtimeHandler"`
		}
	}
	if err := json.Unmarshal([]byte(r.must("inspectp", "-o", "json", pod.id)), &sb); err != nil {
		t.Fatalf("crictl inspectp: %v", err)
	}
	if sb.Status.State != "SANDBOX_READY" || sb.Status.RuntimeHandler != r.rt.name && sb.Info.RuntimeHandler != r.rt.name {
		t.Errorf("crictl inspectp: state %q, runtime handler %q/%q; want SANDBOX_READY, %s",
			sb.Status.State, sb.Status.RuntimeHandler, sb.Info.RuntimeHandler, r.rt.name)
	}
}

// criCheckExec runs commands in a running container with crictl exec:
// streamed, synchronous and on a terminal.
func criCheckExec(r *criRuntime, app string) {
	t := r.t
	if out := r.exec(app, "sh", "-c", "echo exec-out; hostname"); out != "exec-out\nlife\n" {
		t.Errorf("crictl exec: %q, want exec-out and the pod's hostname", out)
	}
	// crictl exits 1 when the command fails, and names its exit code.
	if res := r.crictl("exec", app, "sh", "-c", "echo to-err >&2; exit 3"); res.code == 0 || !strings.Contains(res.stderr, "to-err") ||
		!strings.Contains(res.stderr, "exit code 3") {
		t.Errorf("%v; want to-err and exit code 3 on stderr", res)
	}
	if out := r.must("exec", "--sync", app, "sh", "-c", "echo sync"); strings.TrimSpace(out) != "sync" {
		t.Errorf("crictl exec --sync: %q, want sync", out)
	}
	if res := r.crictl("exec", "--sync", app, "sh", "-c", "exit 4"); res.code == 0 || !strings.Contains(res.stderr, "exited with 4") {
		t.Errorf("%v; want exited with 4", res)
	}
	out, _ := runTTY(t, nil, "# ", "tty; stty size; exit 5\r", cri.Crictl, "--config", r.d.crictlConf, "exec", "-it", app, "sh")
	if !strings.Contains(out, "exit code 5") || !strings.Contains(out, "/dev/pts/") || !strings.Contains(out, fmt.Sprintf("%d %d", ttyRows, ttyCols)) {
		t.Errorf("crictl exec -it: the terminal shows %q; want a /dev/pts tty of %dx%d and exit code 5", out, ttyRows, ttyCols)
	}
}

// criCheckUpdate changes a running container's memory and CPU limits with
// crictl update and reads them back from its cgroup.
func criCheckUpdate(r *criRuntime, app string) {
	t := r.t
	r.must("update", "--memory", "67108864", "--cpu-quota", "50000", "--cpu-period", "100000", app)
	pid := ociState(t, r.rt, r.root, app).Pid
	if v := cgroupValue(t, pid, "memory", "memory.limit_in_bytes", "memory.max"); v != "67108864" {
		t.Errorf("memory limit of %s after crictl update --memory 64 MiB: %q", app, v)
	}
	if v := cgroupValue(t, pid, "cpu", "cpu.cfs_quota_us", "cpu.max"); v != "50000" && v != "50000 100000" {
		t.Errorf("CPU quota of %s after crictl update --cpu-quota 50000: %q", app, v)
	}

}

// criCheckAttachAndFollow attaches to a container's stdin, and follows a
// container's log until it exits.
func criCheckAttachAndFollow(r *criRuntime, pod *criPod) {
	t := r.t
	reader := pod.startOnly(pod.container("reader", []string{"sh", "-c", "read line; echo got:$line"},
		map[string]any{"stdin": true, "stdin_once": true}))
	res, err := runWithInput(t, nil, strings.NewReader("hello\n"), cri.Crictl, "--config", r.d.crictlConf, "attach", "-i", reader)
	if err != nil || !strings.Contains(res.stdout, "got:hello") {
		t.Errorf("crictl attach -i: %v %v; want got:hello", res, err)
	}
	counter := pod.startOnly(pod.container("counter", []string{"sh", "-c", "echo one; sleep 1; echo two; sleep 1; echo three"}, nil))
	if res := r.crictl("logs", "--follow", counter); res.code != 0 || res.stdout != "one\ntwo\nthree\n" {
		t.Errorf("%v; want one, two, three, until the container exits", res)
	}

}

// criCheckStop stops a container (its TERM trap runs), removes it, and
// checks that the runtime forgot it.
func criCheckStop(r *criRuntime, app string) {
	t := r.t
	r.must("stop", "--timeout", "10", app)
	if in := r.inspect(app); in.Status.State != "CONTAINER_EXITED" || in.Status.ExitCode != 0 {
		t.Errorf("after crictl stop: state %q, exit code %d; want CONTAINER_EXITED, 0 (the TERM trap)", in.Status.State, in.Status.ExitCode)
	}
	if res := r.crictl("logs", app); res.stdout != "out\nbye\n" {
		t.Errorf("%v; want the TERM trap's bye", res)
	}
	r.must("rm", app)
	if st := ociStatus(t, r.rt, r.root, app); st != "" {
		t.Errorf("%s still has %s (%s) after crictl rm", r.rt.name, app, st)
	}
}

// criCheckStats checks that crictl stats and statsp report the running
// container's and pod's CPU and memory use.
func criCheckStats(r *criRuntime, pod, ctr string) {
	t := r.t
	var cs struct {
		Stats []struct {
			CPU    struct{ UsageCoreNanoSeconds struct{ Value json.Number } }
			Memory struct{ WorkingSetBytes struct{ Value json.Number } }
		}
	}
	out := r.must("stats", "-o", "json", ctr)
	if err := json.Unmarshal([]byte(out), &cs); err != nil || len(cs.Stats) != 1 ||
		positive(cs.Stats[0].CPU.UsageCoreNanoSeconds.Value) == 0 || positive(cs.Stats[0].Memory.WorkingSetBytes.Value) == 0 {
		t.Errorf("crictl stats %s: %v: %s; want its CPU time and working set", ctr, err, out)
	}
	var ps struct {
		Stats []struct {
			Linux struct {
				Memory     struct{ WorkingSetBytes struct{ Value json.Number } }
				Containers []struct{ Attributes struct{ ID string } }
			}
		}
	}
	out = r.must("statsp", "-o", "json", pod)
	if err := json.Unmarshal([]byte(out), &ps); err != nil || len(ps.Stats) != 1 ||
		positive(ps.Stats[0].Linux.Memory.WorkingSetBytes.Value) == 0 || len(ps.Stats[0].Linux.Containers) == 0 {
		t.Errorf("crictl statsp %s: %v: %s; want the pod's working set and its containers", pod, err, out)
	}
}

// positive reads a protobuf JSON uint64 (a string or a number); 0 when it
// is neither.
func positive(n json.Number) uint64 {
	v, _ := strconv.ParseUint(strings.Trim(string(n), `"`), 10, 64)
	return v
}

// cgroupValue reads a cgroup file of process pid: v1 from controller
// ctrl's hierarchy, else v2's.
func cgroupValue(t *testing.T, pid int, ctrl, v1, v2 string) string {
	t.Helper()
	for _, line := range strings.Split(readFile(fmt.Sprintf("/proc/%d/cgroup", pid)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[1] == "" && isCgroup2("/sys/fs/cgroup") {
			return strings.TrimSpace(readFile(filepath.Join("/sys/fs/cgroup", parts[2], v2)))
		}
		for _, c := range strings.Split(parts[1], ",") {
			if c == ctrl {
				matches, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*"+ctrl+"*", parts[2], v1))
				if len(matches) > 0 {
					return strings.TrimSpace(readFile(matches[0]))
				}
			}
		}
	}
	t.Errorf("no %s cgroup file for process %d", ctrl, pid)
	return ""
}

// criSharedNamespaces runs two containers in a pod: both are in the
// sandbox's network and IPC namespaces, and one reaches the other's server
// on localhost.
func criSharedNamespaces(r *criRuntime) {
	t := r.t
	pod := r.runPod("peers", "", map[string]int{"pid": nsContainer})
	server := pod.start(pod.container("server", []string{"sh", "-c",
		"echo pod-peer > /tmp/index.html && exec httpd -f -p 127.0.0.1:8080 -h /tmp"}, nil))
	client := pod.start(pod.container("client", []string{"sleep", "3600"}, nil))
	sandbox := ociState(t, r.rt, r.root, pod.id).Pid
	for _, ns := range []string{"net", "ipc"} {
		want, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", sandbox, ns))
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{server, client} {
			if got := strings.TrimSpace(r.exec(id, "readlink", "/proc/self/ns/"+ns)); got != want {
				t.Errorf("%s namespace of container %s: %s, want the sandbox's %s", ns, id, got, want)
			}
		}
	}
	var res result
	if !waitFor(10*time.Second, func() bool {
		res = r.crictl("exec", client, "wget", "-qO-", "http://127.0.0.1:8080/")
		return res.code == 0
	}) || res.stdout != "pod-peer\n" {
		t.Errorf("%v; want the server container's page over the pod's localhost", res)
	}
}

// criHostNamespaces runs a hostNetwork, hostPID pod: its container is in
// the host's network and PID namespaces.
func criHostNamespaces(r *criRuntime) {
	t := r.t
	host := map[string]int{"network": nsNode, "pid": nsNode}
	pod := r.runPod("host", "", host)
	id := pod.start(pod.container("host", []string{"sleep", "3600"},
		map[string]any{"linux": map[string]any{"security_context": map[string]any{"namespace_options": host}}}))
	for _, ns := range []string{"net", "pid"} {
		want, err := os.Readlink("/proc/self/ns/" + ns)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.TrimSpace(r.exec(id, "readlink", "/proc/self/ns/"+ns)); got != want {
			t.Errorf("%s namespace of a host-namespace pod's container: %s, want the host's %s", ns, got, want)
		}
	}
	if res := r.crictl("exec", id, "test", "-d", fmt.Sprintf("/proc/%d", os.Getpid())); res.code != 0 {
		t.Errorf("%v; a hostPID container should see the test's process", res)
	}
}

// criReadOnlyRootfs runs a container with a read-only root filesystem and
// a tmpfs the host mounted (as the kubelet mounts a memory-backed
// emptyDir): the root refuses writes, the tmpfs takes them and the host
// sees them.
func criReadOnlyRootfs(r *criRuntime) {
	t := r.t
	scratch := t.TempDir()
	if err := syscall.Mount("tmpfs", scratch, "tmpfs", 0, "size=4m"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(scratch, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmounting %s: %v", scratch, err)
		}
	})
	pod := r.runPod("ro", "", map[string]int{"pid": nsContainer})
	id := pod.start(pod.container("ro", []string{"sleep", "3600"}, map[string]any{
		"mounts": []map[string]any{{"container_path": "/scratch", "host_path": scratch}},
		"linux": map[string]any{"security_context": map[string]any{
			"readonly_rootfs":   true,
			"namespace_options": map[string]int{"pid": nsContainer},
		}},
	}))
	if res := r.crictl("exec", id, "touch", "/rootfs-file"); res.code == 0 || !strings.Contains(res.stderr, "Read-only file system") {
		t.Errorf("%v; want the read-only root to refuse the write", res)
	}
	r.exec(id, "sh", "-c", "echo from-pod > /scratch/f")
	if got := readFile(filepath.Join(scratch, "f")); got != "from-pod\n" {
		t.Errorf("the host's tmpfs has %q, want what the container wrote", got)
	}
	if out := r.exec(id, "grep", " /scratch ", "/proc/mounts"); !strings.HasPrefix(out, "tmpfs ") {
		t.Errorf("/scratch in the container: %q, want the tmpfs", out)
	}
}

// criPodCgroupLimits gives a pod a cgroup_parent with a 32 MiB memory
// limit, 0.1 CPU and 16 pids set beforehand, as the kubelet sets its pod
// cgroup: a busy container gets no more CPU time than that, a container
// asking for 100 MiB is OOM-killed at the pod's limit (and crictl inspect
// says OOMKilled), and a fork storm stops at the pids limit.
func criPodCgroupLimits(r *criRuntime) {
	t := r.t
	parent := limitedCgroupParent(t, "cri-"+r.rt.name+"-limits")
	setParentLimit(t, parent, "pids", "pids.max", "16", "pids.max", "16")
	setParentLimit(t, parent, "cpu", "cpu.cfs_quota_us", "10000", "cpu.max", "10000 100000")
	pod := r.runPod("limits", parent, map[string]int{"pid": nsContainer})
	spin := pod.start(pod.container("spin", []string{"sh", "-c", "while :; do :; done"}, nil))
	used := criCPUTime(r, spin)
	time.Sleep(time.Second)
	cpu := criCPUTime(r, spin) - used
	t.Logf("%s: a busy container in a pod held to 0.1 CPU used %v of CPU time in 1 s", r.rt.name, cpu)
	if cpu > 200*time.Millisecond {
		t.Errorf("the pod's CPU quota does not hold its container")
	}
	r.must("stop", spin)
	// The shim watches a container's OOM events from when start returns:
	// an allocation before that would be an OOM kill it never hears of.
	hog := pod.startOnly(pod.container("hog", []string{"sh", "-c", "sleep 1; dd if=/dev/zero of=/dev/null bs=100M count=1"}, nil))
	in := r.waitExited(hog)
	// The OOM event may come after the exit: the reason changes then.
	waitFor(5*time.Second, func() bool { in = r.inspect(hog); return in.Status.Reason == "OOMKilled" })
	if in.Status.Reason != "OOMKilled" || in.Status.ExitCode != 137 {
		t.Errorf("a 100 MiB container in a 32 MiB pod: exit code %d, reason %q; want 137, OOMKilled", in.Status.ExitCode, in.Status.Reason)
	}
	forker := pod.startOnly(pod.container("forker", []string{"sh", "-c", "for i in $(seq 30); do sleep 2 & done; wait"}, nil))
	r.waitExited(forker)
	if res := r.crictl("logs", forker); !strings.Contains(res.stderr, "can't fork") {
		t.Errorf("%v; want forks refused at the pod's pids limit of 16", res)
	}
}

// criCheckpointExport checkpoints a running container through the CRI
// (KEP-2008, `crictl checkpoint --export`): the archive holds CRIU's
// images of the process, the container's spec and its root filesystem
// changes, and the container goes on counting.
func criCheckpointExport(r *criRuntime) {
	t := r.t
	pod := r.runPod("ckpt", "", map[string]int{"pid": nsContainer})
	id := pod.start(pod.container("count", []string{"sh", "-c",
		"i=0; while :; do i=$((i+1)); echo $i > /tmp/n; sleep 0.1; done"}, nil))
	count := func() int {
		n, _ := strconv.Atoi(strings.TrimSpace(r.crictl("exec", "--sync", id, "cat", "/tmp/n").stdout))
		return n
	}
	waitFor(5*time.Second, func() bool { return count() >= 3 })
	archive := filepath.Join(t.TempDir(), "checkpoint.tar")
	r.must("checkpoint", "--export="+archive, id)
	before := count()
	res := command(t, nil, "tar", "-tf", archive)
	for _, want := range []string{"checkpoint/inventory.img", "checkpoint/pstree.img", "spec.dump", "config.dump", "rootfs-diff.tar"} {
		if !strings.Contains("\n"+res.stdout, "\n"+want+"\n") {
			t.Errorf("checkpoint archive has no %s: %v", want, res)
		}
	}
	dir := t.TempDir()
	command(t, nil, "tar", "-C", dir, "-xf", archive, "rootfs-diff.tar")
	if diff := command(t, nil, "tar", "-tf", filepath.Join(dir, "rootfs-diff.tar")); !strings.Contains(diff.stdout, "tmp/n") {
		t.Errorf("the archive's rootfs-diff.tar does not hold the container's /tmp/n: %v", diff)
	}
	if !waitFor(5*time.Second, func() bool { return count() > before }) {
		t.Errorf("the container stopped counting at %d after crictl checkpoint", before)
	}
	if st := ociStatus(t, r.rt, r.root, id); st != "running" {
		t.Errorf("%s state of %s after crictl checkpoint: %q, want running", r.rt.name, id, st)
	}
}

// setParentLimit writes a limit on a pod's cgroup parent before the pod
// runs, as the kubelet does: file v1 in controller ctrl's hierarchy (the
// directory made here; cgroupParent's cleanup removes it), else v2.
func setParentLimit(t *testing.T, parent, ctrl, v1, val1, v2, val2 string) {
	t.Helper()
	dir, file, val := filepath.Join("/sys/fs/cgroup", ctrl, parent), v1, val1
	if isCgroup2("/sys/fs/cgroup") {
		dir, file, val = filepath.Join("/sys/fs/cgroup", parent), v2, val2
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, file), []byte(val), 0); err != nil {
		t.Fatal(err)
	}
}

// criCPUTime is a container's CPU time so far, from crictl stats.
func criCPUTime(r *criRuntime, id string) time.Duration {
	r.t.Helper()
	var cs struct {
		Stats []struct {
			CPU struct{ UsageCoreNanoSeconds struct{ Value json.Number } }
		}
	}
	out := r.must("stats", "-o", "json", id)
	if err := json.Unmarshal([]byte(out), &cs); err != nil || len(cs.Stats) != 1 {
		r.t.Fatalf("crictl stats %s: %v: %s", id, err, out)
	}
	return time.Duration(positive(cs.Stats[0].CPU.UsageCoreNanoSeconds.Value))
}
