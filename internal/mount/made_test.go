package mount

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/config"
	"github.com/lkc-containers/lkc/internal/fuse"
	"github.com/lkc-containers/lkc/internal/testutil"
)

// TestMadeMountNeedsNoSource: a mount the caller made (Clone) is moved
// onto its destination without its source being reachable in the
// container's mount namespace, and with the flags Clone set: init moves
// the daemon's /proc view files in without walking the view. The same
// config mounted from its source fails there.
func TestMadeMountNeedsNoSource(t *testing.T) {
	testutil.RequiresRoot(t)
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skipf("no /dev/fuse: %v", err)
	}
	view := t.TempDir()
	f, err := fuse.Mount(view)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- fuse.NewServer(&oneFileFS{}).Serve(ctx, f) }()
	t.Cleanup(func() {
		cancel()
		<-done
		if err := fuse.Unmount(view); err != nil {
			t.Error(err)
		}
		f.Close()
	})
	dir, err := os.Open(view)
	if err != nil {
		t.Fatal(err)
	}
	defer dir.Close()
	flags := uintptr(unix.MS_BIND | unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC)
	made, err := Clone(int(dir.Fd()), "f", flags)
	if err != nil {
		t.Fatal(err)
	}
	defer made.Close()
	c := &config.Config{Rootfs: t.TempDir(), Mounts: []config.Mount{
		{Source: filepath.Join(view, "f"), Destination: "/f", Type: "bind", Flags: flags},
	}}
	env := Env{MadeAt: []int{0}, Made: func() (map[int]*os.File, error) { return map[int]*os.File{0: made}, nil }}
	errc := make(chan error, 1)
	var content []byte
	var st unix.Statfs_t
	go func() {
		// The thread never unlocks: it ends with the goroutine, and its
		// mount namespace with it.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
			errc <- err
			return
		}
		if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
			errc <- err
			return
		}
		if err := unix.Unmount(view, unix.MNT_DETACH); err != nil {
			errc <- err
			return
		}
		if err := mountAll(c, Env{}); err == nil {
			errc <- os.ErrExist // the source was reachable after all
			return
		}
		if err := mountAll(c, env); err != nil {
			errc <- err
			return
		}
		dest := filepath.Join(c.Rootfs, "f")
		if err := unix.Statfs(dest, &st); err != nil {
			errc <- err
			return
		}
		content, err = os.ReadFile(dest)
		errc <- err
	}()
	if err := <-errc; err != nil {
		t.Fatalf("in a mount namespace without the view: %v", err)
	}
	if string(content) != "x\n" {
		t.Errorf("the moved mount reads %q, want the FUSE file's %q", content, "x\n")
	}
	if st.Flags&unix.ST_RDONLY == 0 || st.Flags&unix.ST_NOEXEC == 0 {
		t.Errorf("the moved mount's flags %#x lack read-only or noexec", st.Flags)
	}
}
