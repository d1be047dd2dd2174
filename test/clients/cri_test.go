package clients

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lkc-containers/lkc/internal/testutil/cri"
)

// criDaemon is a containerd with its CRI plugin on, started by the test
// with handlers "lkc" and "runc" (the runc v2 shim with BinaryName and a
// runtime root of the test's own) and a CNI bridge of its own, driven by
// crictl as the kubelet drives it.
type criDaemon struct {
	*containerd
	crictlConf string
	logs       string // the pods' log directories
}

// criBuilds are the containerds the CRI tests run on (cri.Builds) with
// handlers lkc and runc.
func criBuilds() []cri.Build {
	var hs []cri.Handler
	for _, rt := range runtimes() {
		hs = append(hs, cri.Handler{Name: rt.name, Binary: rt.path})
	}
	return cri.Builds(hs)
}

// requireCRI skips unless the CRI tools are installed.
func requireCRI(t *testing.T, b cri.Build) {
	t.Helper()
	for _, p := range b.Tools() {
		if _, err := exec.LookPath(p); err != nil {
			t.Skipf("%s is not installed (scripts/install-cri-tools.sh builds the CRI tools): %v", p, err)
		}
	}
}

// startCRI starts containerd build b with its CRI plugin on, imports the
// pause and busybox images into the CRI namespace, and at the end removes
// every pod and image, then the bridge, before containerd is stopped.
func startCRI(t *testing.T, b cri.Build, index int) *criDaemon {
	t.Helper()
	bridge := fmt.Sprintf("lkccri%d-%d", os.Getpid()%100000, index)
	t.Cleanup(func() {
		if _, err := os.Stat("/sys/class/net/" + bridge); err == nil {
			tryCommand(t, nil, "ip", "link", "del", bridge)
		}
	})
	c := launchContainerd(t, cri.Build{Name: b.Name, Daemon: b.Daemon, Ctr: b.Ctr, ShimDir: b.ShimDir, Config: func(dir string) string {
		if err := os.MkdirAll(filepath.Join(dir, "cni"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "cni", "10-lkc.conflist"), []byte(cri.BridgeConfig(bridge)), 0o644); err != nil {
			t.Fatal(err)
		}
		return b.Config(dir)
	}})
	d := &criDaemon{containerd: c, crictlConf: filepath.Join(c.dir, "crictl.yaml"), logs: filepath.Join(c.dir, "pods")}
	conf := fmt.Sprintf("runtime-endpoint: unix://%[1]s\nimage-endpoint: unix://%[1]s\ntimeout: 30\n", c.addr)
	if err := os.WriteFile(d.crictlConf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.clear)
	for _, archive := range []string{pauseArchive, busyboxArchive} {
		if res := c.ctr(cri.Namespace, "images", "import", archive); res.code != 0 {
			t.Fatalf("%v", res)
		}
	}
	if !waitFor(10*time.Second, func() bool { return d.imageKnown(cri.PauseImage) && d.imageKnown(cri.BusyboxImage) }) {
		t.Fatalf("the CRI plugin does not list the imported images:\n%s", d.tryCrictl(t, "images").stdout)
	}
	return d
}

// imageKnown reports whether the CRI plugin lists ref.
func (d *criDaemon) imageKnown(ref string) bool {
	return d.tryCrictl(d.t, "inspecti", ref).code == 0
}

// crictl runs crictl against this daemon.
func (d *criDaemon) crictl(t *testing.T, args ...string) result {
	t.Helper()
	return command(t, nil, cri.Crictl, append([]string{"--config", d.crictlConf}, args...)...)
}

// tryCrictl is crictl for cleanups.
func (d *criDaemon) tryCrictl(t *testing.T, args ...string) result {
	t.Helper()
	return tryCommand(t, nil, cri.Crictl, append([]string{"--config", d.crictlConf}, args...)...)
}

// clear removes the pods a failed case left, reporting each, and the
// images the test imported.
func (d *criDaemon) clear() {
	t := d.t
	if pods := strings.Fields(d.tryCrictl(t, "pods", "-q").stdout); len(pods) > 0 {
		t.Errorf("pods left in the CRI plugin: %v", pods)
		for _, p := range pods {
			d.tryCrictl(t, "stopp", p)
			d.tryCrictl(t, "rmp", "-f", p)
			// A pod whose network teardown failed leaves libcni's cache.
			cached, _ := filepath.Glob("/var/lib/cni/results/*-" + p + "-*")
			for _, f := range cached {
				os.Remove(f)
			}
		}
	}
	if imgs := strings.Fields(d.tryCtr(cri.Namespace, "images", "ls", "-q").stdout); len(imgs) > 0 {
		d.tryCtr(cri.Namespace, append([]string{"images", "rm"}, imgs...)...)
	}
}

// criRuntime is one handler of a criDaemon in one test.
type criRuntime struct {
	d    *criDaemon
	t    *testing.T
	rt   ociRuntime
	root string // the runtime's state root for the CRI namespace
}

func (r *criRuntime) crictl(args ...string) result {
	r.t.Helper()
	return r.d.crictl(r.t, args...)
}

func (r *criRuntime) must(args ...string) string {
	r.t.Helper()
	res := r.crictl(args...)
	if res.code != 0 {
		r.t.Fatalf("%v", res)
	}
	return res.stdout
}

// writeJSON writes v as a JSON file in the test's temporary directory.
func (r *criRuntime) writeJSON(name string, v any) string {
	r.t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		r.t.Fatal(err)
	}
	p := filepath.Join(r.t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		r.t.Fatal(err)
	}
	return p
}

// CRI namespace modes (runtime.v1.NamespaceMode).
const (
	nsPod       = 0
	nsContainer = 1
	nsNode      = 2
)

// criPod is a pod sandbox the test runs.
type criPod struct {
	r      *criRuntime
	id     string
	name   string
	config string // its PodSandboxConfig file, which create needs too
	parent string // its cgroup_parent
	gone   bool   // removed already
}

// runPod runs a pod sandbox with the runtime's handler, its cgroup parent
// parent (made beneath the test's own cgroup when ""), and namespace
// options ns (network, pid, ipc). Its cleanup stops and removes it and
// checks that the runtime forgot it.
func (r *criRuntime) runPod(name, parent string, ns map[string]int) *criPod {
	r.t.Helper()
	if parent == "" {
		parent = cgroupParent(r.t, "cri-"+r.rt.name+"-"+name)
	}
	full := r.rt.name + "-" + name // pod names are unique in a daemon
	cfg := map[string]any{
		"metadata":      map[string]any{"name": full, "namespace": "lkc-clients", "uid": "uid-" + full},
		"log_directory": filepath.Join(r.d.logs, full),
		"linux": map[string]any{
			"cgroup_parent":    parent,
			"security_context": map[string]any{"namespace_options": ns},
		},
	}
	if ns["network"] != nsNode {
		cfg["hostname"] = name // a host-network pod has the host's
	}
	p := &criPod{r: r, name: name, parent: parent, config: r.writeJSON("pod-"+name+".json", cfg)}
	p.id = strings.TrimSpace(r.must("runp", "--runtime", r.rt.name, p.config))
	r.t.Cleanup(p.remove)
	return p
}

// remove stops and removes the pod, and checks that the runtime has no
// container of it left. It runs in cleanups: failures are reported.
func (p *criPod) remove() {
	t := p.r.t
	if p.gone {
		return
	}
	p.gone = true
	if res := p.r.d.tryCrictl(t, "stopp", p.id); res.code != 0 {
		t.Errorf("%v", res)
	}
	if res := p.r.d.tryCrictl(t, "rmp", p.id); res.code != 0 {
		t.Errorf("%v", res)
	}
	if st := ociState(t, p.r.rt, p.r.root, p.id); st.Status != "" {
		t.Errorf("%s still has the sandbox %s (%s) after crictl rmp", p.r.rt.name, p.id, st.Status)
	}
}

// container is a ContainerConfig for the busybox image running cmd, with
// more fields merged in.
func (p *criPod) container(name string, cmd []string, more map[string]any) map[string]any {
	cfg := map[string]any{
		"metadata": map[string]any{"name": name},
		"image":    map[string]any{"image": cri.BusyboxImage},
		"command":  cmd,
		"log_path": name + ".log",
		"linux":    map[string]any{"security_context": map[string]any{"namespace_options": map[string]int{"pid": nsContainer}}},
	}
	for k, v := range more {
		cfg[k] = v
	}
	return cfg
}

// create creates a container in the pod from cfg; the pod's removal
// removes it.
func (p *criPod) create(cfg map[string]any) string {
	p.r.t.Helper()
	name := cfg["metadata"].(map[string]any)["name"].(string)
	file := p.r.writeJSON("ctr-"+p.name+"-"+name+".json", cfg)
	return strings.TrimSpace(p.r.must("create", p.id, file, p.config))
}

// startOnly creates and starts a container.
func (p *criPod) startOnly(cfg map[string]any) string {
	p.r.t.Helper()
	id := p.create(cfg)
	p.r.must("start", id)
	return id
}

// start is startOnly for a container that keeps running, and checks that
// the runtime runs it.
func (p *criPod) start(cfg map[string]any) string {
	p.r.t.Helper()
	id := p.startOnly(cfg)
	if st := ociStatus(p.r.t, p.r.rt, p.r.root, id); st != "running" {
		p.r.t.Fatalf("%s state of container %s after crictl start: %q, want running", p.r.rt.name, id, st)
	}
	return id
}

// criInspect is the part of `crictl inspect` the tests read.
type criInspect struct {
	Status struct {
		State    string `json:"state"`
		ExitCode int    `json:"exitCode"`
		Reason   string `json:"reason"`
	} `json:"status"`
	Info struct {
		Pid            int    `json:"pid"`
		RuntimeType    string `json:"runtimeType"`
		RuntimeOptions struct {
			BinaryName string `json:"binary_name"`
		} `json:"runtimeOptions"`
	} `json:"info"`
}

func (r *criRuntime) inspect(id string) criInspect {
	r.t.Helper()
	var in criInspect
	out := r.must("inspect", "-o", "json", id)
	if err := json.Unmarshal([]byte(out), &in); err != nil {
		r.t.Fatalf("crictl inspect %s: %v: %s", id, err, out)
	}
	return in
}

// waitExited waits for a container to exit and returns its inspection.
func (r *criRuntime) waitExited(id string) criInspect {
	r.t.Helper()
	var in criInspect
	if !waitFor(30*time.Second, func() bool { in = r.inspect(id); return in.Status.State == "CONTAINER_EXITED" }) {
		r.t.Fatalf("container %s still %s 30s on", id, in.Status.State)
	}
	return in
}

// exec runs cmd in a container with crictl exec (the streaming server)
// and fails unless it exits 0.
func (r *criRuntime) exec(id string, cmd ...string) string {
	r.t.Helper()
	return r.must(append([]string{"exec", id}, cmd...)...)
}
