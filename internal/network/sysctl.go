package network

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// NetSysctls splits sysctls into the network namespace's (net.*) and the
// others. A container attached to networks gets its net.* ones from
// SetSysctls once ADD has made its interfaces, not from init, which
// writes before them.
func NetSysctls(sysctls map[string]string) (net, other map[string]string) {
	for k, v := range sysctls {
		m := &other
		if strings.HasPrefix(k, "net.") {
			m = &net
		}
		if *m == nil {
			*m = map[string]string{}
		}
		(*m)[k] = v
	}
	return net, other
}

// SetSysctls writes sysctls (net.* keys, as in config.json) in the
// network namespace pinned in stateDir, after ADD: under runc, Podman's
// and containerd's CNI set up the interfaces before the runtime writes
// the config's sysctls, so keys of those interfaces
// (net.ipv4.conf.eth0.rp_filter) exist, and net.ipv6.conf.all.disable_ipv6
// takes the addresses ADD gave. In key order, so a run is repeatable.
func SetSysctls(stateDir string, sysctls map[string]string) error {
	if len(sysctls) == 0 {
		return nil
	}
	keys := make([]string, 0, len(sysctls))
	for k := range sysctls {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return inNamespace(filepath.Join(stateDir, pinName), func() error {
		for _, k := range keys {
			path := "/proc/sys/" + strings.ReplaceAll(k, ".", "/")
			if err := os.WriteFile(path, []byte(sysctls[k]), 0); err != nil {
				return fmt.Errorf("sysctl %s=%s: %w", k, sysctls[k], err)
			}
		}
		return nil
	})
}
