package container

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime"

	"golang.org/x/sys/unix"
)

// RunOpts are the options of `lkc run`.
type RunOpts struct {
	CreateOpts
	Detach bool
	Keep   bool // keep the stopped container instead of deleting it
	// Gone, when set, is called once the container's process has exited,
	// before Run deletes the container (neither detached nor kept): the
	// CLI posts the daemon's release there, which then overlaps the
	// delete instead of following it.
	Gone func()
}

// Run creates and starts a container. Detached, it returns at once;
// otherwise it forwards signals to the container and returns its exit code
// (128+N after a death by signal N) once init exits.
func Run(o RunOpts) (int, error) {
	if !o.Detach {
		// Init is forked by an intermediate process that exits: being a
		// subreaper makes it our child to wait for.
		if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
			return 0, fmt.Errorf("prctl(PR_SET_CHILD_SUBREAPER): %w", err)
		}
	}
	if o.Config.Process.Terminal && o.ConsoleSocket == "" && o.Detach {
		return 0, fmt.Errorf("process.terminal is true: a detached container needs --console-socket")
	}
	term, err := newTerminal(o.Config.Process.Terminal && o.ConsoleSocket == "" && !o.Detach)
	if err != nil {
		return 0, err
	}
	o.consoleConn = term.initEnd()
	var sigs *forwarding
	if !o.Detach {
		sigs = startForwarding()
	}
	c, err := create(o.CreateOpts)
	if err == nil {
		if err = term.attach(); err != nil {
			c.destroy()
		}
	}
	if err != nil {
		sigs.stop()
		term.close()
		return 0, err
	}
	sigs.wait()
	if err := c.release(); err != nil {
		sigs.stop()
		c.destroy()
		term.close()
		return 0, err
	}
	if o.Detach {
		c.close()
		return 0, nil
	}
	p := c.takeInit()
	c.close()
	go forward(sigs.c, c.st.InitPid, term)
	p.closeAfterExec()
	code := waitInit(c.st.InitPid)
	term.close()
	if o.Keep {
		return code, nil
	}
	if o.Gone != nil {
		o.Gone()
	}
	if err := c.deleteStopped(o.Root); err != nil {
		return code, err
	}
	return code, nil
}

// deleteStopped deletes the container Run started once it has stopped, as
// Delete with force would, but from the record Run holds, unless something
// changed the recorded state meanwhile (then it is Delete).
func (c *Container) deleteStopped(root string) error {
	err := c.dir.Relock(true)
	if errors.Is(err, ErrNotExist) {
		return nil // deleted meanwhile, which Delete with force accepts too
	}
	if err != nil {
		return err
	}
	if !c.dir.Unchanged() {
		c.close()
		return Delete(root, c.st.ID, true, c.warn)
	}
	return c.destroy()
}

// forwarding is the signal registration of a foreground run or exec.
// os/signal enables each signal with a round trip to a runtime thread of its
// own (and with one P, two handoffs of it): about 1 ms for the forwarded
// list, and as much again to stop. So it runs in a goroutine started before
// the container's process, on a second P where there is a second CPU
// (which cli.procs gives run and exec from the start, so that setting it
// here changes nothing): it then overlaps with the start instead of
// taking turns with it (exec: 0.5-1 ms off the wall time here).
// A run that got its container going never stops it: the process exits
// after Run.
type forwarding struct {
	c    chan os.Signal
	done chan struct{}
}

func startForwarding() *forwarding {
	if runtime.NumCPU() > 1 {
		runtime.GOMAXPROCS(2)
	}
	f := &forwarding{c: make(chan os.Signal, 64), done: make(chan struct{})}
	go func() {
		signal.Notify(f.c, forwarded...)
		close(f.done)
	}()
	return f
}

// wait returns once every forwarded signal is caught; f may be nil.
func (f *forwarding) wait() {
	if f != nil {
		<-f.done
	}
}

// stop undoes the registration, for a run that failed; f may be nil.
func (f *forwarding) stop() {
	if f != nil {
		<-f.done
		signal.Stop(f.c)
	}
}

// forwarded lists the signals `run` passes on to the container: every
// standard signal a process can catch but SIGCHLD (ours), SIGURG (the Go
// runtime's) and SIGPIPE. An explicit list: asking os/signal for all signals
// costs up to several milliseconds on the start path.
var forwarded = func() []os.Signal {
	var sigs []os.Signal
	for s := unix.Signal(1); s <= 31; s++ {
		switch s {
		case unix.SIGKILL, unix.SIGSTOP, unix.SIGCHLD, unix.SIGURG, unix.SIGPIPE:
			continue
		}
		sigs = append(sigs, s)
	}
	return sigs
}()

// forward passes signals on to pid; a window-size change resizes the
// terminal lkc serves instead, which signals the container itself.
func forward(sigs chan os.Signal, pid int, term *terminal) {
	for s := range sigs {
		if s == unix.SIGWINCH && term != nil {
			term.resize()
			continue
		}
		unix.Kill(pid, s.(unix.Signal))
	}
}

// waitInit reaps children until init has exited and returns its exit code.
func waitInit(pid int) int {
	for {
		var ws unix.WaitStatus
		got, err := unix.Wait4(-1, &ws, 0, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 255
		}
		if got != pid {
			continue
		}
		if ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return ws.ExitStatus()
	}
}
