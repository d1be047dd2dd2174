package mount

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/config"
)

// PrepareRestore readies rootfs for CRIU to restore a container's mounts
// into: CRIU mounts on existing mount points only, and a restore may get a
// fresh copy of the rootfs (podman restore --import) that lacks the ones
// create made. Mount points under a tmpfs are left out, since CRIU restores
// the tmpfs with its content. Bind mounts are mounted for the time of the
// restore, so that mount points inside them exist too, as they did when
// the container was created; the returned function unmounts them.
func PrepareRestore(rootfs string, mounts []config.Mount) (func(), error) {
	root, err := os.Open(rootfs)
	if err != nil {
		return nil, fmt.Errorf("opening rootfs: %w", err)
	}
	defer root.Close()
	var binds []string
	undo := func() {
		for i := len(binds) - 1; i >= 0; i-- {
			unix.Unmount(binds[i], unix.MNT_DETACH)
		}
	}
	var tmpfs []string
	for _, m := range mounts {
		if m.Type == "tmpfs" {
			tmpfs = append(tmpfs, m.Destination)
		}
	}
	for _, m := range mounts {
		if under(m.Destination, tmpfs) {
			continue
		}
		path, err := restoreMountpoint(root, m)
		if err != nil {
			undo()
			return nil, err
		}
		if path != "" {
			binds = append(binds, path)
		}
	}
	return undo, nil
}

// restoreMountpoint creates m's mount point inside root and, for a bind
// mount, mounts its source there; it returns the host path of that mount.
func restoreMountpoint(root *os.File, m config.Mount) (string, error) {
	isFile := false
	if m.Type == "bind" {
		fi, err := os.Stat(m.Source)
		if err != nil {
			return "", fmt.Errorf("bind mount source: %w", err)
		}
		isFile = !fi.IsDir()
	}
	target, err := openTarget(root, m.Destination, isFile)
	if err != nil {
		return "", err
	}
	defer target.Close()
	if m.Type != "bind" {
		return "", nil
	}
	if err := mount(m.Source, fdPath(target), "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return "", err
	}
	// The host path of what target resolved to, for the unmount: the
	// handle itself stays on the covered inode.
	path, err := fdTarget(target)
	if err != nil {
		unix.Unmount(fdPath(target), unix.MNT_DETACH)
		return "", err
	}
	return path, nil
}

// under reports whether dest lies strictly below one of dirs.
func under(dest string, dirs []string) bool {
	dest = filepath.Clean(dest)
	for _, d := range dirs {
		d = filepath.Clean(d)
		if d != dest && strings.HasPrefix(dest, strings.TrimSuffix(d, "/")+"/") {
			return true
		}
	}
	return false
}
