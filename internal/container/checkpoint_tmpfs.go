package container

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/checkpoint"
	"github.com/lkc-containers/lkc/internal/config"
	"github.com/lkc-containers/lkc/internal/mount"
)

// CRIU archives every tmpfs of a container with tar and gzip on the dump
// and unpacks it on the restore: three execs each way, 4-6 ms per tmpfs
// here, while the container is frozen. Two kinds of tmpfs lkc can rebuild
// exactly instead, so it names them as external mounts and the restore
// binds a fresh tmpfs of lkc's:
//   - the read-only tmpfs lkc makes at a v1 cgroup mount's destination,
//     holding one directory per hierarchy (internal/mount/cgroup.go);
//   - a tmpfs of the config that is empty at dump time (the usual
//     /dev/shm): a new tmpfs with the same options is the same. One with
//     any entry, even an empty file, is left to CRIU, so nothing the
//     container wrote is lost. (/dev is never empty: its nodes and mount
//     points stay with CRIU.)

// cgroupDirKey names the tmpfs that holds the v1 hierarchies' mount points.
const cgroupDirKey = "lkc-cgroup-dir"

// emptyTmpfsKey prefixes the name of a config tmpfs that was empty.
const emptyTmpfsKey = "lkc-empty-tmpfs:"

// cgroupTmpfs returns the destination of the tmpfs lkc built for the v1
// cgroup view whose hierarchies are bind mounts (externalMounts), if any.
func cgroupTmpfs(cfg *config.Config, cgPaths map[string]string) (string, bool) {
	if _, v2 := cgPaths[""]; v2 || realCgroupMounts(cfg) {
		return "", false
	}
	for _, m := range cfg.Mounts {
		if m.Type == "cgroup" {
			return m.Destination, true
		}
	}
	return "", false
}

// rebuiltTmpfsMounts names, for the dump, the tmpfs mounts of the
// container whose init is pid that the restore rebuilds; tmpfs holds the
// container's tmpfs mount points.
func rebuiltTmpfsMounts(cfg *config.Config, cgPaths map[string]string, pid int, tmpfs map[string]bool) ([]checkpoint.ExtMount, error) {
	var ext []checkpoint.ExtMount
	if dest, ok := cgroupTmpfs(cfg, cgPaths); ok && tmpfs[dest] {
		ext = append(ext, checkpoint.ExtMount{Key: dest, Val: cgroupDirKey})
	}
	for _, m := range cfg.Mounts {
		if m.Type != "tmpfs" || !tmpfs[m.Destination] {
			continue
		}
		empty, err := emptyDir(fmt.Sprintf("/proc/%d/root%s", pid, m.Destination))
		if err != nil {
			return nil, fmt.Errorf("checking tmpfs %s: %w", m.Destination, err)
		}
		if empty {
			ext = append(ext, checkpoint.ExtMount{Key: m.Destination, Val: emptyTmpfsKey + m.Destination})
		}
	}
	return ext, nil
}

func emptyDir(path string) (bool, error) {
	d, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer d.Close()
	_, err = d.Readdirnames(1)
	if err == io.EOF {
		return true, nil
	}
	return false, err
}

// tmpfsSources mounts, under <stateDir>/criu-tmpfs, the tmpfs mounts a
// restore may bind in place of those rebuiltTmpfsMounts named, and returns
// their mapping. The container's binds keep them once the caller detaches
// lkc's own with releaseTmpfsSources; unused ones go then.
func tmpfsSources(stateDir string, cfg *config.Config, cgPaths map[string]string) ([]checkpoint.ExtMount, error) {
	dir := filepath.Join(stateDir, "criu-tmpfs")
	if err := os.Mkdir(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating the tmpfs sources: %w", err)
	}
	var ext []checkpoint.ExtMount
	if _, ok := cgroupTmpfs(cfg, cgPaths); ok {
		src := filepath.Join(dir, "cgroup")
		if err := mount.CgroupViewSource(src, cgPaths); err != nil {
			return nil, fmt.Errorf("the cgroup view's source: %w", err)
		}
		ext = append(ext, checkpoint.ExtMount{Key: cgroupDirKey, Val: src})
	}
	for i, m := range cfg.Mounts {
		if m.Type != "tmpfs" {
			continue
		}
		src := filepath.Join(dir, strconv.Itoa(i))
		if err := mountTmpfs(src, m.Source, m.Flags, m.Data); err != nil {
			return nil, fmt.Errorf("the source of tmpfs %s: %w", m.Destination, err)
		}
		ext = append(ext, checkpoint.ExtMount{Key: emptyTmpfsKey + m.Destination, Val: src})
	}
	return ext, nil
}

// mountTmpfs mounts a tmpfs named source (what mountinfo shows) on dir,
// which it creates.
func mountTmpfs(dir, source string, flags uintptr, data string) error {
	if err := os.Mkdir(dir, 0o700); err != nil {
		return err
	}
	if err := unix.Mount(source, dir, "tmpfs", flags, data); err != nil {
		os.Remove(dir)
		return &os.PathError{Op: "mount tmpfs", Path: dir, Err: err}
	}
	return nil
}

// releaseTmpfsSources detaches and removes what tmpfsSources mounted (a
// killed restore's too); the container's own binds stay.
func releaseTmpfsSources(stateDir string) error {
	dir := filepath.Join(stateDir, "criu-tmpfs")
	names, err := readDirNames(dir)
	if err != nil {
		return err
	}
	for _, n := range names {
		p := filepath.Join(dir, n)
		if err := detachAll(p); err != nil {
			return err
		}
		os.Remove(p)
	}
	os.Remove(dir)
	return nil
}

func readDirNames(dir string) ([]string, error) {
	d, err := os.Open(dir)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer d.Close()
	return d.Readdirnames(-1)
}
