package network

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// ipv6Taken says whether sysctls (the config's net.* ones, which
// SetSysctls writes after ADD, in key order) take the IPv6 addresses ADD
// gives interface ifName, and names the sysctl that does. Disabling IPv6
// on an interface removes its addresses, and enabling it again brings
// back a link-local one only, so a write of a non-zero value to all's
// disable_ipv6 (which sets every interface's) or to ifName's takes them,
// whatever is written after. default's sets only interfaces made later,
// and ADD has made ifName by then.
func ipv6Taken(sysctls map[string]string, ifName string) (string, bool) {
	for _, dev := range []string{"all", ifName} {
		key := "net.ipv6.conf." + dev + ".disable_ipv6"
		for k, v := range sysctls {
			if strings.ReplaceAll(k, "/", ".") != key {
				continue
			}
			if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n != 0 {
				return k + "=" + v, true
			}
		}
	}
	return "", false
}

// publishable is ports as portmap gets them on interface ifName of a
// container whose sysctls take that interface's IPv6 addresses: a port
// on an IPv6 host address is refused (it would lead nowhere), and one on
// every address is published on every IPv4 one (0.0.0.0), the addresses
// it can reach. Other containers may then publish the same port on IPv6.
func publishable(ports []Port, sysctls map[string]string, ifName string) ([]Port, error) {
	key, taken := ipv6Taken(sysctls, ifName)
	if !taken {
		return ports, nil
	}
	out := make([]Port, len(ports))
	for i, p := range ports {
		switch {
		case p.HostIP == "":
			p.HostIP = "0.0.0.0"
		case netip.MustParseAddr(p.HostIP).Is6():
			return nil, fmt.Errorf("annotation %s: port [%s]:%d:%d/%s needs IPv6, and the config's sysctl %s disables it on %s", AnnotationPorts, p.HostIP, p.HostPort, p.ContainerPort, p.Protocol, key, ifName)
		}
		out[i] = p
	}
	return out, nil
}
