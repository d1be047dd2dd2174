// Package seccompagent is lkc's agent for the runtime spec's seccomp user
// notifications (linux.seccomp.listenerPath): it accepts the notify fds
// runtimes send to <dir>/seccomp.sock and answers the sysinfo(2) calls of
// the containers behind them with the container's own values, so programs
// that size themselves from sysinfo (busybox free and uptime) see the
// container's machine. It is a service of lkc daemon; what a container's
// values are is the Resolver's business, where its fds are kept across a
// worker's death is the Store's (docs/daemon.md).
package seccompagent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/pollwait"
)

// SocketName is the agent's socket in its directory.
const SocketName = "seccomp.sock"

// DieEnv, set to the path of a file in the agent's environment, makes the
// process SIGKILL itself right after recording a received notification in
// the journal, if it can remove that file: the crash the in-flight tests
// need at an exact moment, once, even when a successor (a daemon's next
// worker) inherits the environment.
const DieEnv = "LKC_TEST_SECCOMPAGENT_DIE"

// Resolver knows the containers behind listeners.
type Resolver interface {
	// Bind names the container that loaded a new listener's filter, from
	// the runtime's message. The name must be stable across worker
	// restarts, contain no '/', and is part of the listener's Store key.
	Bind(m Message) (string, error)
	// Sysinfo fills the container's view of sysinfo(2). An error lets the
	// kernel answer (the host's values).
	Sysinfo(name string, out *unix.Sysinfo_t) error
}

// Store keeps fds alive while no agent runs (the daemon's holder).
type Store interface {
	Put(key string, f *os.File) error
	Drop(key string) error
}

// Config is what an agent is started with.
type Config struct {
	// Dir holds the socket (mode 0600, replaced if stale).
	Dir      string
	Resolver Resolver
	Store    Store
	// Held are the fds the Store had at start (a predecessor's): keys
	// "journal" and "seccomp/<name>/<slot>"; other keys are ignored.
	// The agent owns the ones it uses.
	Held map[string]*os.File
	// NoSyncWakeUp leaves SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP off the
	// listeners. With it on, the kernel wakes the agent and then the caller
	// on the CPU of the other: measured, a round trip between two threads
	// of one process nearly halves, and between a container and the agent
	// the median stays and the tail shortens (docs/daemon.md).
	NoSyncWakeUp bool
	// Logf reports what the agent cannot report otherwise (nil: nothing).
	Logf func(format string, args ...any)
}

// Agent serves every listener from one goroutine and one epoll set.
type Agent struct {
	cfg       Config
	sock, ep  int
	wake      int
	jr        *journal
	listeners map[int]*listener
	conns     map[int]*pending
	dieMarker string
}

// listener is one filter's notify fd.
type listener struct {
	f    *os.File
	fd   int
	name string
	slot int
}

func (l *listener) key() string { return "seccomp/" + l.name + "/" + strconv.Itoa(l.slot) }

// New starts an agent: it maps the journal, takes the held listeners,
// answers what a predecessor left in flight, and listens.
func New(cfg Config) (_ *Agent, err error) {
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	a := &Agent{cfg: cfg, sock: -1, ep: -1, wake: -1, listeners: map[int]*listener{},
		conns: map[int]*pending{}, dieMarker: os.Getenv(DieEnv)}
	defer func() {
		if err != nil {
			a.Close()
		}
	}()
	if a.ep, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		return nil, fmt.Errorf("seccomp agent epoll: %w", err)
	}
	if a.wake, err = unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK); err != nil {
		return nil, fmt.Errorf("seccomp agent eventfd: %w", err)
	}
	if err := a.watch(a.wake); err != nil {
		return nil, err
	}
	if err := a.openJournal(); err != nil {
		return nil, err
	}
	a.adoptHeld()
	if err := a.listen(); err != nil {
		return nil, err
	}
	return a, nil
}

func (a *Agent) openJournal() error {
	held := a.cfg.Held["journal"]
	jr, err := openJournal(held)
	if err != nil {
		return err
	}
	a.jr = jr
	if held == nil {
		if err := a.cfg.Store.Put("journal", jr.f); err != nil {
			return fmt.Errorf("storing the seccomp journal: %w", err)
		}
	}
	return nil
}

