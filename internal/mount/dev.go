package mount

import (
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/config"
)

// defaultDevices are the nodes every container gets in a fresh /dev.
var defaultDevices = []config.Device{
	{Path: "/dev/null", Type: 'c', Major: 1, Minor: 3, FileMode: 0o666},
	{Path: "/dev/zero", Type: 'c', Major: 1, Minor: 5, FileMode: 0o666},
	{Path: "/dev/full", Type: 'c', Major: 1, Minor: 7, FileMode: 0o666},
	{Path: "/dev/random", Type: 'c', Major: 1, Minor: 8, FileMode: 0o666},
	{Path: "/dev/urandom", Type: 'c', Major: 1, Minor: 9, FileMode: 0o666},
	{Path: "/dev/tty", Type: 'c', Major: 5, Minor: 0, FileMode: 0o666},
}

var devSymlinks = [][2]string{
	{"/proc/self/fd", "fd"}, {"/proc/self/fd/0", "stdin"},
	{"/proc/self/fd/1", "stdout"}, {"/proc/self/fd/2", "stderr"},
	{"pts/ptmx", "ptmx"},
}

func populateDev(root *os.File, inUserNS bool) error {
	for _, d := range defaultDevices {
		if err := makeDevice(root, d, inUserNS); err != nil {
			return err
		}
	}
	dev, err := openInRoot(root, "/dev")
	if err != nil {
		return err
	}
	defer dev.Close()
	for _, l := range devSymlinks {
		if err := unix.Symlinkat(l[0], int(dev.Fd()), l[1]); err != nil && err != unix.EEXIST {
			return &os.PathError{Op: "symlink", Path: "/dev/" + l[1], Err: err}
		}
	}
	return nil
}

// makeDevice creates d inside root: a node made with mknod, or, where a user
// namespace forbids mknod, a bind mount of the host's node of that path.
func makeDevice(root *os.File, d config.Device, inUserNS bool) error {
	dir, err := mkdirAllInRoot(root, filepath.Dir(d.Path), 0o755)
	if err != nil {
		return err
	}
	defer dir.Close()
	name := filepath.Base(d.Path)
	if inUserNS {
		return bindDevice(dir, name, d.Path)
	}
	mode := d.FileMode & 0o7777
	switch d.Type {
	case 'c':
		mode |= unix.S_IFCHR
	case 'b':
		mode |= unix.S_IFBLK
	case 'p':
		mode |= unix.S_IFIFO
	}
	_ = unix.Unlinkat(int(dir.Fd()), name, 0)
	if err := unix.Mknodat(int(dir.Fd()), name, mode, int(unix.Mkdev(uint32(d.Major), uint32(d.Minor)))); err != nil {
		return &os.PathError{Op: "mknod", Path: d.Path, Err: err}
	}
	if err := unix.Fchownat(int(dir.Fd()), name, int(d.UID), int(d.GID), unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &os.PathError{Op: "chown", Path: d.Path, Err: err}
	}
	// mknod applies the umask; the config's mode is what the node must have.
	if err := unix.Fchmodat(int(dir.Fd()), name, d.FileMode&0o7777, 0); err != nil {
		return &os.PathError{Op: "chmod", Path: d.Path, Err: err}
	}
	return nil
}

func bindDevice(dir *os.File, name, hostPath string) error {
	fd, err := unix.Openat(int(dir.Fd()), name, unix.O_CREAT|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_RDONLY, 0o644)
	if err != nil {
		return &os.PathError{Op: "create", Path: hostPath, Err: err}
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	return mount(hostPath, fdPath(f), "", unix.MS_BIND, "")
}
