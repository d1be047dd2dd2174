package checkpoint

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// pageServerTimeout bounds the connection to a page server: an address
// nothing answers at (a host that drops the SYN) would otherwise hold the
// operation for the kernel's two minutes of retries.
const pageServerTimeout = 30 * time.Second

// PageServerConn is lkc's connection to a page server, which CRIU takes
// over (Opts.PageServerFd, StartLazyPages): lkc connects, so that an
// address where nothing listens fails in one line naming it before
// anything is frozen or made, where CRIU would log it below an error of
// its own that misleads. lkc keeps its copy of the socket to tell, after
// CRIU failed, whether the page server went away.
type PageServerConn struct {
	Addr string // host:port
	file *os.File
}

// DialPageServer connects to the page server at host:port.
func DialPageServer(host string, port int) (*PageServerConn, error) {
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	c, err := net.DialTimeout("tcp", addr, pageServerTimeout)
	if err != nil {
		return nil, fmt.Errorf("page server %s: %s", addr, dialFailure(err))
	}
	defer c.Close()
	f, err := c.(*net.TCPConn).File()
	if err != nil {
		return nil, fmt.Errorf("page server %s: %w", addr, err)
	}
	return &PageServerConn{Addr: addr, file: f}, nil
}

// dialFailure says why a connection failed, in the words of what went
// wrong at the address.
func dialFailure(err error) string {
	var errno syscall.Errno
	switch {
	case errors.As(err, &errno) && errno == unix.ECONNREFUSED:
		return "connection refused: nothing listens there"
	case errors.As(err, &errno):
		return errno.Error()
	case os.IsTimeout(err):
		return fmt.Sprintf("no answer within %v", pageServerTimeout)
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return op.Err.Error()
	}
	return err.Error()
}

// File is the connected socket, to hand to CRIU.
func (c *PageServerConn) File() *os.File { return c.file }

// Close closes lkc's copy of the socket.
func (c *PageServerConn) Close() { c.file.Close() }

// Gone reports whether the page server closed or reset the connection:
// after CRIU failed, that is the failure's cause.
func (c *PageServerConn) Gone() bool {
	var b [1]byte
	n, _, err := unix.Recvfrom(int(c.file.Fd()), b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
	return (n == 0 && err == nil) || errors.Is(err, unix.ECONNRESET) || errors.Is(err, unix.EPIPE)
}

// explain words err, CRIU's failure, as the page server's going away when
// it went away.
func (c *PageServerConn) explain(err error) error {
	if err == nil || c == nil || !c.Gone() {
		return err
	}
	return fmt.Errorf("the page server at %s closed the connection (it exited or failed): %w", c.Addr, err)
}
