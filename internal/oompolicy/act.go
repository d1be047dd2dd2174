package oompolicy

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/config"
	"github.com/lkc-containers/lkc/internal/groups"
)

// act applies policy p to a held container.
func (s *Service) act(a *armed, p Policy) {
	a.lastTry = time.Now()
	var err error
	switch p.Kind {
	case KillLargest, KillNewest:
		err = s.kill(a, p.Kind)
	case Grow:
		err = s.grow(a, p.Ceiling)
	case Notify:
		err = s.notify(a, p.Command)
	case Checkpoint:
		err = s.checkpoint(a, p.Dir)
	case Kernel:
		a.stage = 2
		s.kernel(a, "the fallback is kernel")
		return
	default:
		err = fmt.Errorf("policy %s is not provided", p)
	}
	if err != nil {
		s.deps.Logf("oom: %s: %s: %v", a.name(), p, err)
		if a.stage == 0 {
			a.stageAt = time.Time{} // the fallback acts at the next check
		} else {
			a.stage = 1
			s.escalate(a)
		}
	}
}

// kill SIGKILLs one process of the container: the largest (resident
// memory) or the newest, its init only when nothing else is left. It
// kills nobody while the OOM is already being resolved, as the kernel's
// own OOM killer waits for its victim: the previous victim still exiting
// (its memory is on its way back, but it has left the cgroup's list), or
// on v2 a task the kernel's OOM killer took at memory.max. A victim chosen
// then would be a bystander: the shell waiting for the allocator. The
// retry interval, or the next notification, acts if the hold outlasts it.
func (s *Service) kill(a *armed, k Kind) error {
	if why := s.resolving(a); why != "" {
		s.deps.Logf("oom: %s: %s: waiting for its memory", a.name(), why)
		return nil
	}
	pids, err := procs(a.dir)
	if err != nil {
		return err
	}
	var best *task
	for _, pid := range pids {
		t, err := readTask(pid)
		if err != nil {
			continue // exited meanwhile
		}
		t.init = pid == a.initPid
		if best == nil || t.better(best, k) {
			best = t
		}
	}
	if best == nil {
		return errors.New("no process to kill")
	}
	// The hold may have ended while choosing (another task exited, or v2's
	// kernel killed at max): then the largest left, or init, is no
	// allocator.
	if held, err := a.held(); err != nil || !held {
		return err
	}
	fd, err := unix.PidfdOpen(best.pid, 0)
	if err != nil {
		return fmt.Errorf("opening process %d: %w", best.pid, err)
	}
	victim := os.NewFile(uintptr(fd), "pidfd")
	// The pidfd names the process read above unless it is gone; its start
	// time read again through the pid now proves it is the same one.
	if t, err := readTask(best.pid); err != nil || t.start != best.start {
		victim.Close()
		return fmt.Errorf("process %d exited while choosing", best.pid)
	}
	if err := unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0); err != nil {
		victim.Close()
		return fmt.Errorf("killing %d: %w", best.pid, err)
	}
	a.setVictim(victim)
	s.emit(a, "policy-kill", map[string]any{"policy": string(k), "pid": best.pid, "comm": best.comm, "rss": best.rss, "init": best.init,
		"ms": ms(time.Since(a.detected))})
	return nil
}

// resolving says why the container's OOM is being resolved already ("":
// it is not): the last victim has not exited (its pidfd turns readable
// once it has, its memory freed), or on v2 memory.events counts an OOM
// kill by the kernel since the last look.
func (s *Service) resolving(a *armed) string {
	if a.victim != nil {
		p := []unix.PollFd{{Fd: int32(a.victim.Fd()), Events: unix.POLLIN}}
		if n, err := unix.Poll(p, 0); err == nil && n == 0 {
			return "the last victim is still exiting"
		}
		a.setVictim(nil)
	}
	if !a.v2 {
		return ""
	}
	n, err := eventCount(a.dir, "oom_kill")
	if err != nil || n == a.kernelKills {
		return ""
	}
	a.kernelKills = n
	return "the kernel's OOM killer took a task at memory.max"
}

