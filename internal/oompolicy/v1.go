package oompolicy

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/effective"
	"github.com/lkc-containers/lkc/internal/registry"
)

// armed is one container whose OOMs the service handles.
type armed struct {
	e         *registry.Entry
	set       Settings
	dir       string // its v1 memory cgroup
	efd       int    // the eventfd registered on memory.oom_control (-1: not armed)
	initPid   int
	initStart uint64 // init's start time, which tells it from a later process of its pid
	events    string // <root>/<id>/events.jsonl
	detected  time.Time
	// heldSince is when the current hold was seen (zero: not held);
	// stage is how far the hold went: 0 the policy acted, 1 the fallback
	// acted, 2 the kernel's OOM killer is back on.
	heldSince time.Time
	stage     int
	stageAt   time.Time
	lastTry   time.Time
	handler   *handler  // a notify handler in flight
	dump      *dump     // a checkpoint in flight
	freezer   string    // its freezer cgroup: v1 freezer, v2 the memory cgroup ("" without one)
	ino       uint64    // the memory cgroup directory's inode when armed
	v2        bool      // a cgroup v2 memory controller (v2.go)
	ownsHigh  bool      // v2: the service set memory.high (the config did not)
	highCount uint64    // v2: memory.events' high count at the last look
	highAt    time.Time // v2: when it last rose
	psi       int       // v2: the memory.pressure trigger's fd (-1: none)
	maxWd     int       // v2: the inotify watch on memory.max
	trigger   string    // v2: the trigger written there
	stallAt   time.Time // v2: when the trigger last fired
	group     string    // a resource group's policy, fallback and deadline as its definition says them ("" for a container)
	limitBack uint64    // the limit a failed checkpoint raised, to put back (0: none)
	victim    *os.File  // the pidfd of the process the policy killed last, until it has exited
	// kernelKills is v2's memory.events oom_kill count at the last look:
	// one more is the kernel's OOM killer resolving a hold at memory.max.
	kernelKills uint64
	// by is what woke the loop for the container last: memory.oom_control
	// (v1), memory.events or psi (v2), start (read at arming).
	by string
}

// held says whether the container waits for its policy: v1 held by the
// kernel, v2 at memory.high with its own memory.
func (a *armed) held() (bool, error) {
	if a.v2 {
		return heldV2(a)
	}
	return underOOM(a.dir)
}

// limitFile and usageFile name the limit and usage files.
func (a *armed) limitFile() string {
	if a.v2 {
		return "memory.max"
	}
	return "memory.limit_in_bytes"
}

func (a *armed) usageFile() string {
	if a.v2 {
		return "memory.current"
	}
	return "memory.usage_in_bytes"
}

// killerOn turns the kernel's OOM killer on (the kernel is the policy) or
// off (the service is).
func (a *armed) killerOn(on bool) error {
	if a.v2 {
		return v2Killer(a, on)
	}
	v := int64(1)
	if on {
		v = 0
	}
	return writeInt(a.dir, "memory.oom_control", v)
}

// arm turns the kernel's OOM killer off for a container and registers an
// eventfd for its OOM notifications. A container without a record or
// cgroup yet returns nil, nil: a later round arms it.
func (s *Service) arm(e *registry.Entry) (*armed, error) {
	st, err := e.LoadState()
	// create records init's pid after the cgroups: armed before that, the
	// policy would not know which process to spare.
	if err != nil || st.Config == nil || st.CgroupPaths == nil || st.InitPid == 0 {
		return nil, nil
	}
	set, err := Resolve(s.deps.Conf, st.Config.Annotations)
	if err != nil {
		return nil, err
	}
	dir, v2, ok, err := effective.Cgroups(st.CgroupPaths).Dir("memory")
	if err != nil || !ok {
		return nil, err
	}
	a := &armed{e: e, set: set, dir: dir, efd: -1, psi: -1, initPid: st.InitPid, initStart: st.InitStart, events: filepath.Join(e.Root, e.ID, eventsFile), v2: v2}
	if v2 {
		a.freezer = dir // cgroup.freeze
		return s.register(a, armV2)
	}
	if f, _, ok, _ := effective.Cgroups(st.CgroupPaths).Dir("freezer"); ok {
		a.freezer = f
	}
	return s.register(a, armV1)
}

