package cr

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/cgroups/cgroupfs"
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
//     container wrote is lost;
//   - the container's /dev tmpfs when it holds exactly what lkc put there
//     (mount.DevSource builds one to compare with): nodes, symlinks and
//     mount points, and nothing the container added, changed or removed.

// cgroupDirKey names the tmpfs that holds the v1 hierarchies' mount points.
const cgroupDirKey = "lkc-cgroup-dir"

// emptyTmpfsKey prefixes the name of a config tmpfs that was empty.
const emptyTmpfsKey = "lkc-empty-tmpfs:"

// devKey names the /dev tmpfs lkc rebuilds.
const devKey = "lkc-dev"

// cgroupTmpfs returns the destination of the tmpfs lkc built for a v1
// cgroup view, if any. Its hierarchies, bind mounts (externalMounts) or
// cgroup filesystems (which CRIU restores itself), are mounted on it.
func cgroupTmpfs(cfg *config.Config, cgPaths map[string]string) (string, bool) {
	if _, v2 := cgroupfs.V2Dir(cgPaths); v2 {
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
func rebuiltTmpfsMounts(stateDir string, cfg *config.Config, cgPaths map[string]string, pid int, tmpfs map[string]bool) ([]checkpoint.ExtMount, error) {
	var ext []checkpoint.ExtMount
	if dest, ok := cgroupTmpfs(cfg, cgPaths); ok && tmpfs[dest] {
		ext = append(ext, checkpoint.ExtMount{Key: dest, Val: cgroupDirKey})
	}
	for _, m := range cfg.Mounts {
		if m.Type != "tmpfs" || !tmpfs[m.Destination] {
			continue
		}
		if m.Destination == "/dev" {
			same, err := devAsBuilt(stateDir, cfg, pid)
			if err != nil {
				return nil, fmt.Errorf("checking /dev: %w", err)
			}
			if same {
				ext = append(ext, checkpoint.ExtMount{Key: m.Destination, Val: devKey})
			}
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
// lkc's own with mount.ReleaseTmpfsStaging; unused ones go then.
func tmpfsSources(stateDir string, cfg *config.Config, cgPaths map[string]string) ([]checkpoint.ExtMount, error) {
	dir := filepath.Join(stateDir, mount.StagingTmpfs)
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
		if m.Destination == "/dev" && devRebuildable(cfg) {
			src, err := mount.DevSource(filepath.Join(dir, "dev"), cfg)
			if err != nil {
				return nil, fmt.Errorf("the source of /dev: %w", err)
			}
			ext = append(ext, checkpoint.ExtMount{Key: devKey, Val: src})
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

// devRebuildable says whether lkc can build the container's /dev itself:
// a writable tmpfs, without a user namespace (where the nodes are bind
// mounts of the host's).
func devRebuildable(cfg *config.Config) bool {
	if cfg.HasNamespace("user") {
		return false
	}
	for _, m := range cfg.Mounts {
		if m.Destination == "/dev" {
			return m.Type == "tmpfs" && m.Flags&unix.MS_RDONLY == 0
		}
	}
	return false
}

// devAsBuilt says whether the /dev of the container whose init is pid
// holds exactly what a restore would build (mount.DevSource): it builds
// one in the state dir, compares, and detaches it.
func devAsBuilt(stateDir string, cfg *config.Config, pid int) (bool, error) {
	if !devRebuildable(cfg) {
		return false, nil
	}
	scratch := filepath.Join(stateDir, mount.StagingDevCheck)
	built, err := mount.DevSource(scratch, cfg)
	defer func() {
		mount.DetachAll(scratch)
		os.Remove(filepath.Join(scratch, "dev"))
		os.Remove(scratch)
	}()
	if err != nil {
		return false, err
	}
	dev := fmt.Sprintf("/proc/%d/root/dev", pid)
	var st unix.Stat_t
	if err := unix.Stat(dev, &st); err != nil {
		return false, err
	}
	return sameTree(dev, built, st.Dev)
}

// sameTree compares the container's directory a, on the filesystem dev,
// with b: the same names, and for each the same type, mode, owner, device
// number and symlink target, regular files empty. An entry of a on another
// filesystem is a mount point, which only needs a directory or an empty
// file in b; what is under it is not /dev's.
func sameTree(a, b string, dev uint64) (bool, error) {
	na, err := readDirNames(a)
	if err != nil {
		return false, err
	}
	nb, err := readDirNames(b)
	if err != nil {
		return false, err
	}
	sort.Strings(na)
	sort.Strings(nb)
	if !slices.Equal(na, nb) {
		return false, nil
	}
	for _, n := range na {
		same, err := sameEntry(filepath.Join(a, n), filepath.Join(b, n), dev)
		if !same || err != nil {
			return false, err
		}
	}
	return true, nil
}

func sameEntry(a, b string, dev uint64) (bool, error) {
	var sa, sb unix.Stat_t
	if err := unix.Lstat(a, &sa); err != nil {
		return false, err
	}
	if err := unix.Lstat(b, &sb); err != nil {
		return false, err
	}
	typ := sb.Mode & unix.S_IFMT
	if sa.Dev != dev {
		return typ == unix.S_IFDIR || typ == unix.S_IFREG && sb.Size == 0, nil
	}
	if sa.Mode != sb.Mode || sa.Uid != sb.Uid || sa.Gid != sb.Gid || sa.Rdev != sb.Rdev {
		return false, nil
	}
	switch typ {
	case unix.S_IFREG:
		return sa.Size == 0 && sb.Size == 0, nil
	case unix.S_IFLNK:
		la, err := os.Readlink(a)
		if err != nil {
			return false, err
		}
		lb, err := os.Readlink(b)
		return la == lb, err
	case unix.S_IFDIR:
		return sameTree(a, b, dev)
	}
	return true, nil
}
