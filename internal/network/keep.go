package network

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
)

// Kept is what a checkpoint keeps of a container's networks for the
// restore: the addresses each interface had, by interface name. The
// configurations are not kept: the restoring host attaches the container to
// its own networks of the same names, as create would, asking their IPAM
// for these addresses.
type Kept struct {
	Addresses map[string][]string `json:"addresses"`
}

// Keep reads the addresses ADD gave the container in stateDir from
// libcni's cached results; nil when the container has no networks.
func Keep(stateDir string) (*Kept, error) {
	rec, err := readRecord(stateDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	cni := newCNI(stateDir, rec.cacheDir(stateDir))
	k := &Kept{Addresses: map[string][]string{}}
	for _, a := range rec.Attachments {
		list, err := libcni.NetworkConfFromBytes(a.Config)
		if err != nil {
			return nil, fmt.Errorf("network %s: %w", a.Name, err)
		}
		ips, err := cachedIPs(cni, list, runtimeConf(stateDir, rec, a))
		if err != nil {
			return nil, fmt.Errorf("network %s: %w", a.Name, err)
		}
		k.Addresses[a.IfName] = ips
	}
	return k, nil
}

// cachedIPs lists the addresses of the cached ADD result of list.
func cachedIPs(cni *libcni.CNIConfig, list *libcni.NetworkConfigList, rt *libcni.RuntimeConf) ([]string, error) {
	res, err := cni.GetNetworkListCachedResult(list, rt)
	if err != nil {
		return nil, fmt.Errorf("reading the cached ADD result: %w", err)
	}
	if res == nil {
		return nil, fmt.Errorf("no cached ADD result")
	}
	cur, err := current.NewResultFromResult(res)
	if err != nil {
		return nil, err
	}
	var ips []string
	for _, ip := range cur.IPs {
		ips = append(ips, ip.Address.IP.String())
	}
	return ips, nil
}

// AttachKept is Attach for a restore: it pins the namespace at nsPath (a
// new one, which the restored tasks will join) and asks each network's
// IPAM for the addresses k kept, through the "args" convention
// (args.cni.ips, which host-local honours). A network that hands out other
// addresses fails the restore: connections and peers know the old ones.
// On failure AttachKept undoes what it did.
func (p *Plan) AttachKept(stateDir, nsPath string, k *Kept) error {
	return p.attach(stateDir, func() error { return pinPath(stateDir, nsPath) }, func(cni *libcni.CNIConfig, rec *record, a attachment) (types.Result, error) {
		return addWithIPs(cni, stateDir, rec, a, k.Addresses[a.IfName])
	})
}

// addWithIPs runs ADD of a asking for ips, and checks that it got them.
func addWithIPs(cni *libcni.CNIConfig, stateDir string, rec *record, a attachment, ips []string) (types.Result, error) {
	conf, err := withIPArgs(a.Config, ips)
	if err != nil {
		return nil, err
	}
	list, err := libcni.NetworkConfFromBytes(conf)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), pluginTimeout)
	defer cancel()
	res, err := cni.AddNetworkList(ctx, list, runtimeConf(stateDir, rec, a))
	if err != nil {
		return nil, err
	}
	cur, err := current.NewResultFromResult(res)
	if err != nil {
		return nil, err
	}
	var got []string
	for _, ip := range cur.IPs {
		got = append(got, ip.Address.IP.String())
	}
	slices.Sort(got)
	sorted := slices.Sorted(slices.Values(ips))
	if !slices.Equal(got, sorted) {
		return nil, fmt.Errorf("asked for addresses %v, got %v (does its IPAM honour args.cni.ips, and are the addresses in its ranges?)", sorted, got)
	}
	return res, nil
}

// withIPArgs adds args.cni.ips to each plugin of the configuration list
// conf that has an ipam section: the plugin hands its configuration to
// its IPAM plugin, which reads them there.
func withIPArgs(conf []byte, ips []string) ([]byte, error) {
	if len(ips) == 0 {
		return conf, nil
	}
	var list map[string]any
	if err := json.Unmarshal(conf, &list); err != nil {
		return nil, fmt.Errorf("decoding the configuration: %w", err)
	}
	plugins, _ := list["plugins"].([]any)
	for _, pl := range plugins {
		m, ok := pl.(map[string]any)
		if !ok || m["ipam"] == nil {
			continue
		}
		args, _ := m["args"].(map[string]any)
		if args == nil {
			args = map[string]any{}
		}
		cniArgs, _ := args["cni"].(map[string]any)
		if cniArgs == nil {
			cniArgs = map[string]any{}
		}
		cniArgs["ips"] = ips
		args["cni"] = cniArgs
		m["args"] = args
	}
	return json.Marshal(list)
}
