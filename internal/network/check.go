package network

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
)

// Check runs CHECK of each network the container in stateDir is attached
// to, first to last, with the result and runtime config of its ADD, as
// the CNI spec has a runtime ask whether an attachment is still as ADD
// made it (interface, addresses, lease, rules, rate). A container without
// networks has nothing to check. The first failure is returned, naming
// the network.
func Check(stateDir string) error {
	rec, err := readRecord(stateDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	cni := newCNI(stateDir, rec.cacheDir(stateDir))
	for _, a := range rec.Attachments {
		if err := check(cni, stateDir, rec, a); err != nil {
			return fmt.Errorf("network %s: %w", a.Name, err)
		}
	}
	return nil
}

// check runs CHECK of a, one plugin at a time (libcni gives each the
// same cached result, so this is CheckNetworkList), so that a failure
// names its plugin, and a known fault of one is told as such.
func check(cni *libcni.CNIConfig, stateDir string, rec *record, a attachment) error {
	list, err := libcni.NetworkConfFromBytes(a.Config)
	if err != nil {
		return err
	}
	if _, limited := a.Caps["bandwidth"]; !limited {
		if list, err = withoutIdleBandwidth(list); err != nil {
			return err
		}
	}
	rt := runtimeConf(stateDir, rec, a)
	expected, changed, err := expectedResult(cni, list, rt, a.IPv6Taken)
	if err != nil {
		return err
	}
	var prev types.Result
	if changed {
		if prev, err = expected.GetAsVersion(list.CNIVersion); err != nil {
			return err
		}
		// No cached result there: libcni leaves the prevResult given.
		cni = newCNI(stateDir, filepath.Join(stateDir, checkCacheName))
	}
	ctx, cancel := context.WithTimeout(context.Background(), pluginTimeout)
	defer cancel()
	for _, p := range list.Plugins {
		if prev != nil {
			if p, err = libcni.InjectConf(p, map[string]any{"prevResult": prev}); err != nil {
				return err
			}
		}
		one := &libcni.NetworkConfigList{Name: list.Name, CNIVersion: list.CNIVersion, DisableCheck: list.DisableCheck, Plugins: []*libcni.PluginConfig{p}}
		if err := cni.CheckNetworkList(ctx, one, rt); err != nil {
			return checkError(p.Network.Type, err, expected)
		}
	}
	return nil
}

// checkCacheName, in the state directory, is never made: a libcni cache
// without the attachment, for a CHECK given its prevResult by lkc.
const checkCacheName = "cni-check"

// portmapCheckFailed is how portmap's CHECK fails on a DNAT rule or
// chain it does not find in iptables (ipv4) or ip6tables (ipv6). It and
// dnatTarget are compiled on first use, not in every lkc process's start.
var portmapCheckFailed = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`could not check ipv([46]) dnat: (.*)`)
})

// dnatTarget is the container's address and port in a DNAT rule portmap
// prints.
var dnatTarget = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`--to-destination (\S+)`)
})

// checkError is the failure err of the CHECK of plugin typ, given res as
// its prevResult (nil when there is none).
func checkError(typ string, err error, res *current.Result) error {
	if typ == "portmap" && portmapFault(err.Error(), res) {
		return fmt.Errorf("plugin type=%q failed (check): a known fault of portmap 1.1.1 (containernetworking/plugins#819: its CHECK looks for the published ports' rules of each address in both iptables and ip6tables), not the container's", typ)
	}
	return fmt.Errorf("plugin type=%q failed (check): %w", typ, err)
}

// portmapFault says whether portmap's CHECK failure msg is the fault of
// containernetworking/plugins issue 819, fixed upstream after 1.1.1
// (Debian 12's): its CHECK looks for the rules of every address of the
// container in iptables and in ip6tables, so it fails on each container
// that publishes ports on a host with both: in the family the container
// has no address of (no chain there), or, for a container with both, on
// the IPv4 address's rule in ip6tables. A rule of the family checked
// missing is a real failure and stays one.
func portmapFault(msg string, res *current.Result) bool {
	m := portmapCheckFailed().FindStringSubmatch(msg)
	if m == nil || res == nil {
		return false
	}
	v6 := m[1] == "6"
	has := false
	for _, ip := range res.IPs {
		has = has || (ip.Address.IP.To4() == nil) == v6
	}
	if !has {
		return true
	}
	t := dnatTarget().FindStringSubmatch(m[2])
	return t != nil && strings.HasPrefix(t[1], "[") != v6
}

