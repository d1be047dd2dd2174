package network

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/types"
	"golang.org/x/sys/unix"
)

// Names in the container's state directory.
const (
	recordName = "network.json" // the attachments, written before ADD
	pinName    = "netns"        // the namespace, bind-mounted to outlive init
	cacheName  = "cni"          // libcni's cache of records written before it was shared (cache.go)
)

// pluginTimeout bounds one ADD or DEL of a whole network.
const pluginTimeout = time.Minute

// record is what DEL needs, kept in the state directory.
type record struct {
	ContainerID string `json:"containerID"`
	// CacheDir is libcni's cache the attachments are in (CacheDir at
	// ADD), so DEL, CHECK and a rate change find them under any
	// LKC_CNI_CACHE_DIR.
	CacheDir    string       `json:"cacheDir,omitempty"`
	Attachments []attachment `json:"attachments"`
}

// Attach pins the network namespace of pid in stateDir and runs ADD of
// each network of p into it. The record is written before the first ADD,
// so a delete after a crash anywhere in here runs DEL of them all. On
// failure Attach undoes what it did and names the network that failed.
func (p *Plan) Attach(stateDir string, pid int) error {
	return p.attach(stateDir, func() error { return pin(stateDir, pid) }, func(cni *libcni.CNIConfig, rec *record, a attachment) (types.Result, error) {
		list, err := libcni.NetworkConfFromBytes(a.Config)
		if err != nil {
			return nil, err
		}
		ctx, cancel := context.WithTimeout(context.Background(), pluginTimeout)
		defer cancel()
		return cni.AddNetworkList(ctx, list, runtimeConf(stateDir, rec, a))
	})
}

// attach pins the namespace, writes the record and runs add for each
// network, undoing it all on failure: Attach and AttachKept differ only in
// what they pin and how they ADD.
func (p *Plan) attach(stateDir string, pinNS func() error, add func(*libcni.CNIConfig, *record, attachment) (types.Result, error)) (err error) {
	rec := &record{ContainerID: containerID(stateDir), CacheDir: CacheDir(), Attachments: p.attachments}
	unlock, err := lockAttachments(rec.CacheDir, rec.ContainerID)
	if err != nil {
		return err
	}
	defer unlock()
	if err := collectEarlier(stateDir, rec); err != nil {
		return err
	}
	if err := pinNS(); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			err = undoAttach(stateDir, err)
		}
	}()
	if err := writeRecord(stateDir, rec); err != nil {
		return err
	}
	if err := reservePorts(stateDir, p.ports); err != nil {
		return err
	}
	cni := newCNI(stateDir, rec.cacheDir(stateDir))
	for _, a := range rec.Attachments {
		if err := addRecorded(cni, stateDir, rec, a, p.ports, add); err != nil {
			return fmt.Errorf("network %s: %w", a.Name, err)
		}
	}
	return nil
}

// addRecorded runs add of a between its intent's writing and removal
// (intent.go): a create killed meanwhile leaves the intent for the
// collector. A failed ADD keeps it for the undo's DEL to remove.
func addRecorded(cni *libcni.CNIConfig, stateDir string, rec *record, a attachment, ports []Port, add func(*libcni.CNIConfig, *record, attachment) (types.Result, error)) error {
	if err := writeIntent(stateDir, rec, a); err != nil {
		return err
	}
	res, err := add(cni, rec, a)
	if err != nil {
		return err
	}
	if _, ok := a.Caps["portMappings"]; ok {
		if err := checkPublished(ports, res); err != nil {
			return err
		}
	}
	return removeIntent(rec.CacheDir, a.Name, rec.ContainerID, a.IfName)
}

// undoAttach runs detach after a failed attach (which holds the
// attachment lock). Its caller removes the state directory, and the
// record with it, so a DEL that fails cannot be tried again by a delete: the namespace is released all the same (its
// veths go with it once init is gone), and the error says what may be
// left (leases, rules outside the namespace).
func undoAttach(stateDir string, err error) error {
	derr := readAndDetach(stateDir, true)
	if derr == nil {
		return err
	}
	unpin(stateDir)
	return fmt.Errorf("%w (undoing it failed, leases or rules of the networks may be left: %v)", err, derr)
}

// Detach runs DEL of each network stateDir records, last first, then
// releases the namespace and the record. A container without networks has
// no record, and Detach does nothing. It goes on past a failing network so
// that the others are freed, and reports the first failure, keeping the
// record for a later delete to try again. It holds the attachment lock
// (cache.go) over the DEL.
func Detach(stateDir string) error {
	rec, err := readRecord(stateDir)
	if err != nil || rec.CacheDir == "" {
		return detach(stateDir, rec, err, false) // nothing the collector sees
	}
	unlock, err := lockAttachments(rec.CacheDir, rec.ContainerID)
	if err != nil {
		return err
	}
	defer unlock()
	return detach(stateDir, rec, nil, false)
}

// readAndDetach is detach of the record in stateDir.
func readAndDetach(stateDir string, undo bool) error {
	rec, err := readRecord(stateDir)
	return detach(stateDir, rec, err, undo)
}

