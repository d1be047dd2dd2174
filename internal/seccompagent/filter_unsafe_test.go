package seccompagent

import (
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// init keeps the test binary's main goroutine on the main thread, so no
// test's filtered goroutine ever runs there: the runtime cannot end the
// main thread when a locked goroutine exits on it (it parks it instead),
// and a parked filtered thread would keep its listener from hanging up.
func init() { runtime.LockOSThread() }

// loadSysinfoFilter installs on the calling thread a filter that sends
// sysinfo to a new listener and allows the rest; it returns the listener.
// Preconditions: the goroutine is locked to its thread and never unlocks,
// so the filtered thread dies with the goroutine.
func loadSysinfoFilter() (int, error) {
	runtime.LockOSThread()
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return -1, err
	}
	prog := []unix.SockFilter{
		{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: 4},
		{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, Jt: 0, Jf: 3, K: nativeArch},
		{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: 0},
		{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, Jt: 0, Jf: 1, K: unix.SYS_SYSINFO},
		{Code: unix.BPF_RET | unix.BPF_K, K: unix.SECCOMP_RET_USER_NOTIF},
		{Code: unix.BPF_RET | unix.BPF_K, K: unix.SECCOMP_RET_ALLOW},
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	fd, _, errno := unix.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER,
		unix.SECCOMP_FILTER_FLAG_NEW_LISTENER, uintptr(unsafe.Pointer(&fprog)))
	if errno != 0 {
		return -1, errno
	}
	return int(fd), nil
}

// sysinfoAt calls sysinfo(2) with a raw buffer address.
func sysinfoAt(addr uintptr) error {
	_, _, errno := unix.Syscall(unix.SYS_SYSINFO, addr, 0, 0)
	if errno != 0 {
		return errno
	}
	return nil
}

// sysinfo is unix.Sysinfo through Syscall, not RawSyscall: a caller that
// blocks in the kernel on an agent in the same process must not hold up
// the Go runtime's stop-the-world, which the agent may be waiting for.
func sysinfo(si *unix.Sysinfo_t) error {
	_, _, errno := unix.Syscall(unix.SYS_SYSINFO, uintptr(unsafe.Pointer(si)), 0, 0)
	if errno != 0 {
		return errno
	}
	return nil
}
