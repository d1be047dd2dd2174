package fuse

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// conn is a server's own view of a /dev/fuse fd: a non-blocking duplicate,
// an eventfd that stops readers, and per reader an epoll set of its own
// (a waiter) watching both.
//
// Not Go's poller: a process that opens a file on its own FUSE mount (a
// test, an in-process reader) makes Go register that file in the poller's
// epoll set, and epoll_ctl then waits for the server's answer to FUSE_POLL
// while holding the set's mutex; a server waiting in that same set never
// sees the request (seen here: epoll_ctl in fuse_file_poll, epoll_wait in
// ep_send_events, both stuck). A separate set cannot deadlock that way.
// Once the kernel no longer asks FUSE_POLL, the poller is used after all
// (poller.go).
type conn struct {
	fd, stopfd int
	// polled is a duplicate of fd in Go's poller, set by usePoller.
	polled   atomic.Pointer[os.File]
	pollOnce sync.Once
	stopped  atomic.Bool
}

func newConn(f *os.File) (*conn, error) {
	c := &conn{fd: -1, stopfd: -1}
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("fuse fd: %w", err)
	}
	cerr := rc.Control(func(fd uintptr) {
		c.fd, err = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0)
	})
	if err = errors.Join(cerr, err); err != nil {
		return nil, fmt.Errorf("dup fuse fd: %w", err)
	}
	if err := c.setup(); err != nil {
		c.close()
		return nil, err
	}
	return c, nil
}

// setup makes the duplicate non-blocking (a flag of the shared open file
// description: os.File.Fd, as os/exec calls it for ExtraFiles, clears it)
// and makes the stop eventfd.
func (c *conn) setup() error {
	if err := unix.SetNonblock(c.fd, true); err != nil {
		return fmt.Errorf("fuse fd O_NONBLOCK: %w", err)
	}
	var err error
	if c.stopfd, err = unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK); err != nil {
		return fmt.Errorf("eventfd: %w", err)
	}
	return nil
}

// waiter is one reader's epoll set. Only the reader holding the turn
// (turn.go) waits in its set, so one thread at a time is blocked here:
// when every reader waited, their threads held the process's Ps in the
// system call, which the runtime's sysmon then kept taking back, waking
// every 20 µs (a third of the server's CPU under load). The fd is in it
// with EPOLLEXCLUSIVE, so a request would wake one waiting reader, not
// all. The stop eventfd is in it plainly, so stop wakes any.
type waiter struct {
	epfd   int
	events [2]unix.EpollEvent
}

func (c *conn) newWaiter() (*waiter, error) {
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	w := &waiter{epfd: ep}
	for _, fd := range []int{c.fd, c.stopfd} {
		ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}
		if fd == c.fd {
			ev.Events |= unix.EPOLLEXCLUSIVE
		}
		if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
			unix.Close(ep)
			return nil, fmt.Errorf("epoll_ctl add fd %d: %w", fd, err)
		}
	}
	return w, nil
}

// close closes the set once; a closed waiter's reader reads through the
// poller.
func (w *waiter) close() {
	if w.epfd >= 0 {
		unix.Close(w.epfd)
		w.epfd = -1
	}
}

// errStopped is returned by read once stop was called.
var errStopped = errors.New("fuse server stopped")

// read reads one request into buf, waiting in Go's poller once usePoller
// has run, else in w while none is queued. A reader woken for a request
// another reader took waits again; the stop eventfd stays readable, so it
// wakes every reader for good.
func (c *conn) read(w *waiter, buf []byte) (int, error) {
	if f := c.polled.Load(); f != nil {
		return readPolled(f, buf)
	}
	for {
		n, err := unix.Read(c.fd, buf)
		if err != unix.EAGAIN && err != unix.EINTR {
			return n, err
		}
		n, err = unix.EpollWait(w.epfd, w.events[:], -1)
		if err != nil && err != unix.EINTR {
			return 0, fmt.Errorf("epoll_wait: %w", err)
		}
		for _, ev := range w.events[:max(n, 0)] {
			if int(ev.Fd) == c.stopfd {
				return 0, errStopped
			}
		}
	}
}

// write writes one reply or notification.
func (c *conn) write(b []byte) error {
	for {
		_, err := unix.Write(c.fd, b)
		if err != unix.EINTR {
			return err
		}
	}
}

// stop wakes every reader for good, in its set or in the poller.
func (c *conn) stop() {
	c.stopped.Store(true)
	var one [8]byte
	ne.PutUint64(one[:], 1)
	unix.Write(c.stopfd, one[:])
	if f := c.polled.Load(); f != nil {
		f.SetReadDeadline(pollPast)
	}
}

// close closes the duplicates and the eventfd, never the caller's fd, so
// the connection lives on.
func (c *conn) close() {
	if f := c.polled.Load(); f != nil {
		f.Close()
	}
	for _, fd := range []int{c.fd, c.stopfd} {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
}
