package clients

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// ctrNamespace is the containerd namespace every test container lives in.
const ctrNamespace = "lkc-clients"

// containerd is a containerd daemon the test started, with config, root,
// state, sockets and opt directory of its own under dir.
type containerd struct {
	t    *testing.T
	dir  string
	addr string
	cmd  *exec.Cmd
	exit chan error
}

// containerdConfig is the daemon's config; extra is appended (a runtime
// handler for the CRI plugin, say). Without extra the CRI plugin is off:
// ctr does not need it, and it would set up CNI and a streaming server.
func containerdConfig(dir, extra string) string {
	disabled := `disabled_plugins = ["io.containerd.grpc.v1.cri"]`
	if extra != "" {
		disabled = ""
	}
	return fmt.Sprintf(`version = 2
root = %[1]q
state = %[2]q
%[3]s

[grpc]
  address = %[4]q
[ttrpc]
  address = %[5]q
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = %[6]q
%[7]s`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), disabled,
		filepath.Join(dir, "containerd.sock"), filepath.Join(dir, "containerd.sock.ttrpc"),
		filepath.Join(dir, "opt"), extra)
}

// startContainerd starts containerd with containerdConfig(extra) and stops
// it at the end, checking that it and its shims are gone.
func startContainerd(t *testing.T, extra string) *containerd {
	t.Helper()
	// Not t.TempDir(): a unix socket path must stay under 108 bytes.
	dir, err := os.MkdirTemp("", "lkc-ctd-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	c := &containerd{t: t, dir: dir, addr: filepath.Join(dir, "containerd.sock"), exit: make(chan error, 1)}
	conf := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(conf, []byte(containerdConfig(dir, extra)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	// runc finds CRIU on PATH (the shim passes no --criu); put the one that
	// works on this kernel first.
	if err := os.Symlink(criuPath, filepath.Join(dir, "bin", "criu")); err != nil {
		t.Fatal(err)
	}
	log, err := os.Create(filepath.Join(dir, "containerd.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	c.cmd = exec.Command("containerd", "--config", conf)
	c.cmd.Env = append(os.Environ(), "PATH="+filepath.Join(dir, "bin")+":"+os.Getenv("PATH"))
	c.cmd.Stdout, c.cmd.Stderr = log, log
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { c.exit <- c.cmd.Wait() }()
	t.Cleanup(func() {
		// Each runtime points c.t at its own subtest, finished by now: a
		// command run for a finished test would get a temporary directory
		// that nothing removes.
		c.t = t
		c.stop()
	})
	if !waitFor(20*time.Second, func() bool { return command(t, nil, "ctr", "--address", c.addr, "version").code == 0 }) {
		t.Fatalf("containerd did not answer on %s within 20s; log:\n%s", c.addr, lastLines(readFile(log.Name()), 20))
	}
	return c
}

// ctr runs ctr against this daemon in the test namespace.
func (c *containerd) ctr(args ...string) result {
	c.t.Helper()
	return command(c.t, nil, "ctr", append([]string{"--address", c.addr, "-n", ctrNamespace}, args...)...)
}

func (c *containerd) must(args ...string) string {
	c.t.Helper()
	r := c.ctr(args...)
	if r.code != 0 {
		c.t.Fatalf("%v", r)
	}
	return r.stdout
}

// stop removes what is left in the namespace, stops the daemon and checks
// that no shim of it still runs and nothing under its directories is mounted.
func (c *containerd) stop() {
	t := c.t
	if ids := strings.Fields(c.ctr("containers", "ls", "-q").stdout); len(ids) > 0 {
		t.Errorf("containers left in containerd: %v", ids)
		for _, id := range ids {
			c.ctr("task", "rm", "-f", id)
			c.ctr("containers", "rm", id)
		}
	}
	if imgs := strings.Fields(c.ctr("images", "ls", "-q").stdout); len(imgs) > 0 {
		t.Errorf("images left in containerd: %v", imgs)
		c.ctr(append([]string{"images", "rm"}, imgs...)...)
	}
	c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.exit:
	case <-time.After(15 * time.Second):
		t.Errorf("containerd did not exit within 15s of SIGTERM; killing it")
		c.cmd.Process.Kill()
		<-c.exit
	}
	if pids := processesMentioning(c.addr); len(pids) > 0 {
		t.Errorf("processes still running for containerd at %s (shims?): %v", c.addr, pids)
	}
	if strings.Contains(readFile("/proc/self/mountinfo"), c.dir) {
		t.Errorf("mounts under %s left after containerd stopped", c.dir)
	}
}

// processesMentioning lists the pids whose command line contains s.
func processesMentioning(s string) []string {
	var pids []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if e.Name()[0] < '0' || e.Name()[0] > '9' {
			continue
		}
		if strings.Contains(readFile(filepath.Join("/proc", e.Name(), "cmdline")), s) {
			pids = append(pids, e.Name())
		}
	}
	return pids
}

// ctrRuntime is one OCI runtime as ctr drives it: through the runc v2 shim
// with BinaryName set (--runc-binary) and a runtime root of the test's own.
type ctrRuntime struct {
	*containerd
	rt       ociRuntime
	root     string // --runc-root; the shim adds the namespace
	cgParent string
	image    string
}

func newCtrRuntime(t *testing.T, c *containerd, rt ociRuntime) *ctrRuntime {
	t.Helper()
	r := &ctrRuntime{containerd: c, rt: rt, root: filepath.Join(c.dir, "runtime-"+rt.name),
		cgParent: cgroupParent(t, "ctd-"+rt.name), image: "localhost/lkc-clients-busybox:oci"}
	t.Cleanup(func() { checkNoState(t, filepath.Join(r.root, ctrNamespace)) })
	return r
}

// runArgs are ctr run's flags that choose the runtime and the cgroup.
func (r *ctrRuntime) runArgs(id string) []string {
	return []string{"--runc-binary", r.rt.path, "--runc-root", r.root, "--cgroup", r.cgParent + "/" + id}
}

// state asks the runtime itself for the container's status.
func (r *ctrRuntime) state(id string) string {
	r.t.Helper()
	return ociStatus(r.t, r.rt, filepath.Join(r.root, ctrNamespace), id)
}

// runDetached starts a task; its cleanup kills and removes it.
func (r *ctrRuntime) runDetached(id string, cmd ...string) {
	r.t.Helper()
	args := append(append([]string{"run", "-d"}, r.runArgs(id)...), r.image, id)
	r.must(append(args, cmd...)...)
	r.t.Cleanup(func() { r.remove(id) })
	if st := r.state(id); st != "running" {
		r.t.Fatalf("%s state of %s after ctr run -d: %q, want running", r.rt.name, id, st)
	}
	checkCgroupPlacement(r.t, r.rt, filepath.Join(r.root, ctrNamespace), id, r.cgParent)
}

// remove kills, deletes and removes a container, and checks that the
// runtime forgot it.
func (r *ctrRuntime) remove(id string) {
	t := r.t
	if r.ctr("containers", "info", id).code != 0 {
		return
	}
	if r.taskStatus(id) != "" {
		if res := r.ctr("task", "rm", "-f", id); res.code != 0 {
			t.Errorf("%v", res)
		}
	}
	if res := r.ctr("containers", "rm", id); res.code != 0 {
		t.Errorf("%v", res)
	}
	if st := r.state(id); st != "" {
		t.Errorf("%s still has %s (%s) after ctr removed it", r.rt.name, id, st)
	}
}

// taskStatus is containerd's view of a task: RUNNING, PAUSED, STOPPED...
func (r *ctrRuntime) taskStatus(id string) string {
	r.t.Helper()
	for _, l := range strings.Split(r.must("task", "ls"), "\n") {
		if f := strings.Fields(l); len(f) == 3 && f[0] == id {
			return f[2]
		}
	}
	return ""
}
