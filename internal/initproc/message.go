// Package initproc is the Go side of `lkc init`, the process that becomes a
// container's init. The nsenter constructor has already put it into its
// namespaces; here it receives its config from the parent, builds the root
// filesystem, reports ready, waits to be started and execs the process.
package initproc

import (
	"encoding/json"
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/config"
)

// Env names carrying fds from the parent to init.
const (
	ConsoleEnv = "_LKC_CONSOLE" // a connection to the console socket
	FifoEnv    = "_LKC_FIFO"    // the exec fifo, open for reading
	// SeccompEnv is a connection to linux.seccomp.listenerPath, dialled by
	// the parent because the path is the host's.
	SeccompEnv = "_LKC_SECCOMP"
)

// Message is what the parent sends init after the namespaces are set up.
type Message struct {
	Config      *config.Config    `json:"config"`
	CgroupPaths map[string]string `json:"cgroupPaths"`
	PreserveFDs int               `json:"preserveFds,omitempty"`
	// Exec starts a further process in a running container: the
	// namespaces are joined already, so no rootfs work and no waiting.
	Exec bool `json:"exec,omitempty"`
	// NoNewKeyring keeps the caller's session keyring instead of a fresh one.
	NoNewKeyring bool `json:"noNewKeyring,omitempty"`
	// CreateState and StartState are the OCI state JSON the createContainer
	// and startContainer hooks read (status creating and created, init's
	// pid as the host sees it); empty when there are no such hooks.
	CreateState json.RawMessage `json:"createState,omitempty"`
	StartState  json.RawMessage `json:"startState,omitempty"`
	// SeccompState is what init sends the seccomp listener with the notify
	// fd: the container process state (pid as the host sees it).
	SeccompState json.RawMessage `json:"seccompState,omitempty"`
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

// Recv reads one whole message from a SOCK_SEQPACKET socket, however long.
func Recv(fd int) ([]byte, error) {
	for {
		n, _, err := unix.Recvfrom(fd, nil, unix.MSG_PEEK|unix.MSG_TRUNC)
		if err == unix.EINTR {
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
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("decoding config from parent: %w", err)
	}
	return &m, nil
}
