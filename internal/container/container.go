// Package container is the container object: create, start, run, exec,
// state, kill, pause and resume, update, events and delete, with the state
// machine that says which operation is allowed when. Status is derived from
// the living process, never trusted from disk, and every failure unwinds
// what the operation did. The operations above it that work on a container
// without being lifecycle steps (checkpoint and restore in internal/cr,
// migration) use its small exported API: Hold and Inspect (handle.go) for
// an existing container, Build (build.go) for making one whose processes
// CRIU starts.
package container

import (
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/cgroups"
	"github.com/lkc-containers/lkc/internal/state"
)

// Status values, as the OCI runtime spec names them.
const (
	Creating = "creating"
	Created  = "created"
	Running  = "running"
	Paused   = "paused"
	Stopped  = "stopped"
)

// Error classes, checked with errors.Is.
var (
	ErrNotExist   = state.ErrNotExist
	ErrExist      = state.ErrExist
	ErrWrongState = errors.New("wrong state for this operation")
	// ErrNotRunning is runc's wording for a signal to a stopped container:
	// containerd's shim looks for it to tell a task that already exited
	// from a failed kill.
	ErrNotRunning = errors.New("container not running")
)

// Container is a loaded container record.
type Container struct {
	st   *state.State
	dir  *state.Dir
	warn func(error) // gets failures that must not fail the operation; may be nil
	// init, in the process that created the container, is the handshake
	// with init, kept for Run to close after init's exec
	// (initProc.closeAfterExec).
	init *initProc
	// busy is set when the container was read without its lock because
	// another command held it: a create still building it, among others.
	busy bool
}

// OCIState is the state of a container as `lkc state` prints it: the
// runtime spec's fields plus runc's rootfs, created and owner.
type OCIState struct {
	OCIVersion  string            `json:"ociVersion"`
	ID          string            `json:"id"`
	Status      string            `json:"status"`
	Pid         int               `json:"pid"`
	Bundle      string            `json:"bundle"`
	Rootfs      string            `json:"rootfs"`
	Created     time.Time         `json:"created"`
	Owner       string            `json:"owner"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

func load(root, id string, exclusive bool) (*Container, error) {
	dir, err := state.Open(root, id, exclusive)
	if err != nil {
		return nil, err
	}
	return fromDir(dir, false)
}

// peek loads the container for a reader that must not wait: under a
// shared lock when it is free, else without one (busy).
func peek(root, id string) (*Container, error) {
	dir, err := state.TryOpen(root, id, false)
	busy := errors.Is(err, state.ErrBusy)
	if busy {
		dir, err = state.Peek(root, id)
	}
	if err != nil {
		return nil, err
	}
	return fromDir(dir, busy)
}

// fromDir loads the container whose directory dir is open; on failure it
// closes dir.
func fromDir(dir *state.Dir, busy bool) (*Container, error) {
	st, err := dir.Load()
	if err != nil {
		dir.Close()
		return nil, err
	}
	return &Container{st: st, dir: dir, busy: busy}, nil
}

func (c *Container) close() {
	c.takeInit().close()
	c.dir.Close()
}

// takeInit hands over the handshake with init; nil once taken or closed.
func (c *Container) takeInit() *initProc {
	p := c.init
	c.init = nil
	return p
}

func (c *Container) cgroup() cgroups.Manager {
	return cgroups.FromPaths(c.st.CgroupPaths, c.st.CgroupParents)
}

func (c *Container) fifo() string { return filepath.Join(c.dir.Path(), state.FifoName) }

// status derives the status from the init process and the cgroup. A
// container read while another command holds it (busy) is being created
// while its create (or restore) has not marked it complete. The mark with
// no holder is a create that died: its init, which may live on a moment
// before it sees its parent gone and before it waits on the exec fifo,
// will never run the user's process, so the container is stopped. A
// frozen container is paused, created or running, as in runc, which
// pauses a created container too.
func (c *Container) status() string {
	if c.dir.Creating() {
		if c.busy {
			return Creating
		}
		return Stopped
	}
	if c.st.InitPid == 0 || !state.Alive(c.st.InitPid, c.st.InitStart) {
		return Stopped
	}
	if frozen, _ := c.cgroup().Frozen(); frozen {
		return Paused
	}
	if c.initWaiting() {
		return Created
	}
	return Running
}

// initWaiting reports whether init still waits on the exec fifo to be
// started. The fifo alone does not say so: a start killed between releasing
// init and removing the fifo leaves it behind a container that runs. Init
// holds the fifo open until it execs (the fd is close-on-exec), so opening
// it for writing without blocking fails with ENXIO once nobody waits.
func (c *Container) initWaiting() bool {
	fd, err := unix.Open(c.fifo(), unix.O_WRONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return !errors.Is(err, unix.ENXIO) && !errors.Is(err, unix.ENOENT)
	}
	unix.Close(fd)
	return true
}

func (c *Container) ociState() OCIState {
	status, pid := c.status(), 0
	if status != Stopped {
		pid = c.st.InitPid
	}
	return newOCIState(c.st, status, pid)
}

// State returns the OCI state of container id. It never waits for
// another command on the container: one being created is "creating".
func State(root, id string) (*OCIState, error) {
	c, err := peek(root, id)
	if err != nil {
		return nil, err
	}
	defer c.close()
	s := c.ociState()
	return &s, nil
}

// List returns the state of every container under root, without waiting
// for any. A container whose state cannot be read is left out and passed
// to warn (as runc does), so one broken record hides no other.
func List(root string, warn func(error)) ([]OCIState, error) {
	ids, err := state.List(root)
	if err != nil {
		return nil, err
	}
	out := make([]OCIState, 0, len(ids))
	for _, id := range ids {
		s, err := State(root, id)
		if errors.Is(err, ErrNotExist) {
			continue // deleted meanwhile, or a create yet to record it
		}
		if err != nil {
			warn(fmt.Errorf("container %s: %w", id, err))
			continue
		}
		out = append(out, *s)
	}
	return out, nil
}

func wrongState(id, op, status string) error {
	return fmt.Errorf("%w: cannot %s container %s: it is %s", ErrWrongState, op, id, status)
}
