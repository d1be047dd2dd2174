package seccompagent

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// notif is the kernel's struct seccomp_notif: one trapped syscall.
type notif struct {
	id    uint64
	pid   uint32
	flags uint32
	nr    int32
	arch  uint32
	ip    uint64
	args  [6]uint64
}

// notifResp is the kernel's struct seccomp_notif_resp: the answer to one id.
type notifResp struct {
	id    uint64
	val   int64
	error int32
	flags uint32
}

func ioctlPtr(fd int, req uint, p unsafe.Pointer) error {
	for {
		_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), uintptr(req), uintptr(p))
		switch errno {
		case 0:
			return nil
		case unix.EINTR:
			continue
		default:
			return errno
		}
	}
}

// recv takes the next notification of listener fd. ENOENT: its caller was
// killed (or another reader took it) between the poll and the read.
func recv(fd int, n *notif) error {
	*n = notif{}
	return ioctlPtr(fd, unix.SECCOMP_IOCTL_NOTIF_RECV, unsafe.Pointer(n))
}

// send answers a notification; ENOENT: its caller is gone.
func send(fd int, r *notifResp) error {
	return ioctlPtr(fd, unix.SECCOMP_IOCTL_NOTIF_SEND, unsafe.Pointer(r))
}

// idValid reports whether id still waits for an answer on fd, which also
// means its caller's pid still names that caller.
func idValid(fd int, id uint64) error {
	return ioctlPtr(fd, unix.SECCOMP_IOCTL_NOTIF_ID_VALID, unsafe.Pointer(&id))
}

// setSyncWakeUp asks the kernel to wake a caller on the answering CPU.
func setSyncWakeUp(fd int) error {
	flags := uint64(unix.SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP)
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), uintptr(unix.SECCOMP_IOCTL_NOTIF_SET_FLAGS), uintptr(flags))
	if errno != 0 {
		return errno
	}
	return nil
}

// writeSysinfo copies si into process pid at addr, as the kernel's
// sysinfo(2) would.
func writeSysinfo(pid int, addr uint64, si *unix.Sysinfo_t) error {
	local := []unix.Iovec{{Base: (*byte)(unsafe.Pointer(si))}}
	local[0].SetLen(int(unsafe.Sizeof(*si)))
	remote := []unix.RemoteIovec{{Base: uintptr(addr), Len: int(unsafe.Sizeof(*si))}}
	n, err := unix.ProcessVMWritev(pid, local, remote, 0)
	if err != nil {
		return err
	}
	if n != int(unsafe.Sizeof(*si)) {
		return unix.EFAULT
	}
	return nil
}

// slotWords maps journal slot i of mem to its words: id, arg0, pid and
// the in-flight mark (see journal).
func slotWords(mem []byte, i int) (id, arg0 *uint64, pid, mark *uint32) {
	p := unsafe.Pointer(&mem[i*slotSize])
	return (*uint64)(p), (*uint64)(unsafe.Add(p, 8)), (*uint32)(unsafe.Add(p, 16)), (*uint32)(unsafe.Add(p, 20))
}
