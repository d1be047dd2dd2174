package daemon

import (
	"bytes"
	"context"
	"encoding/binary"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// watchRunDir stops the daemon when its run directory is removed or
// moved: nobody can reach it any more (control.sock went with it), so it
// would only hold its fds forever. A test's daemon whose temp dir is
// removed without `lkc daemon stop` ends so too. The watch is on the
// parent: the directory's own IN_DELETE_SELF waits until nothing pins it,
// and the bound control socket does.
func (w *worker) watchRunDir(ctx context.Context) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC)
	if err != nil {
		w.logf("watching %s: inotify: %v", w.Dir, err)
		return
	}
	f := os.NewFile(uintptr(fd), "inotify")
	defer f.Close()
	parent, name := filepath.Dir(w.Dir), filepath.Base(w.Dir)
	if _, err := unix.InotifyAddWatch(fd, parent, unix.IN_DELETE|unix.IN_MOVED_FROM|unix.IN_ONLYDIR); err != nil {
		w.logf("watching %s: %v", parent, err)
		return
	}
	stop := context.AfterFunc(ctx, func() { f.Close() })
	defer stop()
	buf := make([]byte, 64<<10)
	for {
		hit, err := named(buf, f, name)
		if err != nil {
			return // the close at exit, or inotify broke: no watch then
		}
		if hit {
			break
		}
	}
	w.logf("run directory %s was removed or moved: stopping", w.Dir)
	if _, err := w.store.Stop(); err != nil {
		w.logf("stopping the holder: %v", err)
	}
	w.stopServices()
	w.cancel()
}

// named reads one batch of inotify events and says whether one names
// name.
func named(buf []byte, f *os.File, name string) (bool, error) {
	n, err := f.Read(buf)
	if err != nil {
		return false, err
	}
	for off := 0; off+unix.SizeofInotifyEvent <= n; {
		size := int(binary.NativeEndian.Uint32(buf[off+12:])) // struct inotify_event's len
		start := off + unix.SizeofInotifyEvent
		if string(bytes.TrimRight(buf[start:min(start+size, n)], "\x00")) == name {
			return true, nil
		}
		off = start + size
	}
	return false, nil
}
