package clients

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// podman is one runtime's Podman: storage, run and tmp directories,
// network config and cgroup parent of its own, so the machine's Podman
// state is never touched.
type podman struct {
	t        *testing.T
	rt       ociRuntime
	dir      string
	image    string
	cgParent string
	env      []string
	globals  []string
}

// newPodman sets up Podman for rt with the busybox image imported; its
// cleanup removes every container and the image and checks that nothing
// is left in Podman, in the runtime's root or in the cgroups.
func newPodman(t *testing.T, rt ociRuntime) *podman {
	t.Helper()
	// Not t.TempDir(): Podman refuses a runroot longer than 50 bytes.
	dir, err := os.MkdirTemp("", "lkc-pm-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	p := &podman{t: t, rt: rt, dir: dir, image: "localhost/lkc-clients-busybox:" + rt.name}
	for _, d := range []string{"tmp", "net"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// The containers.conf of docs/clients.md: it names lkc's path and
	// makes Podman pass --log-format json and read runtime errors from that
	// log; --runtime below still picks the runtime of each case.
	conf := filepath.Join(dir, "containers.conf")
	if err := os.WriteFile(conf, []byte(snippet(t, "podman containers.conf")), 0o644); err != nil {
		t.Fatal(err)
	}
	p.env = []string{
		"CONTAINERS_CONF=" + conf,
		"TMPDIR=" + filepath.Join(dir, "tmp"),
	}
	p.globals = []string{
		"--root", filepath.Join(dir, "root"), "--runroot", filepath.Join(dir, "run"),
		"--tmpdir", filepath.Join(dir, "tmp"), "--network-config-dir", filepath.Join(dir, "net"),
		"--storage-driver", "vfs", "--cgroup-manager", "cgroupfs", "--events-backend", "file",
		"--runtime", rt.path,
	}
	p.cgParent = cgroupParent(t, "podman-"+rt.name)
	t.Cleanup(p.cleanup)
	p.must("import", imageTar, p.image)
	return p
}

// podman runs podman with this setup's global flags.
func (p *podman) podman(args ...string) result {
	p.t.Helper()
	return command(p.t, p.env, "podman", append(append([]string(nil), p.globals...), args...)...)
}

// must runs podman and fails the test unless it exits 0.
func (p *podman) must(args ...string) string {
	p.t.Helper()
	r := p.podman(args...)
	if r.code != 0 {
		p.t.Fatalf("%v", r)
	}
	return r.stdout
}

// runArgs are the flags every container gets: limits the issue asks for,
// and a cgroup parent beneath this test's own cgroup.
func (p *podman) runArgs() []string {
	return []string{"--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024", "--cgroup-parent", p.cgParent}
}

// runDetached starts a container named name running cmd and returns its id.
func (p *podman) runDetached(name string, extra []string, cmd ...string) string {
	p.t.Helper()
	args := append(append([]string{"run", "-d", "--name", name}, p.runArgs()...), extra...)
	out := p.must(append(append(args, p.image), cmd...)...)
	id := strings.TrimSpace(out)
	if st := runtimeStatus(p.t, p.rt, id); st != "running" {
		p.t.Fatalf("%s state of %s after podman run -d: %q, want running", p.rt.name, name, st)
	}
	checkCgroupPlacement(p.t, p.rt, runtimeRoot(p.rt), id, p.cgParent)
	return id
}

// status is Podman's view of a container's state.
func (p *podman) status(name string) string {
	p.t.Helper()
	return strings.TrimSpace(p.must("inspect", "--format", "{{.State.Status}}", name))
}

// rm removes a container if it still exists and checks that the runtime
// forgot it (id "" looks the id up).
func (p *podman) rm(name, id string) {
	p.t.Helper()
	if p.podman("container", "exists", name).code != 0 {
		return
	}
	if id == "" {
		id = strings.TrimSpace(p.must("inspect", "--format", "{{.Id}}", name))
	}
	p.must("rm", "-f", "-t", "0", name)
	if st := runtimeStatus(p.t, p.rt, id); st != "" {
		p.t.Errorf("%s still has container %s (%s) after podman rm", p.rt.name, name, st)
	}
}

func (p *podman) cleanup() {
	t := p.t
	ids := strings.Fields(p.podman("ps", "-a", "-q", "--no-trunc").stdout)
	if len(ids) > 0 {
		t.Errorf("containers left by the test: %v", ids)
		p.podman(append([]string{"rm", "-f", "-t", "0"}, ids...)...)
	}
	if r := p.podman("rmi", "-f", p.image); r.code != 0 {
		t.Errorf("removing the imported image: %v", r)
	}
	if imgs := strings.TrimSpace(p.podman("images", "-q").stdout); imgs != "" {
		t.Errorf("images left: %s", imgs)
	}
	for _, id := range ids {
		if st := runtimeStatus(t, p.rt, id); st != "" {
			t.Errorf("%s still has container %s (%s) after podman rm", p.rt.name, id, st)
		}
	}
	// Podman's own mounts (the image layers with vfs are plain directories;
	// shm and netns are mounts) must be gone before the directory is removed.
	if mounts := readFile("/proc/self/mountinfo"); strings.Contains(mounts, p.dir) {
		t.Errorf("mounts under %s left after podman cleaned up", p.dir)
		p.podman("system", "reset", "-f")
	}
}

// runtimeRoot is the state root a client's runtime uses when the client
// passes none: Podman passes no --root to a runtime when run as root.
func runtimeRoot(rt ociRuntime) string {
	if rt.name == "lkc" {
		return "/run/lkc"
	}
	return "/run/" + rt.name
}

// runtimeStatus asks the runtime itself for a container's status; "" when
// it does not know the container.
func runtimeStatus(t *testing.T, rt ociRuntime, id string) string {
	t.Helper()
	return ociStatus(t, rt, runtimeRoot(rt), id)
}

func ociStatus(t *testing.T, rt ociRuntime, root, id string) string {
	t.Helper()
	return ociState(t, rt, root, id).Status
}

// ociStateOf is the part of a runtime's `state` output the tests read.
type ociStateOf struct {
	Status, Bundle string
	Pid            int
}

// ociState asks the runtime for a container's state; the zero value when
// it does not know the container.
func ociState(t *testing.T, rt ociRuntime, root, id string) ociStateOf {
	t.Helper()
	var st ociStateOf
	r := command(t, nil, rt.path, "--root", root, "state", id)
	if r.code != 0 {
		if !strings.Contains(r.stderr, "not exist") {
			t.Errorf("%s state %s: %v", rt.name, id, r)
		}
		return st
	}
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		t.Fatalf("%s state %s: %v: %q", rt.name, id, err, r.stdout)
	}
	return st
}

// TestPodman runs Podman's container operations with each runtime.
func TestPodman(t *testing.T) {
	requireSetup(t)
	for _, rt := range runtimes() {
		t.Run(rt.name, func(t *testing.T) {
			p := newPodman(t, rt)
			for _, c := range podmanCases {
				t.Run(c.name, func(t *testing.T) {
					p.t = t
					c.run(p)
				})
			}
			p.t = t
		})
	}
}

var podmanCases = []struct {
	name string
	run  func(*podman)
}{
	{"RunForeground", podmanRunForeground},
	{"RunDetachedOps", podmanDetachedOps},
	{"RunInteractiveTTY", podmanRunTTY},
	{"ExecTTY", podmanExecTTY},
	{"Healthcheck", podmanHealthcheck},
	{"PublishedPort", podmanPublishedPort},
	{"ErrorExitCodes", podmanErrorExitCodes},
	{"ReadOnlyTmpfs", podmanReadOnlyTmpfs},
	{"NetworkNone", podmanNetworkNone},
	{"CgroupParentLimit", podmanCgroupParentLimit},
}

func podmanRunForeground(p *podman) {
	args := append(append([]string{"run", "--rm", "--name", "fg"}, p.runArgs()...), p.image,
		"sh", "-c", "echo out; echo err >&2; ulimit -n; exit 7")
	r := p.podman(args...)
	if r.code != 7 || r.stdout != "out\n1024\n" || !strings.Contains(r.stderr, "err") {
		p.t.Errorf("got %v; want exit 7, stdout \"out\\n1024\\n\", err on stderr", r)
	}
	if ids := strings.TrimSpace(p.must("ps", "-a", "-q")); ids != "" {
		p.t.Errorf("podman run --rm left %s", ids)
	}
}

func podmanHealthcheck(p *podman) {
	t := p.t
	id := p.runDetached("hc", []string{"--health-cmd", "test -e /tmp/healthy", "--health-interval", "disable"},
		"sleep", "1000")
	defer p.rm("hc", id)
	if r := p.podman("healthcheck", "run", "hc"); r.code != 1 {
		t.Errorf("healthcheck before the file exists: %v; want exit 1 (unhealthy)", r)
	}
	p.must("exec", "hc", "touch", "/tmp/healthy")
	if r := p.podman("healthcheck", "run", "hc"); r.code != 0 {
		t.Errorf("healthcheck after the file exists: %v; want exit 0", r)
	}
	if h := strings.TrimSpace(p.must("inspect", "--format", "{{.State.Health.Status}}", "hc")); h != "healthy" {
		t.Errorf("health status %q, want healthy", h)
	}
}

// podmanDetachedOps drives one detached container through exec, logs, top,
// stats, pause/unpause, stop, start, kill and rm, checking each step in
// the runtime's own state as well as Podman's.
func podmanDetachedOps(p *podman) {
	t := p.t
	id := p.runDetached("d", nil, "sh", "-c",
		`trap 'echo got TERM; exit 0' TERM; echo started; while true; do sleep 0.1; done`)
	defer p.rm("d", id)
	if out := p.must("exec", "d", "sh", "-c", "echo $((6*7))"); out != "42\n" {
		t.Errorf("exec output %q, want 42", out)
	}
	if r := p.podman("exec", "d", "sh", "-c", "exit 3"); r.code != 3 {
		t.Errorf("exec exit code: %v; want 3", r)
	}
	if !waitFor(5*time.Second, func() bool { return strings.Contains(p.must("logs", "d"), "started") }) {
		t.Errorf("podman logs: no \"started\"")
	}
	if out := p.must("top", "d"); !strings.Contains(out, "PID") || !strings.Contains(out, "trap") {
		t.Errorf("podman top shows no header or no container shell:\n%s", out)
	}
	podmanStats(p, "d")
	p.must("pause", "d")
	if st, rst := p.status("d"), runtimeStatus(t, p.rt, id); st != "paused" || rst != "paused" {
		t.Errorf("after pause: podman says %q, %s says %q; want paused", st, p.rt.name, rst)
	}
	p.must("unpause", "d")
	if st, rst := p.status("d"), runtimeStatus(t, p.rt, id); st != "running" || rst != "running" {
		t.Errorf("after unpause: podman says %q, %s says %q; want running", st, p.rt.name, rst)
	}
	start := time.Now()
	p.must("stop", "-t", "20", "d")
	if el := time.Since(start); el > 10*time.Second {
		t.Errorf("podman stop took %v: SIGTERM did not reach the container's trap", el)
	}
	if code := strings.TrimSpace(p.must("inspect", "--format", "{{.State.ExitCode}}", "d")); code != "0" {
		t.Errorf("exit code after stop %s, want 0 (the trap's exit)", code)
	}
	if !strings.Contains(p.must("logs", "d"), "got TERM") {
		t.Errorf("podman logs: no \"got TERM\" after stop")
	}
	p.must("start", "d")
	if rst := runtimeStatus(t, p.rt, id); rst != "running" {
		t.Errorf("after podman start: %s says %q, want running", p.rt.name, rst)
	}
	p.must("kill", "d")
	if !waitFor(10*time.Second, func() bool { return p.status("d") == "exited" }) {
		t.Fatalf("container still %s after podman kill", p.status("d"))
	}
	if code := strings.TrimSpace(p.must("inspect", "--format", "{{.State.ExitCode}}", "d")); code != "137" {
		t.Errorf("exit code after kill %s, want 137 (SIGKILL)", code)
	}
}

func podmanStats(p *podman, name string) {
	out := p.must("stats", "--no-stream", "--format", "json", name)
	var stats []struct {
		PIDs     string `json:"pids"`
		MemUsage string `json:"mem_usage"`
	}
	if err := json.Unmarshal([]byte(out), &stats); err != nil {
		p.t.Fatalf("podman stats json: %v: %q", err, out)
	}
	if len(stats) != 1 {
		p.t.Fatalf("podman stats %+v; want one container", stats)
	}
	if pids, _ := strconv.Atoi(stats[0].PIDs); pids < 2 || strings.HasPrefix(stats[0].MemUsage, "0B") {
		p.t.Errorf("podman stats %+v; want >= 2 pids and memory in use", stats[0])
	}
}

func podmanRunTTY(p *podman) {
	args := append(append([]string{"run", "-it", "--rm", "--name", "tty"}, p.runArgs()...), p.image, "sh")
	out, code := runTTY(p.t, p.env, "# ", "tty; stty size; echo $((6*7)); exit 5\r", "podman",
		append(append([]string(nil), p.globals...), args...)...)
	for _, want := range []string{"/dev/pts/0", fmt.Sprintf("%d %d", ttyRows, ttyCols), "42"} {
		if !strings.Contains(out, want) {
			p.t.Errorf("podman run -it: terminal shows no %q:\n%q", want, out)
		}
	}
	if code != 5 {
		p.t.Errorf("podman run -it exit code %d, want 5; terminal:\n%q", code, out)
	}
}

func podmanExecTTY(p *podman) {
	id := p.runDetached("ex", nil, "sleep", "1000")
	defer p.rm("ex", id)
	out, code := runTTY(p.t, p.env, "# ", "tty; stty size; echo $((6*7)); exit 4\r", "podman",
		append(append([]string(nil), p.globals...), "exec", "-it", "ex", "sh")...)
	for _, want := range []string{"/dev/pts/", fmt.Sprintf("%d %d", ttyRows, ttyCols), "42"} {
		if !strings.Contains(out, want) {
			p.t.Errorf("podman exec -it: terminal shows no %q:\n%q", want, out)
		}
	}
	if code != 4 {
		p.t.Errorf("podman exec -it exit code %d, want 4; terminal:\n%q", code, out)
	}
	// Without a terminal, the process has none and stdin is not a tty.
	if r := p.podman("exec", "ex", "sh", "-c", "tty"); r.code == 0 || !strings.Contains(r.stdout, "not a tty") {
		p.t.Errorf("podman exec without -t: %v; want \"not a tty\"", r)
	}
}
