package checkpoint

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// placement is where CRIU starts (Request.Cgroups, Request.NetNS).
type placement struct {
	tasks []string // v1 `tasks` files
	cgns  bool     // unshare a cgroup namespace there
	netns *os.File
}

// enter moves the calling thread, locked and about to start CRIU, where p
// says, and returns what moves it back out of the network namespace once
// CRIU started. A thread that dies after keeps the rest.
//
// Writing 0 to a v1 `tasks` file moves only the writer, which the kernel
// does without the global cgroup_threadgroup_rwsem that any move of
// another task or of a whole process takes for writing: that waits for an
// RCU grace period, ~12 ms of every restore here (docs/kernel.md). The
// main thread, which does not die, and a move that fails leave CRIU to
// place the tasks itself; a network namespace it cannot join is an error,
// and so is a move that fails when the request tells CRIU to leave
// cgroups alone (--manage-cgroups-mode ignore): the tasks would be born
// outside the container's cgroups and stay there.
func (p *placement) enter(o *Opts) (back func(), err error) {
	back = func() {}
	if p.netns != nil {
		own, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			return nil, err
		}
		if err := unix.Setns(int(p.netns.Fd()), unix.CLONE_NEWNET); err != nil {
			own.Close()
			return nil, fmt.Errorf("joining the network namespace criu works in: %w", err)
		}
		back = func() {
			unix.Setns(int(own.Fd()), unix.CLONE_NEWNET)
			own.Close()
		}
	}
	if len(p.tasks) == 0 {
		return back, nil
	}
	if err := moveThread(p.tasks); err != nil {
		if o != nil && o.ManageCgroupsMode != nil && *o.ManageCgroupsMode == CgroupIgnore {
			back()
			return nil, fmt.Errorf("starting criu in the container's cgroups: %w", err)
		}
		return back, nil
	}
	if p.cgns && unix.Unshare(unix.CLONE_NEWCGROUP) != nil {
		return back, nil
	}
	mode := CgroupIgnore
	o.ManageCgroupsMode = &mode
	return back, nil
}

// moveThread moves the calling thread, never the main one, into the v1
// cgroups whose `tasks` files are given.
func moveThread(tasks []string) error {
	if unix.Gettid() == unix.Getpid() {
		return errors.New("the main thread stays where it is")
	}
	for _, f := range tasks {
		if err := os.WriteFile(f, []byte("0"), 0); err != nil {
			return err
		}
	}
	return nil
}
