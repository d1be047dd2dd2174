package mount

import (
	"errors"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// inRoot resolves like chroot(root): absolute symlinks and ".." stop at the
// rootfs, and /proc magic links are refused (CVE-2021-30465 class).
const inRoot = unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS

// openInRoot opens path, resolved inside root, as an O_PATH handle.
func openInRoot(root *os.File, path string) (*os.File, error) {
	how := unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC, Resolve: inRoot}
	for {
		fd, err := unix.Openat2(int(root.Fd()), path, &how)
		if err == unix.EINTR || err == unix.EAGAIN {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "openat2 (in rootfs)", Path: path, Err: err}
		}
		return os.NewFile(uintptr(fd), path), nil
	}
}

// mkdirAllInRoot creates the directory path and its missing parents inside
// root and returns a handle to it. Each missing component is made with
// mkdirat under a handle resolved in root, so nothing is created outside it.
func mkdirAllInRoot(root *os.File, path string, mode uint32) (*os.File, error) {
	path = filepath.Clean("/" + path)
	dir, err := openInRoot(root, "/")
	if err != nil {
		return nil, err
	}
	done := "/"
	for _, part := range strings.Split(strings.TrimPrefix(path, "/"), "/") {
		if part == "" {
			continue
		}
		next := filepath.Join(done, part)
		h, err := openInRoot(root, next)
		if errors.Is(err, unix.ENOENT) {
			if err := unix.Mkdirat(int(dir.Fd()), part, mode); err != nil && err != unix.EEXIST {
				dir.Close()
				return nil, &os.PathError{Op: "mkdir (in rootfs)", Path: next, Err: err}
			}
			h, err = openInRoot(root, next)
		}
		dir.Close()
		if err != nil {
			return nil, err
		}
		dir, done = h, next
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(dir.Fd()), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR {
		dir.Close()
		return nil, &os.PathError{Op: "mkdir (in rootfs)", Path: path, Err: unix.ENOTDIR}
	}
	return dir, nil
}
