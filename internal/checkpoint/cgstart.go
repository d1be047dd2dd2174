package checkpoint

import (
	"os"

	"golang.org/x/sys/unix"
)

// cgroupStart is where a restore's CRIU starts (Request.Cgroups).
type cgroupStart struct {
	tasks []string // v1 `tasks` files
	ns    bool     // unshare a cgroup namespace there
}

// enter moves the calling thread, which must be locked and die after, into
// the cgroups and tells CRIU to leave cgroups alone. Writing 0 to a v1
// `tasks` file moves only the writer, which the kernel does without the
// global cgroup_threadgroup_rwsem that any move of another task or of a
// whole process takes for writing: that waits for an RCU grace period,
// ~12 ms of every restore here (docs/kernel.md). The main thread, which
// does not die, and a move that fails leave CRIU to place the tasks
// itself.
func (cg *cgroupStart) enter(o *Opts) {
	if unix.Gettid() == unix.Getpid() {
		return
	}
	for _, f := range cg.tasks {
		if os.WriteFile(f, []byte("0"), 0) != nil {
			return
		}
	}
	if cg.ns && unix.Unshare(unix.CLONE_NEWCGROUP) != nil {
		return
	}
	mode := CgroupIgnore
	o.ManageCgroupsMode = &mode
}
