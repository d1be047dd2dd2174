package rulesengine

import (
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The /proc system calls of the engine's event path take a NUL-terminated
// path in a reused buffer: unix.Open, unix.Readlink and unix.Stat copy
// every path string into a new allocation, and the engine makes about
// twenty of them per process it moves.

// nanotime is the runtime's CLOCK_MONOTONIC reading, through the vDSO.
//
//go:linkname nanotime runtime.nanotime
func nanotime() int64

var atFDCWD = unix.AT_FDCWD

func errnoErr(e unix.Errno) error {
	if e == 0 {
		return nil
	}
	return e
}

// openPath opens path (NUL-terminated) read-only.
func openPath(path []byte) (int, error) {
	fd, _, e := unix.Syscall6(unix.SYS_OPENAT, uintptr(atFDCWD), uintptr(unsafe.Pointer(&path[0])),
		uintptr(unix.O_RDONLY|unix.O_CLOEXEC), 0, 0, 0)
	runtime.KeepAlive(path)
	return int(fd), errnoErr(e)
}

// readlinkPath reads symbolic link path (NUL-terminated) into buf.
func readlinkPath(path, buf []byte) (int, error) {
	n, _, e := unix.Syscall6(unix.SYS_READLINKAT, uintptr(atFDCWD), uintptr(unsafe.Pointer(&path[0])),
		uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)), 0, 0)
	runtime.KeepAlive(path)
	runtime.KeepAlive(buf)
	return int(n), errnoErr(e)
}

// statPath stats path (NUL-terminated) into st.
func statPath(path []byte, st *unix.Stat_t) error {
	_, _, e := unix.Syscall6(unix.SYS_NEWFSTATAT, uintptr(atFDCWD), uintptr(unsafe.Pointer(&path[0])),
		uintptr(unsafe.Pointer(st)), 0, 0, 0)
	runtime.KeepAlive(path)
	return errnoErr(e)
}

// view is b as a string without a copy: only for a string that dies
// before b is written again (cgroupSet's, until the next read).
func view(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }
