// Package mount builds a container's root filesystem inside its new mount
// namespace: the mounts of config.json, /dev, pivot_root, masked and
// read-only paths. Every destination from config is resolved inside the
// rootfs without following symlinks out of it, and mounted through the
// /proc/self/fd of the opened target, never a re-resolved string.
//
// Preconditions: the calling process is alone in a fresh mount namespace,
// except where callerns.go says otherwise.
package mount

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/config"
)

// Env is what the mount setup needs to know besides the config.
type Env struct {
	InUserNS bool // a new or joined user namespace: no mknod, locked mount flags
	// CallerNS: the container shares its caller's mount namespace, whose /
	// stays as it is; the caller bound the rootfs on itself (BindRootfs).
	CallerNS    bool
	NewCgroupNS bool              // the container has its own cgroup namespace
	CgroupPaths map[string]string // the container's cgroup directories on the host
	// MadeAt lists the indexes in the config's mounts of those that may
	// come made by the caller (detached, flags set); at the first of them
	// Made (which may wait for the caller) returns those made, by index.
	// Each is moved onto its destination instead of mounting its source;
	// the others of MadeAt are mounted as usual.
	MadeAt []int
	Made   func() (map[int]*os.File, error)
}

// PrepareRoot mounts everything config asks for beneath the rootfs and
// creates /dev, leaving the rootfs ready for PivotRoot.
func PrepareRoot(c *config.Config, env Env) error {
	if !env.CallerNS {
		if err := bindRoot(c); err != nil {
			return err
		}
	}
	return mountAll(c, env)
}

// bindRoot sets the propagation of / in the new mount namespace and binds
// the rootfs on itself, so that it is a mount pivot_root can take.
func bindRoot(c *config.Config) error {
	prop := initialPropagation(c.RootPropagation)
	if err := mount("", "/", "", prop, ""); err != nil {
		return err
	}
	if prop&unix.MS_SHARED != 0 {
		if err := privateParent(c.Rootfs); err != nil {
			return err
		}
	}
	return mount(c.Rootfs, c.Rootfs, "", unix.MS_BIND|unix.MS_REC, "")
}

// mountAll mounts config's mounts and creates /dev beneath the rootfs.
func mountAll(c *config.Config, env Env) error {
	root, err := os.Open(c.Rootfs)
	if err != nil {
		return fmt.Errorf("opening rootfs: %w", err)
	}
	defer root.Close()
	var src sourceDir
	defer src.close()
	var parents parentDirs
	defer parents.drop()
	devIsTmpfs := false
	var made map[int]*os.File
	asked := false
	for i, m := range c.Mounts {
		if !asked && slices.Contains(env.MadeAt, i) {
			asked = true
			if made, err = env.Made(); err != nil {
				return err
			}
		}
		if d := made[i]; d != nil {
			src.close() // a mount on the way may change what its path names
			if err := moveDetached(root, m, d, &parents); err != nil {
				return fmt.Errorf("mount %s on %s: %w", m.Source, m.Destination, err)
			}
			continue
		}
		parents.drop()
		if err := mountOne(root, m, &src, env); err != nil {
			return fmt.Errorf("mount %s on %s: %w", m.Source, m.Destination, err)
		}
		devIsTmpfs = devIsTmpfs || (m.Destination == "/dev" && m.Type != "bind")
	}
	if devIsTmpfs {
		if err := populateDev(root, env.InUserNS); err != nil {
			return err
		}
	}
	for _, d := range c.Devices {
		if err := makeDevice(root, d, env.InUserNS); err != nil {
			return fmt.Errorf("creating device %s: %w", d.Path, err)
		}
	}
	return nil
}

func mountOne(root *os.File, m config.Mount, src *sourceDir, env Env) error {
	source := m.Source
	if m.Type == "bind" {
		var err error
		if source, err = src.resolve(m.Source); err != nil {
			return err
		}
	}
	isFile, err := fileMount(m, source)
	if err != nil {
		return err
	}
	if m.Type == "tmpfs" {
		m.Data = withCoveredMode(root, m)
	}
	target, err := openTarget(root, m.Destination, isFile)
	if err != nil {
		return err
	}
	var under *os.File
	if m.CopyUp {
		if under, err = openUnder(target); err != nil {
			target.Close()
			return err
		}
		defer under.Close()
	}
	remountFlags, err := firstMount(target, m, source, env)
	target.Close()
	if err != nil {
		return err
	}
	if m.CopyUp {
		if err := copyUp(root, under, m.Destination); err != nil {
			return err
		}
	}
	recursive := m.RecAttrSet|m.RecAttrClr != 0
	if remountFlags == 0 && len(m.Propagation) == 0 && !isCgroup(m) && !recursive {
		return nil
	}
	// The new mount covers the directory target points at: act on it
	// through a fresh handle to its root.
	mnt, err := openInRoot(root, m.Destination)
	if err != nil {
		return err
	}
	defer mnt.Close()
	if isCgroup(m) {
		if err := populateCgroup(mnt, m, env); err != nil {
			return err
		}
	}
	if remountFlags != 0 {
		if err := remountFile(mnt, remountFlags); err != nil {
			return err
		}
	}
	if err := propagate(mnt, m); err != nil {
		return err
	}
	if recursive {
		return setAttrRecursive(mnt, m.RecAttrSet, m.RecAttrClr)
	}
	return nil
}

