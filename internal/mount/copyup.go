package mount

import (
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// openUnder opens, for reading, the directory a mount is about to cover:
// the handle keeps reaching the covered directory afterwards, which is how
// copyUp reads what the new tmpfs hides.
func openUnder(target *os.File) (*os.File, error) {
	fd, err := unix.Openat(int(target.Fd()), ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: target.Name(), Err: err}
	}
	return os.NewFile(uintptr(fd), target.Name()), nil
}

// copyUp fills the tmpfs just mounted at dest with the contents of the
// directory it covers (under), as runc's "tmpcopyup" mount option does:
// Podman asks for it on the tmpfs of --tmpfs and --read-only.
func copyUp(root, under *os.File, dest string) error {
	mnt, err := openInRoot(root, dest)
	if err != nil {
		return err
	}
	defer mnt.Close()
	top, err := openUnder(mnt)
	if err != nil {
		return err
	}
	defer top.Close()
	if err := copyTree(under, top); err != nil {
		return fmt.Errorf("tmpcopyup of %s: %w", dest, err)
	}
	return nil
}

// copyTree copies the entries of directory src into directory dst with
// their modes and owners, without following symlinks.
func copyTree(src, dst *os.File) error {
	entries, err := src.ReadDir(-1)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := copyEntry(src, dst, e.Name()); err != nil {
			return err
		}
	}
	return nil
}

func copyEntry(src, dst *os.File, name string) error {
	var st unix.Stat_t
	if err := unix.Fstatat(int(src.Fd()), name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &os.PathError{Op: "stat", Path: name, Err: err}
	}
	dfd, perm := int(dst.Fd()), st.Mode&0o7777
	var err error
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		err = copyDir(src, dst, name, perm)
	case unix.S_IFREG:
		err = copyFile(src, dst, name, perm)
	case unix.S_IFLNK:
		var link string
		if link, err = readlinkat(src, name); err == nil {
			err = unix.Symlinkat(link, dfd, name)
		}
	default:
		err = unix.Mknodat(dfd, name, st.Mode, int(st.Rdev))
	}
	if err != nil {
		return &os.PathError{Op: "copy", Path: name, Err: err}
	}
	return unix.Fchownat(dfd, name, int(st.Uid), int(st.Gid), unix.AT_SYMLINK_NOFOLLOW)
}

func copyDir(src, dst *os.File, name string, perm uint32) error {
	if err := unix.Mkdirat(int(dst.Fd()), name, perm); err != nil {
		return err
	}
	s, err := openAt(src, name, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return err
	}
	defer s.Close()
	d, err := openAt(dst, name, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := unix.Fchmod(int(d.Fd()), perm); err != nil { // past the umask
		return err
	}
	return copyTree(s, d)
}

func copyFile(src, dst *os.File, name string, perm uint32) error {
	s, err := openAt(src, name, unix.O_RDONLY, 0)
	if err != nil {
		return err
	}
	defer s.Close()
	d, err := openAt(dst, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL, perm)
	if err != nil {
		return err
	}
	defer d.Close()
	if _, err := io.Copy(d, s); err != nil {
		return err
	}
	return unix.Fchmod(int(d.Fd()), perm)
}

func openAt(dir *os.File, name string, flags int, perm uint32) (*os.File, error) {
	fd, err := unix.Openat(int(dir.Fd()), name, flags|unix.O_NOFOLLOW|unix.O_CLOEXEC, perm)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), name), nil
}
