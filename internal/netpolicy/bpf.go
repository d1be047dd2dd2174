package netpolicy

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// progLoadAttr is the BPF_PROG_LOAD member of union bpf_attr
// (include/uapi/linux/bpf.h), up to the last field lkc sets; the kernel
// takes a shorter attr as zeros beyond it. Offsets as in bpf.h.
type progLoadAttr struct {
	progType           uint32   // 0: prog_type
	insnCnt            uint32   // 4: insn_cnt
	insns              uint64   // 8: insns (__aligned_u64 pointer)
	license            uint64   // 16: license (pointer to a C string)
	logLevel           uint32   // 24: log_level
	logSize            uint32   // 28: log_size
	logBuf             uint64   // 32: log_buf (pointer)
	kernVersion        uint32   // 40: kern_version
	progFlags          uint32   // 44: prog_flags
	progName           [16]byte // 48: prog_name[BPF_OBJ_NAME_LEN]
	progIfindex        uint32   // 64: prog_ifindex
	expectedAttachType uint32   // 68: expected_attach_type
}

// progAttachAttr is the BPF_PROG_ATTACH/DETACH member of union bpf_attr,
// up to replace_bpf_fd. Offsets as in bpf.h.
type progAttachAttr struct {
	targetFd     uint32 // 0: target_fd (the cgroup directory)
	attachBpfFd  uint32 // 4: attach_bpf_fd
	attachType   uint32 // 8: attach_type
	attachFlags  uint32 // 12: attach_flags
	replaceBpfFd uint32 // 16: replace_bpf_fd
}

// logSize is the verifier log buffer of a failed load: the programs are
// a few dozen instructions, their log a few KiB.
const logSize = 64 << 10

func bpf(cmd int, attr unsafe.Pointer, size uintptr) (uintptr, error) {
	r, _, errno := unix.Syscall(unix.SYS_BPF, uintptr(cmd), uintptr(attr), size)
	if errno != 0 {
		return 0, errno
	}
	return r, nil
}

// loadProg loads a program for attach type at (a cgroup sock_addr
// program, or the socket-creation or post-bind hook's cgroup sock one) and returns its
// fd (close-on-exec: the kernel makes every bpf
// fd O_CLOEXEC). A program the verifier refuses is loaded again with its
// log, whose last line the error carries.
func loadProg(at uint32, code []byte) (int, error) {
	fd, err := progLoad(at, code, nil)
	if err == nil {
		return fd, nil
	}
	log := make([]byte, logSize)
	if _, err2 := progLoad(at, code, log); err2 != nil {
		if msg := verifierMessage(log); msg != "" {
			return -1, fmt.Errorf("%w: verifier: %s", err2, msg)
		}
		return -1, err2
	}
	return -1, err
}

func progLoad(at uint32, code []byte, log []byte) (int, error) {
	license := []byte("GPL\x00")
	progType := uint32(unix.BPF_PROG_TYPE_CGROUP_SOCK_ADDR)
	if at == unix.BPF_CGROUP_INET_SOCK_CREATE || at == unix.BPF_CGROUP_INET6_POST_BIND {
		progType = unix.BPF_PROG_TYPE_CGROUP_SOCK
	}
	attr := progLoadAttr{
		progType:           progType,
		insnCnt:            uint32(len(code) / 8),
		insns:              uint64(uintptr(unsafe.Pointer(&code[0]))),
		license:            uint64(uintptr(unsafe.Pointer(&license[0]))),
		expectedAttachType: at,
	}
	if len(log) > 0 {
		attr.logLevel = 1
		attr.logSize = uint32(len(log))
		attr.logBuf = uint64(uintptr(unsafe.Pointer(&log[0])))
	}
	var fd uintptr
	var err error
	// The verifier gives up with EAGAIN when a signal is pending, and Go
	// preempts goroutines with signals.
	for try := 0; try < 10; try++ {
		if fd, err = bpf(unix.BPF_PROG_LOAD, unsafe.Pointer(&attr), unsafe.Sizeof(attr)); !errors.Is(err, unix.EAGAIN) {
			break
		}
	}
	runtime.KeepAlive(code)
	runtime.KeepAlive(license)
	runtime.KeepAlive(log)
	if err != nil {
		return -1, err
	}
	return int(fd), nil
}

// verifierMessage is the last line of a verifier log that says what was
// wrong (not the statistics the verifier ends with).
func verifierMessage(log []byte) string {
	if i := strings.IndexByte(string(log), 0); i >= 0 {
		log = log[:i]
	}
	lines := strings.Split(strings.TrimSpace(string(log)), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if l := strings.TrimSpace(lines[i]); l != "" && !strings.HasPrefix(l, "processed ") && !strings.HasPrefix(l, "verification time") && !strings.HasPrefix(l, "stack depth") {
			return l
		}
	}
	return ""
}

// attachProg attaches program prog to the cgroup directory cg for attach
// type at with flags (BPF_PROG_ATTACH).
func attachProg(cg, prog int, at, flags uint32) error {
	attr := progAttachAttr{targetFd: uint32(cg), attachBpfFd: uint32(prog), attachType: at, attachFlags: flags}
	_, err := bpf(unix.BPF_PROG_ATTACH, unsafe.Pointer(&attr), unsafe.Sizeof(attr))
	return err
}
