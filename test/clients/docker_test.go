package clients

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lkc-containers/lkc/internal/testutil/cri"
)

// dockerCLI is the client from Debian's docker.io, matching its dockerd.
const dockerCLI = "/usr/bin/docker"

// docker is a dockerd the test started with the daemon.json of
// docs/clients.md and data, exec root, socket and cgroup parent of its
// own; it runs its own containerd under the exec root.
type docker struct {
	t        *testing.T
	dir      string
	host     string
	image    string
	cmd      *exec.Cmd
	exit     chan error
	cgParent string
}

func startDocker(t *testing.T) *docker {
	t.Helper()
	// Not t.TempDir(): the sockets under it must stay under 108 bytes.
	dir, err := os.MkdirTemp("", "lkc-dk-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	d := &docker{t: t, dir: dir, host: "unix://" + filepath.Join(dir, "docker.sock"),
		image: "lkc-clients-busybox:docker", exit: make(chan error, 1), cgParent: cgroupParent(t, "docker")}
	conf := filepath.Join(dir, "daemon.json")
	if err := os.WriteFile(conf, []byte(snippet(t, "docker daemon.json")), 0o644); err != nil {
		t.Fatal(err)
	}
	log, err := os.Create(filepath.Join(dir, "dockerd.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	d.cmd = exec.Command("dockerd", "--config-file", conf,
		"--data-root", filepath.Join(dir, "data"), "--exec-root", filepath.Join(dir, "exec"),
		"--pidfile", filepath.Join(dir, "docker.pid"), "--host", d.host,
		"--bridge", "none", "--iptables=false", "--ip-masq=false", "--storage-driver", "vfs",
		"--exec-opt", "native.cgroupdriver=cgroupfs", "--cgroup-parent", d.cgParent)
	d.cmd.Stdout, d.cmd.Stderr = log, log
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.exit <- d.cmd.Wait() }()
	t.Cleanup(d.stop)
	if !waitFor(30*time.Second, func() bool { return d.docker("version").code == 0 }) {
		t.Fatalf("dockerd did not answer on %s within 30s; log:\n%s", d.host, lastLines(readFile(log.Name()), 20))
	}
	d.must("import", imageTar, d.image)
	return d
}

func (d *docker) docker(args ...string) result {
	d.t.Helper()
	return command(d.t, nil, dockerCLI, append([]string{"--host", d.host}, args...)...)
}

func (d *docker) must(args ...string) string {
	d.t.Helper()
	r := d.docker(args...)
	if r.code != 0 {
		d.t.Fatalf("%v", r)
	}
	return r.stdout
}

// stop removes the containers and the image, stops dockerd and checks that
// neither it, its containerd nor a shim still runs and nothing is mounted.
func (d *docker) stop() {
	t := d.t
	if ids := strings.Fields(d.docker("ps", "-a", "-q").stdout); len(ids) > 0 {
		t.Errorf("containers left in docker: %v", ids)
		d.docker(append([]string{"rm", "-f"}, ids...)...)
	}
	if r := d.docker("rmi", d.image); r.code != 0 {
		t.Errorf("%v", r)
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exit:
	case <-time.After(20 * time.Second):
		t.Errorf("dockerd did not exit within 20s of SIGTERM; killing it")
		d.cmd.Process.Kill()
		<-d.exit
	}
	if pids := cri.ProcessesMentioning(d.dir); len(pids) > 0 {
		t.Errorf("processes still running for dockerd in %s (containerd, shims?): %v", d.dir, pids)
	}
	if strings.Contains(readFile("/proc/self/mountinfo"), d.dir) {
		t.Errorf("mounts under %s left after dockerd stopped", d.dir)
	}
}

// state asks the runtime for a container's status in the root dockerd
// gives it. Docker 20.10 gives every runtime that runs through the runc
// shim the same one, <exec-root>/runtime-runc/moby.
func (d *docker) state(rt ociRuntime, id string) string {
	d.t.Helper()
	return ociStatus(d.t, rt, filepath.Join(d.dir, "exec", "runtime-runc", "moby"), id)
}

