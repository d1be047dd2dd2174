package cgroups

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// bpfProgLoadAttr is the BPF_PROG_LOAD part of union bpf_attr, up to
// expected_attach_type; the kernel zero-fills the rest.
type bpfProgLoadAttr struct {
	progType           uint32
	insnCnt            uint32
	insns              uint64
	license            uint64
	logLevel           uint32
	logSize            uint32
	logBuf             uint64
	kernVersion        uint32
	progFlags          uint32
	progName           [16]byte
	progIfindex        uint32
	expectedAttachType uint32
}

// bpfProgAttachAttr is the BPF_PROG_ATTACH part of union bpf_attr.
type bpfProgAttachAttr struct {
	targetFd     uint32
	attachBpfFd  uint32
	attachType   uint32
	attachFlags  uint32
	replaceBpfFd uint32
}

// attachDeviceProgram loads code as a BPF_PROG_TYPE_CGROUP_DEVICE program
// and attaches it to the cgroup directory dir. The cgroup keeps the program
// alive, so the program fd is closed on return.
func attachDeviceProgram(dir string, code []byte) error {
	prog, err := loadDeviceProgram(code, nil)
	if err != nil {
		// Load again with the verifier log, to say why.
		log := make([]byte, 64<<10)
		if fd, lerr := loadDeviceProgram(code, log); lerr == nil {
			unix.Close(fd)
		} else {
			if msg, _, _ := bytes.Cut(log, []byte{0}); len(msg) > 0 {
				return fmt.Errorf("loading the device program: %w: %s", err, bytes.TrimSpace(msg))
			}
		}
		return fmt.Errorf("loading the device program: %w", err)
	}
	defer unix.Close(prog)
	cg, err := unix.Open(dir, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: dir, Err: err}
	}
	defer unix.Close(cg)
	attr := bpfProgAttachAttr{
		targetFd:    uint32(cg),
		attachBpfFd: uint32(prog),
		attachType:  unix.BPF_CGROUP_DEVICE,
		attachFlags: unix.BPF_F_ALLOW_MULTI,
	}
	_, _, errno := unix.Syscall(unix.SYS_BPF, unix.BPF_PROG_ATTACH, uintptr(unsafe.Pointer(&attr)), unsafe.Sizeof(attr))
	if errno != 0 {
		return fmt.Errorf("attaching the device program to %s: %w", dir, errno)
	}
	return nil
}

// loadDeviceProgram returns the fd of the loaded program; log, if given,
// receives the verifier's log.
func loadDeviceProgram(code []byte, log []byte) (int, error) {
	license := []byte("Apache\x00")
	attr := bpfProgLoadAttr{
		progType: unix.BPF_PROG_TYPE_CGROUP_DEVICE,
		insnCnt:  uint32(len(code) / 8),
		insns:    uint64(uintptr(unsafe.Pointer(&code[0]))),
		license:  uint64(uintptr(unsafe.Pointer(&license[0]))),
	}
	copy(attr.progName[:], "lkc_devices")
	if len(log) > 0 {
		attr.logLevel, attr.logSize = 1, uint32(len(log))
		attr.logBuf = uint64(uintptr(unsafe.Pointer(&log[0])))
	}
	for range 5 {
		fd, _, errno := unix.Syscall(unix.SYS_BPF, unix.BPF_PROG_LOAD, uintptr(unsafe.Pointer(&attr)), unsafe.Sizeof(attr))
		runtime.KeepAlive(code)
		runtime.KeepAlive(license)
		runtime.KeepAlive(log)
		if errno == 0 {
			return int(fd), nil // the kernel sets O_CLOEXEC
		}
		if errno != unix.EAGAIN {
			return -1, errno
		}
	}
	return -1, unix.EAGAIN
}