// armV1 turns the OOM killer off and registers an eventfd for the
// container's OOM notifications, which it returns.
func armV1(a *armed) (int, error) {
	dir := a.dir
	if err := writeInt(dir, "memory.oom_control", 1); err != nil {
		return -1, err
	}
	control, err := os.Open(filepath.Join(dir, "memory.oom_control"))
	if err != nil {
		return -1, fmt.Errorf("arming: %w", err)
	}
	defer control.Close() // the kernel keeps the registration
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		return -1, fmt.Errorf("arming: eventfd: %w", err)
	}
	reg := strconv.Itoa(efd) + " " + strconv.Itoa(int(control.Fd()))
	if err := os.WriteFile(filepath.Join(dir, "cgroup.event_control"), []byte(reg), 0); err != nil {
		unix.Close(efd)
		return -1, fmt.Errorf("arming: %w", err)
	}
	return efd, nil
}

// register arms a container with arm and adds the fd it returns to the
// epoll set.
func (s *Service) register(a *armed, arm func(*armed) (int, error)) (*armed, error) {
	e, dir := a.e, a.dir
	efd, err := arm(a)
	if err != nil {
		return nil, err
	}
	a.efd, a.ino = efd, inode(dir)
	for _, w := range []struct {
		fd     int
		events uint32
	}{{efd, unix.EPOLLIN}, {a.psi, unix.EPOLLPRI}} {
		if w.fd < 0 {
			continue
		}
		ev := unix.EpollEvent{Events: w.events, Fd: int32(w.fd)}
		if err := unix.EpollCtl(s.epfd, unix.EPOLL_CTL_ADD, w.fd, &ev); err != nil {
			s.disarm(a, false)
			return nil, fmt.Errorf("arming: epoll: %w", err)
		}
		s.byFd[int32(w.fd)] = a
	}
	s.byKey[keyOf(e)] = a
	psi := ""
	if a.trigger != "" {
		psi = ", psi " + a.trigger
	}
	s.deps.Logf("oom: %s armed: policy %s, fallback %s, deadline %v%s", a.name(), a.set.Policy, a.set.Fallback, a.set.Deadline, psi)
	return a, nil
}

// disarm stops handling a container; kernel says whether its OOM killer
// comes back on (not when another worker handles it now).
func (s *Service) disarm(a *armed, kernel bool) {
	if a.handler != nil {
		a.handler.kill()
	}
	s.closeFd(&a.efd)
	s.closeFd(&a.psi)
	a.setVictim(nil)
	if kernel {
		a.killerOn(true) // a removed cgroup needs nothing
	}
	delete(s.byKey, keyOf(a.e))
}

// closeFd takes one of a container's fds out of the epoll set and closes
// it.
func (s *Service) closeFd(fd *int) {
	if *fd < 0 {
		return
	}
	unix.EpollCtl(s.epfd, unix.EPOLL_CTL_DEL, *fd, nil)
	unix.Close(*fd)
	delete(s.byFd, int32(*fd))
	*fd = -1
}

// underOOM reads whether the kernel holds the container's tasks.
func underOOM(dir string) (bool, error) {
	b, err := os.ReadFile(filepath.Join(dir, "memory.oom_control"))
	if err != nil {
		return false, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "under_oom "); ok {
			return v == "1", nil
		}
	}
	return false, fmt.Errorf("%s/memory.oom_control: no under_oom line", dir)
}

