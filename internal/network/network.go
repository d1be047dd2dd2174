// Package network attaches a standalone container to CNI networks: the
// org.lkc.network, org.lkc.ports and org.lkc.net-rate annotations, the
// network configurations they name, ADD when create has made the
// container's network namespace, DEL when it is deleted, and live changes
// of the rate limit. It drives the standard plugins through libcni, so
// lkc's networks are the ones Podman and containerd's CNI set-ups use.
//
// A container without org.lkc.network never reaches this package past the
// annotation lookup: Podman, containerd and Kubernetes bring their own
// networking and must find nothing changed.
package network

import (
	"os"
	"path/filepath"
)

// The annotations a container opts in with (docs/network.md).
const (
	AnnotationNetwork = "org.lkc.network"
	AnnotationPorts   = "org.lkc.ports"
	AnnotationRate    = "org.lkc.net-rate"
)

// DefaultConfDir holds the network configurations (.conflist) the
// org.lkc.network annotation names; LKC_NET_DIR replaces it, so tests
// never read or write the host's.
const DefaultConfDir = "/etc/lkc/net.d"

// DefaultPluginPath is where Debian's containernetworking-plugins and the
// upstream release tarball put the plugins; LKC_CNI_PATH (a colon
// separated list) replaces it.
const DefaultPluginPath = "/usr/lib/cni:/opt/cni/bin"

// ConfDir is the directory of network configurations in force.
func ConfDir() string {
	if d := os.Getenv("LKC_NET_DIR"); d != "" {
		return d
	}
	return DefaultConfDir
}

// PluginPath is the list of directories searched for plugins.
func PluginPath() []string {
	p := os.Getenv("LKC_CNI_PATH")
	if p == "" {
		p = DefaultPluginPath
	}
	return filepath.SplitList(p)
}
