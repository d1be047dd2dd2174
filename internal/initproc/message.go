// Package initproc is the Go side of `lkc init`, the process that becomes a
// container's init. The nsenter constructor has already put it into its
// namespaces; here it receives its config from the parent, builds the root
// filesystem, reports ready, waits to be started and execs the process. An
// `lkc exec` process the constructor cannot finish by itself (a terminal,
// rlimits, an oom score, an LSM label, a seccomp notify listener) takes the same path
// without the root filesystem and the wait.
package initproc

import (
	"fmt"
	"os"
	"slices"

	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/config"
	"github.com/lkc-containers/lkc/internal/pack"
	"github.com/lkc-containers/lkc/internal/scm"
)

// Env names carrying fds from the parent to init.
const (
	ConsoleEnv = "_LKC_CONSOLE" // a connection to the console socket
	FifoEnv    = "_LKC_FIFO"    // the exec fifo, open for reading
	// SeccompEnv is a connection to linux.seccomp.listenerPath, dialled by
	// the parent because the path is the host's.
	SeccompEnv = "_LKC_SECCOMP"
)

// Message is what the parent sends init after the namespaces are set up,
// in the binary form of internal/pack: init decodes it on the way to every
// container start, where encoding/json's first decode of the config types
// cost 0.3-0.4 ms. Its writer and reader are generated from this type
// (message_gen.go).
//
//go:generate go run ../../cmd/lkc-codegen -codec pack -out message_gen.go Message
type Message struct {
	Config      *config.Config
	CgroupPaths map[string]string
	PreserveFDs int
	// Exec starts a further process in a running container: the
	// namespaces are joined already, so no rootfs work and no waiting.
	Exec bool
	// NoNewKeyring keeps the caller's session keyring instead of a fresh one.
	NoNewKeyring bool
	// CreateState and StartState are the OCI state JSON the createContainer
	// and startContainer hooks read (status creating and created, init's
	// pid as the host sees it); empty when there are no such hooks.
	CreateState []byte
	StartState  []byte
	// SeccompState is what init sends the seccomp listener with the notify
	// fd: the container process state (pid as the host sees it).
	SeccompState []byte
	// Detached lists the indexes in Config.Mounts of the mounts that may
	// come made: after the message the parent sends one record
	// (SendDetached) naming those it made, detached mounts (open_tree
	// clones, their flags set) sent with it as fds. Init waits for it at
	// the first such mount, moves each made one onto its destination and
	// mounts the others from their source. The parent makes those of the
	// daemon's /proc view, so init walks none of its FUSE paths, while
	// init mounts the config's first.
	Detached []int
}

// messageVersion starts every encoded Message. Both ends are the same
// binary, so it only turns a mix-up into a clear error.
const messageVersion = 1

// MarshalBinary encodes m; it never fails.
func (m *Message) MarshalBinary() ([]byte, error) {
	var w pack.Writer
	w.Uint(messageVersion)
	pack.Write(&w, PackFieldsMessage(m))
	return w.Bytes(), nil
}

// UnmarshalBinary decodes a Message encoded by MarshalBinary into m, which
// should be zero. The state fields alias data.
func (m *Message) UnmarshalBinary(data []byte) error {
	r := pack.NewReader(data)
	if v := r.Uint(); v != messageVersion {
		return fmt.Errorf("init message version %d, want %d", v, messageVersion)
	}
	pack.Read(r, PackFieldsMessage(m))
	return r.Err()
}

// Ready is the message init sends once the container is created.
const Ready = "ready"

// HooksPoint is what init sends when its mounts are done and it waits,
// before pivot_root, for the parent to run the prestart and createRuntime
// hooks and answer HooksDone. Sent only when the config has such hooks.
const (
	HooksPoint = "hooks"
	HooksDone  = "hooks done"
)

// ErrorPrefix starts the message init sends when it fails.
const ErrorPrefix = "error "

// maxRecord is the largest record Send puts on the socket. One record of
// a SOCK_SEQPACKET socket must fit the socket's send buffer (208 KiB by
// default) and be one kernel allocation (4 MiB at most), so a config with
// megabytes of env or annotations is sent in several.
const maxRecord = 128 << 10

// maxFiles is the most fds one message carries: the kernel's limit for
// one SCM_RIGHTS message (SCM_MAX_FD), which a config with many idmapped
// mounts may come near.
const maxFiles = 253

// Send sends msg as one message that Recv reassembles: records of
// maxRecord bytes, then a shorter one (empty if need be) that ends it.
// A message below maxRecord, every message of an ordinary start, is one
// record as before. files (at most maxFiles) go with the first record.
func Send(fd int, msg []byte, files ...int) error {
	if len(files) > maxFiles {
		return fmt.Errorf("%d fds in one message, at most %d", len(files), maxFiles)
	}
	var oob []byte
	if len(files) > 0 {
		oob = unix.UnixRights(files...)
	}
	for {
		n := min(len(msg), maxRecord)
		if err := unix.Sendmsg(fd, msg[:n], oob, nil, 0); err != nil {
			return err
		}
		oob = nil
		if n < maxRecord {
			return nil
		}
		msg = msg[n:]
	}
}

