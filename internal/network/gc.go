package network

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/cni/pkg/version"
)

// Collected is what Collect did.
type Collected struct {
	// Removed are the stale attachments whose DEL ran.
	Removed []Stale
	// Kept counts the attachments of containers that still have their
	// network record, which their delete will DEL.
	Kept int
	// Failed counts the stale attachments whose DEL failed (Collect's
	// error names them); they stay cached for the next collection.
	Failed int
	// GC names the networks whose plugins were sent CNI's GC verb.
	GC []string
}

// Stale is one attachment of a container that is gone.
type Stale struct {
	Network  string
	IfName   string
	StateDir string // the container's state directory (<root>/<id>)
}

// String is the summary line `lkc network gc` prints.
func (c *Collected) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "removed %d stale attachments", len(c.Removed))
	if len(c.Removed) > 0 {
		var names []string
		for _, s := range c.Removed {
			names = append(names, fmt.Sprintf("%s/%s of %s", s.Network, s.IfName, s.StateDir))
		}
		fmt.Fprintf(&b, " (%s)", strings.Join(names, ", "))
	}
	fmt.Fprintf(&b, ", kept %d of live containers", c.Kept)
	if c.Failed > 0 {
		fmt.Fprintf(&b, ", %d failed", c.Failed)
	}
	if len(c.GC) > 0 {
		fmt.Fprintf(&b, ", GC sent to %s", strings.Join(c.GC, ", "))
	}
	return b.String()
}

// Collect removes the attachments of libcni's cache in cacheDir whose
// container is gone: the state directory recorded with each (its pinned
// namespace's directory) has no network record, because the directory
// was removed by hand or with the rest of /run at a reboot, or a delete
// of it never ran DEL. Each gets the DEL of its cached configuration and
// runtime arguments (the plugins' DEL is what gives back its lease, veth,
// rules and ifb; Debian's plugins, 1.1.1, know no GC verb), in the pinned
// namespace when one is still there. Then each network those attachments
// belong to whose configuration in ConfDir has cniVersion 1.1.0 or later
// gets libcni's GCNetworkList with every attachment left as valid, so
// plugins that implement GC free what no cached attachment names.
//
// An attachment is looked at and DEL'd under its container's attachment
// lock, which Attach holds from before it pins the namespace until its
// ADD is done: a create under way is never taken for gone. A DEL that
// fails leaves its attachment cached and the others are still collected;
// the error names each failure's network and container.
func Collect(ctx context.Context, cacheDir string) (*Collected, error) {
	lister := libcni.NewCNIConfigWithCacheDir(PluginPath(), cacheDir, &pluginExec{})
	cached, err := lister.GetCachedAttachments("")
	if err != nil {
		return nil, fmt.Errorf("listing the cached attachments in %s: %w", cacheDir, err)
	}
	c := &Collected{}
	var errs []error
	networks := map[string]bool{}
	byContainer := map[string][]*libcni.NetworkAttachment{}
	var order []string
	for _, att := range cached {
		networks[att.Network] = true
		if byContainer[att.ContainerID] == nil {
			order = append(order, att.ContainerID)
		}
		byContainer[att.ContainerID] = append(byContainer[att.ContainerID], att)
	}
	for _, id := range order {
		if err := ctx.Err(); err != nil {
			return c, err
		}
		errs = append(errs, c.collectContainer(cacheDir, byContainer[id])...)
	}
	for _, name := range slices.Sorted(maps.Keys(networks)) {
		sent, err := gcNetwork(ctx, cacheDir, name)
		if err != nil {
			errs = append(errs, fmt.Errorf("network %s: GC: %w", name, err))
		}
		if sent {
			c.GC = append(c.GC, name)
		}
	}
	return c, errors.Join(errs...)
}

// collectContainer runs DEL of the attachments of one container (atts, as
// cached) when the container is gone, under its attachment lock, last
// interface first as a delete does, then releases the namespace pin when
// every DEL succeeded.
func (c *Collected) collectContainer(cacheDir string, atts []*libcni.NetworkAttachment) []error {
	id, stateDir := atts[0].ContainerID, filepath.Dir(atts[0].NetNS)
	if atts[0].NetNS == "" || containerID(stateDir) != id {
		return nil // not an attachment lkc made: leave it alone
	}
	unlock, err := lockAttachments(cacheDir, id)
	if err != nil {
		return []error{fmt.Errorf("container %s: %w", stateDir, err)}
	}
	defer unlock()
	if _, err := os.Lstat(filepath.Join(stateDir, recordName)); !errors.Is(err, os.ErrNotExist) {
		c.Kept += len(atts) // live (or unreadable: not known to be gone)
		return nil
	}
	lockPath := ""
	if _, err := os.Stat(stateDir); err == nil {
		lockPath = filepath.Join(stateDir, pluginLockName)
	}
	cni := libcni.NewCNIConfigWithCacheDir(PluginPath(), cacheDir, &pluginExec{lock: lockPath})
	slices.SortFunc(atts, func(x, y *libcni.NetworkAttachment) int { return cmpIfName(y.IfName, x.IfName) })
	var errs []error
	for _, att := range atts {
		removed, err := collectOne(cni, cacheDir, stateDir, att)
		if err != nil {
			c.Failed++
			errs = append(errs, fmt.Errorf("network %s, container %s: %w", att.Network, stateDir, err))
			continue
		}
		if removed {
			c.Removed = append(c.Removed, Stale{Network: att.Network, IfName: att.IfName, StateDir: stateDir})
		}
	}
	if len(errs) > 0 {
		return errs
	}
	// The pin served DEL alone; a directory removed by hand keeps it (the
	// mount point resists rm -rf), and it would keep the namespace.
	if err := unpin(stateDir); err != nil {
		return []error{fmt.Errorf("container %s: %w", stateDir, err)}
	}
	return nil
}

