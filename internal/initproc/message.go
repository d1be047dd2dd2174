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

	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/config"
	"github.com/lkc-containers/lkc/internal/pack"
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

// Send sends msg as one message that Recv reassembles: records of
// maxRecord bytes, then a shorter one (empty if need be) that ends it.
// A message below maxRecord, every message of an ordinary start, is one
// record as before.
func Send(fd int, msg []byte) error {
	for {
		n := min(len(msg), maxRecord)
		if err := unix.Sendmsg(fd, msg[:n], nil, nil, 0); err != nil {
			return err
		}
		if n < maxRecord {
			return nil
		}
		msg = msg[n:]
	}
}

// Recv reads one whole message from a SOCK_SEQPACKET socket, however long,
// joining the records of one that Send split.
func Recv(fd int) ([]byte, error) {
	var msg []byte
	for {
		rec, err := recvRecord(fd)
		if err != nil {
			return nil, err
		}
		if msg == nil && len(rec) < maxRecord {
			return rec, nil
		}
		msg = append(msg, rec...)
		if len(rec) < maxRecord {
			return msg, nil
		}
	}
}

// recvRecord reads one record, sized first by a peek.
//
// A peer that exits with our messages unread leaves ECONNRESET on the
// socket, and the kernel reports it (once) before the records the peer sent
// first: init's last word, the error naming what failed, is still queued
// behind it. So ECONNRESET is read past once.
func recvRecord(fd int) ([]byte, error) {
	reset := false
	for {
		n, _, err := unix.Recvfrom(fd, nil, unix.MSG_PEEK|unix.MSG_TRUNC)
		if err == unix.EINTR || err == unix.ECONNRESET && !reset {
			reset = reset || err == unix.ECONNRESET
			continue
		}
		if err != nil {
			return nil, err
		}
		buf := make([]byte, n)
		n, _, err = unix.Recvfrom(fd, buf, 0)
		if err == unix.EINTR {
			continue
		}
		return buf[:n], err
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
	return &m, nil
}