// Recv reads one whole message from a SOCK_SEQPACKET socket, however long,
// joining the records of one that Send split.
func Recv(fd int) ([]byte, error) {
	msg, files, err := recvFiles(fd)
	closeAll(files) // only SendDetached's record carries fds
	return msg, err
}

// recvFiles is Recv that also returns the fds sent with the message
// (close-on-exec).
func recvFiles(fd int) (msg []byte, files []int, err error) {
	oob := make([]byte, unix.CmsgSpace(maxFiles*4))
	defer func() {
		if err != nil {
			closeAll(files)
			files = nil
		}
	}()
	for {
		rec, fds, err := recvRecord(fd, oob)
		files = append(files, fds...)
		if err != nil {
			return nil, files, err
		}
		if msg == nil && len(rec) < maxRecord {
			return rec, files, nil
		}
		msg = append(msg, rec...)
		if len(rec) < maxRecord {
			return msg, files, nil
		}
	}
}

// inRange says whether every index is in [0, n).
func inRange(indexes []int, n int) bool {
	for _, i := range indexes {
		if i < 0 || i >= n {
			return false
		}
	}
	return true
}

func closeAll(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}

// recvRecord reads one record, sized first by a peek, and the fds sent
// with it into oob.
//
// A peer that exits with our messages unread leaves ECONNRESET on the
// socket, and the kernel reports it (once) before the records the peer sent
// first: init's last word, the error naming what failed, is still queued
// behind it. So ECONNRESET is read past once.
func recvRecord(fd int, oob []byte) ([]byte, []int, error) {
	reset := false
	for {
		n, _, err := unix.Recvfrom(fd, nil, unix.MSG_PEEK|unix.MSG_TRUNC)
		if err == unix.EINTR || err == unix.ECONNRESET && !reset {
			reset = reset || err == unix.ECONNRESET
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		buf := make([]byte, n)
		n, oobn, flags, _, err := unix.Recvmsg(fd, buf, oob, unix.MSG_CMSG_CLOEXEC)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		fds, err := scm.Rights(oob[:oobn])
		if err == nil && flags&unix.MSG_CTRUNC != 0 {
			err = fmt.Errorf("more than %d fds with one message", maxFiles)
		}
		return buf[:n], fds, err
	}
}

func recvMessage(fd int) (*Message, error) {
	data, err := Recv(fd)
	if err != nil {
		return nil, fmt.Errorf("reading config from parent: %w", err)
	}
	if len(data) == 0 {
		return nil, fmt.Errorf("parent went away before sending the config")
	}
	var m Message
	if err := m.UnmarshalBinary(data); err != nil {
		return nil, fmt.Errorf("decoding config from parent: %w", err)
	}
	if m.Config != nil && !inRange(m.Detached, len(m.Config.Mounts)) {
		return nil, fmt.Errorf("config from parent: detached mounts %v past its %d mounts", m.Detached, len(m.Config.Mounts))
	}
	return &m, nil
}

// SendDetached sends init the mounts made of those Message.Detached
// names, by index in Config.Mounts (none: init mounts them all).
func SendDetached(fd int, made map[int]*os.File) error {
	var w pack.Writer
	var fds []int
	w.Uint(uint64(len(made)))
	for i, f := range made {
		w.Uint(uint64(i))
		fds = append(fds, int(f.Fd()))
	}
	if err := Send(fd, w.Bytes(), fds...); err != nil {
		return fmt.Errorf("sending init %d mounts: %w", len(fds), err)
	}
	return nil
}

// recvDetached reads SendDetached's record: the mounts made, by index,
// each one of allowed (Message.Detached).
func recvDetached(fd int, allowed []int) (map[int]*os.File, error) {
	data, fds, err := recvFiles(fd)
	if err != nil {
		return nil, fmt.Errorf("reading the mounts made from parent: %w", err)
	}
	r := pack.NewReader(data)
	indexes := make([]int, r.Uint())
	for k := range indexes {
		indexes[k] = int(r.Uint())
	}
	made := make(map[int]*os.File, len(fds))
	for k, fd := range fds {
		if k < len(indexes) {
			made[indexes[k]] = os.NewFile(uintptr(fd), "detached mount")
		}
	}
	ok := r.Err() == nil && len(indexes) == len(fds) && len(made) == len(fds)
	for i := range made {
		ok = ok && slices.Contains(allowed, i)
	}
	if !ok {
		closeAll(fds)
		return nil, fmt.Errorf("mounts made from parent: %d fds for mounts %v, not each one of %v once (%v)", len(fds), indexes, allowed, r.Err())
	}
	return made, nil
}
