// Package safeproc opens files of procfs through a handle to a procfs root
// that was checked once, never through a path a mount or a symlink could
// redirect. A runtime writes sysctls, oom_score_adj and LSM labels while a
// container's tree is being built, and that tree is the container's: a
// bind or tmpfs mount over /proc/sys/... or /proc/<pid>, or a symlink
// inside one, would otherwise turn the write into one on another file,
// such as /proc/sysrq-trigger or a file of the host's (the runc
// CVE-2025-52881 class).
//
// Every open resolves beneath the root without crossing a mount
// (RESOLVE_NO_XDEV) and without a magic link, so it lands on a file of that
// very procfs or fails. procfs's own symlinks ("self", "thread-self") are
// relative and stay beneath the root.
package safeproc

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// procRootIno is the inode number of every procfs root (PROC_ROOT_INO).
const procRootIno = 1

const beneath = unix.RESOLVE_BENEATH | unix.RESOLVE_NO_XDEV | unix.RESOLVE_NO_MAGICLINKS

// Root is an open procfs root.
type Root struct {
	f *os.File
}

// Open opens dir as a procfs root: the root of a procfs mount, reached
// without following a symlink. lkc's init opens the /proc of the mount
// namespace it starts in, before it builds the container's tree, and
// keeps the handle for the writes that follow.
func Open(dir string) (*Root, error) {
	how := unix.OpenHow{Flags: unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC, Resolve: unix.RESOLVE_NO_SYMLINKS}
	fd, err := openat2(unix.AT_FDCWD, dir, &how)
	if err != nil {
		return nil, &os.PathError{Op: "open procfs", Path: dir, Err: err}
	}
	f := os.NewFile(uintptr(fd), dir)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		f.Close()
		return nil, &os.PathError{Op: "stat", Path: dir, Err: err}
	}
	if err := isProc(fd); err != nil || st.Ino != procRootIno {
		f.Close()
		return nil, fmt.Errorf("%s is not the root of a procfs", dir)
	}
	return &Root{f: f}, nil
}

// OpenFile opens sub, a path beneath the root ("sys/net/ipv4/ip_forward",
// "self/oom_score_adj"), with flags.
func (r *Root) OpenFile(sub string, flags int) (*os.File, error) {
	how := unix.OpenHow{Flags: uint64(flags | unix.O_CLOEXEC | unix.O_NOCTTY), Resolve: beneath}
	fd, err := openat2(int(r.f.Fd()), sub, &how)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: "/proc/" + sub, Err: err}
	}
	// RESOLVE_NO_XDEV already keeps the walk on this procfs: checked again
	// because a write to anything else must never happen.
	if err := isProc(fd); err != nil {
		unix.Close(fd)
		return nil, &os.PathError{Op: "open", Path: "/proc/" + sub, Err: err}
	}
	return os.NewFile(uintptr(fd), "/proc/"+sub), nil
}

// WriteFile writes data to sub in one write, as procfs files expect.
func (r *Root) WriteFile(sub string, data []byte) error {
	f, err := r.OpenFile(sub, unix.O_WRONLY)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// Close releases the handle.
func (r *Root) Close() error { return r.f.Close() }

// isProc fails unless fd is a file of a procfs.
func isProc(fd int) error {
	var fs unix.Statfs_t
	if err := unix.Fstatfs(fd, &fs); err != nil {
		return err
	}
	if fs.Type != unix.PROC_SUPER_MAGIC {
		return fmt.Errorf("not on a procfs (file system magic %#x)", fs.Type)
	}
	return nil
}

// openat2 retries what the kernel asks to retry: EAGAIN when a rename or
// mount raced a RESOLVE_NO_XDEV or RESOLVE_BENEATH walk, and EINTR. The
// retries are bounded: a container that keeps racing an exec's walk gets
// the exec refused, not a process spinning.
func openat2(dir int, path string, how *unix.OpenHow) (int, error) {
	for i := 0; ; i++ {
		fd, err := unix.Openat2(dir, path, how)
		if (err != unix.EAGAIN && err != unix.EINTR) || i == 64 {
			return fd, err
		}
	}
}
