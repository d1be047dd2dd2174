package mount

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// A container without a mount namespace of its own shares its caller's, as
// runc allows: its mounts are made there, beneath the rootfs. lkc makes
// them all beneath one bind mount of the rootfs on itself, made by the
// caller (BindRootfs) so that it can be found and detached whole, with
// everything beneath it, when the container is deleted or its create fails
// (DetachRootfs). The caller's own / is never touched: no propagation
// change, no pivot_root (which would move the root of every process of the
// namespace), only a chroot of the container's init.

// BindRootfs binds rootfs on itself in the caller's mount namespace and
// returns the new mount's id. The new mounts are private, so that nothing
// mounted beneath them reaches other mount namespaces.
func BindRootfs(rootfs string) (uint64, error) {
	if err := mount(rootfs, rootfs, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return 0, err
	}
	err := mount("", rootfs, "", unix.MS_PRIVATE|unix.MS_REC, "")
	var id uint64
	if err == nil {
		id, err = mountID(rootfs)
	}
	if err != nil {
		unix.Unmount(rootfs, unix.MNT_DETACH)
		return 0, err
	}
	return id, nil
}

// DetachRootfs detaches the mount BindRootfs made, with every mount
// beneath it, if it is still the one on top of rootfs. Mount ids are
// unique in the whole system, so a caller in another mount namespace, or a
// rootfs mounted anew since, is left alone.
func DetachRootfs(rootfs string, id uint64) error {
	top, err := mountID(rootfs)
	if os.IsNotExist(err) || (err == nil && top != id) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := unix.Unmount(rootfs, unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detaching the container's mounts at %s: %w", rootfs, err)
	}
	return nil
}

// mountID returns the id of the mount path is on (the top one, for a
// mount point).
func mountID(path string) (uint64, error) {
	var stx unix.Statx_t
	if err := unix.Statx(unix.AT_FDCWD, path, 0, unix.STATX_MNT_ID, &stx); err != nil {
		return 0, &os.PathError{Op: "statx", Path: path, Err: err}
	}
	return stx.Mnt_id, nil
}

// Chroot makes rootfs the process's / in a mount namespace it shares with
// others, where pivot_root would move their root as well.
func Chroot(rootfs string) error {
	if err := unix.Chdir(rootfs); err != nil {
		return &os.PathError{Op: "chdir", Path: rootfs, Err: err}
	}
	if err := unix.Chroot("."); err != nil {
		return fmt.Errorf("chroot %s: %w", rootfs, err)
	}
	return unix.Chdir("/")
}
