package mount

import (
	"context"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/lkc-containers/lkc/internal/config"
	"github.com/lkc-containers/lkc/internal/fuse"
	"github.com/lkc-containers/lkc/internal/testutil"
)

// oneFileFS is a FUSE tree of one regular file, "f", counting its renders.
type oneFileFS struct{ renders atomic.Int32 }

const oneFileIno = 2

func (fs *oneFileFS) attr(ino uint64) fuse.Attr {
	if ino == fuse.RootID {
		return fuse.Attr{Ino: ino, Mode: syscall.S_IFDIR | 0o555}
	}
	return fuse.Attr{Ino: ino, Mode: syscall.S_IFREG | 0o444}
}

func (fs *oneFileFS) Lookup(parent uint64, name string) (fuse.Attr, error) {
	if parent != fuse.RootID || name != "f" {
		return fuse.Attr{}, syscall.ENOENT
	}
	return fs.attr(oneFileIno), nil
}

func (fs *oneFileFS) Getattr(node uint64) (fuse.Attr, error) { return fs.attr(node), nil }

func (fs *oneFileFS) Readdir(uint64) ([]fuse.Dirent, error) { return nil, nil }

func (fs *oneFileFS) Content(uint64) ([]byte, bool, error) {
	fs.renders.Add(1)
	return []byte("x\n"), true, nil
}

// TestFileMountOfFUSEFileRendersNothing: telling a bind mount of a file
// from one of a directory takes the type the kernel has; it does not ask
// the FUSE server for attributes (a GETATTR), which the /proc view answers
// by rendering the file. Only the name's LOOKUP, which the mount's own
// path walk needs anyway, reaches the server.
func TestFileMountOfFUSEFileRendersNothing(t *testing.T) {
	testutil.RequiresRoot(t)
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skipf("no /dev/fuse: %v", err)
	}
	dir := t.TempDir()
	f, err := fuse.Mount(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	fs := &oneFileFS{}
	go func() { done <- fuse.NewServer(fs).Serve(ctx, f) }()
	t.Cleanup(func() {
		cancel()
		<-done
		if err := fuse.Unmount(dir); err != nil {
			t.Error(err)
		}
		f.Close()
	})
	src := filepath.Join(dir, "f")
	var looked int32
	for i := 0; i < 3; i++ {
		isFile, err := fileMount(config.Mount{Type: "bind", Source: src}, src)
		if err != nil || !isFile {
			t.Fatalf("fileMount = %v, %v; want a file", isFile, err)
		}
		if i == 0 {
			looked = fs.renders.Load() // the LOOKUP answers the size too
		}
	}
	if n := fs.renders.Load() - looked; n != 0 {
		t.Fatalf("telling the mount's type of a looked-up file rendered it %d more times, want 0", n)
	}
}
