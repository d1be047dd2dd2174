package container

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// selfExe is the handle to the lkc binary that `lkc init` is executed from.
// A container reaches it as /proc/<pid>/exe (and /proc/<pid>/map_files) of
// any process running lkc in it: the init of a created container, the
// process of `lkc exec` until it execs, and lkc itself when the kernel runs
// it for a `#!/proc/self/exe` script. Nothing reached that way may be, or be
// turned into, a way to write the host's binary (CVE-2019-5736 class), even
// for a container with CAP_SYS_ADMIN, which can mount_setattr, clone or
// fspick a mount it holds a path on. docs/kernel.md has the reasoning and
// the measurements.
type selfExe struct {
	file  *os.File // what init is executed from, through /proc/self/fd
	mount *os.File // the detached overlayfs file's mount, or nil
}

// openSelfExe returns the binary on a read-only overlayfs of its own
// directory (no copy, ~20-50 µs), or else, where overlayfs or the new mount
// API is unavailable (no CAP_SYS_ADMIN, an old kernel, a binary replaced
// since it started), a sealed in-memory copy of it.
func openSelfExe() (*selfExe, error) {
	x, err := overlaySelfExe()
	if err == nil {
		return x, nil
	}
	f, err := sealedSelfExe()
	if err != nil {
		return nil, err
	}
	return &selfExe{file: f}, nil
}

func (x *selfExe) path() string {
	return fmt.Sprintf("/proc/self/fd/%d", x.file.Fd())
}

// pathFor is path for a child that gets files: syscall.ForkExec moves
// them onto 0..n-1, first moving some (and its error pipe) one after
// another above both n and the highest of them, and only then execs the
// path, so the binary's fd must lie above all those numbers or the child
// execs one of its own files (EACCES: a socket). Its number is whatever
// was free when it was opened, which a goroutine that just closed a low fd
// makes low. done closes a duplicate made for it.
func (x *selfExe) pathFor(files []uintptr) (path string, done func(), err error) {
	top := len(files)
	for _, f := range files {
		top = max(top, int(f)+1)
	}
	lowest := top + len(files) + 2
	if fd := int(x.file.Fd()); fd >= lowest {
		return x.path(), func() {}, nil
	}
	fd, err := unix.FcntlInt(x.file.Fd(), unix.F_DUPFD_CLOEXEC, lowest)
	if err != nil {
		return "", nil, fmt.Errorf("moving the lkc binary's fd above %d: %w", lowest, err)
	}
	return fmt.Sprintf("/proc/self/fd/%d", fd), func() { unix.Close(fd) }, nil
}

// Close closes the handles.
func (x *selfExe) Close() {
	x.closeMount()
	x.file.Close()
}

// closeMount closes the mount fd, which dissolves the detached mount and
// waits for an RCU grace period (docs/kernel.md). The file stays usable; the
// overlayfs lives on until its last user, the file or a process running
// from it, goes, and that wait for another grace period.
func (x *selfExe) closeMount() {
	if x.mount != nil {
		x.mount.Close()
		x.mount = nil
	}
}

