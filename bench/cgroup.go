package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
)

const (
	cgroupRoot    = "/sys/fs/cgroup"
	unifiedMount  = cgroupRoot + "/unified"
	cgroup2Magic  = 0x63677270
	sweepMaxDepth = 4
)

// detachUnifiedCgroup unmounts the cgroup2 mount of a hybrid hierarchy in
// the current (private) mount namespace: crun refuses hybrid mode. It returns
// a sentence for the report describing what it did.
func detachUnifiedCgroup() (string, error) {
	if !isCgroup2(unifiedMount) || isCgroup2(cgroupRoot) {
		return "all variants run in one private mount namespace; cgroups are not hybrid, nothing unmounted", nil
	}
	if err := syscall.Unmount(unifiedMount, syscall.MNT_DETACH); err != nil {
		return "", fmt.Errorf("unmounting %s in the private mount namespace: %w", unifiedMount, err)
	}
	return "all variants run in one private mount namespace with " + unifiedMount +
		" unmounted (crun refuses hybrid cgroups); no per-run wrapper", nil
}

func isCgroup2(path string) bool {
	var st syscall.Statfs_t
	return syscall.Statfs(path, &st) == nil && st.Type == cgroup2Magic
}

// sweepCgroups removes every cgroup directory under root whose name starts
// with prefix, deepest first, and returns one note per removal or failure.
// The runtimes normally remove their cgroups themselves, so any note means
// something was left behind.
func sweepCgroups(root, prefix string) []string {
	var found []string
	hierarchies, err := os.ReadDir(root)
	if err != nil {
		return []string{fmt.Sprintf("listing %s: %v", root, err)}
	}
	for _, h := range hierarchies {
		if h.IsDir() { // skips the cpu,cpuacct style symlinks
			found = append(found, findDirs(filepath.Join(root, h.Name()), prefix, sweepMaxDepth)...)
		}
	}
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
