package oompolicy

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/daemonapi"
	"github.com/lkc-containers/lkc/internal/pollwait"
	"github.com/lkc-containers/lkc/internal/registry"
	"github.com/lkc-containers/lkc/internal/service"
)

// tick is how often the loop looks at held containers, pending arms and
// running handlers when no event comes: it bounds how late a deadline or a
// retry acts.
const tick = 50 * time.Millisecond

// Service is the OOM policy service. One goroutine waits on one epoll set
// holding every armed container's eventfd; nothing runs per container.
type Service struct {
	mu   sync.Mutex
	deps *service.Deps
	epfd int
	// wait parks the loop in Go's poller until the set has an event:
	// a blocking epoll_wait each tick kept sysmon awake (pollwait).
	wait  *pollwait.Waiter
	wake  int // an eventfd that makes the loop reconcile at once (adopt)
	byKey map[string]*armed
	byFd  map[int32]*armed
	// failed are the containers whose arming failed for good (a bad
	// annotation in a record written by hand, no memory cgroup): logged
	// once, not retried each round.
	failed map[string]bool
	// groupsAt is when the groups' definitions were read last.
	groupsAt time.Time
	// stopped is set by Stop: the daemon is going, so no container is
	// armed again (a round after Stop would turn the OOM killer back off
	// with no daemon left to act).
	stopped bool
}

// New returns the service; Start starts it.
func New() *Service {
	return &Service{byKey: map[string]*armed{}, byFd: map[int32]*armed{}, failed: map[string]bool{}}
}

// Name implements service.Service.
func (*Service) Name() string { return "oom" }

// Start makes the epoll set and starts the loop, whose first round arms
// every served container with a policy and reads at once whether it is
// held (an OOM during the gap between workers sent its event to nobody).
func (s *Service) Start(ctx context.Context, d *service.Deps) error {
	s.deps = d
	var err error
	if s.epfd, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		return fmt.Errorf("oom: epoll: %w", err)
	}
	if s.wake, err = unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK); err != nil {
		unix.Close(s.epfd)
		return fmt.Errorf("oom: eventfd: %w", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(s.wake)}
	if err := unix.EpollCtl(s.epfd, unix.EPOLL_CTL_ADD, s.wake, &ev); err != nil {
		unix.Close(s.wake)
		unix.Close(s.epfd)
		return fmt.Errorf("oom: epoll: %w", err)
	}
	if s.wait, err = pollwait.New(s.epfd, "oom epoll set"); err != nil {
		unix.Close(s.wake)
		unix.Close(s.epfd)
		return fmt.Errorf("oom: %w", err)
	}
	s.reconcile()
	go s.loop(ctx)
	return nil
}

// Adopt implements service.Service: it checks the policy and takes the
// container on; arming waits for its cgroup (adopt comes before create
// makes it), which the loop finds from the container's record.
func (s *Service) Adopt(e *registry.Entry, reply *daemonapi.AdoptReply) error {
	if e.Features.OOMPolicy == "" {
		return nil
	}
	if _, err := Parse(e.Features.OOMPolicy); err != nil {
		return err
	}
	reply.Features.OOMPolicy = e.Features.OOMPolicy
	s.poke()
	return nil
}

// Release implements service.Service: the kernel becomes the container's
// policy again.
func (s *Service) Release(e *registry.Entry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a := s.byKey[keyOf(e)]; a != nil {
		s.disarm(a, true)
	}
}

func keyOf(e *registry.Entry) string { return e.Root + "\x00" + e.ID }

func (s *Service) poke() {
	var one = [8]byte{1}
	unix.Write(s.wake, one[:])
}

// loop waits for OOM notifications and, each tick, moves the held
// containers on (retries, deadlines, handlers).
func (s *Service) loop(ctx context.Context) {
	evs := make([]unix.EpollEvent, 64)
	lastReconcile := time.Now()
	for ctx.Err() == nil {
		n, err := s.waitEvents(evs)
		if err != nil {
			s.deps.Logf("oom: epoll: %v", err)
			time.Sleep(tick)
			continue
		}
		s.mu.Lock()
		for _, ev := range evs[:max(n, 0)] {
			if int(ev.Fd) == s.wake {
				drain(s.wake)
				s.reconcileLocked()
				lastReconcile = time.Now()
			} else if a := s.byFd[ev.Fd]; a != nil {
				s.wokeBy(a, ev)
				s.check(a, true)
			}
		}
		for _, a := range s.byKey {
			if a.efd >= 0 && (!a.heldSince.IsZero() || a.handler != nil || a.dump != nil || a.limitBack != 0) {
				s.check(a, false)
			}
		}
		if time.Since(lastReconcile) >= 4*tick {
			s.reconcileLocked()
			lastReconcile = time.Now()
		}
		s.mu.Unlock()
	}
	s.stop()
}