// adoptHeld serves the listeners a predecessor stored and answers the
// notifications its journal left in flight.
func (a *Agent) adoptHeld() {
	for key, f := range a.cfg.Held {
		name, slot, ok := parseKey(key)
		if !ok {
			continue
		}
		l := &listener{f: f, fd: int(f.Fd()), name: name, slot: slot}
		if err := a.watch(l.fd); err != nil {
			a.cfg.Logf("seccomp agent: %s: %v", key, err)
			continue
		}
		a.jr.used[slot] = true
		a.listeners[l.fd] = l
		if n, ok := a.jr.inFlight(slot); ok {
			a.answer(l, &n)
			a.jr.clear(slot)
		}
	}
}

// parseKey splits "seccomp/<name>/<slot>".
func parseKey(key string) (string, int, bool) {
	rest, ok := strings.CutPrefix(key, "seccomp/")
	if !ok {
		return "", 0, false
	}
	i := strings.LastIndexByte(rest, '/')
	if i <= 0 {
		return "", 0, false
	}
	slot, err := strconv.Atoi(rest[i+1:])
	if err != nil || slot < 0 || slot >= maxListeners {
		return "", 0, false
	}
	return rest[:i], slot, true
}

// SocketKey is the holder's key for the socket's listener: kept there,
// a runtime that connects while no worker runs (a worker killed, an
// upgrade's hand-over) waits in its backlog instead of being refused.
const SocketKey = "seccomp.sock"

// listen serves the listener the holder kept, or binds the socket and
// gives the holder its listener; chmod happens before listen, so nobody
// can connect while it is more open than 0600.
func (a *Agent) listen() error {
	if f := a.cfg.Held[SocketKey]; f != nil {
		defer f.Close()
		fd, err := unix.FcntlInt(f.Fd(), unix.F_DUPFD_CLOEXEC, 0)
		if err == nil {
			err = unix.SetNonblock(fd, true)
		}
		if err != nil {
			return fmt.Errorf("the held %s: %w", SocketName, err)
		}
		a.sock = fd
		return a.watch(fd)
	}
	if err := a.bind(); err != nil {
		return err
	}
	dup, err := unix.FcntlInt(uintptr(a.sock), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("dup of %s: %w", SocketName, err)
	}
	f := os.NewFile(uintptr(dup), SocketName)
	defer f.Close()
	if err := a.cfg.Store.Put(SocketKey, f); err != nil {
		return fmt.Errorf("storing %s: %w", SocketName, err)
	}
	return a.watch(a.sock)
}

// bind makes a new listening socket at <dir>/seccomp.sock.
func (a *Agent) bind() error {
	path := filepath.Join(a.cfg.Dir, SocketName)
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing stale %s: %w", path, err)
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return fmt.Errorf("socket for %s: %w", path, err)
	}
	a.sock = fd
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		return fmt.Errorf("bind %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		return err
	}
	if err := unix.Listen(fd, 128); err != nil {
		return fmt.Errorf("listen %s: %w", path, err)
	}
	return nil
}

func (a *Agent) watch(fd int) error {
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}
	if err := unix.EpollCtl(a.ep, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		return fmt.Errorf("seccomp agent epoll add: %w", err)
	}
	return nil
}

// Listeners is how many notify fds the agent serves.
func (a *Agent) Listeners() int { return len(a.listeners) }

// Serve answers until ctx is done. Only one Serve runs at a time; it
// owns the agent's state.
func (a *Agent) Serve(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() {
		unix.Write(a.wake, []byte{1, 0, 0, 0, 0, 0, 0, 0})
	})
	defer stop()
	wait, err := pollwait.New(a.ep, "seccomp agent epoll set")
	if err != nil {
		return err
	}
	defer wait.Close()
	events := make([]unix.EpollEvent, 64)
	for {
		var n int
		werr := wait.Wait(time.Time{}, func() bool {
			n, err = unix.EpollWait(a.ep, events, 0)
			return err != nil || n > 0
		})
		if err == unix.EINTR {
			continue
		}
		if err = errors.Join(werr, err); err != nil {
			return fmt.Errorf("seccomp agent epoll: %w", err)
		}
		for _, ev := range events[:n] {
			if int(ev.Fd) == a.wake {
				return ctx.Err()
			}
			a.event(int(ev.Fd), ev.Events)
		}
	}
}

