package nsenter

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// ErrInit marks a failure the constructor reported.
var ErrInit = errors.New("container init")

// Send sends r over the handshake socket fd. The constructor gets on with
// it while the caller does other work before Await.
func Send(fd int, r Request) error {
	if err := unix.Sendmsg(fd, r.Encode(), nil, nil, 0); err != nil {
		return fmt.Errorf("sending namespace request to init: %w", err)
	}
	return nil
}

// SendCgroups gives a constructor whose request had DeferCgroups the v1
// tasks files to move itself into; it does so before the Go runtime starts.
// A failure comes back as the constructor's error message in place of the
// next reply the caller waits for.
func SendCgroups(fd int, tasks []string) error {
	if err := unix.Sendmsg(fd, Request{Cgroups: tasks}.Encode(), nil, nil, 0); err != nil {
		return fmt.Errorf("sending cgroups to init: %w", err)
	}
	return nil
}

// Await answers the constructor after Send until it reports the pid that
// goes on into Go; see Run.
func Await(fd int, childPid int, writeMaps func(pid int) error) (int, error) {
	buf := make([]byte, 1024)
	for {
		n, err := recvRetry(fd, buf)
		if err != nil {
			return 0, fmt.Errorf("reading from init: %w", err)
		}
		if n == 0 {
			return 0, fmt.Errorf("%w: exited while entering namespaces", ErrInit)
		}
		msg := string(buf[:n])
		switch {
		case msg == "maps":
			if err := writeMaps(childPid); err != nil {
				return 0, err
			}
			if err := unix.Sendmsg(fd, []byte("ok"), nil, nil, 0); err != nil {
				return 0, fmt.Errorf("releasing init after id maps: %w", err)
			}
		case strings.HasPrefix(msg, "pid "):
			pid, err := strconv.Atoi(msg[4:])
			if err != nil {
				return 0, fmt.Errorf("%w: bad pid message %q", ErrInit, msg)
			}
			return pid, nil
		case strings.HasPrefix(msg, "error "):
			return 0, fmt.Errorf("%w: %s", ErrInit, msg[6:])
		default:
			return 0, fmt.Errorf("%w: unexpected message %q", ErrInit, msg)
		}
	}
}

func recvRetry(fd int, buf []byte) (int, error) {
	for {
		n, _, _, _, err := unix.Recvmsg(fd, buf, nil, 0)
		if err != unix.EINTR {
			return n, err
		}
	}
}
