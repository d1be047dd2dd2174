package cr

import (
	"fmt"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// dumpInterrupt ends a checkpoint on a signal (CheckpointOpts.Interrupt)
// where CRIU can stop without harm to the container: at its next
// notification, while it waits for lkc's answer and holds no parasite in
// any task (failing it makes CRIU let the tasks go and exit), or at once
// once a lazy dump's images are written and CRIU only serves pages
// (killing it then is the only way: it answers nothing while it waits for
// the restore). Killing CRIU in the middle of its work on a task could
// leave that task running CRIU's parasite code.
type dumpInterrupt struct {
	mu      sync.Mutex
	err     error // why the checkpoint was interrupted; nil until then
	serving bool  // CRIU reported its images written (status-ready)
	abort   chan error
	done    chan struct{}
	release func() // stops catching the signals
}

// watchInterrupt catches the signals catch returns (nil: none) until stop.
func watchInterrupt(catch func() (<-chan os.Signal, func())) *dumpInterrupt {
	i := &dumpInterrupt{abort: make(chan error, 1), done: make(chan struct{}), release: func() {}}
	if catch != nil {
		var sigs <-chan os.Signal
		sigs, i.release = catch()
		go func() {
			select {
			case sig := <-sigs:
				i.signalled(sig)
			case <-i.done:
			}
		}()
	}
	return i
}

func (i *dumpInterrupt) signalled(sig os.Signal) {
	name := sig.String()
	if s, ok := sig.(unix.Signal); ok {
		name = unix.SignalName(s)
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	i.err = fmt.Errorf("interrupted by %s: CRIU stopped, the container is left as it was", name)
	if i.serving {
		i.abort <- i.err
	}
}

// notified is called for each of CRIU's notifications before it is
// answered: it fails the notification once a signal came.
func (i *dumpInterrupt) notified(script string) error {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.err == nil && script == "status-ready" {
		i.serving = true
	}
	return i.err
}

// cause is the interruption, nil without one.
func (i *dumpInterrupt) cause() error {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.err
}

// stop ends the watch and gives the signals back their defaults.
func (i *dumpInterrupt) stop() {
	i.release()
	close(i.done)
}
