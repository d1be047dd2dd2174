package mount

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/config"
)

// sourceDir keeps the directory of the last bind mount's source open, so
// that binds of several files of one directory walk its path once. A walk
// through a FUSE directory whose entry the server keeps volatile costs a
// round trip to the server for each such directory on the way (the
// daemon's /proc view: its slot directory, a LOOKUP and a GETATTR), and
// the files bound from it come one after the other. Only consecutive
// binds share the handle: a mount between them could change what the
// path names.
type sourceDir struct {
	path string
	f    *os.File
}

// resolve returns a path naming source through the open directory.
func (s *sourceDir) resolve(source string) (string, error) {
	dir, name := filepath.Split(filepath.Clean(source))
	if name == "" || name == "." || name == ".." || !filepath.IsAbs(source) {
		s.close()
		return source, nil
	}
	if s.f == nil || s.path != dir {
		s.close()
		f, err := os.OpenFile(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return "", fmt.Errorf("bind source %s: %w", source, err)
		}
		s.path, s.f = dir, f
	}
	return fdPath(s.f) + "/" + name, nil
}

func (s *sourceDir) close() {
	if s.f != nil {
		s.f.Close()
		s.path, s.f = "", nil
	}
}

// remountFile applies flags to the mount f is the root of, as remount
// does, through mount_setattr(2) on the handle: no path walk and no
// statfs, which on a FUSE mount is a round trip to its server. The flags
// the mount has stay (a user namespace may not drop nosuid and the like),
// except read-only, which is set only when asked, and the atime mode,
// which changes only when flags name one. Kernels before 5.12 remount.
func remountFile(f *os.File, flags uintptr) error {
	attr := unix.MountAttr{Attr_set: mountAttrs(flags)}
	if flags&unix.MS_RDONLY == 0 {
		attr.Attr_clr |= unix.MOUNT_ATTR_RDONLY
	}
	if flags&(unix.MS_NOATIME|unix.MS_RELATIME|unix.MS_STRICTATIME) != 0 {
		attr.Attr_clr |= unix.MOUNT_ATTR__ATIME
	}
	err := unix.MountSetattr(int(f.Fd()), "", unix.AT_EMPTY_PATH, &attr)
	if errors.Is(err, unix.ENOSYS) {
		return remount(fdPath(f), flags)
	}
	if err != nil {
		return fmt.Errorf("mount_setattr(%s, set %#x, clear %#x): %w", f.Name(), attr.Attr_set, attr.Attr_clr, err)
	}
	return nil
}

// mountAttrs is mount(2)'s per-mount flags as mount_setattr(2)'s.
func mountAttrs(flags uintptr) uint64 {
	var a uint64
	for _, m := range []struct {
		flag uintptr
		attr uint64
	}{
		{unix.MS_RDONLY, unix.MOUNT_ATTR_RDONLY},
		{unix.MS_NOSUID, unix.MOUNT_ATTR_NOSUID},
		{unix.MS_NODEV, unix.MOUNT_ATTR_NODEV},
		{unix.MS_NOEXEC, unix.MOUNT_ATTR_NOEXEC},
		{unix.MS_NODIRATIME, unix.MOUNT_ATTR_NODIRATIME},
		{unix.MS_NOATIME, unix.MOUNT_ATTR_NOATIME},
		{unix.MS_STRICTATIME, unix.MOUNT_ATTR_STRICTATIME},
	} {
		if flags&m.flag != 0 {
			a |= m.attr
		}
	}
	return a
}

// Clone returns a detached mount of name in dir (an open_tree clone) with
// the per-mount flags of flags set, for a container's init to move into
// place (Env.Detached).
func Clone(dir int, name string, flags uintptr) (*os.File, error) {
	fd, err := unix.OpenTree(dir, name, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("open_tree %s: %w", name, err)
	}
	attr := &unix.MountAttr{Attr_set: mountAttrs(flags)}
	if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH, attr); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("mount_setattr %s (set %#x): %w", name, attr.Attr_set, err)
	}
	return os.NewFile(uintptr(fd), name), nil
}

// moveDetached moves mnt, a detached mount of m's source that the caller
// made as m asks (an open_tree clone with m's flags and recursive
// attributes set: Clone, IDMapped), onto m's destination, and gives it m's
// propagation. Nothing walks m.Source, and nothing asks the source's file
// system: the type is the one the kernel has (a FUSE file's server is not
// asked). A file's directory is found through parents, which a mount on a
// directory empties.
func moveDetached(root *os.File, m config.Mount, mnt *os.File, parents *parentDirs) error {
	var st unix.Statx_t
	if err := unix.Statx(int(mnt.Fd()), "", unix.AT_EMPTY_PATH|unix.AT_STATX_DONT_SYNC, unix.STATX_TYPE, &st); err != nil {
		return &os.PathError{Op: "stat", Path: m.Source, Err: err}
	}
	isFile := st.Mode&unix.S_IFMT != unix.S_IFDIR
	if !isFile {
		parents.drop()
	}
	target, err := openTargetIn(root, m.Destination, isFile, parents)
	if err != nil {
		return err
	}
	defer target.Close()
	err = unix.MoveMount(int(mnt.Fd()), "", int(target.Fd()), "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH)
	if err != nil {
		return fmt.Errorf("move_mount onto %s: %w", m.Destination, err)
	}
	if len(m.Propagation) == 0 {
		return nil
	}
	moved, err := openInRoot(root, m.Destination)
	if err != nil {
		return err
	}
	defer moved.Close()
	return propagate(moved, m)
}
