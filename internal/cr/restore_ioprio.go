package cr

import (
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/config"
)

// ioprioWhoProcess is IOPRIO_WHO_PROCESS (linux/ioprio.h): the target is
// one thread.
const ioprioWhoProcess = 1

// restoreIOPriority sets io, the config's process.ioPriority, on every
// thread of the restored init, pid, as create sets it on init before its
// execve: CRIU (4.2 included) neither dumps nor restores an I/O priority,
// so the restored tasks come back with the kernel's default. The other
// restored tasks keep that default: which of them had inherited the
// init's priority and which were exec'd with one of their own is not
// recorded anywhere.
func restoreIOPriority(io *config.IOPriority, pid int) error {
	if io == nil {
		return nil
	}
	dir := fmt.Sprintf("/proc/%d/task", pid)
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("listing the restored init's threads: %w", err)
	}
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		_, _, errno := unix.Syscall(unix.SYS_IOPRIO_SET, ioprioWhoProcess, uintptr(tid), uintptr(io.Value()))
		if errno != 0 && errno != unix.ESRCH { // ESRCH: the thread ended meanwhile
			return fmt.Errorf("ioprio_set(%s %d) of the restored init's thread %d: %w", io.Class, io.Priority, tid, errno)
		}
	}
	return nil
}