// withCoveredMode returns the data of m, a tmpfs, with the mode of the
// directory it covers when it names none, as runc and crun do: a tmpfs's
// root is otherwise 1777, so a --read-only Podman container's /run would
// turn world-writable. A directory the mount makes keeps tmpfs's default.
func withCoveredMode(root *os.File, m config.Mount) string {
	for _, o := range strings.Split(m.Data, ",") {
		if strings.HasPrefix(o, "mode=") {
			return m.Data
		}
	}
	dir, err := openInRoot(root, m.Destination)
	if err != nil {
		return m.Data
	}
	defer dir.Close()
	var st unix.Stat_t
	if unix.Fstat(int(dir.Fd()), &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return m.Data
	}
	mode := fmt.Sprintf("mode=%o", st.Mode&0o7777)
	if m.Data == "" {
		return mode
	}
	return mode + "," + m.Data
}

// setAttrRecursive applies mount attributes to the mount mnt is the root of
// and to every mount beneath it (a remount reaches only the top one).
func setAttrRecursive(mnt *os.File, set, clr uint64) error {
	attr := unix.MountAttr{Attr_set: set, Attr_clr: clr}
	if err := unix.MountSetattr(int(mnt.Fd()), "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, &attr); err != nil {
		return fmt.Errorf("mount_setattr(AT_RECURSIVE, set %#x, clear %#x): %w", set, clr, err)
	}
	return nil
}

// propagate applies m's propagation options to the mount mnt is the
// root of.
func propagate(mnt *os.File, m config.Mount) error {
	for _, p := range m.Propagation {
		if err := mount("", fdPath(mnt), "", p, ""); err != nil {
			return err
		}
	}
	return nil
}

func isCgroup(m config.Mount) bool { return m.Type == "cgroup" || m.Type == "cgroup2" }

// firstMount mounts m on target and returns the flags a remount must still
// apply (a bind ignores ro, nosuid and the like). A bind mounts source,
// which names m.Source.
func firstMount(target *os.File, m config.Mount, source string, env Env) (uintptr, error) {
	bindFlags := m.Flags &^ (unix.MS_BIND | unix.MS_REC | unix.MS_REMOUNT)
	switch m.Type {
	case "bind":
		return bindFlags, mount(source, fdPath(target), "", unix.MS_BIND|(m.Flags&unix.MS_REC), "")
	case "cgroup", "cgroup2":
		return mountCgroupTop(target, m, env)
	case "sysfs":
		err := mount(m.Source, fdPath(target), m.Type, m.Flags, m.Data)
		if errors.Is(err, unix.EPERM) && env.InUserNS {
			// A sysfs of a network namespace the user namespace does not own
			// cannot be mounted: show the host's, read-only as configured.
			return bindFlags, mount("/sys", fdPath(target), "", unix.MS_BIND|unix.MS_REC, "")
		}
		return 0, err
	}
	return 0, mount(m.Source, fdPath(target), m.Type, m.Flags, m.Data)
}

// fileMount says whether m's mount point is a file: a bind mount of one.
// It asks for the type alone, from the inode the kernel has
// (AT_STATX_DONT_SYNC): a FUSE file, such as the daemon's /proc view,
// otherwise costs a GETATTR round trip, which that server answers by
// rendering the file. source names m.Source.
func fileMount(m config.Mount, source string) (bool, error) {
	if m.Type != "bind" {
		return false, nil
	}
	var st unix.Statx_t
	if err := unix.Statx(unix.AT_FDCWD, source, unix.AT_STATX_DONT_SYNC, unix.STATX_TYPE, &st); err != nil {
		return false, &os.PathError{Op: "stat", Path: m.Source, Err: err}
	}
	return st.Mode&unix.S_IFMT != unix.S_IFDIR, nil
}

