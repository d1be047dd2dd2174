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

// Collect removes the attachments of libcni's cache in cacheDir, and
// those whose ADD never finished (their intents, intent.go), whose
// container is gone: the state directory recorded with each (its pinned
// namespace's directory) has no network record, because the directory
// was removed by hand or with the rest of /run at a reboot, or a delete
// of it never ran DEL. Each gets the DEL of its cached configuration and
// runtime arguments (the plugins' DEL is what gives back its lease, veth,
// rules and ifb; Debian's plugins, 1.1.1, know no GC verb), in the pinned
// namespace when one is still there, and then removes what DEL without the
// namespace leaves (collectOne). Then each network those attachments
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
	seen := map[string]bool{}
	for _, att := range cached {
		seen[attachmentKey(att)] = true
	}
	intended, err := intendedAttachments(cacheDir, seen)
	if err != nil {
		return nil, err
	}
	networks := map[string]bool{}
	byContainer := map[string][]*libcni.NetworkAttachment{}
	var order []string
	for _, att := range append(cached, intended...) {
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
		waitPlugins(stateDir) // an ADD a killed create left running
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
// cached configuration and runtime arguments, or, when libcni cached none
// (its ADD never finished), from its intent; both read again under the
// lock: a delete may have run DEL since the list (then it removed
// nothing). After DEL it removes what the plugins may have left without
// the namespace or a result (the bridge's masquerade chain, host-local's
// lease) and the intent.
func collectOne(cni *libcni.CNIConfig, cacheDir, stateDir string, att *libcni.NetworkAttachment) (bool, error) {
	a, ok, err := collectable(cni, cacheDir, att)
	if err != nil || !ok {
		return false, err
	}
	rec := &record{ContainerID: att.ContainerID, CacheDir: cacheDir}
	if err := del(cni, stateDir, rec, a, false); err != nil {
		return false, err
	}
	list, err := libcni.NetworkConfFromBytes(a.Config)
	if err != nil {
		return true, err
	}
	if err := errors.Join(removeMasq(list, att.ContainerID), removeLeases(list, att.ContainerID, att.IfName)); err != nil {
		return true, err
	}
	if err := removeIntent(cacheDir, att.Network, att.ContainerID, att.IfName); err != nil {
		return true, err
	}
	if _, ok := a.Caps["portMappings"]; ok {
		if err := releasePorts(stateDir); err != nil {
			return true, fmt.Errorf("releasing the published ports: %w", err)
		}
	}
	return true, nil
}

// collectable is the attachment att as libcni cached it, or else as its
// intent recorded it; false when neither is there any more.
func collectable(cni *libcni.CNIConfig, cacheDir string, att *libcni.NetworkAttachment) (attachment, bool, error) {
	conf, rt, err := cni.GetNetworkListCachedConfig(&libcni.NetworkConfigList{Name: att.Network},
		&libcni.RuntimeConf{ContainerID: att.ContainerID, IfName: att.IfName})
	if err != nil {
		return attachment{}, false, err
	}
	if conf != nil {
		return attachment{Name: att.Network, IfName: att.IfName, Config: conf, Caps: rt.CapabilityArgs}, true, nil
	}
	in, err := readIntent(cacheDir, att)
	if err != nil || in == nil {
		return attachment{}, false, err
	}
	return attachment{Name: att.Network, IfName: att.IfName, Config: in.Config, Caps: in.Caps}, true, nil
}

// collectEarlier runs DEL of the attachments of rec that libcni's cache
// (or an intent) still holds for an earlier container of the same state
// directory (the same CNI container id), whose directory went without a delete: create
// made stateDir anew, so no live container has the id. host-local would
// otherwise refuse the new ADD a lease ("duplicate allocation is not
// allowed") while the old one stays. It costs a create one stat per
// network. Preconditions: the attachment lock is held, the namespace not
// pinned yet (DEL must not run in the new one).
func collectEarlier(stateDir string, rec *record) error {
	var cni *libcni.CNIConfig
	for _, a := range rec.Attachments {
		if !cachedOrIntended(rec.CacheDir, a.Name, rec.ContainerID, a.IfName) {
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

// cachedOrIntended says whether libcni's cache or an intent holds the
// attachment.
func cachedOrIntended(cacheDir, network, id, ifName string) bool {
	for _, path := range []string{cachePath(cacheDir, network, id, ifName), intentPath(cacheDir, network, id, ifName)} {
		if _, err := os.Lstat(path); err == nil {
			return true
		}
	}
	return false
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