// waitEvents waits up to a tick for events of the set; none is a tick.
func (s *Service) waitEvents(evs []unix.EpollEvent) (int, error) {
	var n int
	var werr error
	err := s.wait.Wait(time.Now().Add(tick), func() bool {
		n, werr = unix.EpollWait(s.epfd, evs, 0)
		return n > 0 || (werr != nil && werr != unix.EINTR)
	})
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return 0, nil
	}
	return max(n, 0), errors.Join(err, werr)
}

// wokeBy takes in an event on one of a container's fds: the eventfd or
// inotify fd is drained (a write to memory.max moves memory.high with
// it); a PSI trigger that fired marks the stall (a
// trigger is read by polling it, and the fd of a removed cgroup polls
// EPOLLERR for ever: it is closed).
func (s *Service) wokeBy(a *armed, ev unix.EpollEvent) {
	switch {
	case int(ev.Fd) == a.psi && ev.Events&(unix.EPOLLERR|unix.EPOLLHUP) != 0:
		s.closeFd(&a.psi)
	case int(ev.Fd) == a.psi:
		a.stallAt, a.by = time.Now(), "psi"
	case a.v2:
		a.by = "memory.events"
		if readInotify(int(ev.Fd), a.maxWd) {
			s.followLimit(a)
		}
	default:
		drain(int(ev.Fd))
		a.by = "memory.oom_control"
	}
}

// drain empties an eventfd (8 bytes).
func drain(fd int) {
	var b [4096]byte
	unix.Read(fd, b[:])
}

func (s *Service) reconcile() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reconcileLocked()
}

// reconcileLocked arms the served containers with a policy not armed yet
// (those whose cgroup exists) and forgets those no longer served.
func (s *Service) reconcileLocked() {
	if s.stopped {
		return
	}
	served := map[string]bool{}
	for _, e := range s.deps.Registry.Entries() {
		if e.Features.OOMPolicy == "" {
			continue
		}
		k := keyOf(e)
		served[k] = true
		if a := s.byKey[k]; (a != nil && a.efd >= 0) || s.failed[k] {
			continue
		}
		a, err := s.arm(e)
		if err != nil {
			s.failed[k] = true
			s.deps.Logf("oom: container %s: %v", e.ID, err)
		}
		if a != nil {
			a.by = "start"
			s.resumeDump(a)
			s.check(a, true) // held already: its event went to no one
		}
	}
	if time.Since(s.groupsAt) >= groupsEvery {
		s.reconcileGroups(served)
		s.groupsAt = time.Now()
	} else {
		for k, a := range s.byKey {
			served[k] = served[k] || a.group != ""
		}
	}
	for k, a := range s.byKey {
		if !served[k] {
			s.disarm(a, true)
		}
	}
	for k := range s.failed {
		if !served[k] && !strings.HasPrefix(k, "groups") {
			delete(s.failed, k)
		}
	}
}

// Stop is `lkc daemon stop`: the kernel's OOM killer comes back on in
// every armed container, so that none waits for a daemon that is gone. A
// checkpoint's dump in flight runs on, not waited for: it ends with the
// container stopped, or thawed by its own shell (dumpShell).
func (s *Service) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopped = true
	for _, a := range s.byKey {
		s.disarm(a, true)
	}
}

// stop ends the loop with the worker. When another worker serves now (an
// upgrade) it armed the containers itself; otherwise the kernel's OOM
// killer comes back on, as at Stop.
func (s *Service) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	successor := otherWorker(s.deps.Dir)
	for _, a := range s.byKey {
		s.disarm(a, !successor)
	}
	s.wait.Close()
	unix.Close(s.wake)
	unix.Close(s.epfd)
}

// otherWorker says whether worker.pid names a live process other than
// this one.
func otherWorker(dir string) bool {
	b, err := os.ReadFile(filepath.Join(dir, "worker.pid"))
	if err != nil {
		return false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid == os.Getpid() {
		return false
	}
	return unix.Kill(pid, 0) == nil || errors.Is(unix.Kill(pid, 0), unix.EPERM)
}
