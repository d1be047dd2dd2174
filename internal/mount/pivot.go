package mount

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/config"
)

// PivotRoot makes rootfs the process's /, and detaches the old root so
// nothing of the host's tree stays reachable. With noPivot it moves the
// rootfs over / and chroots instead (for ramfs roots, where pivot_root fails).
func PivotRoot(rootfs string, noPivot bool) error {
	if noPivot {
		return moveRoot(rootfs)
	}
	oldRoot, err := unix.Open("/", unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: "/", Err: err}
	}
	defer unix.Close(oldRoot)
	if err := unix.Chdir(rootfs); err != nil {
		return &os.PathError{Op: "chdir", Path: rootfs, Err: err}
	}
	// pivot_root(".", ".") stacks the old root on top of the new one; the
	// old root is then unmounted from under us.
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root %s: %w", rootfs, err)
	}
	if err := unix.Fchdir(oldRoot); err != nil {
		return fmt.Errorf("fchdir to old root: %w", err)
	}
	if err := mount("", ".", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		return err
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("unmounting old root: %w", err)
	}
	return unix.Chdir("/")
}

func moveRoot(rootfs string) error {
	if err := unix.Chdir(rootfs); err != nil {
		return &os.PathError{Op: "chdir", Path: rootfs, Err: err}
	}
	if err := mount(rootfs, "/", "", unix.MS_MOVE, ""); err != nil {
		return err
	}
	if err := unix.Chroot("."); err != nil {
		return fmt.Errorf("chroot %s: %w", rootfs, err)
	}
	return unix.Chdir("/")
}

// FinishRoot runs after the pivot: masks and write-protects paths and makes
// the root read-only when config asks.
func FinishRoot(c *config.Config) error {
	for _, p := range c.MaskedPaths {
		if err := maskPath(p, c.MountLabel); err != nil {
			return err
		}
	}
	for _, p := range c.ReadonlyPaths {
		if err := readonlyPath(p); err != nil {
			return err
		}
	}
	if c.Readonly {
		if err := remount("/", unix.MS_RDONLY); err != nil {
			return fmt.Errorf("making root read-only: %w", err)
		}
	}
	if c.RootPropagation != 0 {
		return mount("", "/", "", c.RootPropagation, "")
	}
	return nil
}

// maskPath hides p: /dev/null over a file, an empty read-only tmpfs over a
// directory. A path the container lacks needs no mask.
func maskPath(p, label string) error {
	err := mount("/dev/null", p, "", unix.MS_BIND, "")
	if errors.Is(err, unix.ENOTDIR) {
		err = mount("tmpfs", p, "tmpfs", unix.MS_RDONLY, config.WithMountLabel("size=0", label))
	}
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("masking %s: %w", p, err)
	}
	return nil
}

// readonlyPath makes p read-only, keeping nosuid, nodev and noexec only
// where the mount already had them, as runc does.
func readonlyPath(p string) error {
	err := mount(p, p, "", unix.MS_BIND|unix.MS_REC, "")
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err == nil {
		err = remount(p, unix.MS_RDONLY)
	}
	if err != nil {
		return fmt.Errorf("making %s read-only: %w", p, err)
	}
	return nil
}
