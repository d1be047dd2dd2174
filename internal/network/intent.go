package network

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/containernetworking/cni/libcni"
)

// intentDirName, in the cache directory, holds an intent per attachment
// whose ADD is under way: libcni caches an attachment only once its whole
// ADD succeeded, so a create killed during ADD leaves a lease, a veth and
// rules that nothing in libcni's cache names. Attach writes the intent
// before ADD and removes it once libcni cached the attachment; a DEL of
// the attachment (delete, the undo of a failed ADD, the collector)
// removes it too. The collector takes an intent whose container is gone
// for an attachment and runs its DEL: the plugins' DEL is idempotent, so
// whatever part of ADD ran is undone. The directory is beside libcni's
// cache because it must outlive the state directory as the cache does.
const intentDirName = "intents"

// intent is what the collector needs to run DEL of an attachment whose
// ADD never finished.
type intent struct {
	Network     string         `json:"network"`  // as org.lkc.network names it
	ListName    string         `json:"listName"` // the configuration list's name, the plugins' network name
	ContainerID string         `json:"containerID"`
	IfName      string         `json:"ifName"`
	NetNS       string         `json:"netns"` // the pin, <state dir>/netns
	Config      []byte         `json:"config"`
	Caps        map[string]any `json:"capabilityArgs,omitempty"`
}

// intentPath is the intent of network's interface ifName of container
// id, named as libcni names its cache files.
func intentPath(cacheDir, network, id, ifName string) string {
	return filepath.Join(cacheDir, intentDirName, network+"-"+id+"-"+ifName)
}

// writeIntent records that ADD of a is about to run for the container in
// stateDir. Preconditions: the container's attachment lock is held.
func writeIntent(stateDir string, rec *record, a attachment) error {
	list, err := libcni.NetworkConfFromBytes(a.Config)
	if err != nil {
		return err
	}
	in := intent{
		Network: a.Name, ListName: list.Name, ContainerID: rec.ContainerID, IfName: a.IfName,
		NetNS: filepath.Join(stateDir, pinName), Config: a.Config, Caps: a.Caps,
	}
	b, err := json.Marshal(in)
	if err != nil {
		return err
	}
	path := intentPath(rec.CacheDir, a.Name, rec.ContainerID, a.IfName)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("recording the ADD of network %s: %w", a.Name, err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("recording the ADD of network %s: %w", a.Name, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("recording the ADD of network %s: %w", a.Name, err)
	}
	return nil
}

// removeIntent removes the intent of the attachment, once libcni cached
// it or DEL undid it. A record without a cache directory (written before
// the cache was shared) has none.
func removeIntent(cacheDir, network, id, ifName string) error {
	if cacheDir == "" {
		return nil
	}
	if err := removeFile(intentPath(cacheDir, network, id, ifName)); err != nil {
		return fmt.Errorf("removing the ADD record of network %s: %w", network, err)
	}
	return nil
}

// readIntent reads the intent of att; nil when there is none.
func readIntent(cacheDir string, att *libcni.NetworkAttachment) (*intent, error) {
	b, err := os.ReadFile(intentPath(cacheDir, att.Network, att.ContainerID, att.IfName))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	in := &intent{}
	if err := json.Unmarshal(b, in); err != nil {
		return nil, fmt.Errorf("reading the ADD record of network %s: %w", att.Network, err)
	}
	return in, nil
}

// intendedAttachments lists the intents in cacheDir as attachments (no
// configuration: collectOne reads it under the lock), but those libcni's
// cache holds too (the listing from it, seen, has them).
func intendedAttachments(cacheDir string, seen map[string]bool) ([]*libcni.NetworkAttachment, error) {
	entries, err := os.ReadDir(filepath.Join(cacheDir, intentDirName))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing the ADD records in %s: %w", cacheDir, err)
	}
	var out []*libcni.NetworkAttachment
	for _, ent := range entries {
		if filepath.Ext(ent.Name()) == ".tmp" {
			continue
		}
		b, err := os.ReadFile(filepath.Join(cacheDir, intentDirName, ent.Name()))
		if err != nil {
			continue // removed meanwhile
		}
		var in intent
		if err := json.Unmarshal(b, &in); err != nil {
			return nil, fmt.Errorf("reading the ADD record %s: %w", ent.Name(), err)
		}
		att := &libcni.NetworkAttachment{ContainerID: in.ContainerID, Network: in.Network, IfName: in.IfName, NetNS: in.NetNS}
		if !seen[attachmentKey(att)] {
			out = append(out, att)
		}
	}
	return out, nil
}

// attachmentKey names an attachment among those of every container.
func attachmentKey(att *libcni.NetworkAttachment) string {
	return att.Network + "\x00" + att.ContainerID + "\x00" + att.IfName
}
