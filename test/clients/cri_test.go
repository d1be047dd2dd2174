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
)

// The CRI tools scripts/install-cri-tools.sh builds, at the versions it
// builds by default: Debian 12 packages neither crictl nor containerd 2.x.
const (
	criPrefix          = "/opt/lkc/cri"
	crictlVersion      = "v1.37.0"
	containerd2Version = "v2.4.2"
)

var (
	crictlBinary = filepath.Join(criPrefix, "crictl-"+crictlVersion, "bin", "crictl")
	containerd2  = filepath.Join(criPrefix, "containerd-"+containerd2Version, "bin")
)

// criNamespace is the containerd namespace of the CRI plugin.
const criNamespace = "k8s.io"

// criDaemon is a containerd with its CRI plugin on, started by the test
// with handlers "lkc" and "runc" (the runc v2 shim with BinaryName and a
// runtime root of the test's own) and a CNI bridge of its own, driven by
// crictl as the kubelet drives it.
type criDaemon struct {
	*containerd
	crictlConf string
	logs       string // the pods' log directories
}

// criBuilds are the containerds the CRI tests run on: Debian's 1.6
// (config version 2) and the 2.x install-cri-tools.sh builds (version 3).
func criBuilds() []ctdBuild {
	return []ctdBuild{
		debianContainerd(criConfigV2),
		{name: containerd2Version, daemon: filepath.Join(containerd2, "containerd"), ctr: filepath.Join(containerd2, "ctr"),
			shimDir: containerd2, config: criConfigV3},
	}
}

// criRuntimeRoot is the runtime root of handler name (the shim adds the
// namespace).
func criRuntimeRoot(dir, name string) string {
	return filepath.Join(dir, "runtime-"+name)
}

// criConfigV2 is containerd 1.6's CRI config (version 2).
func criConfigV2(dir string) string {
	const p = `plugins."io.containerd.grpc.v1.cri"`
	return containerdConfig(dir, criSettingsV2(dir)+fmt.Sprintf(`  [%[1]s.containerd]
    default_runtime_name = "runc"
%[2]s`, p, criHandlers(dir, p+".containerd.runtimes")))
}

// criSettingsV2 is what a CRI test sets in containerd 1.6 beside the
// handlers: the local pause image, a streaming server on a free loopback
// port, oom_score_adj kept at the test's own (no CAP_SYS_RESOURCE here),
// and pod network namespaces and CNI config under the daemon's directory.
func criSettingsV2(dir string) string {
	return fmt.Sprintf(`
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %[1]q
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = %[2]q
`, pauseImage, filepath.Join(dir, "cni"))
}

// criConfigV3 is containerd 2.x's CRI config (version 3).
func criConfigV3(dir string) string {
	return criBaseV3(dir) + criSettingsV3(dir) + fmt.Sprintf(`  [plugins."io.containerd.cri.v1.runtime".containerd]
    default_runtime_name = "runc"
%s`, criHandlers(dir, `plugins."io.containerd.cri.v1.runtime".containerd.runtimes`))
}

