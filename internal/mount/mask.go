package mount

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/config"
)

// FinishRoot runs after the pivot: masks and write-protects paths, makes
// the root read-only when config asks, and makes / shared or unbindable
// when rootfsPropagation asks (the slave and private forms were set on /
// before anything was mounted, so a mount's own propagation option wins
// over them, as in runc).
//
// The tree is the container's by now, and so is /proc: every path is
// resolved once inside the root (no magic links), and each mount is made
// on the handle of what it resolved to, from a handle of its source, with
// the new mount API. Nothing goes through /proc/self/fd, which the
// container's /proc could answer with a path of its choosing.
func FinishRoot(c *config.Config) error {
	root, err := os.Open("/")
	if err != nil {
		return fmt.Errorf("opening the root: %w", err)
	}
	defer root.Close()
	var null devNull
	defer null.close()
	for _, p := range c.MaskedPaths {
		if err := maskPath(root, p, c.MountLabel, &null); err != nil {
			return fmt.Errorf("masking %s: %w", p, err)
		}
	}
	for _, p := range c.ReadonlyPaths {
		if err := readonlyPath(root, p); err != nil {
			return fmt.Errorf("making %s read-only: %w", p, err)
		}
	}
	if c.Readonly {
		if err := remount("/", unix.MS_RDONLY); err != nil {
			return fmt.Errorf("making root read-only: %w", err)
		}
	}
	if c.RootPropagation&(unix.MS_SHARED|unix.MS_UNBINDABLE) != 0 {
		return mount("", "/", "", c.RootPropagation, "")
	}
	return nil
}

// maskPath hides p: the null device over a file, an empty read-only tmpfs
// over a directory. A path the container lacks needs no mask.
func maskPath(root *os.File, p, label string, null *devNull) error {
	target, err := openInRoot(root, p)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return err
	}
	defer target.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(target.Fd()), &st); err != nil {
		return &os.PathError{Op: "stat", Path: p, Err: err}
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return maskDir(target, label)
	}
	src, err := null.open(root)
	if err != nil {
		return err
	}
	tree, err := cloneMount(src, false)
	if err != nil {
		return err
	}
	defer unix.Close(tree)
	return moveOnto(tree, target)
}

// devNull is the container's /dev/null, opened once and checked to be the
// null device (char 1:3): what a mask binds must be nothing else. An image
// without a /dev tmpfs brings its own /dev, where /dev/null could be a
// symlink to a file of /proc that is still writable at this point
// (/proc/sys/kernel/core_pattern: the runc CVE-2025-31133 class), a file,
// another device, or absent; each of these fails the create.
type devNull struct {
	f *os.File
}

func (d *devNull) open(root *os.File) (*os.File, error) {
	if d.f != nil {
		return d.f, nil
	}
	how := unix.OpenHow{Flags: unix.O_PATH | unix.O_NOFOLLOW | unix.O_CLOEXEC, Resolve: inRoot}
	fd, err := unix.Openat2(int(root.Fd()), "/dev/null", &how)
	if err != nil {
		return nil, fmt.Errorf("the container's /dev/null: %w", err)
	}
	f := os.NewFile(uintptr(fd), "/dev/null")
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		f.Close()
		return nil, &os.PathError{Op: "stat", Path: "/dev/null", Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFCHR || unix.Major(st.Rdev) != 1 || unix.Minor(st.Rdev) != 3 {
		f.Close()
		return nil, fmt.Errorf("the container's /dev/null is %s, not the null device (char 1:3)", describe(st))
	}
	d.f = f
	return f, nil
}

func (d *devNull) close() {
	if d.f != nil {
		d.f.Close()
	}
}

// describe names a file's type for an error.
func describe(st unix.Stat_t) string {
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFLNK:
		return "a symlink"
	case unix.S_IFREG:
		return "a regular file"
	case unix.S_IFDIR:
		return "a directory"
	case unix.S_IFCHR:
		return fmt.Sprintf("char device %d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))
	case unix.S_IFBLK:
		return fmt.Sprintf("block device %d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))
	}
	return fmt.Sprintf("a file of mode %#o", st.Mode&unix.S_IFMT)
}

// maskDir mounts an empty read-only tmpfs on target.
func maskDir(target *os.File, label string) error {
	fs, err := unix.Fsopen("tmpfs", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return fmt.Errorf("fsopen tmpfs: %w", err)
	}
	defer unix.Close(fs)
	if err := unix.FsconfigSetString(fs, "size", "0"); err != nil {
		return fmt.Errorf("tmpfs size=0: %w", err)
	}
	if label != "" {
		if err := unix.FsconfigSetString(fs, "context", label); err != nil {
			return fmt.Errorf("tmpfs context=%q: %w", label, err)
		}
	}
	if err := unix.FsconfigCreate(fs); err != nil {
		return fmt.Errorf("creating a tmpfs: %w", err)
	}
	mnt, err := unix.Fsmount(fs, unix.FSMOUNT_CLOEXEC, unix.MOUNT_ATTR_RDONLY)
	if err != nil {
		return fmt.Errorf("fsmount tmpfs: %w", err)
	}
	defer unix.Close(mnt)
	return moveOnto(mnt, target)
}

// readonlyPath makes p read-only: a recursive bind of it on itself whose
// top mount is read-only, keeping nosuid, nodev and noexec only where its
// mount already had them, as runc does.
func readonlyPath(root *os.File, p string) error {
	target, err := openInRoot(root, p)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return err
	}
	defer target.Close()
	tree, err := cloneMount(target, true)
	if err != nil {
		return err
	}
	defer unix.Close(tree)
	// The top mount alone, as a remount would: the flags of the mounts
	// beneath stay theirs.
	attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY}
	if err := unix.MountSetattr(tree, "", unix.AT_EMPTY_PATH, &attr); err != nil {
		return fmt.Errorf("mount_setattr %s (read-only): %w", p, err)
	}
	return moveOnto(tree, target)
}

// cloneMount returns a detached bind mount of the file src is (an
// open_tree clone), with the mounts beneath it when recursive.
func cloneMount(src *os.File, recursive bool) (int, error) {
	flags := unix.OPEN_TREE_CLONE | unix.OPEN_TREE_CLOEXEC | unix.AT_EMPTY_PATH
	if recursive {
		flags |= unix.AT_RECURSIVE
	}
	tree, err := unix.OpenTree(int(src.Fd()), "", uint(flags))
	if err != nil {
		return -1, fmt.Errorf("open_tree %s: %w", src.Name(), err)
	}
	return tree, nil
}

// moveOnto attaches the detached mount mnt on target.
func moveOnto(mnt int, target *os.File) error {
	err := unix.MoveMount(mnt, "", int(target.Fd()), "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH)
	if err != nil {
		return fmt.Errorf("move_mount onto %s: %w", target.Name(), err)
	}
	return nil
}
