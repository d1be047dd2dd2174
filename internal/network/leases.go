package network

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/containernetworking/cni/libcni"
	"golang.org/x/sys/unix"
)

// hostLocalDataDir is where host-local keeps its leases when the
// configuration names no dataDir: a directory per network, a file per
// address.
const hostLocalDataDir = "/var/lib/cni/networks"

// removeLeases removes the leases host-local holds for container id's
// interface ifName in the networks' stores of list, which a DEL that found
// no result to release (or a plugin that failed before it reached its
// IPAM) left. It is what a host-local DEL does, under the store's lock as
// host-local takes it. A lease file holds the container id, then (since
// 0.8) a line with the interface name.
func removeLeases(list *libcni.NetworkConfigList, id, ifName string) error {
	var errs []error
	for _, p := range list.Plugins {
		var conf struct {
			IPAM struct {
				Type    string `json:"type"`
				DataDir string `json:"dataDir"`
			} `json:"ipam"`
		}
		if json.Unmarshal(p.Bytes, &conf) != nil || conf.IPAM.Type != "host-local" {
			continue
		}
		dir := conf.IPAM.DataDir
		if dir == "" {
			dir = hostLocalDataDir
		}
		if err := removeStoreLeases(filepath.Join(dir, list.Name), id, ifName); err != nil {
			errs = append(errs, fmt.Errorf("removing the leases in %s: %w", dir, err))
		}
	}
	return errors.Join(errs...)
}

// removeStoreLeases removes the lease files of id and ifName in the
// host-local store dir of one network.
func removeStoreLeases(dir, id, ifName string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	lock, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_RDONLY|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	defer lock.Close()
	if err := flock(lock, unix.LOCK_EX); err != nil {
		return err
	}
	for _, ent := range entries {
		name := ent.Name()
		if name == "lock" || strings.HasPrefix(name, "last_reserved_ip") || !ent.Type().IsRegular() {
			continue
		}
		path := filepath.Join(dir, name)
		b, err := os.ReadFile(path)
		if err != nil || !leaseOf(string(b), id, ifName) {
			continue
		}
		if err := removeFile(path); err != nil {
			return err
		}
	}
	return nil
}

// leaseOf says whether the content of a host-local lease file names
// container id and interface ifName (or no interface, as before 0.8).
func leaseOf(content, id, ifName string) bool {
	lines := strings.Split(content, "\n")
	if strings.TrimSpace(lines[0]) != id {
		return false
	}
	return len(lines) < 2 || strings.TrimSpace(lines[1]) == ifName
}
