package clients

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lkc-containers/lkc/internal/testutil/cri"
)

// ctrNamespace prefixes the containerd namespace of each runtime's
// containers: a runtime's half of a test starts clean whatever the other
// half left (a container, a snapshot of the same name).
const ctrNamespace = "lkc-clients-"

// containerd is a containerd daemon the test started, with config, root,
// state, sockets and opt directory of its own under dir.
type containerd struct {
	t    *testing.T
	d    *cri.Daemon
	dir  string
	addr string
	ctrs string // the ctr that speaks to it
}

// startContainerd starts Debian's containerd with cri.DaemonConfig(extra)
// and stops it at the end, checking that it and its shims are gone.
func startContainerd(t *testing.T, extra string) *containerd {
	t.Helper()
	return launchContainerd(t, cri.Debian(func(dir string) string { return cri.DaemonConfig(dir, extra) }))
}

// launchContainerd starts b and stops it at the end, checking that it
// and its shims are gone.
func launchContainerd(t *testing.T, b cri.Build) *containerd {
	t.Helper()
	// Not t.TempDir(): a unix socket path must stay under 108 bytes.
	dir, err := os.MkdirTemp("", "lkc-ctd-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	d, err := cri.Start(b, dir)
	if err != nil {
		t.Fatal(err)
	}
	c := &containerd{t: t, d: d, dir: dir, addr: d.Addr, ctrs: b.Ctr}
	t.Cleanup(func() {
		// Each runtime points c.t at its own subtest, finished by now: a
		// command run for a finished test would get a temporary directory
		// that nothing removes.
		c.t = t
		c.stop()
	})
	return c
}

// ctr runs ctr against this daemon in namespace ns.
func (c *containerd) ctr(ns string, args ...string) result {
	c.t.Helper()
	return command(c.t, nil, c.ctrs, append([]string{"--address", c.addr, "-n", ns}, args...)...)
}

// tryCtr is ctr for cleanups: a hung ctr is reported, and the cleanup
// goes on.
func (c *containerd) tryCtr(ns string, args ...string) result {
	c.t.Helper()
	return tryCommand(c.t, nil, c.ctrs, append([]string{"--address", c.addr, "-n", ns}, args...)...)
}

// stop removes what is left in every namespace and stops the daemon;
// a shim or container root filesystem that outlived it is a failure of
// the test, and is killed or unmounted: none may stay on the machine.
func (c *containerd) stop() {
	for _, ns := range strings.Fields(c.tryCtr("default", "namespaces", "ls", "-q").stdout) {
		c.clearNamespace(ns)
	}
	for _, leak := range c.d.Stop() {
		c.t.Error(leak)
	}
}

// clearNamespace removes the containers and images left in ns, reporting
// each.
func (c *containerd) clearNamespace(ns string) {
	t := c.t
	if ids := strings.Fields(c.tryCtr(ns, "containers", "ls", "-q").stdout); len(ids) > 0 {
		t.Errorf("containers left in containerd namespace %s: %v", ns, ids)
		for _, id := range ids {
			c.removeContainer(ns, id)
		}
	}
	if imgs := strings.Fields(c.tryCtr(ns, "images", "ls", "-q").stdout); len(imgs) > 0 {
		t.Errorf("images left in containerd namespace %s: %v", ns, imgs)
		c.tryCtr(ns, append([]string{"images", "rm"}, imgs...)...)
	}
}

// removeContainer deletes a container's task and the container, reporting
// what fails. A task that never ran (CREATED: say, a restore that failed)
// is deleted without --force: containerd 1.6's forced delete kills the
// task and waits for its exit, which such a task never has (the runtime
// has no container to kill), with runc as with lkc.
func (c *containerd) removeContainer(ns, id string) {
	t := c.t
	rm := []string{"task", "rm", "-f", id}
	switch st := c.taskStatus(ns, id); st {
	case "":
		rm = nil
	case "CREATED", "STOPPED":
		rm = []string{"task", "rm", id}
	}
	if rm != nil {
		if res := c.tryCtr(ns, rm...); res.code != 0 {
			t.Errorf("%v", res)
		}
	}
	if res := c.tryCtr(ns, "containers", "rm", id); res.code != 0 {
		t.Errorf("%v", res)
	}
}

// taskStatus is containerd's view of a task in ns: RUNNING, PAUSED,
// STOPPED... and "" when there is none.
func (c *containerd) taskStatus(ns, id string) string {
	c.t.Helper()
	for _, l := range strings.Split(c.tryCtr(ns, "task", "ls").stdout, "\n") {
		if f := strings.Fields(l); len(f) == 3 && f[0] == id {
			return f[2]
		}
	}
	return ""
}

// ctrRuntime is one OCI runtime as ctr drives it: through the runc v2 shim
// with BinaryName set (--runc-binary) and a runtime root of the test's own.
type ctrRuntime struct {
	*containerd
	rt       ociRuntime
	ns       string // the containerd namespace of its containers
	root     string // --runc-root; the shim adds the namespace
	cgParent string
	image    string
}

func newCtrRuntime(t *testing.T, c *containerd, rt ociRuntime) *ctrRuntime {
	t.Helper()
	r := &ctrRuntime{containerd: c, rt: rt, ns: ctrNamespace + rt.name, root: filepath.Join(c.dir, "runtime-"+rt.name),
		cgParent: cgroupParent(t, "ctd-"+rt.name), image: "localhost/lkc-clients-busybox:oci"}
	t.Cleanup(func() { checkNoState(t, filepath.Join(r.root, r.ns)) })
	return r
}

// ctr runs ctr in the runtime's namespace.
func (r *ctrRuntime) ctr(args ...string) result {
	r.t.Helper()
	return r.containerd.ctr(r.ns, args...)
}

func (r *ctrRuntime) must(args ...string) string {
	r.t.Helper()
	res := r.ctr(args...)
	if res.code != 0 {
		r.t.Fatalf("%v", res)
	}
	return res.stdout
}

// runArgs are ctr run's flags that choose the runtime and the cgroup.
func (r *ctrRuntime) runArgs(id string) []string {
	return []string{"--runc-binary", r.rt.path, "--runc-root", r.root, "--cgroup", r.cgParent + "/" + id}
}

// state asks the runtime itself for the container's status.
func (r *ctrRuntime) state(id string) string {
	r.t.Helper()
	return ociStatus(r.t, r.rt, filepath.Join(r.root, r.ns), id)
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
	checkCgroupPlacement(r.t, r.rt, filepath.Join(r.root, r.ns), id, r.cgParent)
}

// remove kills, deletes and removes a container, and checks that the
// runtime forgot it. It runs in cleanups too: a failure is reported, and
// the removal goes on.
func (r *ctrRuntime) remove(id string) {
	if r.tryCtr(r.ns, "containers", "info", id).code != 0 {
		return
	}
	r.removeContainer(r.ns, id)
	if st := r.state(id); st != "" {
		r.t.Errorf("%s still has %s (%s) after ctr removed it", r.rt.name, id, st)
	}
}

// taskStatus is containerd's view of a task: RUNNING, PAUSED, STOPPED...
func (r *ctrRuntime) taskStatus(id string) string {
	r.t.Helper()
	return r.containerd.taskStatus(r.ns, id)
}
