// Package hooks runs OCI runtime-spec hooks: programs a container's creator
// asks the runtime to run at points of the lifecycle (to set up networking,
// say), each with the container's state JSON on its stdin and an optional
// timeout. It knows nothing of where a point runs: the runtime
// (internal/container) and init call it at the right moment and in the
// right namespaces, which is why it is kept apart from both.
package hooks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/lkc-containers/lkc/internal/config"
)

// Point names, as config.json and `lkc features` spell them.
const (
	Prestart        = "prestart"
	CreateRuntime   = "createRuntime"
	CreateContainer = "createContainer"
	StartContainer  = "startContainer"
	Poststart       = "poststart"
	Poststop        = "poststop"
)

// excerpt is how much of a failed hook's stderr its error quotes.
const excerpt = 256

// Run runs the hooks of point in order, each fed state, and stops at the
// first failure: for the points where a failing hook fails the operation.
func Run(point string, hs []config.Hook, state []byte) error {
	return RunContext(context.Background(), point, hs, state)
}

// RunContext is Run that kills the running hook, and runs no more, once
// ctx is done: the operation they belong to was called off.
func RunContext(ctx context.Context, point string, hs []config.Hook, state []byte) error {
	for i, h := range hs {
		if err := runOne(ctx, h, state); err != nil {
			return fmt.Errorf("%s hook #%d %s: %w", point, i, h.Path, err)
		}
	}
	return nil
}

// RunAll runs every hook of point, passing each failure to warn: for
// poststart and poststop, where the spec says a failure is a warning and the
// remaining hooks and the lifecycle go on as if it had succeeded.
func RunAll(point string, hs []config.Hook, state []byte, warn func(error)) {
	for i, h := range hs {
		if err := runOne(context.Background(), h, state); err != nil {
			warn(fmt.Errorf("%s hook #%d %s: %w", point, i, h.Path, err))
		}
	}
}

func runOne(ctx context.Context, h config.Hook, state []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if h.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(h.Timeout)*time.Second)
		defer cancel()
	}
	var stderr capped
	cmd := exec.CommandContext(ctx, h.Path)
	cmd.Args = h.Args
	if len(cmd.Args) == 0 {
		cmd.Args = []string{h.Path}
	}
	// A hook with an env gets that alone; one without inherits lkc's
	// (exec.Cmd's nil Env), as runc's hooks do.
	cmd.Env = h.Env
	cmd.Stdin = bytes.NewReader(state)
	cmd.Stderr = &stderr
	// Its own process group, so a timeout kills what the hook started too;
	// and a bound on waiting for its output in case something escaped.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	switch {
	case err == nil:
		return nil
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return fmt.Errorf("timed out after %ds and was killed", h.Timeout)
	case stderr.Len() > 0:
		return fmt.Errorf("%w: %s", err, stderr.line())
	default:
		return err
	}
}

// capped keeps the first bytes written to it, enough to quote in an error,
// and drops the rest so a chatty hook cannot grow lkc's memory.
type capped struct{ bytes.Buffer }

func (c *capped) Write(p []byte) (int, error) {
	if room := excerpt - c.Len(); room > 0 {
		c.Buffer.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

// line is the captured text on one line, for a one-line error.
func (c *capped) line() string {
	return strings.Join(strings.Fields(c.String()), " ")
}