// setVictim keeps the pidfd of the process the policy killed last (nil:
// none), closing the one before.
func (a *armed) setVictim(f *os.File) {
	if a.victim != nil {
		a.victim.Close()
	}
	a.victim = f
}

// task is a candidate of kill.
type task struct {
	pid   int
	comm  string
	rss   uint64 // bytes
	start uint64 // clock ticks after boot
	init  bool
}

// better says whether t is a better victim than o: never init while
// another exists, then the largest or the newest. Start times count clock
// ticks (10 ms), so a shell and the child it forked at once tie; the higher
// pid is then the younger (pids are handed out in increasing order).
func (t *task) better(o *task, k Kind) bool {
	if t.init != o.init {
		return !t.init
	}
	if k == KillNewest {
		return t.start > o.start || t.start == o.start && t.pid > o.pid
	}
	return t.rss > o.rss
}

func readTask(pid int) (*task, error) {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return nil, err
	}
	// comm is in parentheses and may hold anything; fields follow the last ')'.
	i, j := strings.IndexByte(string(stat), '('), strings.LastIndexByte(string(stat), ')')
	if i < 0 || j < i {
		return nil, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(string(stat[j+1:]))
	if len(f) < 22 {
		return nil, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	t := &task{pid: pid, comm: string(stat[i+1 : j])}
	t.start, _ = strconv.ParseUint(f[19], 10, 64)
	pages, _ := strconv.ParseUint(f[21], 10, 64)
	t.rss = pages * uint64(os.Getpagesize())
	return t, nil
}

func procs(dir string) ([]int, error) {
	f, err := os.Open(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var pids []int
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if pid, err := strconv.Atoi(sc.Text()); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids, sc.Err()
}

// growStep is the least a grow raises the limit by.
const growStep = 16 << 20

// grow raises the memory limit (and memory+swap, first, when it is set)
// by max(limit/4, 16 MiB), not past the ceiling and only while the host
// keeps its reserve available.
func (s *Service) grow(a *armed, ceiling uint64) error {
	limit, err := readUint(a.dir, a.limitFile())
	if err != nil {
		return err
	}
	to := min(limit+max(limit/4, growStep), ceiling)
	if to <= limit {
		return fmt.Errorf("at the ceiling %d", ceiling)
	}
	if err := s.hostHasRoom(to - limit); err != nil {
		return err
	}
	if err := s.raise(a, limit, to); err != nil {
		return err
	}
	s.emit(a, "policy-grow", map[string]any{"from": limit, "to": to, "ceiling": ceiling, "ms": ms(time.Since(a.detected))})
	return nil
}

// raise moves the limit from one value to a higher one, memory+swap
// first when it is set (v1 keeps it at least the limit), to the new limit
// plus the swap allowance: a raise killed between the two writes and done
// again by the next worker asks the same memory+swap, not the allowance
// raised twice.
func (s *Service) raise(a *armed, from, to uint64) error {
	if a.v2 {
		return raiseV2(a, to)
	}
	if sw, err := readUint(a.dir, "memory.memsw.limit_in_bytes"); err == nil && sw < 1<<62 {
		if err := writeInt(a.dir, "memory.memsw.limit_in_bytes", int64(to+s.swapAllowance(a, sw, from))); err != nil {
			return err
		}
		if file := os.Getenv(RaiseDieEnv); file != "" {
			die(file)
		}
	}
	return writeInt(a.dir, "memory.limit_in_bytes", int64(to))
}

// swapAllowance is what v1's memory+swap allows beyond the memory limit:
// memory+swap minus memory as the container's record (a group's
// definition) sets them, which `lkc update` keeps and the policy's raises
// do not touch; without both there (memory+swap written by hand), as the
// cgroup has them now (sw, limit).
func (s *Service) swapAllowance(a *armed, sw, limit uint64) uint64 {
	if r := s.resources(a); r != nil && r.MemoryLimit != nil && r.MemorySwap != nil && *r.MemoryLimit > 0 && *r.MemorySwap >= *r.MemoryLimit {
		return uint64(*r.MemorySwap - *r.MemoryLimit)
	}
	return sw - min(sw, limit)
}

// resources are the limits the container's record (a group's definition)
// sets, nil when it cannot be read.
func (s *Service) resources(a *armed) *config.Resources {
	if a.group != "" {
		g, err := groups.FromConf(s.deps.Conf).Get(a.e.ID)
		if err != nil {
			return nil
		}
		return &g.Resources
	}
	st, err := a.e.LoadState()
	if err != nil || st.Config == nil {
		return nil
	}
	return &st.Config.Cgroup.Resources
}

// hostHasRoom checks that MemAvailable minus oom.grow-reserve covers n.
func (s *Service) hostHasRoom(n uint64) error {
	m, err := meminfo()
	if err != nil {
		return err
	}
	reserve, err := Reserve(s.deps.Conf.OOMGrowReserve, m["MemTotal"])
	if err != nil {
		return err
	}
	if avail := m["MemAvailable"]; avail < reserve+n {
		return fmt.Errorf("the host has %d bytes available, keeps %d in reserve: no room for %d more", avail, reserve, n)
	}
	return nil
}

func meminfo() (map[string]uint64, error) {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return nil, err
	}
	m := map[string]uint64{}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 {
			n, _ := strconv.ParseUint(f[1], 10, 64)
			m[strings.TrimSuffix(f[0], ":")] = n << 10
		}
	}
	return m, nil
}

