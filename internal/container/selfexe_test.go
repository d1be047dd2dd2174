package container

import (
	"bytes"
	"errors"
	"os"
	"strconv"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/testutil"
)

func TestUnrelatedDir(t *testing.T) {
	for dir, want := range map[string]string{
		"/usr/local/bin": "/dev",
		"/dev/x":         "/run",
		"/dev":           "/run",
		"/devices":       "/dev",
		"/run/lkc":       "/dev",
	} {
		if got, err := unrelatedDir(dir); err != nil || got != want {
			t.Errorf("unrelatedDir(%q) = %q, %v; want %q", dir, got, err, want)
		}
	}
	if got, err := unrelatedDir("/"); err == nil {
		t.Errorf("unrelatedDir(/) = %q; want an error: every directory is below /", got)
	}
}

// TestSelfExeAboveChildFds: a child's fds are moved onto 0..n-1 before
// ForkExec execs the binary's /proc/self/fd path; with the binary's own fd
// number among them (a goroutine had just closed a low fd when it was
// opened), the child exec'd one of its files (EACCES). The path init is
// started from names an fd above them.
func TestSelfExeAboveChildFds(t *testing.T) {
	x, err := openSelfExe()
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	null, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	files := make([]uintptr, x.file.Fd()+2) // the child's fd at the binary's number is /dev/null
	for i := range files {
		files[i] = null.Fd()
	}
	// A file of a high number (a terminal's) makes ForkExec move the
	// others above it.
	high, err := unix.FcntlInt(null.Fd(), unix.F_DUPFD_CLOEXEC, 2*len(files)+1)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(high)
	files[0] = uintptr(high)
	path, done, err := x.pathFor(files)
	if err != nil {
		t.Fatal(err)
	}
	defer done()
	pid, err := syscall.ForkExec(path, []string{os.Args[0], "-test.run=^$"}, &syscall.ProcAttr{Files: files})
	if err != nil {
		t.Fatalf("exec of %s with %d fds for the child: %v", path, len(files), err)
	}
	var ws syscall.WaitStatus
	if _, err := syscall.Wait4(pid, &ws, 0, nil); err != nil || ws.ExitStatus() != 0 {
		t.Errorf("the binary run from %s: %v, status %v", path, err, ws)
	}
}

// TestOverlaySelfExe: the overlayfs handle runs this very binary, and
// nothing done to it, its mount or a clone of its mount makes it writable.
func TestOverlaySelfExe(t *testing.T) {
	testutil.RequiresRoot(t)
	x, err := overlaySelfExe()
	if err != nil {
		t.Fatalf("overlay of the test binary: %v", err)
	}
	defer x.Close()
	sameContents(t, x.path())
	fd := int(x.file.Fd())
	want := map[string]error{"mount_setattr": unix.EINVAL, "fspick": unix.EINVAL}
	got := map[string]error{"mount_setattr": setattrRW(fd), "fspick": fspickRW(fd)}
	clone, err := unix.OpenTree(fd, "", unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_EMPTY_PATH)
	if err != nil {
		t.Fatalf("open_tree clone of the handle: %v", err)
	}
	defer unix.Close(clone)
	// A clone is rooted at the file: its mount may be made read-write, but
	// not the overlayfs superblock.
	want["clone mount_setattr"], want["clone fspick"] = nil, unix.EROFS
	got["clone mount_setattr"], got["clone fspick"] = setattrRW(clone), fspickRW(clone)
	for op, err := range got {
		if !errors.Is(err, want[op]) {
			t.Errorf("%s on the handle: %v, want %v", op, err, want[op])
		}
	}
	for _, fd := range []int{fd, clone} {
		if _, err := os.OpenFile(procFd(fd), os.O_WRONLY|os.O_APPEND, 0); !errors.Is(err, unix.EROFS) {
			t.Errorf("opening %s for writing: %v, want EROFS", procFd(fd), err)
		}
	}
}

// TestSealedSelfExe: the fallback copy runs this binary and is sealed.
func TestSealedSelfExe(t *testing.T) {
	f, err := sealedSelfExe()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sameContents(t, procFd(int(f.Fd())))
	seals, err := unix.FcntlInt(f.Fd(), unix.F_GET_SEALS, 0)
	const all = unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE
	if err != nil || seals&all != all {
		t.Errorf("seals %#x, %v; want %#x", seals, err, all)
	}
	w, err := os.OpenFile(procFd(int(f.Fd())), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.Write([]byte("x")); !errors.Is(err, unix.EPERM) {
		t.Errorf("writing the sealed copy: %v, want EPERM", err)
	}
}

func procFd(fd int) string {
	return "/proc/self/fd/" + strconv.Itoa(fd)
}

func sameContents(t *testing.T, path string) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s: %d bytes, not the %d of /proc/self/exe", path, len(got), len(want))
	}
}

func setattrRW(fd int) error {
	attr := unix.MountAttr{Attr_clr: unix.MOUNT_ATTR_RDONLY}
	return unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH, &attr)
}

func fspickRW(fd int) error {
	fs, err := unix.Fspick(fd, "", unix.FSPICK_EMPTY_PATH|unix.FSPICK_CLOEXEC)
	if err != nil {
		return err
	}
	defer unix.Close(fs)
	if err := unix.FsconfigSetFlag(fs, "rw"); err != nil {
		return err
	}
	return unix.FsconfigReconfigure(fs)
}