// detach is Detach of rec, which readRecord returned with err. undo says
// it undoes the ADD this process just ran, with the same plugin path, so
// a plugin not installed now was missing at that ADD too, and is left out
// of DEL (installed). A later delete may run with another path
// (LKC_CNI_PATH): there a missing plugin fails DEL, and the record stays
// for a delete that finds it.
func detach(stateDir string, rec *record, err error, undo bool) error {
	if errors.Is(err, os.ErrNotExist) {
		return unpin(stateDir)
	}
	if err != nil {
		return err
	}
	if !undo {
		waitPlugins(stateDir)
	}
	cni := newCNI(stateDir, rec.cacheDir(stateDir))
	var first error
	for i := len(rec.Attachments) - 1; i >= 0; i-- {
		a := rec.Attachments[i]
		err := del(cni, stateDir, rec, a, undo)
		if err == nil {
			err = removeIntent(rec.CacheDir, a.Name, rec.ContainerID, a.IfName)
		}
		if err != nil && first == nil {
			first = fmt.Errorf("network %s: %w", a.Name, err)
		}
	}
	if first != nil {
		return first
	}
	if rec.publishes() {
		if err := releasePorts(stateDir); err != nil {
			return fmt.Errorf("releasing the published ports: %w", err)
		}
	}
	if err := unpin(stateDir); err != nil {
		return err
	}
	os.RemoveAll(filepath.Join(stateDir, cacheName))
	return removeFile(filepath.Join(stateDir, recordName))
}

// publishes says whether the container publishes ports, which
// reservePorts noted.
func (rec *record) publishes() bool {
	for _, a := range rec.Attachments {
		if _, ok := a.Caps["portMappings"]; ok {
			return true
		}
	}
	return false
}

func del(cni *libcni.CNIConfig, stateDir string, rec *record, a attachment, skipMissing bool) error {
	list, err := libcni.NetworkConfFromBytes(a.Config)
	if err != nil {
		return err
	}
	if skipMissing {
		if list = installed(list); len(list.Plugins) == 0 {
			return nil
		}
	}
	rt := runtimeConf(stateDir, rec, a)
	giveBackAddrs(cni, list, rt)
	if list, err = withFoundResult(cni, list, rt); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), pluginTimeout)
	defer cancel()
	return cni.DelNetworkList(ctx, list, rt)
}

// installed is list without the plugins that are not installed. DEL runs
// the list last plugin first and stops at the first that fails: a plugin
// missing at ADD (which failed there, having made nothing) would keep the
// plugins before it, the bridge and its lease among them, from the DEL
// that undoes it.
func installed(list *libcni.NetworkConfigList) *libcni.NetworkConfigList {
	var kept []*libcni.PluginConfig
	for _, p := range list.Plugins {
		if _, err := invoke.FindInPath(p.Network.Type, PluginPath()); err == nil {
			kept = append(kept, p)
		}
	}
	if len(kept) == len(list.Plugins) {
		return list
	}
	l := *list
	l.Plugins = kept
	return &l
}

// runtimeConf is what ADD and DEL of a are given. The namespace is the pin
// while it holds one (after a crash before the pin was made, plugins clean
// up what lies outside the namespace).
func runtimeConf(stateDir string, rec *record, a attachment) *libcni.RuntimeConf {
	rt := &libcni.RuntimeConf{
		ContainerID: rec.ContainerID, IfName: a.IfName, CapabilityArgs: a.Caps,
		CacheDir: rec.cacheDir(stateDir),
	}
	if pinned(stateDir) {
		rt.NetNS = filepath.Join(stateDir, pinName)
	}
	return rt
}

// containerID names the container to the plugins, which key leases,
// iptables chains and ifb devices by it: one per state directory, so equal
// ids under two roots never share them.
func containerID(stateDir string) string {
	sum := sha256.Sum256([]byte(filepath.Clean(stateDir)))
	return hex.EncodeToString(sum[:])
}

// pin bind-mounts the network namespace of pid on stateDir/netns, so that
// it lives until delete runs DEL in it, even when init died first: DEL
// needs the namespace to remove the veth and the rules that name its
// addresses, and a pid of a dead init could name another process's.
func pin(stateDir string, pid int) error {
	return pinPath(stateDir, "/proc/"+strconv.Itoa(pid)+"/ns/net")
}

// pinPath bind-mounts the network namespace at src on stateDir/netns.
func pinPath(stateDir, src string) error {
	path := filepath.Join(stateDir, pinName)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDONLY, 0o444)
	if err != nil {
		return fmt.Errorf("pinning the network namespace: %w", err)
	}
	f.Close()
	if err := unix.Mount(src, path, "", unix.MS_BIND, ""); err != nil {
		os.Remove(path)
		return &os.PathError{Op: "mount " + src + " on", Path: path, Err: err}
	}
	return nil
}

func pinned(stateDir string) bool {
	var fs unix.Statfs_t
	return unix.Statfs(filepath.Join(stateDir, pinName), &fs) == nil && fs.Type == unix.NSFS_MAGIC
}

func unpin(stateDir string) error {
	path := filepath.Join(stateDir, pinName)
	if pinned(stateDir) {
		if err := unix.Unmount(path, unix.MNT_DETACH); err != nil {
			return &os.PathError{Op: "unmount", Path: path, Err: err}
		}
	}
	return removeFile(path)
}

func removeFile(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

func writeRecord(stateDir string, rec *record) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	tmp := filepath.Join(stateDir, "."+recordName)
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("writing the network record: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(stateDir, recordName)); err != nil {
		return fmt.Errorf("writing the network record: %w", err)
	}
	return nil
}

func readRecord(stateDir string) (*record, error) {
	b, err := os.ReadFile(filepath.Join(stateDir, recordName))
	if err != nil {
		return nil, err
	}
	rec := &record{}
	if err := json.Unmarshal(b, rec); err != nil {
		return nil, fmt.Errorf("reading the network record: %w", err)
	}
	return rec, nil
}
