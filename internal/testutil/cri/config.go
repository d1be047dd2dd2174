// Package cri is the containerd CRI harness that test/clients' CRI tests
// and the benchmark's cri scenario share: where scripts/install-cri-tools.sh
// puts crictl and containerd 2.x, the daemon configs with runtime handlers
// for the runc v2 shim, a CNI bridge, the local pause and busybox images,
// and a containerd started and stopped with nothing left behind.
package cri

import (
	"fmt"
	"path/filepath"
	"strings"
)

// The CRI tools scripts/install-cri-tools.sh builds, at the versions it
// builds by default: Debian 12 packages neither crictl nor containerd 2.x.
const (
	Prefix             = "/opt/lkc/cri"
	CrictlVersion      = "v1.37.0"
	Containerd2Version = "v2.4.2"
)

var (
	// Crictl is the crictl binary.
	Crictl = filepath.Join(Prefix, "crictl-"+CrictlVersion, "bin", "crictl")
	// Containerd2Dir holds containerd 2.x, its ctr and its shim.
	Containerd2Dir = filepath.Join(Prefix, "containerd-"+Containerd2Version, "bin")
)

// Namespace is the containerd namespace of the CRI plugin.
const Namespace = "k8s.io"

// Handler is a runtime handler of the CRI plugin: the runc v2 shim with
// BinaryName Binary and a runtime root of its own (RuntimeRoot).
type Handler struct{ Name, Binary string }

// Build is a containerd to start: its daemon, ctr and the directory of
// its shims (searched first: containerd runs the shim it finds on PATH),
// and the config it is started with, made for its directory.
type Build struct {
	Name, Daemon, Ctr, ShimDir string
	Config                     func(dir string) string
}

// Debian is Debian's containerd 1.6, whose shim is on PATH.
func Debian(config func(dir string) string) Build {
	return Build{Name: "1.6", Daemon: "containerd", Ctr: "ctr", Config: config}
}

// Builds are the containerds with the CRI plugin on and handlers hs:
// Debian's 1.6 (config version 2) and the 2.x install-cri-tools.sh
// builds (version 3).
func Builds(hs []Handler) []Build {
	return []Build{
		Debian(func(dir string) string { return ConfigV2(dir, hs) }),
		{Name: Containerd2Version, Daemon: filepath.Join(Containerd2Dir, "containerd"), Ctr: filepath.Join(Containerd2Dir, "ctr"),
			ShimDir: Containerd2Dir, Config: func(dir string) string { return ConfigV3(dir, hs) }},
	}
}

// Tools lists the binaries a CRI run of b needs.
func (b Build) Tools() []string {
	return []string{Crictl, b.Daemon, b.Ctr}
}

// RuntimeRoot is the runtime root of handler name in a daemon's directory
// (the shim adds the namespace).
func RuntimeRoot(dir, name string) string {
	return filepath.Join(dir, "runtime-"+name)
}

// DaemonConfig is containerd 1.6's config (version 2) with its root,
// state, sockets and opt directory under dir; extra is appended (a
// runtime handler for the CRI plugin, say). Without extra the CRI plugin
// is off: ctr does not need it, and it would set up CNI and a streaming
// server.
func DaemonConfig(dir, extra string) string {
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

// ConfigV2 is containerd 1.6's CRI config (version 2) with handlers hs,
// runc the default.
func ConfigV2(dir string, hs []Handler) string {
	const p = `plugins."io.containerd.grpc.v1.cri"`
	return DaemonConfig(dir, SettingsV2(dir)+fmt.Sprintf(`  [%[1]s.containerd]
    default_runtime_name = "runc"
%[2]s`, p, handlers(dir, p+".containerd.runtimes", hs)))
}

// SettingsV2 is what a CRI run sets in containerd 1.6 beside the
// handlers: the local pause image, a streaming server on a free loopback
// port, oom_score_adj kept at the caller's own (no CAP_SYS_RESOURCE on
// the project's host), and pod network namespaces and CNI config under
// the daemon's directory.
func SettingsV2(dir string) string {
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
`, PauseImage, filepath.Join(dir, "cni"))
}

// ConfigV3 is containerd 2.x's CRI config (version 3) with handlers hs,
// runc the default.
func ConfigV3(dir string, hs []Handler) string {
	return BaseV3(dir) + SettingsV3(dir) + fmt.Sprintf(`  [plugins."io.containerd.cri.v1.runtime".containerd]
    default_runtime_name = "runc"
%s`, handlers(dir, `plugins."io.containerd.cri.v1.runtime".containerd.runtimes`, hs))
}

// BaseV3 is DaemonConfig's part for containerd 2.x: config version 3,
// and NRI off (its socket is a fixed path on the host).
func BaseV3(dir string) string {
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

// SettingsV3 is SettingsV2 for containerd 2.x, whose CRI plugin is split
// in three: an images plugin (the sandbox image), a runtime plugin
// (handlers, CNI) and the gRPC service (the streaming server).
func SettingsV3(dir string) string {
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
`, PauseImage, filepath.Join(dir, "cni"))
}

// handlers are the runtime handlers hs under table prefix p.
func handlers(dir, p string, hs []Handler) string {
	var b strings.Builder
	for _, h := range hs {
		fmt.Fprintf(&b, `    [%[1]s.%[2]s]
      runtime_type = "io.containerd.runc.v2"
      [%[1]s.%[2]s.options]
        BinaryName = %[3]q
        Root = %[4]q
        SystemdCgroup = false
`, p, h.Name, h.Binary, RuntimeRoot(dir, h.Name))
	}
	return b.String()
}

// BridgeConfig is a CNI network of one bridge with no address on the
// host side and a static address in each pod: a pod's eth0 that the CRI
// plugin asks for, and no route or NAT on the host. 192.0.2.0/24 is a
// documentation range; each pod has its own network namespace, so they
// may share the address.
func BridgeConfig(bridge string) string {
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
