package network

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

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
	cni := newCNI(stateDir, filepath.Join(stateDir, cacheName))
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
	ctx, cancel := context.WithTimeout(context.Background(), pluginTimeout)
	defer cancel()
	return cni.CheckNetworkList(ctx, list, runtimeConf(stateDir, rec, a))
}
