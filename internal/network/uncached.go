package network

import (
	"fmt"
	"net"
	"os"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"
	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/osthread"
)

// withFoundResult is list for a DEL that libcni has no cached ADD result
// for: lkc died while ADD ran, or ADD failed, and libcni caches a result
// only once the whole list has succeeded. Each plugin then gets as its
// prevResult the addresses the interface has in the pinned namespace,
// which is what ADD gave it: the firewall plugin removes only the rules
// of the addresses its prevResult names, and would leave them all.
// list is returned as it is when a result is cached, when there is no
// namespace or interface to read, or when the version has no prevResult
// at DEL (before 0.4.0).
func withFoundResult(cni *libcni.CNIConfig, list *libcni.NetworkConfigList, rt *libcni.RuntimeConf) (*libcni.NetworkConfigList, error) {
	if rt.NetNS == "" {
		return list, nil
	}
	if ok, err := version.GreaterThanOrEqualTo(list.CNIVersion, "0.4.0"); err != nil || !ok {
		return list, err
	}
	if res, err := cni.GetNetworkListCachedResult(list, rt); err == nil && res != nil {
		return list, nil
	}
	addrs, err := namespaceAddrs(rt.NetNS, rt.IfName)
	if err != nil || len(addrs) == 0 {
		return list, err
	}
	prev, err := addressResult(rt.NetNS, rt.IfName, addrs).GetAsVersion(list.CNIVersion)
	if err != nil {
		return nil, err
	}
	l := *list
	l.Plugins = nil
	for _, p := range list.Plugins {
		pc, err := libcni.InjectConf(p, map[string]any{"prevResult": prev})
		if err != nil {
			return nil, err
		}
		l.Plugins = append(l.Plugins, pc)
	}
	return &l, nil
}

// addressResult is a result naming interface ifName in netns with addrs.
func addressResult(netns, ifName string, addrs []net.IPNet) types.Result {
	res := &current.Result{
		CNIVersion: current.ImplementedSpecVersion,
		Interfaces: []*current.Interface{{Name: ifName, Sandbox: netns}},
	}
	for _, a := range addrs {
		idx := 0
		res.IPs = append(res.IPs, &current.IPConfig{Interface: &idx, Address: a})
	}
	return res
}

// namespaceAddrs lists the addresses of interface ifName in the network
// namespace at nsPath, but the link-local ones, which no plugin hands
// out; none when it has no such interface.
func namespaceAddrs(nsPath, ifName string) (addrs []net.IPNet, err error) {
	err = inNamespace(nsPath, func() error {
		addrs, err = interfaceAddrs(ifName)
		return err
	})
	return addrs, err
}

// inNamespace runs fn on a thread of its own in the network namespace at
// nsPath (/proc/sys/net there shows that namespace to a file opened then).
func inNamespace(nsPath string, fn func() error) (err error) {
	f, err := os.Open(nsPath)
	if err != nil {
		return fmt.Errorf("opening the network namespace: %w", err)
	}
	defer f.Close()
	osthread.Spare(func() {
		if err = unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			err = fmt.Errorf("entering the network namespace %s: %w", nsPath, err)
			return
		}
		err = fn()
	})
	return err
}

// interfaceAddrs lists the addresses of ifName in the calling thread's
// network namespace, but the link-local ones.
func interfaceAddrs(ifName string) ([]net.IPNet, error) {
	ifcs, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("listing the interfaces: %w", err)
	}
	for _, ifc := range ifcs {
		if ifc.Name != ifName {
			continue
		}
		list, err := ifc.Addrs()
		if err != nil {
			return nil, fmt.Errorf("listing the addresses of %s: %w", ifName, err)
		}
		var out []net.IPNet
		for _, a := range list {
			if n, ok := a.(*net.IPNet); ok && !n.IP.IsLinkLocalUnicast() {
				out = append(out, *n)
			}
		}
		return out, nil
	}
	return nil, nil
}
