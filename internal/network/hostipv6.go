package network

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/containernetworking/cni/libcni"
)

// procSysNet is the network sysctls of lkc's own network namespace, where
// the bridges are (a variable for the unit tests).
var procSysNet = "/proc/sys/net"

// checkHostIPv6 refuses network name, before anything is made, when its
// bridge plugin would give the bridge an IPv6 gateway address (isGateway
// and an IPv6 range) on a host whose IPv6 is disabled for the bridge
// (net.ipv6.conf.all.disable_ipv6=1, which sets every existing device's,
// or .default. for a bridge not made yet): the plugin's ADD fails there
// with "failed to set bridge addr: ... permission denied", and its DEL of
// the undo then fails too (bridge 1.1.1 with iptables-nft takes the
// masquerade chain ADD never made for an error).
func checkHostIPv6(name string, list *libcni.NetworkConfigList) error {
	for _, p := range list.Plugins {
		var conf struct {
			Bridge           string `json:"bridge"`
			IsGateway        bool   `json:"isGateway"`
			IsDefaultGateway bool   `json:"isDefaultGateway"`
			IPAM             struct {
				Subnet string `json:"subnet"`
				Ranges [][]struct {
					Subnet string `json:"subnet"`
				} `json:"ranges"`
			} `json:"ipam"`
		}
		if p.Network.Type != "bridge" || json.Unmarshal(p.Bytes, &conf) != nil || !(conf.IsGateway || conf.IsDefaultGateway) {
			continue
		}
		subnets := []string{conf.IPAM.Subnet}
		for _, set := range conf.IPAM.Ranges {
			for _, r := range set {
				subnets = append(subnets, r.Subnet)
			}
		}
		if !anyIPv6(subnets) {
			continue
		}
		bridge := conf.Bridge
		if bridge == "" {
			bridge = "cni0" // the plugin's default
		}
		if key, disabled := ipv6DisabledFor(bridge); disabled {
			return fmt.Errorf("network %s: its bridge %s gets an IPv6 gateway address, and IPv6 is disabled on the host (%s): enable it, or use a network without IPv6 ranges", name, bridge, key)
		}
	}
	return nil
}

func anyIPv6(subnets []string) bool {
	for _, s := range subnets {
		if _, n, err := net.ParseCIDR(s); err == nil && n.IP.To4() == nil {
			return true
		}
	}
	return false
}

// ipv6DisabledFor says whether IPv6 is disabled on bridge: its own
// disable_ipv6 decides, or, for a bridge not made yet, default's. It names
// the sysctl that says so, all's when that is set (it sets every device's
// and default's when written). With no IPv6 at all (ipv6.disable=1), it
// is disabled.
func ipv6DisabledFor(bridge string) (string, bool) {
	if _, err := os.Stat(filepath.Join(procSysNet, "ipv6")); errors.Is(err, os.ErrNotExist) {
		return "no IPv6 in the kernel: ipv6.disable=1", true
	}
	dev := bridge
	if _, err := os.Stat(filepath.Join(procSysNet, "ipv6/conf", dev)); err != nil {
		dev = "default"
	}
	if !sysctlSet(dev) {
		return "", false
	}
	if sysctlSet("all") {
		dev = "all"
	}
	return "net.ipv6.conf." + dev + ".disable_ipv6=1", true
}

// sysctlSet says whether dev's disable_ipv6 is 1.
func sysctlSet(dev string) bool {
	b, err := os.ReadFile(filepath.Join(procSysNet, "ipv6/conf", dev, "disable_ipv6"))
	return err == nil && strings.TrimSpace(string(b)) == "1"
}
