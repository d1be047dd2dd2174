package fdstore

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Client is the worker's side of the holder: it deposits fds and keeps
// its own copy of each, so that it can deposit them all again in a new
// holder when the holder dies.
type Client struct {
	mu   sync.Mutex
	c    *conn
	held map[string]int // the worker's copies, by key (plain fds: see conn)
	pid  atomic.Int64   // the holder's pid, once WatchHolder knows it (read without mu: calls hold mu for long)
	// swapped is closed when Redeposit switches to a new holder.
	swapped chan struct{}
}

// swapWait bounds how long a call on a dead holder's connection waits
// for the worker to start the next holder.
const swapWait = 5 * time.Second

// do runs f on the holder connection under cl.mu. When the holder turns
// out to be dead, it waits for the next one (WatchHolder starts it) and
// runs f once more there.
func (cl *Client) do(f func(c *conn) error) error {
	for try := 0; ; try++ {
		cl.mu.Lock()
		c, swapped := cl.c, cl.swapped
		err := f(c)
		cl.mu.Unlock()
		if err == nil || try > 0 || !broken(err) {
			return err
		}
		select {
		case <-swapped:
		case <-time.After(swapWait):
			return err
		}
	}
}

// HolderPid is the pid of the current holder (0 before WatchHolder runs).
func (cl *Client) HolderPid() int { return int(cl.pid.Load()) }

// NewClient talks to the holder over the socketpair end f.
func NewClient(f *os.File) (*Client, error) {
	c, err := newConn(f)
	if err != nil {
		return nil, err
	}
	f.Close()
	return &Client{c: c, held: map[string]int{}, swapped: make(chan struct{})}, nil
}

// Put gives the holder a copy of f under key (replacing any fd it had
// under key). The caller keeps f.
func (cl *Client) Put(key string, f *os.File) error {
	if err := CheckKey(key); err != nil {
		return err
	}
	cp, err := dup(f)
	if err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	err = cl.do(func(c *conn) error {
		if _, err := c.call("put "+key, cp); err != nil {
			return err
		}
		if old, ok := cl.held[key]; ok {
			unix.Close(old)
		}
		cl.held[key] = cp
		return nil
	})
	if err != nil {
		unix.Close(cp)
	}
	return err
}

// Drop makes the holder close its fd under key.
func (cl *Client) Drop(key string) error {
	return cl.do(func(c *conn) error {
		if _, err := c.call("drop " + key); err != nil {
			return err
		}
		if fd, ok := cl.held[key]; ok {
			unix.Close(fd)
			delete(cl.held, key)
		}
		return nil
	})
}

// Take returns a copy of every fd the holder keeps, by key; the caller
// owns the files. A worker calls it at start.
func (cl *Client) Take() (map[string]*os.File, error) {
	var out map[string]*os.File
	err := cl.do(func(c *conn) error {
		var err error
		out, err = cl.take(c)
		return err
	})
	return out, err
}

func (cl *Client) take(c *conn) (map[string]*os.File, error) {
	if err := c.send("take"); err != nil {
		return nil, fmt.Errorf("take: %w", err)
	}
	out := map[string]*os.File{}
	for {
		msg, fds, err := c.recv()
		if err == nil && msg == "end" {
			return out, cl.keep(out)
		}
		keys, ok := strings.CutPrefix(msg, "fds\n")
		if err != nil || !ok || len(strings.Split(keys, "\n")) != len(fds) {
			closeAll(fds)
			closeMap(out)
			if err != nil {
				return nil, fmt.Errorf("take: %w", err)
			}
			return nil, fmt.Errorf("take: bad answer %.40q from the holder", msg)
		}
		for i, k := range strings.Split(keys, "\n") {
			out[k] = os.NewFile(uintptr(fds[i]), k)
		}
	}
}

// keep records copies of taken fds as the worker's own.
func (cl *Client) keep(taken map[string]*os.File) error {
	for k, f := range taken {
		cp, err := dup(f)
		if err != nil {
			return fmt.Errorf("take %s: %w", k, err)
		}
		if old, ok := cl.held[k]; ok {
			unix.Close(old)
		}
		cl.held[k] = cp
	}
	return nil
}

// Keys lists the keys of the fds the holder keeps.
func (cl *Client) Keys() ([]string, error) {
	ans, err := cl.simple("keys")
	return strings.Fields(ans), err
}

// Ready tells the holder the worker serves.
func (cl *Client) Ready() error {
	_, err := cl.simple("ready")
	return err
}

// Upgrade asks the holder to re-execute exe; it returns the pid of exe's
// worker once that worker serves.
func (cl *Client) Upgrade(exe string) (int, error) {
	ans, err := cl.simple("upgrade " + exe)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(ans)
}

// Stop tells the holder to exit with the worker instead of restarting it;
// it returns the holder's pid.
func (cl *Client) Stop() (int, error) {
	ans, err := cl.simple("stop")
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(ans)
}

// Stopping says whether the holder ends with this worker (a stop, its
// SIGTERM, its run directory gone) rather than restarting it.
func (cl *Client) Stopping() (bool, error) {
	ans, err := cl.simple("stopping")
	if err != nil {
		return false, err
	}
	return strconv.ParseBool(ans)
}

// simple runs a request without fds.
func (cl *Client) simple(msg string) (string, error) {
	var ans string
	err := cl.do(func(c *conn) error {
		var err error
		ans, err = c.call(msg)
		return err
	})
	return ans, err
}

// Redeposit switches to a new holder (its socketpair end f) and gives it
// every fd the worker keeps.
func (cl *Client) Redeposit(f *os.File) error {
	c, err := newConn(f)
	if err != nil {
		return err
	}
	f.Close()
	cl.mu.Lock()
	defer cl.mu.Unlock()
	cl.c.c.Close()
	cl.c = c
	defer func() {
		close(cl.swapped)
		cl.swapped = make(chan struct{})
	}()
	var errs []error
	for k, fd := range cl.held {
		if _, err := c.call("put "+k, fd); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// dup returns a close-on-exec duplicate of f's fd.
func dup(f *os.File) (int, error) {
	sc, err := f.SyscallConn()
	if err != nil {
		return -1, err
	}
	var nfd int
	var derr error
	if err := sc.Control(func(fd uintptr) {
		nfd, derr = dupCloexec(int(fd))
	}); err != nil {
		return -1, err
	}
	return nfd, derr
}

func dupCloexec(fd int) (int, error) {
	return unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
}

func closeMap(m map[string]*os.File) {
	for _, f := range m {
		f.Close()
	}
}
