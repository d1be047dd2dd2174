package fdstore

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// Client is the worker's side of the holder: it deposits fds and keeps
// its own copy of each, so that it can deposit them all again in a new
// holder when the holder dies.
type Client struct {
	mu   sync.Mutex
	c    *conn
	held map[string]*os.File // the worker's copies, by key
	pid  int                 // the holder's pid, once WatchHolder knows it
}

// HolderPid is the pid of the current holder (0 before WatchHolder runs).
func (cl *Client) HolderPid() int {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	return cl.pid
}

// NewClient talks to the holder over the socketpair end f.
func NewClient(f *os.File) (*Client, error) {
	c, err := newConn(f)
	if err != nil {
		return nil, err
	}
	f.Close()
	return &Client{c: c, held: map[string]*os.File{}}, nil
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
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if _, err := cl.c.call("put "+key, cp); err != nil {
		cp.Close()
		return err
	}
	if old := cl.held[key]; old != nil {
		old.Close()
	}
	cl.held[key] = cp
	return nil
}

// Drop makes the holder close its fd under key.
func (cl *Client) Drop(key string) error {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if _, err := cl.c.call("drop " + key); err != nil {
		return err
	}
	if f := cl.held[key]; f != nil {
		f.Close()
		delete(cl.held, key)
	}
	return nil
}

// Take returns a copy of every fd the holder keeps, by key; the caller
// owns the files. A worker calls it at start.
func (cl *Client) Take() (map[string]*os.File, error) {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if err := cl.c.send("take"); err != nil {
		return nil, fmt.Errorf("take: %w", err)
	}
	out := map[string]*os.File{}
	for {
		msg, files, err := cl.c.recv()
		if err == nil && msg == "end" {
			return out, cl.keep(out)
		}
		keys, ok := strings.CutPrefix(msg, "fds\n")
		if err != nil || !ok || len(strings.Split(keys, "\n")) != len(files) {
			closeAll(files)
			closeMap(out)
			return nil, fmt.Errorf("take: bad answer %.40q from the holder (%v)", msg, err)
		}
		for i, k := range strings.Split(keys, "\n") {
			out[k] = files[i]
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
		if old := cl.held[k]; old != nil {
			old.Close()
		}
		cl.held[k] = cp
	}
	return nil
}

// Keys lists the keys of the fds the holder keeps.
func (cl *Client) Keys() ([]string, error) {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	ans, err := cl.c.call("keys")
	return strings.Fields(ans), err
}

// Ready tells the holder the worker serves.
func (cl *Client) Ready() error {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	_, err := cl.c.call("ready")
	return err
}

// Upgrade asks the holder to re-execute exe; it returns the pid of exe's
// worker once that worker serves.
func (cl *Client) Upgrade(exe string) (int, error) {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	ans, err := cl.c.call("upgrade " + exe)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(ans)
}

// Stop tells the holder to exit with the worker instead of restarting it;
// it returns the holder's pid.
func (cl *Client) Stop() (int, error) {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	ans, err := cl.c.call("stop")
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(ans)
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
	var errs []error
	for k, fd := range cl.held {
		if _, err := c.call("put "+k, fd); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func dup(f *os.File) (*os.File, error) {
	sc, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	var nfd int
	var derr error
	if err := sc.Control(func(fd uintptr) {
		nfd, derr = dupCloexec(int(fd))
	}); err != nil {
		return nil, err
	}
	if derr != nil {
		return nil, derr
	}
	return os.NewFile(uintptr(nfd), f.Name()), nil
}

func dupCloexec(fd int) (int, error) {
	return unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
}

func closeMap(m map[string]*os.File) {
	for _, f := range m {
		f.Close()
	}
}
