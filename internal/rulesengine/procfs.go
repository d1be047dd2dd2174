package rulesengine

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// readProc reads a small /proc file into buf (grown when too small) with
// plain system calls: os.ReadFile would register each file with the
// runtime's poller (two epoll_ctl calls) and allocate an os.File, a large
// share of the engine's CPU at 1,000 events a second.
func readProc(path string, buf []byte) ([]byte, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	n := 0
	for {
		if n == len(buf) {
			buf = append(buf, make([]byte, len(buf)+512)...)
		}
		m, err := unix.Read(fd, buf[n:])
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "read", Path: path, Err: err}
		}
		if m == 0 {
			return buf[:n], nil
		}
		n += m
	}
}

// procsFiles keeps the cgroup.procs files the engine writes open, by
// hierarchy mount point and cgroup path: a move is then one write, not a
// path built, an open, a poller registration, a write and a close per
// hierarchy. Only the processor goroutine uses it.
type procsFiles map[procsKey]int

type procsKey struct{ mount, cgroup string }

// write writes pid to cgroup.procs of cgroup (a path from the root of
// the hierarchy mounted at mount). A file whose cgroup was removed
// (ENODEV on the open descriptor) is opened again once.
func (f procsFiles) write(mount, cgroup string, pid int) error {
	k := procsKey{mount, cgroup}
	var b [20]byte
	for attempt := 0; ; attempt++ {
		fd, ok := f[k]
		if !ok {
			var err error
			if fd, err = unix.Open(k.path(), unix.O_WRONLY|unix.O_CLOEXEC, 0); err != nil {
				return &os.PathError{Op: "open", Path: k.path(), Err: err}
			}
			f[k] = fd
		}
		_, err := unix.Write(fd, strconv.AppendInt(b[:0], int64(pid), 10))
		for errors.Is(err, unix.EINTR) { // as os.File retries
			_, err = unix.Write(fd, strconv.AppendInt(b[:0], int64(pid), 10))
		}
		if err == nil || errors.Is(err, unix.ESRCH) {
			return err
		}
		unix.Close(fd)
		delete(f, k)
		if attempt > 0 || !errors.Is(err, unix.ENODEV) {
			return &os.PathError{Op: "write", Path: k.path(), Err: err}
		}
	}
}

func (k procsKey) path() string { return filepath.Join(k.mount, k.cgroup, "cgroup.procs") }
