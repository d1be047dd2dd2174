package container

import (
	"context"
	"fmt"
	"os"
	"os/signal"

	"github.com/lkc-containers/lkc/internal/cgroups"
	"github.com/lkc-containers/lkc/internal/cleanup"
	"github.com/lkc-containers/lkc/internal/config"
	"github.com/lkc-containers/lkc/internal/state"
	"github.com/lkc-containers/lkc/internal/steplog"
)

// Build is a container being made: create's steps, offered one by one to
// an operation above this package whose processes come from elsewhere
// than lkc init (cr's restore: CRIU starts them); create takes the same
// steps around lkc init. Each step records what it made before making it,
// so a delete after a crash finds it, and pushes what undoes it on the
// caller's stack. Other commands see the container as "creating" until it
// is finished.
type Build struct {
	o   CreateOpts
	dir *state.Dir
	st  *state.State
	cg  cgroups.Manager
}

// NewBuild claims o.ID (its state directory, locked) for a container of
// o.Config, and starts its record; undo gets what removes the directory.
func NewBuild(o CreateOpts, undo *cleanup.Stack) (*Build, error) {
	dir, err := state.Create(o.Root, o.ID)
	if err != nil {
		return nil, err
	}
	undo.Add(func() { dir.Remove() })
	st, cg, err := o.newState()
	if err != nil {
		return nil, err
	}
	return &Build{o: o, dir: dir, st: st, cg: cg}, nil
}

// StateDir is the container's state directory, where the operation may
// keep its staging mounts (mount.Staging*), which a delete releases.
func (b *Build) StateDir() string { return b.dir.Path() }

// Cgroup manages the container's cgroups (made by CreateCgroup).
func (b *Build) Cgroup() cgroups.Manager { return b.cg }

// CreateCgroup records the container and creates its cgroups with the
// config's limits; with deferPids, all but the pids limit, which
// SetPidsLimit sets once the processes are in (they count against it while
// they are being made). undo gets what kills anything in the cgroups and
// removes them.
func (b *Build) CreateCgroup(deferPids bool, undo *cleanup.Stack) error {
	co := b.o
	if deferPids {
		co.Config = withoutPidsLimit(co.Config)
	}
	return createCgroup(co, b.dir, b.st, b.cg, undo)
}

// SetPidsLimit sets the pids limit CreateCgroup deferred.
func (b *Build) SetPidsLimit() error {
	pids := b.o.Config.Cgroup.Resources.PidsLimit
	if pids == nil {
		return nil
	}
	if err := b.cg.Set(&config.Resources{PidsLimit: pids}); err != nil {
		return fmt.Errorf("setting the pids limit: %w", err)
	}
	return nil
}

// RuntimeHooks runs the config's prestart and createRuntime hooks for
// the container's init pid, as create runs them once init's namespaces
// exist; runc runs them on restore too, and hooks that set up devices or
// the network (the NVIDIA toolkit's, say) are needed by a restored
// container as much. A failing hook is the operation's error.
func (b *Build) RuntimeHooks(pid int) error {
	h := &b.o.Config.Hooks
	if len(h.Prestart)+len(h.CreateRuntime) == 0 {
		return nil
	}
	defer steplog.Step("prestart and createRuntime hooks")()
	return runtimeHooks(context.Background(), h, hookState(newOCIState(b.st, Creating, pid)))
}

// Fail undoes the build with undo, its stack, then runs the poststop
// hooks, whatever step failed, as runc's create and restore destroy a
// container they failed to make, which runs them (the runtime spec asks
// for them after a failed prestart or createRuntime hook, and says
// nothing of a failure before). A delete --force that killed the build
// meanwhile ran none: it waits for the lock, and finds the container
// gone once it has it.
func (b *Build) Fail(undo *cleanup.Stack) {
	undo.Run()
	(&Container{st: b.st, warn: b.o.Warn}).poststop()
}

// RecordCarried records what the container ran and used before the
// checkpoint it is restored from (saved with its init by RecordInit).
func (b *Build) RecordCarried(c *state.Carried) { b.st.Carried = c }

// RecordInit records pid, once running, as the container's init (with its
// start time, which tells it from a later process of the same pid) and
// writes pidFile when one is named.
func (b *Build) RecordInit(pid int, pidFile string) error {
	return recordInit(b.dir, b.st, pid, pidFile)
}

// Finish marks the container complete and lets go of its lock; the
// caller's stack no longer applies. It returns the init's pid.
func (b *Build) Finish() (int, error) {
	if err := b.dir.Created(); err != nil {
		return 0, err
	}
	b.dir.Close()
	return b.st.InitPid, nil
}

// Foreground is a caller waiting in the foreground for a container it made
// (restore without --detach), as run does: signals it gets go on to the
// container's init.
type Foreground struct {
	sigs chan os.Signal
}

// CatchSignals starts catching the signals Wait passes on, before the
// container exists, so none is lost meanwhile.
func CatchSignals() *Foreground {
	f := &Foreground{sigs: make(chan os.Signal, 64)}
	signal.Notify(f.sigs, forwarded...)
	return f
}

// Stop stops catching the signals.
func (f *Foreground) Stop() { signal.Stop(f.sigs) }

// Wait passes the caught signals on to pid, the container's init, reaps
// until it exits, and deletes the container; it returns init's exit code
// (128+N after signal N). Preconditions: pid is the caller's child (or
// the caller is its subreaper).
func (f *Foreground) Wait(root, id string, pid int, warn func(error)) (int, error) {
	go forward(f.sigs, pid, nil)
	code := waitInit(pid)
	return code, Delete(root, id, true, warn)
}
