package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/lkc-containers/lkc/internal/cgroups/cgroupfs"
)

const (
	cgroupRoot    = "/sys/fs/cgroup"
	unifiedMount  = cgroupRoot + "/unified"
	sweepMaxDepth = 4
)

// detachUnifiedCgroup unmounts the cgroup2 mount of a hybrid hierarchy in
// the current (private) mount namespace: crun refuses hybrid mode. It returns
// a sentence for the report describing what it did.
func detachUnifiedCgroup() (string, error) {
	hybrid, _ := cgroupfs.IsV2(unifiedMount)
	if pure, _ := cgroupfs.IsV2(cgroupRoot); !hybrid || pure {
		return "all variants run in one private mount namespace; cgroups are not hybrid, nothing unmounted", nil
	}
	if err := syscall.Unmount(unifiedMount, syscall.MNT_DETACH); err != nil {
		return "", fmt.Errorf("unmounting %s in the private mount namespace: %w", unifiedMount, err)
	}
	return "all variants run in one private mount namespace with " + unifiedMount +
		" unmounted (crun refuses hybrid cgroups); no per-run wrapper", nil
}

// sweepCgroups removes every cgroup directory under root whose name starts
// with prefix, with the cgroups beneath it (Podman's conmon/, a runtime's
// container under the benchmark's --cgroup-parent), deepest first, and
// returns one note per removal or failure. The runtimes normally remove
// their cgroups themselves, so any note means something was left behind.
func sweepCgroups(root, prefix string) []string {
	var found []string
	hierarchies, err := os.ReadDir(root)
	if err != nil {
		return []string{fmt.Sprintf("listing %s: %v", root, err)}
	}
	for _, h := range hierarchies {
		if h.IsDir() { // skips the cpu,cpuacct style symlinks
			for _, dir := range findDirs(filepath.Join(root, h.Name()), prefix, sweepMaxDepth) {
				found = append(found, dir)
				found = append(found, findDirs(dir, "", sweepMaxDepth)...)
			}
		}
	}
	slices.Sort(found)
	found = slices.Compact(found)
	// Longer paths first, so children go before their parents.
	slices.SortFunc(found, func(a, b string) int { return len(b) - len(a) })
	var notes []string
	for _, dir := range found {
		if err := syscall.Rmdir(dir); err != nil {
			notes = append(notes, fmt.Sprintf("removing leftover cgroup %s: %v", dir, err))
			continue
		}
		notes = append(notes, "removed leftover cgroup "+dir)
	}
	return notes
}

// removeEmptyAbove removes the empty directories between each hierarchy's
// root and path that are not this process's own cgroup or above it: the
// parents a runtime made for an absolute cgroupsPath beneath
// ownCgroupBase (on the project's host, /process_api/<id> in every
// hierarchy but memory). One in use by others is not empty and stays.
func removeEmptyAbove(root, path string) {
	data, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return
	}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 || parts[1] == "" {
			continue
		}
		h := filepath.Join(root, strings.TrimPrefix(parts[1], "name="))
		for d := path; d != "/" && !strings.HasPrefix(parts[2]+"/", d+"/"); d = filepath.Dir(d) {
			if syscall.Rmdir(filepath.Join(h, d)) != nil {
				break
			}
		}
	}
}

// findDirs returns the directories below dir, at most depth levels down,
// whose names start with prefix.
func findDirs(dir, prefix string, depth int) []string {
	if depth == 0 {
		return nil
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		path := filepath.Join(dir, e.Name())
		if strings.HasPrefix(e.Name(), prefix) {
			out = append(out, path)
		}
		out = append(out, findDirs(path, prefix, depth-1)...)
	}
	return out
}

// ownCgroupBase returns an absolute cgroup path that is this process's own
// cgroup or beneath it in every hierarchy: the deepest own path, when all
// the others lie above it. An absolute cgroupsPath (such as the one Podman
// builds from --cgroup-parent) under it stays in the benchmark's own
// subtree; on the project's host the memory cgroup is /process_api/<id>
// and every other hierarchy has us at /.
func ownCgroupBase() (string, error) {
	data, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", err
	}
	var own []string
	base := "/"
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if parts := strings.SplitN(line, ":", 3); len(parts) == 3 {
			own = append(own, parts[2])
			if len(parts[2]) > len(base) {
				base = parts[2]
			}
		}
	}
	for _, p := range own {
		if p != "/" && p != base && !strings.HasPrefix(base, p+"/") {
			return "", fmt.Errorf("no cgroup path is beneath the own cgroup in every hierarchy (%s and %s)", p, base)
		}
	}
	return base, nil
}

// sweepDetachedUnified removes what the runtimes made under mount, the hybrid
// host's cgroup2 mount point, once detachUnifiedCgroup unmounted it in
// this namespace: crun writes each container's cgroup.procs there, as a
// plain file in a plain directory of the tmpfs beneath. The host cannot
// see them (its cgroup2 mount covers them) and the outer role's sweep
// does not find them, so they would stay until reboot. It returns a
// note per failure.
func sweepDetachedUnified(mount, prefix string) []string {
	if _, err := os.Stat(mount); err != nil || isCgroupFS(mount) {
		return nil
	}
	var notes []string
	for _, dir := range findDirs(mount, prefix, sweepMaxDepth) {
		if err := os.RemoveAll(dir); err != nil {
			notes = append(notes, fmt.Sprintf("removing %s: %v", dir, err))
		}
	}
	return notes
}