// TestDockerDaemonJSON runs Docker with the documented daemon.json and
// drives containers with --runtime lkc and --runtime runc.
func TestDockerDaemonJSON(t *testing.T) {
	requireSetup(t)
	d := startDocker(t)
	for _, rt := range runtimes() {
		t.Run(rt.name, func(t *testing.T) {
			d.t = t
			dockerCases(d, rt)
		})
	}
	d.t = t
}

// dockerCases runs a container in the foreground and drives a detached one
// through exec, logs, top, stats, pause/unpause, update, stop, start, kill
// and rm.
func dockerCases(d *docker, rt ociRuntime) {
	t := d.t
	run := []string{"run", "--runtime", rt.name, "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"}
	if r := d.docker(append(run, "--rm", d.image, "sh", "-c", "echo out; exit 7")...); r.code != 7 || r.stdout != "out\n" {
		t.Errorf("%v; want exit 7 and out", r)
	}
	if r := d.docker(append(run, "--rm", d.image, "/nonexistent")...); r.code != 127 || !strings.Contains(r.stderr, "no such file or directory") {
		t.Errorf("%v; want exit 127 and the runtime's error", r)
	}
	id := strings.TrimSpace(d.must(append(run, "-d", "--name", "dk", d.image, "sh", "-c",
		`trap 'exit 0' TERM; echo started; while true; do sleep 0.1; done`)...))
	defer d.docker("rm", "-f", "dk")
	if st := d.state(rt, id); st != "running" {
		t.Errorf("%s state after docker run -d: %q, want running", rt.name, st)
	}
	checkCgroupPlacement(t, rt, filepath.Join(d.dir, "exec", "runtime-runc", "moby"), id, d.cgParent)
	if out := d.must("exec", "dk", "sh", "-c", "echo $((6*7))"); out != "42\n" {
		t.Errorf("docker exec: %q, want 42", out)
	}
	if out := d.must("logs", "dk"); out != "started\n" {
		t.Errorf("docker logs: %q, want started", out)
	}
	if out := d.must("top", "dk"); !strings.Contains(out, "trap") {
		t.Errorf("docker top shows no container shell:\n%s", out)
	}
	if out := strings.TrimSpace(d.must("stats", "--no-stream", "--format", "{{.PIDs}}", "dk")); out != "2" {
		t.Errorf("docker stats: %q pids, want 2", out)
	}
	d.must("pause", "dk")
	if st, rst := strings.TrimSpace(d.must("inspect", "-f", "{{.State.Status}}", "dk")), d.state(rt, id); st != "paused" || rst != "paused" {
		t.Errorf("after pause: docker says %q, %s says %q", st, rt.name, rst)
	}
	d.must("unpause", "dk")
	dockerUpdate(d)
	d.must("stop", "dk")
	if code := strings.TrimSpace(d.must("inspect", "-f", "{{.State.ExitCode}}", "dk")); code != "0" {
		t.Errorf("exit code after docker stop %s, want 0 (the trap's)", code)
	}
	d.must("start", "dk")
	d.must("kill", "dk")
	if code := strings.TrimSpace(d.must("inspect", "-f", "{{.State.ExitCode}}", "dk")); code != "137" {
		t.Errorf("exit code after docker kill %s, want 137", code)
	}
	d.must("rm", "dk")
	if st := d.state(rt, id); st != "" {
		t.Errorf("%s still has %s (%s) after docker rm", rt.name, id, st)
	}
	out, code := runTTY(t, nil, "# ", "tty; stty size; echo $((6*7)); exit 5\r", dockerCLI,
		append([]string{"--host", d.host}, append(run, "-it", "--rm", d.image, "sh")...)...)
	checkTTY(t, "docker run -it", out, code, 5)
}

// dockerUpdate changes limits of the running container: dockerd hands the
// runtime `update --resources -` with every limit, 0 for those unchanged.
func dockerUpdate(d *docker) {
	d.must("update", "--memory", "128m", "--memory-swap", "256m", "--pids-limit", "40", "--cpu-shares", "256", "dk")
	out := d.must("exec", "dk", "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes",
		"/sys/fs/cgroup/pids/pids.max", "/sys/fs/cgroup/cpu/cpu.shares")
	if out != "134217728\n40\n256\n" {
		d.t.Errorf("limits after docker update: %q, want 128m, 40 pids, 256 shares", out)
	}
}
