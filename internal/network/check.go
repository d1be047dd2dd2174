package network

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/containernetworking/cni/libcni"
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
	ctx, cancel := context.WithTimeout(context.Background(), pluginTimeout)
	defer cancel()
	return cni.CheckNetworkList(ctx, list, runtimeConf(stateDir, rec, a))
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
