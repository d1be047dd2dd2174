package mount

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// BindConsole binds slave, a container's terminal, onto its /dev/console,
// as runc does. It runs after the pivot, where the tree is the
// container's: /dev is resolved inside the root, /dev/console must be a
// file or a device node there (never a symlink, which would have the bind
// and the file it creates land on a path the image chose: the runc
// CVE-2025-52565 class), and the bind is made from the slave's handle onto
// that file's. A container without /dev, or whose /dev is not writable
// where /dev/console is missing, goes without.
func BindConsole(slave *os.File) error {
	root, err := os.Open("/")
	if err != nil {
		return fmt.Errorf("opening the root: %w", err)
	}
	defer root.Close()
	dev, err := openInRoot(root, "/dev")
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return err
	}
	defer dev.Close()
	target, err := consoleTarget(dev)
	if target == nil || err != nil {
		return err
	}
	defer target.Close()
	tree, err := cloneMount(slave, false)
	if err != nil {
		return err
	}
	defer unix.Close(tree)
	return moveOnto(tree, target)
}

// consoleTarget opens /dev/console in dev, creating it as an empty file
// where it is missing; nil when it is missing and cannot be created.
func consoleTarget(dev *os.File) (*os.File, error) {
	fd, err := unix.Openat(int(dev.Fd()), "console", unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err == unix.ENOENT {
		fd, err = unix.Openat(int(dev.Fd()), "console", unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_RDONLY|unix.O_CLOEXEC, 0o600)
		if err == unix.EROFS || err == unix.EACCES || err == unix.EPERM {
			return nil, nil
		}
	}
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: "/dev/console", Err: err}
	}
	f := os.NewFile(uintptr(fd), "/dev/console")
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		f.Close()
		return nil, &os.PathError{Op: "stat", Path: "/dev/console", Err: err}
	}
	if t := st.Mode & unix.S_IFMT; t != unix.S_IFREG && t != unix.S_IFCHR {
		f.Close()
		return nil, fmt.Errorf("/dev/console is %s: the console is bound only on a file or a device node", describe(st))
	}
	return f, nil
}
