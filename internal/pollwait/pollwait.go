// Package pollwait lets a daemon loop wait for a descriptor in Go's
// poller rather than in a blocking system call.
//
// A goroutine blocked in a system call (an epoll_wait with a timeout, a
// recvfrom) keeps its P. With the other P idle, the runtime's sysmon then
// cannot sleep deeply: it polls every 20 µs for a millisecond, then less
// often, until it takes the P back after 10 ms. Measured on the daemon's
// worker, that is about 58 wake-ups and 1 ms of CPU each time a loop
// enters such a call, and a loop that enters it at every tick or event
// pays it every time. And when the blocked thread was the one that ran
// the poller last, no thread is left polling: every socket of the process
// (the daemon's control connections, its holder) waits up to 10 ms for
// sysmon to poll, which was most of what an adopt and a release cost. A
// goroutine parked in the poller holds no P, so sysmon sleeps as soon as
// the process is idle.
package pollwait

import (
	"fmt"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// A Waiter parks a goroutine in Go's poller until a descriptor is
// readable. One goroutine at a time may Wait.
type Waiter struct {
	f      *os.File
	rc     syscall.RawConn
	closed atomic.Bool
}

// New registers a duplicate of fd in Go's poller; fd stays the caller's.
// The duplicate shares fd's open file description, which New makes
// non-blocking: a read of fd itself then fails with EAGAIN instead of
// waiting. fd must be pollable (a socket, an epoll set, an eventfd).
func New(fd int, name string) (*Waiter, error) {
	d, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("dup %s: %w", name, err)
	}
	if err := unix.SetNonblock(d, true); err != nil {
		unix.Close(d)
		return nil, fmt.Errorf("%s: non-blocking: %w", name, err)
	}
	f := os.NewFile(uintptr(d), name)
	// A descriptor the poller refused is in blocking mode and takes no
	// deadline.
	if err := f.SetReadDeadline(time.Time{}); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s in Go's poller: %w", name, err)
	}
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return &Waiter{f: f, rc: rc}, nil
}

// Wait calls try, and again each time the descriptor is readable, until
// try returns true. It returns an error matching os.ErrDeadlineExceeded
// when deadline (zero: none) passed first, and os.ErrClosed once Close
// ran. try must not block: it reads with the descriptor non-blocking (or
// asks epoll_wait with no timeout) and returns false on EAGAIN.
func (w *Waiter) Wait(deadline time.Time, try func() bool) error {
	err := w.f.SetReadDeadline(deadline)
	if err == nil {
		err = w.rc.Read(func(uintptr) bool { return try() })
	}
	if err != nil && w.closed.Load() {
		return os.ErrClosed // the poller's own error for it is internal
	}
	return err
}

// Close removes the duplicate from the poller and closes it; a Wait in
// progress returns os.ErrClosed.
func (w *Waiter) Close() error {
	w.closed.Store(true)
	return w.f.Close()
}
