// Package cgroupfs tells cgroup v2 from v1: the one way lkc, its tests and
// its benchmark do, whether they look at a mounted hierarchy (IsV2) or at
// the paths lkc recorded for a container's cgroup (V2Dir). It imports
// nothing of lkc, so the leaves (spec, testutil) can use it as well as
// cgroups, mount and container: package cgroups itself imports config,
// whose tests import testutil.
package cgroupfs

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
)

// IsV2 reports whether dir is in a cgroup v2 hierarchy: the root of a pure
// v2 host (/sys/fs/cgroup), the unified mount of a hybrid one
// (/sys/fs/cgroup/unified), or a cgroup in either. Every directory of a v2
// hierarchy holds cgroup.controllers, and none of v1 does (nor the tmpfs
// holding the v1 hierarchies); unlike the file system's magic number, a
// file can also be laid out in the fake trees unit tests build. The error
// says dir itself cannot be looked at (missing, not searchable).
func IsV2(dir string) (bool, error) {
	_, err := os.Stat(filepath.Join(dir, "cgroup.controllers"))
	if err == nil {
		return true, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return false, err
	}
	if _, err := os.Stat(dir); err != nil {
		return false, err
	}
	return false, nil
}

// V2Dir returns the directory of a container's cgroup when the paths lkc
// recorded for it (cgroups.Manager.Paths: hierarchy -> directory) are
// those of a v2 one: a single entry, keyed "" for the unified hierarchy.
// A v1 cgroup has one entry per controller hierarchy and never "".
func V2Dir(paths map[string]string) (string, bool) {
	dir, ok := paths[""]
	return dir, ok && len(paths) == 1
}
