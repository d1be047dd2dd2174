package network

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
)

// ErrNoNetwork is the error of a rate change on a container that has no
// network able to limit it.
var ErrNoNetwork = errors.New("no network with the bandwidth capability")

// updateCacheName is the cache the one-plugin calls of SetRate use, apart
// from the networks' own: libcni would otherwise record the bandwidth
// plugin alone as the network's configuration, and the final DEL would run
// only that.
const updateCacheName = "cni-update"

// SetRate changes the rate limit of the container in stateDir live. CNI
// has no update, so it runs DEL and then ADD of the bandwidth plugin alone,
// with the network's cached result as ADD's prevResult, which names the
// host side of the veth the limit applies to (the plugin's DEL leaves its
// qdiscs there, which clearShaping removes); the other plugins, and the
// container's address, are left alone. A zero rate removes the limit.
func SetRate(stateDir string, r Rate) error {
	rec, err := readRecord(stateDir)
	if errors.Is(err, os.ErrNotExist) {
		return ErrNoNetwork
	}
	if err != nil {
		return err
	}
	for i, a := range rec.Attachments {
		list, err := libcni.NetworkConfFromBytes(a.Config)
		if err != nil {
			return fmt.Errorf("network %s: %w", a.Name, err)
		}
		if !hasCapability(list, "bandwidth") {
			continue
		}
		if err := setRate(stateDir, rec, &rec.Attachments[i], list, r); err != nil {
			return fmt.Errorf("network %s: %w", a.Name, err)
		}
		return writeRecord(stateDir, rec)
	}
	return ErrNoNetwork
}

func setRate(stateDir string, rec *record, a *attachment, list *libcni.NetworkConfigList, r Rate) error {
	main := newCNI(stateDir, rec.cacheDir(stateDir))
	prev, err := main.GetNetworkListCachedResult(list, runtimeConf(stateDir, rec, *a))
	if err != nil {
		return fmt.Errorf("reading the result of its ADD: %w", err)
	}
	if prev == nil {
		return errors.New("reading the result of its ADD: none cached")
	}
	bw, err := bandwidthOnly(list, prev)
	if err != nil {
		return err
	}
	tmp := filepath.Join(stateDir, updateCacheName)
	defer os.RemoveAll(tmp)
	ctx, cancel := context.WithTimeout(context.Background(), pluginTimeout)
	defer cancel()
	sh := shaper{ctx: ctx, cni: newCNI(stateDir, tmp), bw: bw, prev: prev,
		stateDir: stateDir, rec: rec, cache: tmp}
	old, hadOld := a.Caps["bandwidth"]
	err = sh.apply(a, bandwidthCaps(r))
	if err == nil || !hadOld {
		return err
	}
	// The old limit went with the DEL: put it back, so that the
	// container keeps the limit its record and annotation name.
	if rerr := sh.apply(a, old); rerr != nil {
		return fmt.Errorf("%w; putting the old limit back: %v (the container is now unlimited)", err, rerr)
	}
	return err
}

// bandwidthCaps is the bandwidth capability argument of r, nil for none.
func bandwidthCaps(r Rate) any {
	if !r.Any() {
		return nil
	}
	return bandwidth(r)
}

// shaper changes the limit of one attachment through its bandwidth
// plugin alone (bw), with its own cache.
type shaper struct {
	ctx      context.Context
	cni      *libcni.CNIConfig
	bw       *libcni.NetworkConfigList
	prev     types.Result
	stateDir string
	rec      *record
	cache    string
}

// apply runs DEL of the plugin, removes what its DEL leaves, and, when
// caps is not nil, ADD with caps as a's bandwidth capability argument;
// a's capabilities then say what was asked last.
func (sh shaper) apply(a *attachment, caps any) error {
	rt := runtimeConf(sh.stateDir, sh.rec, *a)
	rt.CacheDir = sh.cache
	if err := sh.cni.DelNetworkList(sh.ctx, sh.bw, rt); err != nil {
		return err
	}
	if err := clearShaping(sh.prev); err != nil {
		return err
	}
	delete(a.Caps, "bandwidth")
	if caps == nil {
		return nil
	}
	if a.Caps == nil {
		a.Caps = map[string]any{} // the record omits an empty one
	}
	a.Caps["bandwidth"] = caps
	rt = runtimeConf(sh.stateDir, sh.rec, *a)
	rt.CacheDir = sh.cache
	_, err := sh.cni.AddNetworkList(sh.ctx, sh.bw, rt)
	return err
}

// bandwidthOnly is list reduced to its bandwidth plugin, given prev as
// its prevResult.
func bandwidthOnly(list *libcni.NetworkConfigList, prev types.Result) (*libcni.NetworkConfigList, error) {
	for _, p := range list.Plugins {
		if !p.Network.Capabilities["bandwidth"] {
			continue
		}
		pc, err := libcni.InjectConf(p, map[string]any{"prevResult": prev})
		if err != nil {
			return nil, err
		}
		return &libcni.NetworkConfigList{Name: list.Name, CNIVersion: list.CNIVersion, Plugins: []*libcni.PluginConfig{pc}}, nil
	}
	return nil, ErrNoNetwork
}