// check moves a container on: a new hold gets the policy; a hold that
// lasts past the deadline gets the fallback, and past twice the deadline
// the kernel's OOM killer; a hold that ended is recorded. event says the
// kernel just notified.
func (s *Service) check(a *armed, event bool) {
	if a.dump != nil && s.checkDump(a) {
		return
	}
	if event && a.dump == nil && inode(a.dir) != a.ino {
		// The kernel signals a removed cgroup too; one at the same path
		// now (a restore) is a new container, armed by the next round.
		s.disarm(a, false)
		return
	}
	if a.handler != nil {
		s.checkHandler(a)
	}
	held, err := a.held()
	if err != nil {
		if _, serr := os.Stat(a.dir); errors.Is(serr, os.ErrNotExist) {
			s.disarm(a, false) // the container is gone; delete releases it
			return
		}
		s.deps.Logf("oom: %s: %v", a.name(), err)
		return
	}
	now := time.Now()
	if !held {
		if a.limitBack != 0 {
			s.putLimitBack(a)
		}
		if !a.heldSince.IsZero() && a.handler == nil {
			if a.stage == 2 {
				s.rearm(a)
			}
			s.emit(a, "oom-resolved", map[string]any{"ms": ms(now.Sub(a.heldSince)), "stage": stageName(a.stage)})
			a.heldSince = time.Time{}
		}
		return
	}
	if a.heldSince.IsZero() {
		a.heldSince, a.stage, a.stageAt, a.detected = now, 0, now, now
		s.emit(a, "oom-held", map[string]any{"policy": a.set.Policy.String(), "by": a.by})
		if a.limitBack != 0 {
			// A failed checkpoint's raise let the tasks run on into this
			// hold: the fallback's turn, not another raise.
			a.stage = 0
			s.escalate(a)
			return
		}
		s.act(a, a.set.Policy)
		return
	}
	if now.Sub(a.stageAt) >= a.set.Deadline {
		s.escalate(a)
		return
	}
	// On v1 a notification during a hold is a new OOM after the policy
	// acted (a grow that was not enough); on v2 memory.events and the PSI
	// trigger go on firing while a killed task's memory is freed, so there
	// only the retry interval acts again.
	if a.handler == nil && (event && !a.v2 || now.Sub(a.lastTry) >= retryAfter(a)) {
		s.act(a, a.current())
	}
}

// current is the policy acting at the hold's stage.
func (a *armed) current() Policy {
	if a.stage == 0 {
		return a.set.Policy
	}
	return a.set.Fallback
}

// retryAfter is how long a policy that acted waits before acting again
// on a hold that lasts (a killed task takes a moment to free its memory).
func retryAfter(a *armed) time.Duration {
	if a.current().Kind == Grow {
		return 2 * tick
	}
	return 5 * tick
}

// escalate moves a hold that outlasted its deadline to the next stage.
func (s *Service) escalate(a *armed) {
	if a.handler != nil {
		a.handler.kill()
		s.emit(a, "policy-notify", map[string]any{"command": a.handler.command, "result": "killed at the deadline", "ms": ms(time.Since(a.handler.started))})
		a.handler = nil
	}
	a.stage++
	a.stageAt = time.Now()
	switch {
	case a.stage == 1 && a.set.Fallback.Kind != Kernel:
		s.emit(a, "policy-fallback", map[string]any{"from": a.set.Policy.String(), "to": a.set.Fallback.String()})
		s.act(a, a.set.Fallback)
	default:
		a.stage = 2
		s.kernel(a, "the policy did not resolve the OOM within its deadline")
	}
}

// kernel turns the kernel's OOM killer back on for a hold nothing else
// resolved: the last resort that keeps a container from waiting forever.
// The next OOM after the hold ends is the policy's again (rearm).
func (s *Service) kernel(a *armed, why string) {
	s.emit(a, "policy-fallback", map[string]any{"to": "kernel", "reason": why})
	if err := a.killerOn(true); err != nil {
		s.deps.Logf("oom: %s: %v", a.name(), err)
	}
}

// rearm turns the kernel's OOM killer off again once the hold it ended
// is over.
func (s *Service) rearm(a *armed) {
	if err := a.killerOn(false); err != nil {
		s.deps.Logf("oom: %s: %v", a.name(), err)
	}
}

func stageName(n int) string {
	return [...]string{"policy", "fallback", "kernel"}[min(n, 2)]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func writeInt(dir, file string, v int64) error {
	p := filepath.Join(dir, file)
	if err := os.WriteFile(p, []byte(strconv.FormatInt(v, 10)), 0); err != nil {
		return fmt.Errorf("writing %s: %w", p, err)
	}
	return nil
}

// inode is the inode of a directory (0 when it is gone).
func inode(dir string) uint64 {
	var st unix.Stat_t
	if unix.Stat(dir, &st) != nil {
		return 0
	}
	return st.Ino
}

func readUint(dir, file string) (uint64, error) {
	b, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
}
