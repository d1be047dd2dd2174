package container

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/cgroups"
	"github.com/lkc-containers/lkc/internal/mount"
	"github.com/lkc-containers/lkc/internal/state"
	"github.com/lkc-containers/lkc/internal/steplog"
)

// Delete removes a container. A running or paused one needs force, which
// kills it first. With force, deleting a container that does not exist is
// not an error, so cleanup after a crash can always call it. A failing
// poststop hook goes to warn (which may be nil), not the error.
//
// With force, delete does not wait behind another command on the
// container: it kills the container's processes, which ends a create
// stuck in its hooks or in init's setup (that create then fails and
// removes what it made), and then takes the lock. A checkpoint under way
// is the exception (state.Dir.MarkDumping says why): delete waits for it
// and then deletes what it left, a running container or none.
func Delete(root, id string, force bool, warn func(error)) error {
	defer steplog.Step("delete")()
	dir, err := state.TryOpen(root, id, true)
	if errors.Is(err, state.ErrBusy) {
		steplog.Printf("delete: container %s is busy", id)
		if force {
			killBusy(root, id)
		}
		end := steplog.Step("delete: wait for the lock")
		dir, err = state.Open(root, id, true)
		end()
	}
	if errors.Is(err, ErrNotExist) && force {
		return nil
	}
	if err != nil {
		return err
	}
	st, err := dir.Load()
	if errors.Is(err, ErrNotExist) {
		return destroyUnrecorded(dir)
	}
	if errors.Is(err, state.ErrCorrupt) && force {
		return destroySalvaged(dir, warn)
	}
	if err != nil {
		dir.Close()
		if errors.Is(err, state.ErrCorrupt) {
			return fmt.Errorf("%w (delete --force removes what can be found of it)", err)
		}
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

// destroyUnrecorded removes a state directory without a record: left by
// a create that died before recording anything, by a restore killed
// before it recorded (its networks may be attached already: the restore
// runs their ADD beside its first steps, and records them in the
// directory first), or by a create that has yet to lock it (it will
// fail). Cleared under the same lock: between two locks a create could
// record a whole container that removing the directory would orphan. A
// DEL that fails keeps the directory, so a later delete tries again.
func destroyUnrecorded(dir *state.Dir) error {
	for _, release := range []func(string) error{detachNetwork, mount.ReleaseStaging} {
		if err := release(dir.Path()); err != nil {
			dir.Close()
			return err
		}
	}
	return dir.Remove()
}

// killBusy kills, without the lock, the init and every process of a
// container another command holds. Best effort: the destroy under the
// lock that follows is the cleanup that must succeed.
func killBusy(root, id string) {
	dir, err := state.Peek(root, id)
	if err != nil {
		return
	}
	defer dir.Close()
	if dir.Dumping() {
		steplog.Printf("delete: container %s is being checkpointed: waiting for it", id)
		return
	}
	st, err := dir.Load()
	if errors.Is(err, state.ErrCorrupt) {
		st, err = dir.Salvage(), nil
	}
	if err != nil {
		return
	}
	// Marked only when a create holds it: a mark left in the directory of
	// a delete under way would keep its removal from emptying it.
	if c := (&Container{st: st, dir: dir, busy: true}); c.status() == Creating {
		dir.MarkDeleted()
	}
	killInit(st)
	signalAll(salvagedCgroup(st), unix.SIGKILL)
}

// killInit kills the recorded init through a pidfd, once it is sure the
// pid is still that process.
func killInit(st *state.State) {
	if st.InitPid == 0 {
		return
	}
	pidfd, err := unix.PidfdOpen(st.InitPid, 0)
	if err != nil {
		return
	}
	defer unix.Close(pidfd)
	if state.Alive(st.InitPid, st.InitStart) {
		unix.PidfdSendSignal(pidfd, unix.SIGKILL, nil, 0)
	}
}

// destroy kills whatever is left of the container, runs the poststop hooks
// and removes its cgroup and state. It works from any state a crash may have
// left.
func (c *Container) destroy() error {
	cg := c.cgroup()
	end := steplog.Step("delete: kill processes")
	err := cgroups.KillAll(cg)
	end()
	if err != nil {
		c.close()
		return err
	}
	c.poststop()
	if hasNetwork(c.st.Config) {
		if err := detachNetwork(c.dir.Path()); err != nil {
			c.close()
			return err
		}
	}
	if err := releasePolicy(c.dir.Path()); err != nil {
		c.close()
		return err
	}
	end = steplog.Step("delete: remove cgroup")
	err = cg.Destroy()
	end()
	if err != nil {
		c.close()
		return err
	}
	if err := c.detachRootfs(); err != nil {
		c.close()
		return err
	}
	if err := mount.ReleaseStaging(c.dir.Path()); err != nil {
		c.close()
		return err
	}
	// Before the record that names it: a failure leaves both for the
	// next delete. (A salvaged record is not trusted with this: the
	// receiver that made the bundle removes it once its container is gone.)
	if c.st.OwnedBundle {
		if err := os.RemoveAll(c.st.Bundle); err != nil {
			c.close()
			return fmt.Errorf("removing the bundle of %s: %w", c.st.ID, err)
		}
	}
	return c.dir.Remove()
}

// destroySalvaged is destroy for a container whose state file is corrupt:
// it works from what Salvage finds, with the cgroup lkc names by default
// when the paths are lost. The poststop hooks were in the lost config.
func destroySalvaged(dir *state.Dir, warn func(error)) error {
	st := dir.Salvage()
	killInit(st)
	c := &Container{st: st, dir: dir}
	cg := salvagedCgroup(st)
	if err := cgroups.KillAll(cg); err != nil {
		c.close()
		return err
	}
	if warn != nil {
		warn(fmt.Errorf("container %s: state unreadable: poststop hooks not run", st.ID))
	}
	if err := detachNetwork(dir.Path()); err != nil {
		c.close()
		return err
	}
	if err := releasePolicy(dir.Path()); err != nil {
		c.close()
		return err
	}
	if err := cg.Destroy(); err != nil {
		c.close()
		return err
	}
	if err := c.detachRootfs(); err != nil {
		c.close()
		return err
	}
	if err := mount.ReleaseStaging(dir.Path()); err != nil {
		c.close()
		return err
	}
	return dir.Remove()
}

// detachRootfs detaches the bind of the rootfs lkc made in the caller's
// mount namespace, if it made one.
func (c *Container) detachRootfs() error {
	if c.st.RootfsMount == 0 {
		return nil
	}
	return mount.DetachRootfs(c.st.Rootfs, c.st.RootfsMount)
}

// salvagedCgroup is the cgroup of a container whose record may be partial:
// the recorded one, else, where it exists, the one lkc makes when the
// config names none (lkc/<id> beneath the caller's cgroup).
func salvagedCgroup(st *state.State) cgroups.Manager {
	if len(st.CgroupPaths) > 0 {
		return cgroups.FromPaths(st.CgroupPaths, st.CgroupParents)
	}
	found := map[string]string{}
	if cg, err := cgroups.New(cgroups.DefaultHost, "lkc/"+st.ID); err == nil {
		for ctrl, dir := range cg.Paths() {
			if dirExists(dir) {
				found[ctrl] = dir
			}
		}
	}
	return cgroups.FromPaths(found, nil)
}

func dirExists(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.IsDir()
}
