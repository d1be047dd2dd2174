package mount

import (
	"os"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/cgroups/cgroupfs"
	"github.com/lkc-containers/lkc/internal/config"
)

// The container sees its own cgroup at a cgroup mount's destination: a fresh
// cgroup filesystem when its own cgroup namespace makes that show only its
// subtree, else bind mounts of its directories on the host.

// mountCgroupTop mounts the top of the view: the v2 hierarchy itself, or a
// tmpfs holding one directory per v1 hierarchy. It returns the flags the
// remount after populateCgroup applies.
func mountCgroupTop(target *os.File, m config.Mount, env Env) (uintptr, error) {
	if dir, ok := cgroupfs.V2Dir(env.CgroupPaths); ok {
		if env.NewCgroupNS {
			return 0, mount("cgroup2", fdPath(target), "cgroup2", m.Flags, "")
		}
		return m.Flags &^ (unix.MS_BIND | unix.MS_REC), mount(dir, fdPath(target), "", unix.MS_BIND, "")
	}
	if err := mount("tmpfs", fdPath(target), "tmpfs", m.Flags&^unix.MS_RDONLY, cgroupTopData); err != nil {
		return 0, err
	}
	return m.Flags & unix.MS_RDONLY, nil
}

// cgroupTopData is the tmpfs a v1 view's hierarchies sit in.
const cgroupTopData = "mode=755"

// CgroupViewSource builds at dir, a new directory outside any container,
// the top of a v1 cgroup view as mountCgroupTop and populateCgroup make
// it, without the hierarchies mounted: a tmpfs with a directory per
// hierarchy and a symlink per controller of a combined one. A restore
// binds it where CRIU would otherwise have archived that tmpfs.
func CgroupViewSource(dir string, cgPaths map[string]string) error {
	if err := os.Mkdir(dir, 0o700); err != nil {
		return err
	}
	if err := mount("tmpfs", dir, "tmpfs", 0, cgroupTopData); err != nil {
		os.Remove(dir)
		return err
	}
	top, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer top.Close()
	for h := range cgPaths {
		if err := unix.Mkdirat(int(top.Fd()), h, 0o755); err != nil {
			return &os.PathError{Op: "mkdir", Path: h, Err: err}
		}
		if err := linkControllers(top, h); err != nil {
			return err
		}
	}
	return nil
}

// linkControllers names a hierarchy of several controllers ("cpu,cpuacct")
// by each of them too, as the host's /sys/fs/cgroup does.
func linkControllers(top *os.File, h string) error {
	if parts := strings.Split(h, ","); len(parts) > 1 {
		for _, p := range parts {
			if err := unix.Symlinkat(h, int(top.Fd()), p); err != nil && err != unix.EEXIST {
				return &os.PathError{Op: "symlink", Path: p, Err: err}
			}
		}
	}
	return nil
}

func populateCgroup(top *os.File, m config.Mount, env Env) error {
	if _, ok := cgroupfs.V2Dir(env.CgroupPaths); ok {
		return nil
	}
	hierarchies := make([]string, 0, len(env.CgroupPaths))
	for h := range env.CgroupPaths {
		hierarchies = append(hierarchies, h)
	}
	sort.Strings(hierarchies)
	for _, h := range hierarchies {
		if err := mountHierarchy(top, h, env, m.Flags); err != nil {
			return err
		}
	}
	return nil
}

func mountHierarchy(top *os.File, h string, env Env, flags uintptr) error {
	if err := unix.Mkdirat(int(top.Fd()), h, 0o755); err != nil {
		return &os.PathError{Op: "mkdir", Path: h, Err: err}
	}
	target := filepath.Join(fdPath(top), h)
	if env.NewCgroupNS && !env.InUserNS {
		// In its own cgroup namespace the hierarchy's root is the container's
		// cgroup. (A user namespace may not mount cgroup v1 at all.)
		if err := mount("cgroup", target, "cgroup", flags, h); err != nil {
			return err
		}
	} else {
		if err := mount(env.CgroupPaths[h], target, "", unix.MS_BIND, ""); err != nil {
			return err
		}
		if flags&unix.MS_RDONLY != 0 {
			if err := remountAt(top, h, flags&^(unix.MS_BIND|unix.MS_REC)); err != nil {
				return err
			}
		}
	}
	return linkControllers(top, h)
}

func remountAt(dir *os.File, name string, flags uintptr) error {
	fd, err := unix.Openat(int(dir.Fd()), name, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: name, Err: err}
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	return remountFile(f, flags)
}
