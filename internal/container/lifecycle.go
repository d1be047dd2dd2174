package container

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/cgroups"
	"github.com/lkc-containers/lkc/internal/steplog"
)

// Start releases the init of a created container into the user's process.
// A failing poststart hook goes to warn (which may be nil), not the error.
func Start(root, id string, warn func(error)) error {
	c, err := load(root, id, true)
	if err != nil {
		return err
	}
	defer c.close()
	c.warn = warn
	return c.start()
}

// start releases init and returns once init has exec'd the user's process
// (or failed to), as runc's start does: until then a signal would reach
// lkc's init instead of the process (a SIGTERM would kill it unseen by the
// process's handler; SIGUSR1 would be lost), and callers such as containerd
// signal right after start. Init holds the fifo open until its execve
// closes it (close-on-exec); a failure after the release is written into
// the fifo first, and returned.
func (c *Container) start() error {
	defer steplog.Step("start")()
	if s := c.status(); s != Created {
		return wrongState(c.st.ID, "start", s)
	}
	fd, err := unix.Open(c.fifo(), unix.O_WRONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("container %s: init is not waiting on its exec fifo: %w", c.st.ID, err)
	}
	defer unix.Close(fd)
	if _, err := unix.Write(fd, []byte{0}); err != nil {
		return fmt.Errorf("releasing container init: %w", err)
	}
	end := steplog.Step("start: wait for the exec")
	err = c.waitExec(fd)
	end()
	if err != nil {
		os.Remove(c.fifo())
		return err
	}
	if err := os.Remove(c.fifo()); err != nil {
		return err
	}
	c.poststart()
	return nil
}

// Kill sends sig to the container's init, or with all to every process in
// its cgroup.
func Kill(root, id string, sig unix.Signal, all bool) error {
	c, err := load(root, id, false)
	if err != nil {
		return err
	}
	defer c.close()
	if s := c.status(); s == Stopped {
		return wrongState(id, "kill", s)
	}
	if all {
		return signalAll(c.cgroup(), sig)
	}
	return c.signalInit(sig)
}

// signalInit signals init through a pidfd, so a recycled pid is never hit.
func (c *Container) signalInit(sig unix.Signal) error {
	pidfd, err := unix.PidfdOpen(c.st.InitPid, 0)
	if err != nil {
		return fmt.Errorf("container %s: opening init: %w", c.st.ID, err)
	}
	defer unix.Close(pidfd)
	if c.status() == Stopped {
		return wrongState(c.st.ID, "kill", Stopped)
	}
	if err := unix.PidfdSendSignal(pidfd, sig, nil, 0); err != nil {
		return fmt.Errorf("container %s: signalling init: %w", c.st.ID, err)
	}
	return nil
}

func signalAll(cg cgroups.Manager, sig unix.Signal) error {
	pids, err := cg.Procs()
	if err != nil {
		return fmt.Errorf("listing container processes: %w", err)
	}
	for _, pid := range pids {
		if err := unix.Kill(pid, sig); err != nil && err != unix.ESRCH {
			return fmt.Errorf("signalling pid %d: %w", pid, err)
		}
	}
	return nil
}