func (a *Agent) event(fd int, events uint32) {
	switch {
	case fd == a.sock:
		a.accept()
	case a.conns[fd] != nil:
		a.received(fd)
	case a.listeners[fd] != nil:
		l := a.listeners[fd]
		if events&unix.EPOLLIN != 0 {
			a.notified(l)
		}
		if events&(unix.EPOLLHUP|unix.EPOLLERR) != 0 {
			a.drop(l)
		}
	}
}

func (a *Agent) accept() {
	fd, _, err := unix.Accept4(a.sock, unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK)
	if err != nil {
		return
	}
	if err := a.watch(fd); err != nil {
		unix.Close(fd)
		return
	}
	a.conns[fd] = &pending{}
}

// received takes a runtime's message off conn and serves its listener.
func (a *Agent) received(conn int) {
	p := a.conns[conn]
	done, err := p.readMore(conn)
	if err == nil && !done {
		return // the rest of the message is still to come
	}
	delete(a.conns, conn)
	unix.Close(conn)
	m, fd := Message{}, -1
	if err == nil {
		m, fd, err = p.message()
	}
	p.close()
	if errors.Is(err, errHungUp) {
		return
	}
	if err != nil {
		a.cfg.Logf("seccomp agent: %v", err)
		return
	}
	if err := a.add(m, fd); err != nil {
		unix.Close(fd)
		a.cfg.Logf("seccomp agent: container %s (pid %d): %v", m.ID, m.Pid, err)
	}
}

// add serves notify fd for the container m names and hands it to the
// Store under its key.
func (a *Agent) add(m Message, fd int) error {
	name, err := a.cfg.Resolver.Bind(m)
	if err != nil {
		return err
	}
	if name == "" || strings.ContainsRune(name, '/') {
		return fmt.Errorf("resolver named the listener %q", name)
	}
	slot, ok := a.jr.take()
	if !ok {
		return fmt.Errorf("%d listeners already served", maxListeners)
	}
	l := &listener{f: os.NewFile(uintptr(fd), "seccomp-listener"), fd: fd, name: name, slot: slot}
	if !a.cfg.NoSyncWakeUp {
		if err := setSyncWakeUp(fd); err != nil {
			// EINVAL: a kernel before 6.6, which has no flags to set.
			a.cfg.NoSyncWakeUp = true
			a.cfg.Logf("seccomp agent: SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP: %v; not set from now on", err)
		}
	}
	if err := a.cfg.Store.Put(l.key(), l.f); err != nil {
		a.jr.free(slot)
		return fmt.Errorf("storing %s: %w", l.key(), err)
	}
	if err := a.watch(fd); err != nil {
		a.cfg.Store.Drop(l.key())
		a.jr.free(slot)
		return err
	}
	a.listeners[fd] = l
	return nil
}

// drop forgets a listener whose filter has no task left.
func (a *Agent) drop(l *listener) {
	unix.EpollCtl(a.ep, unix.EPOLL_CTL_DEL, l.fd, nil)
	delete(a.listeners, l.fd)
	if err := a.cfg.Store.Drop(l.key()); err != nil {
		a.cfg.Logf("seccomp agent: dropping %s: %v", l.key(), err)
	}
	a.jr.free(l.slot)
	l.f.Close()
}

// Close stops listening and closes the agent's fds; the Store keeps its
// own copies, so the listeners' filters keep working for a successor. The
// socket's path stays: a successor may already have bound its own there,
// and replaces a stale one when it starts.
func (a *Agent) Close() {
	if a.sock >= 0 {
		unix.Close(a.sock)
	}
	for fd, p := range a.conns {
		unix.Close(fd)
		p.close()
	}
	for _, l := range a.listeners {
		l.f.Close()
	}
	if a.jr != nil {
		a.jr.close()
	}
	for _, fd := range []int{a.ep, a.wake} {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
}
