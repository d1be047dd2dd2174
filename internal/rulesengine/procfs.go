package rulesengine

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// procReader reads small /proc/<pid>/ files into a buffer it keeps, with
// plain system calls on a path built in another: os.ReadFile would
// register each file with the runtime's poller (two epoll_ctl calls) and
// allocate an os.File and the path, a large share of the engine's CPU at
// 1,000 events a second. What it returns is valid until its next call.
// One goroutine uses a procReader.
type procReader struct {
	path []byte
	buf  []byte
}

// at builds "/proc/<pid>/<name>" NUL-terminated.
func (r *procReader) at(pid int, name string) []byte {
	r.path = strconv.AppendInt(append(r.path[:0], "/proc/"...), int64(pid), 10)
	r.path = append(append(append(r.path, '/'), name...), 0)
	return r.path
}

// atTask builds "/proc/<pid>/task/<tid>/<name>" NUL-terminated.
func (r *procReader) atTask(pid, tid int, name string) []byte {
	r.path = strconv.AppendInt(append(r.path[:0], "/proc/"...), int64(pid), 10)
	r.path = strconv.AppendInt(append(r.path, "/task/"...), int64(tid), 10)
	r.path = append(append(append(r.path, '/'), name...), 0)
	return r.path
}

func pathErr(op string, path []byte, err error) error {
	return &os.PathError{Op: op, Path: string(path[:len(path)-1]), Err: err}
}

// read reads /proc/<pid>/<name>.
func (r *procReader) read(pid int, name string) ([]byte, error) {
	return r.readPath(r.at(pid, name))
}

// readPath reads the file at path (NUL-terminated).
func (r *procReader) readPath(path []byte) ([]byte, error) {
	fd, err := openPath(path)
	if err != nil {
		return nil, pathErr("open", path, err)
	}
	defer unix.Close(fd)
	if len(r.buf) == 0 {
		r.buf = make([]byte, 4096)
	}
	n := 0
	for {
		if n == len(r.buf) {
			r.buf = append(r.buf, make([]byte, len(r.buf))...)
		}
		m, err := unix.Read(fd, r.buf[n:])
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return nil, pathErr("read", path, err)
		}
		if m == 0 || n == 0 && m < len(r.buf) && m < wholeRead {
			return r.buf[:n+m], nil
		}
		n += m
	}
}

// wholeRead: a first read shorter than this and than asked for returned
// the whole file, and the read that would return 0 is not made. The
// files read here are seq files (or cmdline, which copies all it has): a
// read fills the buffer unless the file ends, or the seq file's own
// buffer (a page, at first) cannot take the next record; records here
// are far shorter than half a page, and a file of one record (stat,
// cgroup) comes whole.
const wholeRead = 2048

// readlink reads symbolic link /proc/<pid>/<name>.
func (r *procReader) readlink(pid int, name string) ([]byte, error) {
	path := r.at(pid, name)
	if len(r.buf) == 0 {
		r.buf = make([]byte, 4096)
	}
	for {
		n, err := readlinkPath(path, r.buf)
		if err != nil {
			return nil, pathErr("readlink", path, err)
		}
		if n < len(r.buf) {
			return r.buf[:n], nil
		}
		r.buf = make([]byte, 2*len(r.buf))
	}
}

// threads is the number of threads of process pid, from the link count
// of its task directory (2 + threads), or 0 when it is gone.
func (r *procReader) threads(pid int) int {
	var st unix.Stat_t
	if statPath(r.at(pid, "task"), &st) != nil || st.Nlink < 3 {
		return 0
	}
	return int(st.Nlink) - 2
}

// procsFiles keeps the cgroup.procs files the engine writes open, by
// hierarchy mount point and cgroup path: a move is then one write, not a
// path built, an open, a poller registration, a write and a close per
// hierarchy. Classify and Scan use it, one at a time.
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

// closeAll closes every file kept: a target's cgroup may be gone (a
// group deleted, a container ended), and its file would stay open for as
// long as the engine runs.
func (f procsFiles) closeAll() {
	for k, fd := range f {
		unix.Close(fd)
		delete(f, k)
	}
}

func (k procsKey) path() string { return filepath.Join(k.mount, k.cgroup, "cgroup.procs") }
