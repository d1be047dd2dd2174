package container

import (
	"encoding/json"
	"fmt"
	"net"
	"os"

	"github.com/lkc-containers/lkc/internal/config"
)

// seccompProcessState is the runtime-spec's container process state, sent
// with the seccomp notify fd to linux.seccomp.listenerPath.
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
		data, err := json.Marshal(s)
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
	conn, err := net.Dial("unix", path)
	if err != nil {
		return nil, fmt.Errorf("connecting to seccomp listenerPath: %w", err)
	}
	defer conn.Close()
	f, err := conn.(*net.UnixConn).File()
	if err != nil {
		return nil, fmt.Errorf("seccomp listenerPath: %w", err)
	}
	return f, nil
}
