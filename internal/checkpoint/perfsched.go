package checkpoint

import "golang.org/x/sys/unix"

// CRIU stops each task it dumps or restores on a hardware breakpoint it
// sets with ptrace. A breakpoint is a perf event bound to a task, and the
// first such event on an idle system switches on the kernel's perf
// scheduling hooks, which waits for an RCU grace period (account_event in
// kernel/events/core.c): 13-16 ms here, inside the downtime of a
// migration. Once on, the hooks stay on while any task-bound event exists
// and for a second after the last goes.

// WarmPerfHooks opens, on a thread of its own, a task-bound dummy perf
// event, and returns what closes it. While it is open, CRIU's breakpoints
// cost microseconds. The open itself pays the grace period, in the
// background: call it well before CRIU sets its first breakpoint (a
// migration does so before it connects, a checkpoint before it loads the
// container). A kernel without perf events, or one that refuses them,
// only leaves CRIU as slow as it was.
func WarmPerfHooks() (release func()) {
	opened := make(chan int, 1)
	go func() {
		attr := unix.PerfEventAttr{Type: unix.PERF_TYPE_SOFTWARE, Config: unix.PERF_COUNT_SW_DUMMY}
		fd, err := unix.PerfEventOpen(&attr, 0, -1, -1, unix.PERF_FLAG_FD_CLOEXEC)
		if err != nil {
			fd = -1
		}
		opened <- fd
	}()
	return func() {
		if fd := <-opened; fd >= 0 {
			unix.Close(fd)
		}
	}
}
