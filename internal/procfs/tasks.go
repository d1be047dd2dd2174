package procfs

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/state"
)

// tasks counts a container's threads by state, as the kernel's
// nr_running, nr_uninterruptible and nr_threads count the host's, and
// names the last pid its pid namespace handed out.
type tasks struct {
	running, blocked, total int
	// lastPid is the last pid the container's own pid namespace handed
	// out as far as its threads show, never a host pid, and forks how
	// many it handed out (stat's processes); see pidCounter.
	lastPid int
	forks   uint64
}

// pidCounter follows a container's newest thread from one count of its
// tasks to the next. Pids are handed out in increasing order, so the
// newest thread's pid in the container's namespace is the last handed
// out; but that thread may exit before the next count (every short-lived
// command does), and a count that took the newest living thread as the
// last pid showed loadavg's last pid and stat's processes going back,
// which a monitor that rates forks from processes reads as a huge jump.
// So the counter keeps the newest thread seen: a later one replaces it,
// an older one (the newest exited) does not. A later thread with a lower
// pid means the namespace's pids wrapped: it counts from 0 again.
type pidCounter struct {
	mu     sync.Mutex
	loaded bool // PidCount was read from the record, if any
	PidCount
}

// PidCount is what a pidCounter keeps: the newest thread seen, its start
// time (clock ticks after the host's boot) and the pids handed out.
type PidCount struct {
	Pid   int
	Start uint64
	Forks uint64
}

// carriedPids is the count a restored container's view goes on from, as
// its checkpoint kept it (zero for a container never checkpointed).
func carriedPids(b *state.Carried) PidCount {
	return PidCount{Pid: b.LastPid, Start: b.PidsFrom, Forks: b.Processes}
}

// PidRecord keeps a container's PidCount where the daemon's successor
// finds it (the daemon is crash-only: a count kept in memory only
// started again at a restart, and loadavg's last pid and stat's
// processes went back). Store is called with every change, under the
// counter's lock.
type PidRecord interface {
	Load() (PidCount, bool)
	Store(PidCount)
}

// observe records that the newest living thread is pid (in the
// container's namespace; 0 when it could not be read), started at start,
// and returns the last pid and the number of forks. At the first call the
// count goes on from rec's, when rec is not nil and has one, else from
// from (a restored container's count at its checkpoint); rec keeps each
// change.
func (p *pidCounter) observe(rec PidRecord, from PidCount, pid int, start uint64) (int, uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.loaded {
		p.PidCount = from
		if rec != nil {
			if c, ok := rec.Load(); ok {
				p.PidCount = c
			}
		}
	}
	p.loaded = true
	newer := start > p.Start || (start == p.Start && pid > p.Pid)
	switch {
	case pid == 0 || !newer || pid == p.Pid:
		return p.Pid, p.Forks
	case pid > p.Pid:
		p.Forks += uint64(pid - p.Pid)
	default:
		p.Forks += uint64(pid)
	}
	p.Pid, p.Start = pid, start
	if rec != nil {
		rec.Store(p.PidCount)
	}
	return p.Pid, p.Forks
}

// withReader counts the file's reader as running, as the kernel's
// nr_running() in /proc/loadavg and /proc/stat counts the task that reads
// them (it is on the CPU while it reads). The reader of a container's
// files is one of its tasks, and while the daemon renders it sleeps
// waiting for the answer, so the count of running threads leaves it out.
// Total bounds the sum: the reader is among the threads counted at the
// read (a sample's counts, which stand for up to 10 s, may predate it),
// and a container with no task left shows 0/0.
func (t tasks) withReader() tasks {
	t.running = min(t.running+1, t.total)
	return t
}

// threadsFile finds the file listing every thread of c: a v1 hierarchy's
// tasks, or v2's cgroup.threads.
func (h *Host) threadsFile(c *Container) (dir, file string, err error) {
	for _, ctrl := range []string{"pids", "cpuacct", "cpu", "memory"} {
		dir, v2, err := h.cgroupDir(c, ctrl)
		if errors.Is(err, ErrNoController) {
			continue
		}
		if err != nil {
			return "", "", err
		}
		if v2 {
			return dir, "cgroup.threads", nil
		}
		return dir, "tasks", nil
	}
	return "", "", fmt.Errorf("pids, cpu or memory: %w", ErrNoController)
}

