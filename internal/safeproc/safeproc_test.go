package safeproc

import (
	"errors"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/testutil"
)

func TestOpenWantsAProcfsRoot(t *testing.T) {
	r, err := Open("/proc")
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	for _, dir := range []string{t.TempDir(), "/proc/self", "/proc/sys"} {
		if r, err := Open(dir); err == nil {
			r.Close()
			t.Errorf("Open(%s) succeeded, want an error", dir)
		}
	}
	link := t.TempDir() + "/proc"
	if err := os.Symlink("/proc", link); err != nil {
		t.Fatal(err)
	}
	if r, err := Open(link); err == nil {
		r.Close()
		t.Errorf("Open through the symlink %s succeeded, want an error", link)
	}
}

func TestOpenFileStaysOnTheProcfs(t *testing.T) {
	r, err := Open("/proc")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	f, err := r.OpenFile("self/stat", unix.O_RDONLY)
	if err != nil {
		t.Fatalf("self/stat: %v", err)
	}
	b := make([]byte, 64)
	n, _ := f.Read(b)
	f.Close()
	if pid := strconv.Itoa(os.Getpid()) + " "; !strings.HasPrefix(string(b[:n]), pid) {
		t.Errorf("self/stat reads %q, want this process's (%s)", b[:n], pid)
	}
	// Magic links and ".." lead off the procfs: both refused.
	for _, sub := range []string{"self/root/etc/hostname", "self/cwd", "../etc/hostname", "/etc/hostname"} {
		if f, err := r.OpenFile(sub, unix.O_RDONLY); err == nil {
			f.Close()
			t.Errorf("OpenFile(%s) succeeded, want an error", sub)
		}
	}
}

// TestOpenFileRefusesMounts: a file system mounted beneath the root (a
// tmpfs over /proc/sys/net, in a mount namespace of the test's own thread)
// is never walked into.
func TestOpenFileRefusesMounts(t *testing.T) {
	testutil.RequiresRoot(t)
	errc := make(chan error)
	go func() {
		// Never unlocked: the thread ends with the goroutine, and its
		// mount namespace with it.
		runtime.LockOSThread()
		errc <- openAcrossMount()
	}()
	if err := <-errc; !errors.Is(err, unix.EXDEV) {
		t.Errorf("opening sys/net/ipv4/ip_forward across a tmpfs on /proc/sys/net: %v, want EXDEV", err)
	}
}

func openAcrossMount() error {
	if err := unix.Unshare(unix.CLONE_NEWNS | unix.CLONE_FS); err != nil {
		return err
	}
	if err := unix.Mount("", "/", "", unix.MS_PRIVATE|unix.MS_REC, ""); err != nil {
		return err
	}
	if err := unix.Mount("tmpfs", "/proc/sys/net", "tmpfs", 0, "size=16k"); err != nil {
		return err
	}
	if err := os.MkdirAll("/proc/sys/net/ipv4", 0o755); err != nil {
		return err
	}
	if err := os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("0"), 0o644); err != nil {
		return err
	}
	r, err := Open("/proc")
	if err != nil {
		return err
	}
	defer r.Close()
	f, err := r.OpenFile("sys/net/ipv4/ip_forward", unix.O_RDONLY)
	if err == nil {
		f.Close()
	}
	return err
}
