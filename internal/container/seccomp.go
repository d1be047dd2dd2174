package container

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/config"
	"github.com/lkc-containers/lkc/internal/jsonc"
)

//go:generate go run ../../cmd/lkc-codegen -codec json -out seccomp_gen.go seccompProcessState

// seccompProcessState is the runtime-spec's container process state, sent
// with the seccomp notify fd to linux.seccomp.listenerPath. It is encoded
// by field lists (jsonc), byte for byte as encoding/json would: on create's
// path, where encoding/json would first build its reflection caches.
type seccompProcessState struct {
	OCIVersion string   `json:"ociVersion"`
	Fds        []string `json:"fds"`
	Pid        int      `json:"pid"`
	Metadata   string   `json:"metadata,omitempty"`
	State      OCIState `json:"state"`
}

// seccompListener returns, when sc sends a notify fd, what gives the state
// init sends with it for the pid of the process that loads the filter;
// container is the container's state for that pid. Nil otherwise.
func seccompListener(sc *config.Seccomp, container func(pid int) OCIState) func(pid int) []byte {
	if sc == nil || !sc.NotifyUsed() {
		return nil
	}
	return func(pid int) []byte {
		s := seccompProcessState{
			OCIVersion: container(pid).OCIVersion, Fds: []string{"seccompFd"},
			Pid: pid, Metadata: sc.ListenerMetadata, State: container(pid),
		}
		data, err := jsonc.Encode(&s, fieldsseccompProcessState)
		if err != nil {
			// Strings, numbers and a time: encoding cannot fail.
			panic(fmt.Sprintf("encoding seccomp process state: %v", err))
		}
		return data
	}
}

// dialSeccomp connects to the seccomp listener for init, which cannot see
// the host path once it has pivoted.
func dialSeccomp(path string) (*os.File, error) {
	f, err := dialUnix(path)
	if err != nil {
		return nil, fmt.Errorf("connecting to seccomp listenerPath: %w", err)
	}
	return f, nil
}

// dialUnix connects a stream socket to the unix socket at path, for a
// child to inherit: by raw calls, as the caller never reads or writes it
// (the net package would register it with Go's poller, and File would
// duplicate it and undo that).
func dialUnix(path string) (*os.File, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	for {
		err = unix.Connect(fd, &unix.SockaddrUnix{Name: path})
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		unix.Close(fd)
		return nil, &os.PathError{Op: "connect", Path: path, Err: err}
	}
	return os.NewFile(uintptr(fd), path), nil
}
