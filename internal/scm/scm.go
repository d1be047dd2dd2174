// Package scm reads the file descriptors a unix socket message carries
// (SCM_RIGHTS), for the protocols between lkc's own processes: init's
// config, the seccomp agent's listeners, the daemon's fd holder and the
// view's clone helper.
package scm

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// Rights returns the fds of every SCM_RIGHTS message in oob (the control
// bytes a recvmsg returned), in order. The caller owns them, and closes
// them when it refuses the message.
func Rights(oob []byte) ([]int, error) {
	if len(oob) == 0 {
		return nil, nil
	}
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, fmt.Errorf("parsing a control message: %w", err)
	}
	var fds []int
	for i := range msgs {
		if f, err := unix.ParseUnixRights(&msgs[i]); err == nil {
			fds = append(fds, f...)
		}
	}
	return fds, nil
}