// handler is a notify command in flight.
type handler struct {
	command string
	cmd     *exec.Cmd
	started time.Time
	done    chan error
}

// notify starts the handler in its own session (a worker that dies does
// not take it along), with the container's id, root, cgroup and memory
// figures in its environment and the id as $1.
func (s *Service) notify(a *armed, command string) error {
	usage, _ := readUint(a.dir, a.usageFile())
	limit, _ := readUint(a.dir, a.limitFile())
	cmd := exec.Command("/bin/sh", "-c", command, "lkc-oom-notify", a.e.ID)
	cmd.Env = append(os.Environ(), "LKC_ID="+a.e.ID, "LKC_ROOT="+a.e.Root, "LKC_CGROUP="+a.dir,
		"LKC_MEMORY_USAGE="+strconv.FormatUint(usage, 10), "LKC_MEMORY_LIMIT="+strconv.FormatUint(limit, 10))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting the handler: %w", err)
	}
	h := &handler{command: command, cmd: cmd, started: time.Now(), done: make(chan error, 1)}
	go func() { h.done <- cmd.Wait() }()
	a.handler = h
	s.emit(a, "policy-notify", map[string]any{"command": command, "pid": cmd.Process.Pid, "result": "started", "ms": ms(time.Since(a.detected))})
	return nil
}

// checkHandler looks at a handler in flight: one that exited with 0 is
// done (if the container stays held, the deadline hands over to the
// fallback); any other end hands over to the fallback at once. One that overruns its deadline is killed (by
// escalate while the container is held, here once the hold is over).
func (s *Service) checkHandler(a *armed) {
	h := a.handler
	if time.Since(h.started) >= a.set.Deadline {
		if held, _ := a.held(); !held {
			h.kill()
			a.handler = nil
			s.emit(a, "policy-notify", map[string]any{"command": h.command, "result": "killed at the deadline", "ms": ms(time.Since(h.started))})
			return
		}
	}
	select {
	case err := <-h.done:
		a.handler = nil
		held, _ := a.held()
		result := "exit 0"
		if err != nil {
			result = err.Error()
		}
		s.emit(a, "policy-notify", map[string]any{"command": h.command, "result": result, "held": held, "ms": ms(time.Since(h.started))})
		if err != nil {
			a.stageAt = time.Time{} // the fallback acts now
		}
		// Exit 0 while still held: the tasks may not have left the OOM wait
		// yet after what the handler did; the deadline decides.
	default:
	}
}

// kill ends the handler's whole session.
func (h *handler) kill() {
	syscall.Kill(-h.cmd.Process.Pid, syscall.SIGKILL)
}
