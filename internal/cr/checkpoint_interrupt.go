package cr

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// ErrInterrupted marks a checkpoint that a signal (Interrupts) or its
// caller (Abort) stopped: CRIU was stopped where it could be without harm,
// and the container is left as it was.
var ErrInterrupted = errors.New("interrupted")

// dumpInterrupt ends a checkpoint on a signal (CheckpointOpts.Interrupts)
// or once the caller's Abort context ends, where CRIU can stop without
// harm to the container: at its next notification, while it waits for
// lkc's answer and holds no parasite in any task (failing it makes CRIU
// let the tasks go and exit), or at once once a lazy dump's images are
// written and CRIU only serves pages (killing it then is the only way: it
// answers nothing while it waits for the restore). Killing CRIU in the
// middle of its work on a task could leave that task running CRIU's
// parasite code.
type dumpInterrupt struct {
	mu      sync.Mutex
	err     error // why the checkpoint was interrupted; nil until then
	serving bool  // CRIU reported its images written (status-ready)
	abort   chan error
	done    chan struct{}
	release func()          // stops catching the signals
	caller  context.Context // Abort; never nil
}

// watchInterrupt catches the signals catch returns (nil: none) until
// stop, and watches abort (nil: never ends).
func watchInterrupt(catch func() (<-chan os.Signal, func()), abort context.Context) *dumpInterrupt {
	if abort == nil {
		abort = context.Background()
	}
	i := &dumpInterrupt{abort: make(chan error, 1), done: make(chan struct{}), release: func() {}, caller: abort}
	var sigs <-chan os.Signal
	if catch != nil {
		sigs, i.release = catch()
	}
	go func() {
		select {
		case sig := <-sigs:
			i.signalled(sig)
		case <-abort.Done():
			i.aborted()
		case <-i.done:
		}
	}()
	return i
}

func (i *dumpInterrupt) signalled(sig os.Signal) {
	name := sig.String()
	if s, ok := sig.(unix.Signal); ok {
		name = unix.SignalName(s)
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	i.interrupt(name)
}

// aborted records the end of the caller's Abort, named by its cause.
func (i *dumpInterrupt) aborted() {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.sawAbort()
}

// interrupt records the first interruption, by what; CRIU serving pages
// is stopped at once. Preconditions: i.mu is held.
func (i *dumpInterrupt) interrupt(by string) {
	if i.err != nil {
		return
	}
	i.err = fmt.Errorf("%w by %s: CRIU stopped, the container is left as it was", ErrInterrupted, by)
	if i.serving {
		i.abort <- i.err
	}
}

// notified is called for each of CRIU's notifications before it is
// answered: it fails the notification once a signal came or Abort ended.
func (i *dumpInterrupt) notified(script string) error {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.sawAbort()
	if i.err == nil && script == "status-ready" {
		i.serving = true
	}
	return i.err
}

// cause is the interruption, nil without one.
func (i *dumpInterrupt) cause() error {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.sawAbort()
	return i.err
}

// sawAbort records an Abort that has ended before the watch has seen it:
// whoever ended it may count on the next notification failing.
// Preconditions: i.mu is held.
func (i *dumpInterrupt) sawAbort() {
	if i.caller.Err() != nil {
		i.interrupt(fmt.Sprint(context.Cause(i.caller)))
	}
}

// stop ends the watch and gives the signals back their defaults.
func (i *dumpInterrupt) stop() {
	i.release()
	close(i.done)
}