// overlaySelfExe opens the running binary through a new overlayfs whose
// layers are all lower layers: the binary's directory on top and an
// unrelated directory below it, because overlayfs wants two lower layers
// when it has no upper one. Such an overlayfs is read-only in its
// superblock, which no mount attribute can change and which overlayfs
// refuses to reconfigure read-write, and a path inside it never leads to the
// layer's file except through overlayfs' own read-only private mounts. The
// file is not the root of its mount, so mount_setattr and fspick refuse it.
func overlaySelfExe() (_ *selfExe, err error) {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return nil, fmt.Errorf("reading /proc/self/exe: %w", err)
	}
	dir, name := filepath.Split(exe)
	below, err := unrelatedDir(filepath.Clean(dir))
	if err != nil {
		return nil, err
	}
	ctx, err := unix.Fsopen("overlay", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("fsopen overlay: %w", err)
	}
	defer unix.Close(ctx)
	for _, layer := range []string{dir, below} {
		if err := unix.FsconfigSetString(ctx, "lowerdir+", layer); err != nil {
			return nil, fmt.Errorf("overlay lowerdir+ %s: %w", layer, err)
		}
	}
	// Without xino overlayfs reports the real inode numbers (checked
	// below) and logs nothing about layers on different file systems.
	_ = unix.FsconfigSetString(ctx, "xino", "off")
	if err := unix.FsconfigCreate(ctx); err != nil {
		return nil, fmt.Errorf("creating overlay of %s: %w", dir, err)
	}
	mfd, err := unix.Fsmount(ctx, unix.FSMOUNT_CLOEXEC, unix.MOUNT_ATTR_RDONLY|unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV)
	if err != nil {
		return nil, fmt.Errorf("fsmount overlay of %s: %w", dir, err)
	}
	x := &selfExe{mount: os.NewFile(uintptr(mfd), "lkc-overlay")}
	defer func() {
		if err != nil {
			x.mount.Close()
		}
	}()
	fd, err := unix.Openat(mfd, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open in overlay", Path: name, Err: err}
	}
	x.file = os.NewFile(uintptr(fd), "lkc-ro")
	if err := sameBinary(fd); err != nil {
		x.file.Close()
		return nil, err
	}
	return x, nil
}

// unrelatedDir returns a directory that is neither dir nor above or below
// it: overlayfs refuses layers that overlap.
func unrelatedDir(dir string) (string, error) {
	for _, d := range []string{"/dev", "/run", "/tmp"} {
		if d != dir && !strings.HasPrefix(dir, d+"/") && !strings.HasPrefix(d, strings.TrimSuffix(dir, "/")+"/") {
			return d, nil
		}
	}
	return "", fmt.Errorf("no directory for overlayfs beside %s", dir)
}

// sameBinary checks that fd is the file this process runs, not one put in
// its place since it started (an upgrade): init must speak our protocol.
// Overlayfs keeps a lower file's inode number but not its device.
func sameBinary(fd int) error {
	var got, want unix.Stat_t
	if err := unix.Fstat(fd, &got); err != nil {
		return fmt.Errorf("fstat overlay file: %w", err)
	}
	if err := unix.Stat("/proc/self/exe", &want); err != nil {
		return fmt.Errorf("stat /proc/self/exe: %w", err)
	}
	if got.Ino != want.Ino || got.Size != want.Size || got.Mtim != want.Mtim || got.Ctim != want.Ctim {
		return errors.New("the binary in the overlay is not the one running")
	}
	return nil
}

// sealedSelfExe returns a sealed in-memory copy of the lkc binary: 5.4 MB
// copied on every start (~2 ms of CPU here), the fallback.
func sealedSelfExe() (*os.File, error) {
	src, err := os.Open("/proc/self/exe")
	if err != nil {
		return nil, fmt.Errorf("opening own binary: %w", err)
	}
	defer src.Close()
	fd, err := unix.MemfdCreate("lkc", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING|unix.MFD_EXEC)
	if err == unix.EINVAL { // before Linux 6.3, which has no MFD_EXEC
		fd, err = unix.MemfdCreate("lkc", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	}
	if err != nil {
		return nil, fmt.Errorf("memfd_create: %w", err)
	}
	mem := os.NewFile(uintptr(fd), "lkc-memfd")
	fi, err := src.Stat()
	if err == nil {
		err = copyAll(fd, int(src.Fd()), fi.Size())
	}
	if err == nil {
		_, err = unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS,
			unix.F_SEAL_SEAL|unix.F_SEAL_SHRINK|unix.F_SEAL_GROW|unix.F_SEAL_WRITE)
	}
	if err != nil {
		mem.Close()
		return nil, fmt.Errorf("sealing a copy of the lkc binary: %w", err)
	}
	return mem, nil
}

func copyAll(dst, src int, size int64) error {
	for size > 0 {
		n, err := unix.Sendfile(dst, src, nil, int(size))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("short copy")
		}
		size -= int64(n)
	}
	return nil
}
