package container

import (
	"context"
	"encoding/json"
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/config"
	"github.com/lkc-containers/lkc/internal/hooks"
	"github.com/lkc-containers/lkc/internal/state"
	"github.com/lkc-containers/lkc/internal/steplog"
)

// Where each hook point runs:
//   - prestart, createRuntime: here, in `lkc create`, when init reports its
//     mounts done and waits before pivot_root (the handshake in spawn.go);
//     in `lkc restore` once CRIU made the init's namespaces
//     (Build.RuntimeHooks);
//   - createContainer: by init, at that same point, in the container's
//     namespaces; startContainer: by init once started, before execve;
//   - poststart: by start once the process runs; poststop: by delete once
//     the processes are dead, before the cgroup and state go, and after a
//     create or restore that failed once it claimed the id (Build.Fail).
//     Failures of these two are warnings, as the spec asks.

func newOCIState(st *state.State, status string, pid int) OCIState {
	return OCIState{
		OCIVersion: st.Config.OCIVersion, ID: st.ID, Status: status, Pid: pid,
		Bundle: st.Bundle, Rootfs: st.Rootfs, Created: st.Created,
		Owner: st.Owner, Annotations: st.Config.Annotations,
	}
}

// hookState is the OCI state a hook reads on its stdin.
func hookState(s OCIState) []byte {
	data, err := json.Marshal(s)
	if err != nil {
		// Strings, numbers and a time of now: encoding cannot fail.
		panic(fmt.Sprintf("encoding container state: %v", err))
	}
	return data
}

// hasCreateHooks reports whether a create must give init the hooks' state.
func hasCreateHooks(h *config.Hooks) bool {
	return len(h.Prestart)+len(h.CreateRuntime)+len(h.CreateContainer)+len(h.StartContainer) > 0
}

// runtimeHooks runs the hooks that belong to the runtime's namespaces
// during create: prestart (deprecated) first, then createRuntime.
func runtimeHooks(ctx context.Context, h *config.Hooks, state []byte) error {
	if err := hooks.RunContext(ctx, hooks.Prestart, h.Prestart, state); err != nil {
		return err
	}
	return hooks.RunContext(ctx, hooks.CreateRuntime, h.CreateRuntime, state)
}

// warnf passes a failure that must not stop the operation to the caller.
func (c *Container) warnf(err error) {
	if c.warn != nil {
		c.warn(fmt.Errorf("container %s: %w", c.st.ID, err))
	}
}

func (c *Container) poststart() {
	h := c.st.Config.Hooks.Poststart
	if len(h) > 0 {
		defer steplog.Step("poststart hooks")()
		hooks.RunAll(hooks.Poststart, h, hookState(c.ociState()), c.warnf)
	}
}

func (c *Container) poststop() {
	h := c.st.Config.Hooks.Poststop
	if len(h) > 0 {
		defer steplog.Step("poststop hooks")()
		hooks.RunAll(hooks.Poststop, h, hookState(newOCIState(c.st, Stopped, 0)), c.warnf)
	}
}

// waitExec waits, after start released init through the fifo open as w,
// until init has closed the fifo: it closes it on execve (close-on-exec) or
// by dying. Init writes why it failed (a startContainer hook, the exec
// itself) into the fifo before it exits, which is returned.
func (c *Container) waitExec(w int) error {
	fds := []unix.PollFd{{Fd: int32(w)}} // POLLERR comes once no reader is left
	for {
		_, err := unix.Poll(fds, -1)
		if err == nil {
			break
		}
		if err != unix.EINTR {
			return fmt.Errorf("container %s: waiting for init to exec: %w", c.st.ID, err)
		}
	}
	// The fifo keeps its contents while our write end is open.
	r, err := unix.Open(c.fifo(), unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: c.fifo(), Err: err}
	}
	defer unix.Close(r)
	buf := make([]byte, 4096)
	n, _ := unix.Read(r, buf)
	switch {
	case n <= 0:
		return nil
	case buf[0] == 0:
		// The byte start wrote is still there: init died unreleased.
		return fmt.Errorf("container %s: init exited before it was started", c.st.ID)
	}
	return fmt.Errorf("container %s: starting: %s", c.st.ID, buf[:n])
}
