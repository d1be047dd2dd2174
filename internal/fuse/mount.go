package fuse

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Mount opens a new FUSE connection and mounts it read-only on dir as
// fuse.lkc, owned by root, with allow_other (containers' processes read it
// whatever their uid) and default_permissions (the kernel checks modes, so
// the server never does). The kernel queues INIT at once; a Server must
// serve the returned fd before anything reads the mount. The caller owns
// the fd: the connection lives while any copy of it is open.
func Mount(dir string) (*os.File, error) {
	fd, err := unix.Open("/dev/fuse", unix.O_RDWR|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("open /dev/fuse: %w", err)
	}
	f := os.NewFile(uintptr(fd), "/dev/fuse")
	data := fmt.Sprintf("fd=%d,rootmode=40555,user_id=0,group_id=0,allow_other,default_permissions", fd)
	flags := uintptr(unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC)
	if err := unix.Mount("lkc", dir, "fuse.lkc", flags, data); err != nil {
		f.Close()
		return nil, fmt.Errorf("mount fuse on %s: %w", dir, err)
	}
	return f, nil
}

// Unmount detaches the FUSE mount on dir. Readers already inside it keep
// their files until they close them.
func Unmount(dir string) error {
	if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
		return fmt.Errorf("unmount %s: %w", dir, err)
	}
	return nil
}
