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
	var content []byte
	var st unix.Statfs_t
	err = inPrivateMountNS(func() error {
		if err := unix.Unmount(view, unix.MNT_DETACH); err != nil {
			return err
		}
		if err := mountAll(c, Env{}); err == nil {
			return os.ErrExist // the source was reachable after all
		}
		if err := mountAll(c, env); err != nil {
			return err
		}
		dest := filepath.Join(c.Rootfs, "f")
		if err := unix.Statfs(dest, &st); err != nil {
			return err
		}
		var err error
		content, err = os.ReadFile(dest)
		return err
	})
	if err != nil {
		t.Fatalf("in a mount namespace without the view: %v", err)
	}
	if string(content) != "x\n" {
		t.Errorf("the moved mount reads %q, want the FUSE file's %q", content, "x\n")
	}
	if st.Flags&unix.ST_RDONLY == 0 || st.Flags&unix.ST_NOEXEC == 0 {
		t.Errorf("the moved mount's flags %#x lack read-only or noexec", st.Flags)
	}
}

// TestMadeMountsShareTheirDirectory: made mounts of files in one
// directory find it once, and a made mount onto that directory in between
// sends the next file's mount point into the mount moved there, not the
// directory beneath it.
func TestMadeMountsShareTheirDirectory(t *testing.T) {
	testutil.RequiresRoot(t)
	src, over := t.TempDir(), t.TempDir()
	for name, content := range map[string]string{"a": "a\n", "b": "b\n"} {
		if err := os.WriteFile(filepath.Join(src, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	c := &config.Config{Rootfs: t.TempDir(), Mounts: []config.Mount{
		{Source: filepath.Join(src, "a"), Destination: "/d/a", Type: "bind", Flags: unix.MS_BIND},
		{Source: filepath.Join(src, "b"), Destination: "/d/b", Type: "bind", Flags: unix.MS_BIND},
		{Source: over, Destination: "/d", Type: "bind", Flags: unix.MS_BIND},
		{Source: filepath.Join(src, "b"), Destination: "/d/y", Type: "bind", Flags: unix.MS_BIND},
	}}
	var y []byte
	err := inPrivateMountNS(func() error {
		made := map[int]*os.File{}
		for i, m := range c.Mounts {
			dir, name := filepath.Split(m.Source)
			d, err := os.Open(dir)
			if err != nil {
				return err
			}
			made[i], err = Clone(int(d.Fd()), name, m.Flags)
			d.Close()
			if err != nil {
				return err
			}
		}
		env := Env{MadeAt: []int{0, 1, 2, 3}, Made: func() (map[int]*os.File, error) { return made, nil }}
		if err := mountAll(c, env); err != nil {
			return err
		}
		var err error
		y, err = os.ReadFile(filepath.Join(c.Rootfs, "d", "y"))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if string(y) != "b\n" {
		t.Errorf("/d/y reads %q, want b's", y)
	}
	if _, err := os.Stat(filepath.Join(over, "y")); err != nil {
		t.Errorf("/d/y's mount point is not in the mount moved onto /d: %v", err)
	}
}

// inPrivateMountNS runs f on a thread of its own in a new mount namespace
// whose mounts are private, and returns f's error. The thread never
// unlocks: it ends with the goroutine, and its mount namespace with it.
func inPrivateMountNS(f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
			errc <- err
			return
		}
		if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
			errc <- err
			return
		}
		errc <- f()
	}()
	return <-errc
}
