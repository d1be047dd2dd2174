package seccomp

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// SendNotify hands the notify listener fd to the seccomp agent on conn, a
// connected unix socket, as the runtime-spec says: one message whose data
// is state (the container process state JSON naming the fd "seccompFd")
// and whose SCM_RIGHTS carry fd. It closes neither.
func SendNotify(conn, fd int, state []byte) error {
	if err := unix.Sendmsg(conn, state, unix.UnixRights(fd), nil, 0); err != nil {
		return fmt.Errorf("sending the seccomp notify fd to the listener: %w", err)
	}
	return nil
}
