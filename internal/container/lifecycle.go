package container

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/cgroups"
	"github.com/lkc-containers/lkc/internal/nsenter"
	"github.com/lkc-containers/lkc/internal/state"
	"github.com/lkc-containers/lkc/internal/steplog"
)

// Start releases the init of a created container into the user's process.
// A failing poststart hook goes to warn (which may be nil), not the error.
func Start(root, id string, warn func(error)) error {
	// The constructor started the container and failed after releasing
	// init (nsenter/start.c): its error is the command's.
	if msg, ok := os.LookupEnv(nsenter.StartFailedEnv); ok {
		os.Unsetenv(nsenter.StartFailedEnv)
		return errors.New(msg)
	}
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
	return c.release()
}

// release is start without the status check, for run, which holds the
// container it has just created.
func (c *Container) release() error {
	defer steplog.Step("start")()
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
// its cgroup. As in runc, all works on a stopped container too, and
// signals what is left in its cgroup: containerd's shim kills every task
// that exited that way, and takes a failure for a kill that did not
// happen. A SIGKILL to a paused container thaws it, as runc does: a task
// frozen by v1's freezer dies only once thawed, and clients (containerd's
// shim, Podman) wait for the exit that follows.
//
// A kill waits for a checkpoint under way (state.Dir.MarkDumping says
// why), as delete --force does, and then signals what the dump left: the
// container after --leave-running or a failed dump, or nothing, which it
// says in one line.
func Kill(root, id string, sig unix.Signal, all bool) error {
	c, err := loadAfterDump(root, id)
	if err != nil {
		return err
	}
	defer c.close()
	s := c.status()
	switch {
	case all:
		err = signalAll(c.cgroup(), sig)
	case s == Stopped:
		return notRunning(id)
	default:
		err = c.signalInit(sig)
	}
	if err != nil || sig != unix.SIGKILL || s != Paused {
		return err
	}
	if err := c.cgroup().Thaw(); err != nil {
		return fmt.Errorf("container %s: thawing it for SIGKILL: %w", id, err)
	}
	return nil
}

// loadAfterDump loads container id under the shared lock, waiting for
// the command that holds it; when that was a checkpoint which then
// removed the container, the error says so.
func loadAfterDump(root, id string) (*Container, error) {
	dir, err := state.TryOpen(root, id, false)
	dumping := false
	if errors.Is(err, state.ErrBusy) {
		if d, perr := state.Peek(root, id); perr == nil {
			dumping = d.Dumping()
			d.Close()
		}
		if dumping {
			steplog.Printf("kill: container %s is being checkpointed: waiting for it", id)
		}
		end := steplog.Step("kill: wait for the lock")
		dir, err = state.Open(root, id, false)
		end()
	}
	if dumping && errors.Is(err, ErrNotExist) {
		return nil, fmt.Errorf("%w: %s: the checkpoint under way, which the kill waited for, dumped and removed it", ErrNotExist, id)
	}
	if err != nil {
		return nil, err
	}
	return fromDir(dir, false)
}

// signalInit signals init through a pidfd, so a recycled pid is never hit.
func (c *Container) signalInit(sig unix.Signal) error {
	pidfd, err := unix.PidfdOpen(c.st.InitPid, 0)
	if err != nil {
		return fmt.Errorf("container %s: opening init: %w", c.st.ID, err)
	}
	defer unix.Close(pidfd)
	if c.status() == Stopped {
		return notRunning(c.st.ID)
	}
	if err := unix.PidfdSendSignal(pidfd, sig, nil, 0); err != nil {
		return fmt.Errorf("container %s: signalling init: %w", c.st.ID, err)
	}
	return nil
}

// notRunning refuses a signal to a stopped container's init in runc's
// words.
func notRunning(id string) error {
	return fmt.Errorf("%w: %w: cannot kill container %s: it is %s", ErrWrongState, ErrNotRunning, id, Stopped)
}

// signalAll signals every process in cg; a cgroup already gone (a stopped
// container's) has none.
func signalAll(cg cgroups.Manager, sig unix.Signal) error {
	pids, err := cg.Procs()
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
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
