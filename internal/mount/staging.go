package mount

import (
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// The staging mount points: what a checkpoint or a restore (internal/cr)
// mounts in a container's state directory for CRIU while it works. Named
// here, below both cr, which makes them, and the container's delete, which
// must detach those a killed command left before it removes the directory:
// removing it across the rootfs bind on StagingRoot would delete the
// container's rootfs.
const (
	// StagingRoot is the rootfs bind-mounted for CRIU, which wants the root
	// to be a mount point whose parent is not overmounted.
	StagingRoot = "criu-root"
	// StagingMasked is the empty read-only tmpfs CRIU binds over each
	// masked directory.
	StagingMasked = "criu-masked"
	// StagingDevCheck is where a dump builds a /dev to compare with the
	// container's.
	StagingDevCheck = "criu-devcheck"
	// StagingTmpfs holds one rebuilt tmpfs per directory beneath it, the
	// sources of the container's tmpfs mounts on restore, and, in a user
	// namespace, the binds of the sources its root could not reach.
	StagingTmpfs = "criu-tmpfs"
)

// ReleaseStaging detaches every staging mount in stateDir, stacked ones
// too, removes the tmpfs sources and takes back the ACL entries of a
// killed restore (staging_grant.go); what is not there is skipped. It is
// safe on any state directory, at any point a command was killed.
func ReleaseStaging(stateDir string) error {
	if err := releaseGrants(stateDir); err != nil {
		return err
	}
	for _, name := range []string{StagingRoot, StagingMasked, StagingDevCheck} {
		if err := DetachAll(filepath.Join(stateDir, name)); err != nil {
			return err
		}
	}
	return ReleaseTmpfsStaging(stateDir)
}

// ReleaseTmpfsStaging detaches and removes the tmpfs sources under
// StagingTmpfs; the container's own binds of them stay.
func ReleaseTmpfsStaging(stateDir string) error {
	dir := filepath.Join(stateDir, StagingTmpfs)
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		if err := DetachAll(p); err != nil {
			return err
		}
		os.Remove(p)
	}
	os.Remove(dir)
	return nil
}

// DetachAll detaches every mount stacked on dir, the staging mount point
// of one step, and returns once none is left.
func DetachAll(dir string) error {
	for range 64 {
		err := unix.Unmount(dir, unix.MNT_DETACH)
		if err == unix.EINVAL || err == unix.ENOENT {
			return nil // not, or no longer, a mount point
		}
		if err != nil {
			return fmt.Errorf("unmounting the restore's %s: %w", dir, err)
		}
	}
	return fmt.Errorf("unmounting the restore's %s: still mounted after 64 unmounts", dir)
}
