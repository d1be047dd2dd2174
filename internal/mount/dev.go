package mount

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

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

// BoundDevices lists the device nodes of c that are bind mounts of the
// host's (makeDevice, in a user namespace, where mknod is refused): a
// checkpoint must name them to CRIU as external mounts, as it does the
// config's binds. Nil without a user namespace, whose nodes are mknod's.
// A default device is listed even where /dev is not lkc's tmpfs.
func BoundDevices(c *config.Config) []config.Device {
	if !c.HasNamespace("user") {
		return nil
	}
	return append(append([]config.Device(nil), defaultDevices...), c.Devices...)
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
	err = unix.Mknodat(int(dir.Fd()), name, mode, int(unix.Mkdev(uint32(d.Major), uint32(d.Minor))))
	if err == unix.EEXIST {
		// What could not be unlinked is a mount of the config's (docker
		// run -v /dev/urandom:/dev/random) or a directory: it stays, as
		// in runc.
		return nil
	}
	if err != nil {
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

// DevSource builds under dir, a new directory outside any container, the
// /dev that PrepareRoot makes for c when c mounts a tmpfs there: a tmpfs
// mounted alike, with the default nodes and symlinks, c's devices, and the
// mount points of c's mounts below /dev, and returns its path (dir/dev).
// A restore binds it where CRIU would otherwise have archived the
// container's /dev; a dump compares the container's /dev with one. dir is
// a tmpfs of its own, so that detaching it detaches both.
//
// Preconditions: c mounts a writable tmpfs on /dev; no user namespace
// (there the nodes are bind mounts of the host's).
func DevSource(dir string, c *config.Config) (string, error) {
	var dev config.Mount
	for _, m := range c.Mounts {
		if m.Destination == "/dev" {
			dev = m
		}
	}
	if dev.Type != "tmpfs" || dev.Flags&unix.MS_RDONLY != 0 {
		return "", fmt.Errorf("/dev is not a writable tmpfs")
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		return "", err
	}
	if err := mount("tmpfs", dir, "tmpfs", 0, "size=16k,mode=700"); err != nil {
		os.Remove(dir)
		return "", err
	}
	path := filepath.Join(dir, "dev")
	if err := os.Mkdir(path, 0o755); err != nil {
		return "", err
	}
	if err := mount(dev.Source, path, "tmpfs", dev.Flags, dev.Data); err != nil {
		return "", err
	}
	root, err := os.Open(dir)
	if err != nil {
		return "", err
	}
	defer root.Close()
	for _, m := range c.Mounts {
		if !strings.HasPrefix(m.Destination, "/dev/") {
			continue
		}
		isFile, err := fileMount(m, m.Source)
		if err != nil {
			return "", err
		}
		target, err := openTarget(root, m.Destination, isFile)
		if err != nil {
			return "", fmt.Errorf("mount point %s: %w", m.Destination, err)
		}
		target.Close()
	}
	if err := populateDev(root, false); err != nil {
		return "", err
	}
	for _, d := range c.Devices {
		if err := makeDevice(root, d, false); err != nil {
			return "", fmt.Errorf("creating device %s: %w", d.Path, err)
		}
	}
	return path, nil
}
