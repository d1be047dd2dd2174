package mount

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/config"
)

// IDMapped makes, for m (a bind with an IDMapping), the detached mount
// that init moves onto m's destination: an open_tree clone of m.Source
// (with the mounts beneath it for an rbind), made a slave of the source's
// peers so that nothing mounted in the container reaches the host, mapped
// through a user namespace carrying m's maps (every mount of the clone for
// ridmap, its top one otherwise), with m's per-mount flags and recursive
// attributes set as init sets a bind's. The caller makes it, on the host:
// the kernel maps only a mount not yet attached, for a caller privileged
// over the source's file system, which init in the container's user
// namespace is not.
func IDMapped(m config.Mount, ns *UserNSes) (*os.File, error) {
	flags := unix.OPEN_TREE_CLONE | unix.OPEN_TREE_CLOEXEC
	if m.Flags&unix.MS_REC != 0 {
		flags |= unix.AT_RECURSIVE
	}
	fd, err := unix.OpenTree(unix.AT_FDCWD, m.Source, uint(flags))
	if err != nil {
		return nil, &os.PathError{Op: "open_tree", Path: m.Source, Err: err}
	}
	mnt := os.NewFile(uintptr(fd), m.Source)
	if err := idmap(mnt, m, ns); err != nil {
		mnt.Close()
		return nil, err
	}
	return mnt, nil
}

// idmap sets the propagation, the idmapping and the flags of mnt, a
// detached clone of m's source.
func idmap(mnt *os.File, m config.Mount, ns *UserNSes) error {
	userns, err := ns.get(m.IDMapping)
	if err != nil {
		return err
	}
	slave := unix.MountAttr{Propagation: unix.MS_SLAVE}
	if err := unix.MountSetattr(int(mnt.Fd()), "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, &slave); err != nil {
		return fmt.Errorf("mount_setattr(%s, MS_SLAVE): %w", m.Source, err)
	}
	at := unix.AT_EMPTY_PATH
	if m.IDMapping.Recursive {
		at |= unix.AT_RECURSIVE
	}
	attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_IDMAP, Userns_fd: uint64(userns.Fd())}
	err = unix.MountSetattr(int(mnt.Fd()), "", uint(at), &attr)
	switch {
	case errors.Is(err, unix.EINVAL):
		return fmt.Errorf("mount_setattr(%s, MOUNT_ATTR_IDMAP): %w: its file system does not support idmapped mounts on this kernel", m.Source, err)
	case errors.Is(err, unix.ENOSYS):
		return fmt.Errorf("mount_setattr(%s, MOUNT_ATTR_IDMAP): %w: idmapped mounts need Linux 5.12", m.Source, err)
	case err != nil:
		return fmt.Errorf("mount_setattr(%s, MOUNT_ATTR_IDMAP): %w", m.Source, err)
	}
	if flags := m.Flags &^ (unix.MS_BIND | unix.MS_REC | unix.MS_REMOUNT); flags != 0 {
		if err := remountFile(mnt, flags); err != nil {
			return err
		}
	}
	if m.RecAttrSet|m.RecAttrClr != 0 {
		return setAttrRecursive(mnt, m.RecAttrSet, m.RecAttrClr)
	}
	return nil
}