// expectedResult is the cached ADD result of the attachment as the
// container should have it now (nil when none is cached), and whether that
// differs from the cached one. The config's sysctls (written after ADD, as
// runc does: taken says they disable IPv6 on the interface, if only for a
// moment, as net.ipv6.conf.all.disable_ipv6=1 followed by the interface's
// =0 does) or the container itself disabling IPv6 on the interface take
// the IPv6 addresses and routes ADD gave: the bridge plugin's CHECK would
// fail on them ("Failed to match addr"), and the firewall's look for their
// rules, which delete still removes.
func expectedResult(cni *libcni.CNIConfig, list *libcni.NetworkConfigList, rt *libcni.RuntimeConf, taken bool) (*current.Result, bool, error) {
	res, err := cni.GetNetworkListCachedResult(list, rt)
	if err != nil || res == nil {
		return nil, false, err
	}
	cur, err := current.NewResultFromResult(res)
	if err != nil || rt.NetNS == "" || !hasIPv6(cur) {
		return cur, false, err
	}
	disabled := taken
	if !disabled {
		disabled, err = ipv6Disabled(rt.NetNS, rt.IfName)
	}
	if err != nil || !disabled {
		return cur, false, err
	}
	v4 := *cur
	v4.IPs, v4.Routes = nil, nil
	for _, ip := range cur.IPs {
		if ip.Address.IP.To4() != nil {
			v4.IPs = append(v4.IPs, ip)
		}
	}
	for _, r := range cur.Routes {
		if r.Dst.IP.To4() != nil {
			v4.Routes = append(v4.Routes, r)
		}
	}
	return &v4, true, nil
}

func hasIPv6(res *current.Result) bool {
	for _, ip := range res.IPs {
		if ip.Address.IP.To4() == nil {
			return true
		}
	}
	return false
}

// ipv6Disabled says whether IPv6 is disabled on interface ifName in the
// network namespace at nsPath (its disable_ipv6, which the "all" key
// sets on every interface).
func ipv6Disabled(nsPath, ifName string) (disabled bool, err error) {
	err = inNamespace(nsPath, func() error {
		b, err := os.ReadFile("/proc/sys/net/ipv6/conf/" + ifName + "/disable_ipv6")
		if errors.Is(err, os.ErrNotExist) {
			disabled = true // no IPv6 in the kernel, or no interface: nothing to match
			return nil
		}
		disabled = strings.TrimSpace(string(b)) == "1"
		return err
	})
	return disabled, err
}

// withoutIdleBandwidth is list, for the CHECK of an attachment with no rate
// in force, without the bandwidth plugins that set no rate of their own
// either. Such a plugin's ADD did nothing, so there is nothing to check,
// and its CHECK cannot say so: it reads the rate it has none of and
// crashes (containernetworking/plugins 1.1.1 and later, a nil pointer in
// cmdCheck).
func withoutIdleBandwidth(list *libcni.NetworkConfigList) (*libcni.NetworkConfigList, error) {
	var kept []*libcni.PluginConfig
	for _, p := range list.Plugins {
		if p.Network.Type != "bandwidth" {
			kept = append(kept, p)
			continue
		}
		var static struct {
			IngressRate uint64 `json:"ingressRate"`
			EgressRate  uint64 `json:"egressRate"`
		}
		if err := json.Unmarshal(p.Bytes, &static); err != nil {
			return nil, fmt.Errorf("decoding the bandwidth plugin's configuration: %w", err)
		}
		if static.IngressRate > 0 || static.EgressRate > 0 {
			kept = append(kept, p)
		}
	}
	if len(kept) == len(list.Plugins) {
		return list, nil
	}
	l := *list
	l.Plugins = kept
	return &l, nil
}
