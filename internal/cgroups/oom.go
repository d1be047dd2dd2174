package cgroups

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// OOMEvents on v1 registers an eventfd for memory.oom_control through
// cgroup.event_control; the kernel signals it each time the cgroup runs out
// of memory, and once more when the cgroup is removed.
func (m *v1) OOMEvents(ctx context.Context) (<-chan struct{}, error) {
	dir, ok := m.dir("memory")
	if !ok {
		return nil, fmt.Errorf("oom events: %w (no memory controller)", ErrNotSupported)
	}
	control, err := os.Open(filepath.Join(dir, "memory.oom_control"))
	if err != nil {
		return nil, fmt.Errorf("oom events: %w", err)
	}
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		control.Close()
		return nil, fmt.Errorf("oom events: eventfd: %w", err)
	}
	// Non-blocking, so the runtime poller owns it and Close ends a Read.
	ev := os.NewFile(uintptr(efd), "oom-eventfd")
	reg := strconv.Itoa(efd) + " " + strconv.Itoa(int(control.Fd()))
	if err := writeFile(dir, "cgroup.event_control", reg); err != nil {
		ev.Close()
		control.Close()
		return nil, fmt.Errorf("oom events: %w", err)
	}
	return pump(ctx, ev, 8, func([]byte) (int, bool) {
		if !exists(filepath.Join(dir, "cgroup.event_control")) {
			return 0, true // the cgroup was removed
		}
		return 1, false
	}, control), nil
}

// OOMEvents on v2 watches memory.events with inotify and reports each rise
// of its oom_kill counter.
func (m *v2) OOMEvents(ctx context.Context) (<-chan struct{}, error) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("oom events: inotify: %w", err)
	}
	in := os.NewFile(uintptr(fd), "oom-inotify")
	file := filepath.Join(m.dir, "memory.events")
	if _, err := unix.InotifyAddWatch(fd, file, unix.IN_MODIFY|unix.IN_DELETE_SELF); err != nil {
		in.Close()
		return nil, fmt.Errorf("oom events: watching %s: %w", file, err)
	}
	// Read after the watch is set, so no kill falls between the two.
	last, err := oomKills(m.dir)
	if err != nil {
		in.Close()
		return nil, fmt.Errorf("oom events: %w", err)
	}
	return pump(ctx, in, 4096, func(buf []byte) (int, bool) {
		gone := inotifyGone(buf)
		n, err := oomKills(m.dir)
		if err != nil || n <= last {
			return 0, gone || err != nil
		}
		events := int(n - last)
		last = n
		return events, gone
	}), nil
}

func oomKills(dir string) (uint64, error) {
	events, err := readKeyed(dir, "memory.events")
	return events["oom_kill"], err
}

// inotifyGone reports whether buf holds an event saying the watched file
// went away (IN_IGNORED, IN_DELETE_SELF). Each event is a 16-byte header
// (wd, mask, cookie, len) followed by len bytes of name.
func inotifyGone(buf []byte) bool {
	for len(buf) >= unix.SizeofInotifyEvent {
		mask := binary.NativeEndian.Uint32(buf[4:8])
		size := unix.SizeofInotifyEvent + int(binary.NativeEndian.Uint32(buf[12:16]))
		if mask&(unix.IN_IGNORED|unix.IN_DELETE_SELF) != 0 {
			return true
		}
		if size > len(buf) {
			break
		}
		buf = buf[size:]
	}
	return false
}

// pump reads f until ctx ends, a read fails or handle says done, sending
// handle's count of events to the returned channel, which it then closes.
// f must be non-blocking so that closing it ends a pending read. pump closes
// f and also when it ends.
func pump(ctx context.Context, f *os.File, size int, handle func([]byte) (events int, done bool), also ...io.Closer) <-chan struct{} {
	out := make(chan struct{})
	stop := context.AfterFunc(ctx, func() { f.Close() })
	go func() {
		defer close(out)
		defer stop()
		defer f.Close()
		for _, c := range also {
			defer c.Close()
		}
		buf := make([]byte, size)
		for {
			n, err := f.Read(buf)
			if err != nil {
				return
			}
			events, done := handle(buf[:n])
			for range events {
				select {
				case out <- struct{}{}:
				case <-ctx.Done():
					return
				}
			}
			if done {
				return
			}
		}
	}()
	return out
}
