package rulesengine

import (
	"errors"
	"os"
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

// procsFiles keeps the cgroup.procs files the engine writes open: a move
// is then one write, not an open, a poller registration, a write and a
// close per hierarchy. Only the processor goroutine uses it.
type procsFiles map[string]int

// write writes pid to the cgroup.procs file at path. A file whose cgroup
// was removed (ENODEV on the open descriptor) is opened again once.
func (f procsFiles) write(path string, pid int) error {
	b := strconv.AppendInt(make([]byte, 0, 12), int64(pid), 10)
	for attempt := 0; ; attempt++ {
		fd, ok := f[path]
		if !ok {
			var err error
			if fd, err = unix.Open(path, unix.O_WRONLY|unix.O_CLOEXEC, 0); err != nil {
				return &os.PathError{Op: "open", Path: path, Err: err}
			}
			f[path] = fd
		}
		_, err := unix.Write(fd, b)
		if err == nil || errors.Is(err, unix.ESRCH) {
			return err
		}
		unix.Close(fd)
		delete(f, path)
		if attempt > 0 || !errors.Is(err, unix.ENODEV) {
			return &os.PathError{Op: "write", Path: path, Err: err}
		}
	}
}