// collectOne runs DEL of att, of a container that is gone, from its
// cached configuration and runtime arguments, read again under the lock:
// a delete may have run DEL since the list (then it removed nothing).
func collectOne(cni *libcni.CNIConfig, cacheDir, stateDir string, att *libcni.NetworkAttachment) (bool, error) {
	conf, rt, err := cni.GetNetworkListCachedConfig(&libcni.NetworkConfigList{Name: att.Network},
		&libcni.RuntimeConf{ContainerID: att.ContainerID, IfName: att.IfName})
	if err != nil || conf == nil {
		return false, err
	}
	rec := &record{ContainerID: att.ContainerID, CacheDir: cacheDir}
	a := attachment{Name: att.Network, IfName: att.IfName, Config: conf, Caps: rt.CapabilityArgs}
	if err := del(cni, stateDir, rec, a, false); err != nil {
		return false, err
	}
	if _, ok := a.Caps["portMappings"]; ok {
		if err := releasePorts(stateDir); err != nil {
			return true, fmt.Errorf("releasing the published ports: %w", err)
		}
	}
	return true, nil
}

// collectEarlier runs DEL of the attachments of rec that libcni's cache
// still holds for an earlier container of the same state directory (the
// same CNI container id), whose directory went without a delete: create
// made stateDir anew, so no live container has the id. host-local would
// otherwise refuse the new ADD a lease ("duplicate allocation is not
// allowed") while the old one stays. It costs a create one stat per
// network. Preconditions: the attachment lock is held, the namespace not
// pinned yet (DEL must not run in the new one).
func collectEarlier(stateDir string, rec *record) error {
	var cni *libcni.CNIConfig
	for _, a := range rec.Attachments {
		if _, err := os.Lstat(cachePath(rec.CacheDir, a.Name, rec.ContainerID, a.IfName)); err != nil {
			continue
		}
		if cni == nil {
			cni = newCNI(stateDir, rec.CacheDir)
		}
		att := &libcni.NetworkAttachment{ContainerID: rec.ContainerID, Network: a.Name, IfName: a.IfName}
		if _, err := collectOne(cni, rec.CacheDir, stateDir, att); err != nil {
			return fmt.Errorf("network %s: DEL of the attachment an earlier container %s left: %w", a.Name, stateDir, err)
		}
	}
	return nil
}

// cachePath is libcni's cache file of an attachment (its layout:
// results/<network>-<container id>-<interface>).
func cachePath(cacheDir, network, id, ifName string) string {
	return filepath.Join(cacheDir, "results", network+"-"+id+"-"+ifName)
}

// cmpIfName orders interface names ethN by N (eth2 before eth10).
func cmpIfName(x, y string) int {
	if len(x) != len(y) {
		return len(x) - len(y)
	}
	return strings.Compare(x, y)
}

// gcNetwork sends the GC verb to the plugins of network name, as ConfDir
// configures it now, when its cniVersion has one (1.1.0), with every
// attachment cached in cacheDir as valid. It holds every container's
// attachment lock meanwhile: an ADD finished after the list would be
// freed by it. A network no longer configured is left out.
func gcNetwork(ctx context.Context, cacheDir, name string) (bool, error) {
	list, err := loadList(ConfDir(), name)
	if err != nil || list.DisableGC {
		return false, nil
	}
	if ok, err := version.GreaterThanOrEqualTo(list.CNIVersion, "1.1.0"); err != nil || !ok {
		return false, nil
	}
	unlock, err := lockAttachments(cacheDir, "")
	if err != nil {
		return false, err
	}
	defer unlock()
	cni := libcni.NewCNIConfigWithCacheDir(PluginPath(), cacheDir, &pluginExec{})
	cached, err := cni.GetCachedAttachments("")
	if err != nil {
		return false, err
	}
	args := &libcni.GCArgs{}
	for _, att := range cached {
		if att.Network == name {
			args.ValidAttachments = append(args.ValidAttachments, types.GCAttachment{ContainerID: att.ContainerID, IfName: att.IfName})
		}
	}
	ctx, cancel := context.WithTimeout(ctx, pluginTimeout)
	defer cancel()
	return true, cni.GCNetworkList(ctx, list, args)
}
