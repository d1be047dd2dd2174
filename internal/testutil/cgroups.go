package testutil

import (
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/lkc-containers/lkc/internal/cgroups/cgroupfs"
)

const cgroupMount = "/sys/fs/cgroup"

// CgroupRoots lists the cgroups at the root of every mounted hierarchy, as
// "<mount>/<name>", for NewAtCgroupRoots to compare against after a suite.
func CgroupRoots() map[string]bool {
	out := map[string]bool{}
	mounts := []string{cgroupMount}
	if v2, _ := cgroupfs.IsV2(cgroupMount); !v2 {
		mounts, _ = filepath.Glob(cgroupMount + "/*")
	}
	for _, mnt := range mounts {
		entries, _ := os.ReadDir(mnt)
		for _, ent := range entries {
			if ent.IsDir() {
				out[filepath.Join(mnt, ent.Name())] = true
			}
		}
	}
	return out
}

// NewAtCgroupRoots lists the cgroups made at hierarchy roots since before
// that break the rule of lkc's test hosts (tests create cgroups beneath
// their own cgroup only) or carry one of the suite's prefixes: every new
// one where the root is outside this process's own cgroup (v1 memory on
// the project's host), and those named with a prefix anywhere. Where the
// root is the own cgroup, other new ones are left alone: relative
// placement (lkc's lkc/, runc's) puts cgroups there, and other runs on
// the machine do so at any time.
func NewAtCgroupRoots(before map[string]bool, prefixes ...string) []string {
	ownIsRoot := ownCgroupIsRoot()
	var out []string
	for dir := range CgroupRoots() {
		if before[dir] {
			continue
		}
		name := filepath.Base(dir)
		ours := slices.ContainsFunc(prefixes, func(p string) bool { return strings.HasPrefix(name, p) })
		if ours || !ownIsRoot[filepath.Dir(dir)] {
			out = append(out, dir)
		}
	}
	slices.Sort(out)
	return out
}

// ownCgroupIsRoot maps each hierarchy's mount to whether this process's
// cgroup in it is the root.
func ownCgroupIsRoot() map[string]bool {
	out := map[string]bool{}
	pureV2, _ := cgroupfs.IsV2(cgroupMount)
	self, _ := os.ReadFile("/proc/self/cgroup")
	for _, line := range strings.Split(string(self), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		mnt := filepath.Join(cgroupMount, strings.TrimPrefix(parts[1], "name="))
		if parts[1] == "" && !pureV2 {
			mnt = cgroupMount + "/unified"
		}
		out[mnt] = parts[2] == "/"
	}
	return out
}
