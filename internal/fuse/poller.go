package fuse

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"time"

	"golang.org/x/sys/unix"
)

// Once the kernel has stopped asking FUSE_POLL on a connection, the reader
// holding the turn waits for the device in Go's poller instead of its own
// epoll set. A thread waiting in epoll_wait keeps its P; with another P
// idle, sysmon never sleeps deeply and, after each wake-up of the server,
// polls every 20 µs for a millisecond, then less often, until it takes the
// P back after 10 ms (about 60 context switches and 1 ms of CPU per burst
// of requests, measured on the daemon's worker). A goroutine parked in
// the poller holds none, so sysmon sleeps once the process is idle.
//
// The poller's epoll set is the process's; it is safe only once no
// FUSE_POLL can come. The kernel sends one when a file of the mount is
// added to an epoll set or polled, and holds the set's mutex while it
// waits for the answer; a server that could only learn of that request
// through the same set would never answer it (conn.go). After a first
// FUSE_POLL answered ENOSYS, the kernel never sends another on the
// connection (fuse_conn.no_poll), and a new server taking the connection
// over finds it so.

// pollPast is a deadline already passed: it wakes every reader waiting in
// the poller for good.
var pollPast = time.Unix(1, 0)

// usePoller registers a duplicate of the device with Go's poller for the
// reads of every reader from now on. Preconditions: FUSE_POLL can no
// longer come on the connection. A failure leaves the readers waiting in
// their own sets, as before.
func (c *conn) usePoller() error {
	var err error
	c.pollOnce.Do(func() {
		var fd int
		if fd, err = unix.FcntlInt(uintptr(c.fd), unix.F_DUPFD_CLOEXEC, 0); err != nil {
			err = fmt.Errorf("dup fuse fd: %w", err)
			return
		}
		// Non-blocking (setup): os.NewFile adds it to the poller.
		f := os.NewFile(uintptr(fd), "fuse")
		if err = f.SetReadDeadline(time.Time{}); err != nil {
			f.Close()
			err = fmt.Errorf("fuse fd in Go's poller: %w", err)
			return
		}
		c.polled.Store(f)
		if c.stopped.Load() { // stop ran before polled was set
			f.SetReadDeadline(pollPast)
		}
	})
	return err
}

// readPolled reads one request into buf, waiting in Go's poller while none
// is queued; stop ends the wait with a deadline.
func readPolled(f *os.File, buf []byte) (int, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return 0, fmt.Errorf("fuse fd: %w", err)
	}
	var n int
	var rerr error
	err = rc.Read(func(fd uintptr) bool {
		n, rerr = unix.Read(int(fd), buf)
		return rerr != unix.EAGAIN
	})
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return 0, errStopped
	}
	if err != nil {
		return 0, err
	}
	return n, rerr
}

// StopPolls has the kernel stop asking FUSE_POLL on s's connection, so
// that s's readers wait in Go's poller from then on. helper is a process
// that calls PollOnce on a regular file of s's mount: the kernel asks s,
// which answers ENOSYS, or asks nothing when it stopped before (a
// predecessor's answer). Never this process: a thread waiting for its own
// server's answer sleeps uninterruptibly once a reader took the request,
// and a SIGKILL then leaves the whole process unable to exit, its fd
// keeping the connection alive with no server (seen here, a worker killed
// mid-probe). The helper's look-ups and permission checks render nothing
// (probed). StopPolls starts helper with its stdin a pipe it closes once
// it knows the helper's pid, and waits for it.
func (s *Server) StopPolls(helper *exec.Cmd) error {
	s.probeMu.Lock()
	defer s.probeMu.Unlock()
	if s.pollsStopped.Load() {
		return nil
	}
	stdin, err := helper.StdinPipe()
	if err != nil {
		return fmt.Errorf("poll helper: %w", err)
	}
	var out bytes.Buffer
	helper.Stdout, helper.Stderr = &out, &out
	if err := helper.Start(); err != nil {
		return fmt.Errorf("starting the poll helper: %w", err)
	}
	s.prober.Store(int32(helper.Process.Pid))
	defer s.prober.Store(0)
	stdin.Close()
	if err := helper.Wait(); err != nil {
		return fmt.Errorf("poll helper: %w: %s", err, bytes.TrimSpace(out.Bytes()))
	}
	s.pollsStopped.Store(true)
	return nil
}

// PollOnce is StopPolls's helper's work: once its stdin ends, it polls
// path, a regular file of the mount, once; the default mask says the
// kernel asks the server no more.
func PollOnce(stdin io.Reader, path string) error {
	if _, err := io.Copy(io.Discard, stdin); err != nil {
		return fmt.Errorf("waiting for the server: %w", err)
	}
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for {
		if _, err = unix.Poll(fds, 0); err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return &os.PathError{Op: "poll", Path: path, Err: err}
	}
	if fds[0].Revents&(unix.POLLERR|unix.POLLNVAL) != 0 {
		return fmt.Errorf("poll %s: revents %#x, not the default mask", path, fds[0].Revents)
	}
	return nil
}

// PollsStopped reports whether s knows that the kernel no longer asks it
// FUSE_POLL (StopPolls, or a FUSE_POLL it answered).
func (s *Server) PollsStopped() bool { return s.pollsStopped.Load() }

// probed is by, or askProbe for a request of StopPolls's helper. The
// kernel names the asking thread; the helper's are under its /proc
// directory (looked at only while a helper runs).
func (s *Server) probed(r request, by asker) asker {
	p := s.prober.Load()
	if p == 0 {
		return by
	}
	if r.PID == uint32(p) || unix.Access(fmt.Sprintf("/proc/%d/task/%d", p, r.PID), unix.F_OK) == nil {
		return askProbe
	}
	return by
}
