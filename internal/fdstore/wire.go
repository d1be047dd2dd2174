// Package fdstore is the daemon's holder and its client: a small process
// that keeps the kernel objects containers depend on (the /dev/fuse fd,
// seccomp listeners, the journal memfd, the control socket) open across
// the death of the worker that serves them, restarts that worker, hands
// the fds to its successor over SCM_RIGHTS, and re-executes itself on an
// upgrade without closing them. Its one reason to change is that hand-over.
//
// Holder and worker talk over a SOCK_SEQPACKET socketpair, one message a
// packet: a line "op arg" (put KEY, drop KEY, take, keys, ready, upgrade
// EXE, stop) with a put's fd as SCM_RIGHTS; answers are "ok [arg]" or
// "error MSG", and take's answer is packets "fds\nKEY..." with up to
// maxFds fds each, then "end".
package fdstore

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/scm"
)

// maxFds is SCM_MAX_FD, the kernel's limit of fds in one message.
const maxFds = 253

// maxPacket bounds one message's text (keys of a full batch fit).
const maxPacket = 64 << 10

// errClosed is a read of a connection whose other end is gone.
var errClosed = errors.New("connection closed")

// broken says whether err means the holder is gone (not that it refused).
func broken(err error) bool {
	return errors.Is(err, errClosed) || errors.Is(err, unix.EPIPE) || errors.Is(err, unix.ECONNRESET) || errors.Is(err, net.ErrClosed)
}

// conn is one end of the holder <-> worker socketpair. The fds it carries
// are plain descriptors, never *os.File: an os.File of a non-blocking fd
// (a listening socket, /dev/fuse) is added to Go's poller, whose epoll set
// then wakes the process at every connection or request made to a file it
// only keeps, never reads (the holder's fds, the worker's copies).
type conn struct{ c *net.UnixConn }

func newConn(f *os.File) (*conn, error) {
	c, err := net.FileConn(f)
	if err != nil {
		return nil, fmt.Errorf("holder connection: %w", err)
	}
	uc, ok := c.(*net.UnixConn)
	if !ok {
		c.Close()
		return nil, errors.New("holder connection: not a unix socket")
	}
	return &conn{uc}, nil
}

// send writes one message with fds as SCM_RIGHTS.
func (c *conn) send(msg string, fds ...int) error {
	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	_, _, err := c.c.WriteMsgUnix([]byte(msg), oob, nil)
	return err
}

// recv reads one message and the fds it carries (close-on-exec).
func (c *conn) recv() (string, []int, error) {
	buf := make([]byte, maxPacket)
	oob := make([]byte, unix.CmsgSpace(maxFds*4))
	n, oobn, _, _, err := c.c.ReadMsgUnix(buf, oob)
	if err != nil {
		return "", nil, err
	}
	fds, err := scm.Rights(oob[:oobn])
	if err != nil {
		return "", nil, err
	}
	if n == 0 && len(fds) == 0 {
		return "", nil, errClosed
	}
	return string(buf[:n]), fds, nil
}

// call sends a request and reads its "ok ARG" answer.
func (c *conn) call(msg string, fds ...int) (string, error) {
	if err := c.send(msg, fds...); err != nil {
		return "", fmt.Errorf("%s: sending to the holder: %w", op(msg), err)
	}
	ans, extra, err := c.recv()
	closeAll(extra)
	if err != nil {
		return "", fmt.Errorf("%s: the holder's answer: %w", op(msg), err)
	}
	return answer(op(msg), ans)
}

// answer turns "ok ARG" into ARG and "error MSG" into an error.
func answer(op, ans string) (string, error) {
	if arg, ok := strings.CutPrefix(ans, "ok"); ok {
		return strings.TrimPrefix(arg, " "), nil
	}
	if msg, ok := strings.CutPrefix(ans, "error "); ok {
		return "", fmt.Errorf("%s: %s", op, msg)
	}
	return "", fmt.Errorf("%s: unexpected answer %q from the holder", op, ans)
}

func op(msg string) string {
	o, _, _ := strings.Cut(msg, " ")
	return o
}

func closeAll(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}

// CheckKey refuses a key that cannot travel in a message line.
func CheckKey(key string) error {
	if key == "" || strings.ContainsAny(key, " \n") {
		return fmt.Errorf("fd key %q: use a non-empty key without spaces", key)
	}
	return nil
}
