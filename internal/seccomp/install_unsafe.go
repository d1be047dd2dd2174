package seccomp

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Install loads prog, a program from Program, with flags on the calling
// thread only: that thread goes on to execve, which ends every other one,
// so the new process image has exactly this filter. It returns the notify
// listener fd (the kernel makes it close-on-exec) when flags ask for one,
// else -1. It makes no
// allocation and no call into libseccomp, so it works under any rlimit.
//
// Preconditions: the caller's goroutine is locked to its thread, and the
// thread has no_new_privs set or CAP_SYS_ADMIN in its user namespace.
func Install(prog []byte, flags uint) (int, error) {
	if len(prog) == 0 || len(prog)%int(unsafe.Sizeof(unix.SockFilter{})) != 0 {
		return -1, fmt.Errorf("loading the seccomp filter: a program of %d bytes", len(prog))
	}
	fprog := unix.SockFprog{
		Len:    uint16(len(prog) / int(unsafe.Sizeof(unix.SockFilter{}))),
		Filter: (*unix.SockFilter)(unsafe.Pointer(&prog[0])),
	}
	r, _, errno := unix.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, uintptr(flags), uintptr(unsafe.Pointer(&fprog)))
	if errno != 0 {
		return -1, fmt.Errorf("loading the seccomp filter: %w", errno)
	}
	if flags&unix.SECCOMP_FILTER_FLAG_NEW_LISTENER == 0 {
		return -1, nil
	}
	return int(r), nil
}