// criBaseV3 is containerdConfig's part for containerd 2.x: config version 3,
// and NRI off (its socket is a fixed path on the host).
func criBaseV3(dir string) string {
	return fmt.Sprintf(`version = 3
root = %[1]q
state = %[2]q

[grpc]
  address = %[3]q
[ttrpc]
  address = %[4]q
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = %[5]q
[plugins."io.containerd.nri.v1.nri"]
  disable = true
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), filepath.Join(dir, "containerd.sock"),
		filepath.Join(dir, "containerd.sock.ttrpc"), filepath.Join(dir, "opt"))
}

// criSettingsV3 is criSettingsV2 for containerd 2.x, whose CRI plugin is
// split in three: an images plugin (the sandbox image), a runtime plugin
// (handlers, CNI) and the gRPC service (the streaming server).
func criSettingsV3(dir string) string {
	return fmt.Sprintf(`[plugins."io.containerd.cri.v1.images".pinned_images]
  sandbox = %[1]q
[plugins."io.containerd.grpc.v1.cri"]
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
[plugins."io.containerd.cri.v1.runtime"]
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.cri.v1.runtime".cni]
    bin_dirs = ["/usr/lib/cni"]
    conf_dir = %[2]q
`, pauseImage, filepath.Join(dir, "cni"))
}

// criHandlers are the runtime handlers lkc and runc under table prefix p.
func criHandlers(dir, p string) string {
	var b strings.Builder
	for _, rt := range runtimes() {
		fmt.Fprintf(&b, `    [%[1]s.%[2]s]
      runtime_type = "io.containerd.runc.v2"
      [%[1]s.%[2]s.options]
        BinaryName = %[3]q
        Root = %[4]q
        SystemdCgroup = false
`, p, rt.name, rt.path, criRuntimeRoot(dir, rt.name))
	}
	return b.String()
}

// criBridgeConfig is a CNI network of one bridge with no address on the
// host side and a static address in each pod: a pod's eth0 that the CRI
// plugin asks for, and no route or NAT on the host. 192.0.2.0/24 is a
// documentation range; each pod has its own network namespace, so they
// may share the address.
func criBridgeConfig(bridge string) string {
	return fmt.Sprintf(`{
  "cniVersion": "1.0.0",
  "name": "lkc-clients-cri",
  "plugins": [{
    "type": "bridge",
    "bridge": %q,
    "isGateway": false,
    "ipMasq": false,
    "ipam": {"type": "static", "addresses": [{"address": "192.0.2.2/24"}]}
  }]
}`, bridge)
}

// requireCRI skips unless the CRI tools are installed.
func requireCRI(t *testing.T, b ctdBuild) {
	t.Helper()
	for _, p := range []string{crictlBinary, b.daemon, b.ctr} {
		if _, err := exec.LookPath(p); err != nil {
			t.Skipf("%s is not installed (scripts/install-cri-tools.sh builds the CRI tools): %v", p, err)
		}
	}
}

// startCRI starts containerd build b with its CRI plugin on, imports the
// pause and busybox images into the CRI namespace, and at the end removes
// every pod and image, then the bridge, before containerd is stopped.
func startCRI(t *testing.T, b ctdBuild, index int) *criDaemon {
	t.Helper()
	bridge := fmt.Sprintf("lkccri%d-%d", os.Getpid()%100000, index)
	t.Cleanup(func() {
		if _, err := os.Stat("/sys/class/net/" + bridge); err == nil {
			tryCommand(t, nil, "ip", "link", "del", bridge)
		}
	})
	c := launchContainerd(t, ctdBuild{name: b.name, daemon: b.daemon, ctr: b.ctr, shimDir: b.shimDir, config: func(dir string) string {
		if err := os.MkdirAll(filepath.Join(dir, "cni"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "cni", "10-lkc.conflist"), []byte(criBridgeConfig(bridge)), 0o644); err != nil {
			t.Fatal(err)
		}
		return b.config(dir)
	}})
	d := &criDaemon{containerd: c, crictlConf: filepath.Join(c.dir, "crictl.yaml"), logs: filepath.Join(c.dir, "pods")}
	conf := fmt.Sprintf("runtime-endpoint: unix://%[1]s\nimage-endpoint: unix://%[1]s\ntimeout: 30\n", c.addr)
	if err := os.WriteFile(d.crictlConf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.clear)
	for _, archive := range []string{pauseArchive, busyboxArchive} {
		if res := c.ctr(criNamespace, "images", "import", archive); res.code != 0 {
			t.Fatalf("%v", res)
		}
	}
	if !waitFor(10*time.Second, func() bool { return d.imageKnown(pauseImage) && d.imageKnown(busyboxImage) }) {
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
	return command(t, nil, crictlBinary, append([]string{"--config", d.crictlConf}, args...)...)
}

// tryCrictl is crictl for cleanups.
func (d *criDaemon) tryCrictl(t *testing.T, args ...string) result {
	t.Helper()
	return tryCommand(t, nil, crictlBinary, append([]string{"--config", d.crictlConf}, args...)...)
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
	if imgs := strings.Fields(d.tryCtr(criNamespace, "images", "ls", "-q").stdout); len(imgs) > 0 {
		d.tryCtr(criNamespace, append([]string{"images", "rm"}, imgs...)...)
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
		"image":    map[string]any{"image": busyboxImage},
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
