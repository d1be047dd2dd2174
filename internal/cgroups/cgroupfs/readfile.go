package cgroupfs

import (
	"io/fs"

	"golang.org/x/sys/unix"
)

// ReadFile reads a kernel file (cgroupfs, /proc) of a few kilobytes with
// three system calls, open, read until end and close. os.ReadFile also
// stats it and registers the fd with the runtime's poller, which cost as
// much as the read itself: the /proc renderers read a dozen such files per
// open of a virtual file, and `lkc top` some 30 per container per refresh.
// Errors are *fs.PathError, as from os.ReadFile.
func ReadFile(path string) ([]byte, error) {
	b, err := ReadAppend(path, make([]byte, 0, 4096))
	if err != nil {
		return nil, err
	}
	return b, nil
}

// ReadAppend is ReadFile appending to buf, for a caller that reuses its
// buffers: the result shares buf's array while it has room.
func ReadAppend(path string, buf []byte) ([]byte, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	for err == unix.EINTR {
		fd, err = unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	}
	if err != nil {
		return buf, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := unix.Read(fd, buf[len(buf):cap(buf)])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return buf, &fs.PathError{Op: "read", Path: path, Err: err}
		}
		if n == 0 {
			return buf, nil
		}
		buf = buf[:len(buf)+n]
	}
}
