package cr

import (
	"bytes"
	"fmt"
	"os"
	"strconv"

	"github.com/lkc-containers/lkc/internal/container"
)

// checkNoPendingExec refuses a paused container that an `exec
// --ignore-paused` waits in: its `lkc init` is frozen in the container's
// cgroup before it joined the container's namespaces, a child of the
// exec's lkc on the host, not of the container's init. CRIU dumps the
// tree of init alone and leaves that process out without a word, so the
// restored container would lack it, and the dump, which deletes the
// container, would end the exec. Refused, the container stays paused and
// the exec waits on for a resume.
func (c subject) checkNoPendingExec() error {
	if c.Status() != container.Paused {
		return nil
	}
	pids, err := c.Cgroup().Procs()
	if err != nil {
		return fmt.Errorf("listing the container's processes: %w", err)
	}
	for _, pid := range pids {
		if !descends(pid, c.Pid()) {
			return fmt.Errorf("%w: an exec is pending in the paused container (process %d waits for a resume to join it): resume the container first", container.ErrWrongState, pid)
		}
	}
	return nil
}

// descends reports whether pid is init or one of its descendants. A
// process that is gone meanwhile counts as one: it is no longer in the way.
func descends(pid, init int) bool {
	for pid > 1 {
		if pid == init {
			return true
		}
		ppid, err := parentPid(pid)
		if err != nil {
			return true
		}
		pid = ppid
	}
	return pid == init
}

// parentPid reads pid's parent from /proc/<pid>/stat, whose fields after
// the command name (in parentheses, which may hold any byte) are state and
// parent pid.
func parentPid(pid int) (int, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := bytes.Fields(data[i+1:])
	if len(f) < 2 {
		return 0, fmt.Errorf("/proc/%d/stat: too short", pid)
	}
	return strconv.Atoi(string(f[1]))
}