// tasks reads the state of each of c's threads from /proc/<tid>/stat. A
// thread that exits meanwhile is not counted.
func (h *Host) tasks(c *Container) (tasks, error) {
	dir, file, err := h.threadsFile(c)
	if err != nil {
		return tasks{}, err
	}
	list, err := readThreads(dir, file, nil)
	if err != nil {
		return tasks{}, err
	}
	var t tasks
	newest, newestStart := 0, uint64(0)
	for _, f := range list {
		tid, err := strconv.Atoi(f)
		if err != nil {
			return tasks{}, fmt.Errorf("%s/%s: %q: %w", dir, file, f, err)
		}
		state, start, err := h.threadStat(tid)
		if exited(err) {
			continue
		}
		if err != nil {
			return tasks{}, err
		}
		t.total++
		switch state {
		case 'R':
			t.running++
		case 'D':
			t.blocked++
		}
		if start > newestStart || (start == newestStart && tid > newest) {
			newest, newestStart = tid, start
		}
	}
	pid := 0
	if newest != 0 {
		pid = h.nsPid(newest)
	}
	t.lastPid, t.forks = c.pids.observe(c.Pids, carriedPids(&c.Before), pid, newestStart)
	return t, nil
}

// readThreads appends to list the threads in file of cgroup dir and of
// every cgroup beneath it: a container may make cgroups of its own (a
// systemd inside it; on v2 its own cgroup then holds no process at all),
// and their threads are the container's as much as those of its own
// cgroup. A cgroup beneath that is removed meanwhile is skipped.
func readThreads(dir, file string, list []string) ([]string, error) {
	s, err := readCgroupFile(dir, file)
	if err != nil {
		return nil, err
	}
	list = append(list, strings.Fields(s)...)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("cgroup %s: %w", dir, err)
	}
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		sub, err := readThreads(filepath.Join(dir, e.Name()), file, list)
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, ErrNoController) {
			continue
		}
		if err != nil {
			return nil, err
		}
		list = sub
	}
	return list, nil
}

// threadStat returns a thread's state letter and start time (clock ticks
// after boot) from /proc/<tid>/stat.
func (h *Host) threadStat(tid int) (byte, uint64, error) {
	s, err := h.read("proc/" + strconv.Itoa(tid) + "/stat")
	if err != nil {
		return 0, 0, err
	}
	return parseStat(s)
}

// exited says a read of a task's /proc file failed because the task is
// gone: before the open (ENOENT) or between the open and the read (ESRCH,
// which a busy container's short-lived processes meet now and then).
func exited(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ESRCH)
}

// parseStat picks the state (field 3) and starttime (field 22) out of a
// /proc/<pid>/stat line; the command name (field 2) may hold spaces and
// parentheses, so fields are counted from its last ')'.
func parseStat(s string) (byte, uint64, error) {
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("stat %q: no command name", s)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 || len(f[0]) != 1 {
		return 0, 0, fmt.Errorf("stat %q: too few fields", s)
	}
	start, err := strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("stat %q: start time: %w", s, err)
	}
	return f[0][0], start, nil
}

// nsPid returns tid's number in its own pid namespace (the last NSpid
// column); 0 when it cannot be read.
func (h *Host) nsPid(tid int) int {
	f, err := os.Open(h.path("proc/" + strconv.Itoa(tid) + "/status"))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "NSpid:"); ok {
			cols := strings.Fields(v)
			if len(cols) > 0 {
				n, _ := strconv.Atoi(cols[len(cols)-1])
				return n
			}
		}
	}
	return 0
}

// StartTicks is the start time a thread started now would have in
// /proc/<pid>/stat: clock ticks of CLOCK_BOOTTIME (the host's).
func StartTicks() (uint64, error) {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return 0, &os.SyscallError{Syscall: "clock_gettime", Err: err}
	}
	return ticks(uint64(ts.Nano())), nil
}