// openTarget opens (creating if needed) the mount point at dest inside root.
func openTarget(root *os.File, dest string, isFile bool) (*os.File, error) {
	var parents parentDirs
	defer parents.drop()
	return openTargetIn(root, dest, isFile, &parents)
}

// openTargetIn is openTarget finding a file's directory through parents.
func openTargetIn(root *os.File, dest string, isFile bool, parents *parentDirs) (*os.File, error) {
	if !isFile {
		return mkdirAllInRoot(root, dest, 0o755)
	}
	for links := 0; ; links++ {
		f, next, err := openFileTarget(root, dest, parents)
		if f != nil || err != nil {
			return f, err
		}
		if links == 255 {
			return nil, &os.PathError{Op: "create mount point", Path: dest, Err: unix.ELOOP}
		}
		dest = next
	}
}

// openFileTarget opens (creating if needed) the file dest inside root, as
// an O_PATH handle: an existing named pipe or device is never opened for
// I/O (a pipe's open would wait for a writer). Where dest is a symlink, it
// returns instead the path inside root that the symlink names (a relative
// one from its directory), for the caller to try: an image's
// /etc/resolv.conf is often one, dangling, as runc follows it.
func openFileTarget(root *os.File, dest string, parents *parentDirs) (*os.File, string, error) {
	dir, err := parents.open(root, filepath.Dir(dest))
	if err != nil {
		return nil, "", err
	}
	name := filepath.Base(dest)
	fd, err := unix.Openat(int(dir.Fd()), name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err == unix.ENOENT {
		fd, err = unix.Openat(int(dir.Fd()), name, unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_RDONLY, 0o644)
	}
	if err != nil {
		return nil, "", &os.PathError{Op: "create mount point", Path: dest, Err: err}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, "", &os.PathError{Op: "stat", Path: dest, Err: err}
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		unix.Close(fd)
		return nil, "", &os.PathError{Op: "create mount point", Path: dest, Err: unix.EISDIR}
	case unix.S_IFLNK:
		unix.Close(fd)
	default:
		return os.NewFile(uintptr(fd), dest), "", nil
	}
	target, err := readlinkat(dir, name)
	if err != nil {
		return nil, "", &os.PathError{Op: "readlink", Path: dest, Err: err}
	}
	if filepath.IsAbs(target) {
		return nil, target, nil
	}
	rootPath, err := fdTarget(root)
	if err != nil {
		return nil, "", err
	}
	where, err := pathInRoot(rootPath, dir)
	if err != nil {
		return nil, "", err
	}
	return nil, filepath.Join(where, target), nil
}

func fdPath(f *os.File) string { return fmt.Sprintf("/proc/self/fd/%d", f.Fd()) }

func mount(source, target, fstype string, flags uintptr, data string) error {
	for {
		err := unix.Mount(source, target, fstype, flags, data)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("mount(%q, %q, %q, %#x, %q): %w", source, target, fstype, flags, data, err)
		}
		return nil
	}
}

// remount applies flags to the mount at target, keeping the flags the
// kernel locked on it (a user namespace may not drop nosuid and the like).
func remount(target string, flags uintptr) error {
	var st unix.Statfs_t
	if err := unix.Statfs(target, &st); err != nil {
		return &os.PathError{Op: "statfs", Path: target, Err: err}
	}
	locked := uintptr(st.Flags) & (unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC | unix.MS_RDONLY |
		unix.MS_NOATIME | unix.MS_NODIRATIME | unix.MS_RELATIME)
	if flags&unix.MS_RDONLY == 0 {
		locked &^= unix.MS_RDONLY
	}
	return mount("", target, "", unix.MS_BIND|unix.MS_REMOUNT|flags|locked, "")
}

// parentDirs keeps the handle of the directory the last file mount point
// was found in, for the next one in it: init moves the daemon's /proc
// view's files into /proc one after the other, and resolving /proc again
// inside the rootfs for each costs an openat2, an fstat and a close. Only
// a mount on a directory can change what a directory's path names: the
// caller drops the handle after one.
type parentDirs struct {
	path string
	f    *os.File
}

// open returns the directory dir inside root (made if missing), kept
// until drop.
func (p *parentDirs) open(root *os.File, dir string) (*os.File, error) {
	if p.f != nil && p.path == dir {
		return p.f, nil
	}
	p.drop()
	f, err := mkdirAllInRoot(root, dir, 0o755)
	if err != nil {
		return nil, err
	}
	p.path, p.f = dir, f
	return f, nil
}

func (p *parentDirs) drop() {
	if p.f != nil {
		p.f.Close()
		p.f = nil
	}
}
