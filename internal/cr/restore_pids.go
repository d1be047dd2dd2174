package cr

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/config"
	"github.com/lkc-containers/lkc/internal/procfs"
	"github.com/lkc-containers/lkc/internal/state"
)

// A view container's loadavg last pid and stat's processes go on across a
// checkpoint and a restore (docs/procfs.md). The checkpoint keeps them,
// as the daemon's view shows them, with the images (procCarryFile:
// state.Carried). The restore, once CRIU has brought every task back and
// before they resume (CRIU's pre-resume), has the container's new pid
// namespace hand out pids above the kept last pid, as its old one did
// (CRIU makes the tasks with the pids they had, and the namespace would
// otherwise hand out the lowest free ones next), and notes the time:
// the view goes on from the kept count, and counts as new forks only the
// threads started after it.

// NsLastPidArg, as lkc's first argument, makes lkc the helper that raises
// its pid namespace's ns_last_pid to the number that follows (a sysctl of
// the writer's own pid namespace: the helper is started in the
// container's).
const NsLastPidArg = "lkc-ns-last-pid"

// nsLastPid is the sysctl of the pid namespace of its writer.
const nsLastPid = "/proc/sys/kernel/ns_last_pid"

// NsLastPidMain is the helper's main: it raises ns_last_pid to the
// argument, never lowers it.
func NsLastPidMain(args []string) int {
	err := func() error {
		if len(args) != 1 {
			return fmt.Errorf("usage: %s PID", NsLastPidArg)
		}
		want, err := strconv.Atoi(args[0])
		if err != nil {
			return err
		}
		data, err := os.ReadFile(nsLastPid)
		if err != nil {
			return err
		}
		if now, err := strconv.Atoi(strings.TrimSpace(string(data))); err != nil || now >= want {
			return err
		}
		return os.WriteFile(nsLastPid, []byte(args[0]), 0)
	}()
	if err != nil {
		fmt.Fprintf(os.Stderr, "lkc: %s: %v\n", NsLastPidArg, err)
		return 1
	}
	return 0
}

// viewPids reads loadavg's last pid and stat's processes from the
// daemon's view of a container whose config mounts it (org.lkc.proc=
// virtual), as the view shows them; false without a view, or when it
// cannot be read.
func viewPids(cfg *config.Config) (lastPid int, processes uint64, ok bool) {
	src := map[string]string{}
	for _, m := range cfg.Mounts {
		src[m.Destination] = m.Source
	}
	if src["/proc/loadavg"] == "" || src["/proc/stat"] == "" {
		return 0, 0, false
	}
	load, err1 := os.ReadFile(src["/proc/loadavg"])
	stat, err2 := os.ReadFile(src["/proc/stat"])
	f := strings.Fields(string(load))
	if err1 != nil || err2 != nil || len(f) != 5 {
		return 0, 0, false
	}
	lastPid, err1 = strconv.Atoi(f[4])
	for _, line := range strings.Split(string(stat), "\n") {
		if v, found := strings.CutPrefix(line, "processes "); found {
			processes, err2 = strconv.ParseUint(v, 10, 64)
			ok = err2 == nil
		}
	}
	return lastPid, processes, ok && err1 == nil
}

// resumePids, at CRIU's pre-resume with init restored as pid, raises the
// container's pid namespace's last pid to the kept one and notes the
// time in carried.
func resumePids(cfg *config.Config, carried *state.Carried, pid int) error {
	if carried == nil || carried.Processes == 0 {
		return nil
	}
	var err error
	if carried.PidsFrom, err = procfs.StartTicks(); err != nil {
		return err
	}
	if !cfg.NewNamespace("pid") || carried.LastPid <= 0 {
		return nil
	}
	if err := raiseLastPid(pid, carried.LastPid); err != nil {
		return fmt.Errorf("giving the restored pid namespace its last pid %d: %w", carried.LastPid, err)
	}
	return nil
}

// raiseLastPid runs the NsLastPidArg helper in the pid namespace of
// process pid: from a thread of its own that joined that namespace for
// its children, and ends with the goroutine.
func raiseLastPid(pid, last int) error {
	ns, err := os.Open(fmt.Sprintf("/proc/%d/ns/pid", pid))
	if err != nil {
		return err
	}
	defer ns.Close()
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread goes with the goroutine
		if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWPID); err != nil {
			done <- &os.SyscallError{Syscall: "setns", Err: err}
			return
		}
		cmd := exec.Command("/proc/self/exe", NsLastPidArg, strconv.Itoa(last))
		cmd.Args[0] = "lkc"
		out, err := cmd.CombinedOutput()
		if err != nil && len(out) > 0 {
			err = errors.New(strings.TrimSpace(string(out)))
		}
		done <- err
	}()
	return <-done
}
