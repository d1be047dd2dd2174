package container

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/cgroups"
	"github.com/lkc-containers/lkc/internal/mount"
	"github.com/lkc-containers/lkc/internal/state"
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
	if err := c.waitExec(fd); err != nil {
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

// Delete removes a container. A running or paused one needs force, which
// kills it first. With force, deleting a container that does not exist is
// not an error, so cleanup after a crash can always call it. A failing
// poststop hook goes to warn (which may be nil), not the error.
func Delete(root, id string, force bool, warn func(error)) error {
	dir, err := state.Open(root, id, true)
	if errors.Is(err, ErrNotExist) && force {
		return nil
	}
	if err != nil {
		return err
	}
	st, err := dir.Load()
	if errors.Is(err, ErrNotExist) {
		// Left by a create that died before recording anything, or one
		// that has yet to lock it (it will fail). Cleared under the same
		// lock: between two locks a create could record a whole container
		// that removing the directory would orphan.
		if err := releaseCriuRoot(dir.Path()); err != nil {
			dir.Close()
			return err
		}
		return dir.Remove()
	}
	if err != nil {
		dir.Close()
		return err
	}
	c := &Container{st: st, dir: dir, warn: warn}
	s := c.status()
	if (s == Running || s == Paused) && !force {
		c.close()
		return fmt.Errorf("%w: cannot delete container %s that is not stopped: it is %s (use --force)", ErrWrongState, id, s)
	}
	return c.destroy()
}

// destroy kills whatever is left of the container, runs the poststop hooks
// and removes its cgroup and state. It works from any state a crash may have
// left.
func (c *Container) destroy() error {
	cg := c.cgroup()
	if err := cgroups.KillAll(cg); err != nil {
		c.close()
		return err
	}
	c.poststop()
	if err := cg.Destroy(); err != nil {
		c.close()
		return err
	}
	if c.st.RootfsMount != 0 {
		if err := mount.DetachRootfs(c.st.Rootfs, c.st.RootfsMount); err != nil {
			c.close()
			return err
		}
	}
	if err := releaseCriuRoot(c.dir.Path()); err != nil {
		c.close()
		return err
	}
	return c.dir.Remove()
}
