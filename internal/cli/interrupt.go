package cli

import (
	"context"
	"errors"
	"os"
	"os/signal"

	"golang.org/x/sys/unix"
)

// SignalledEnv, set to a file's path in lkc's environment, makes
// checkpoint, restore and migrate --all add a line to that file each time
// they have acted on a signal (their stop context, or checkpoint and
// migrate --all's abort context, has ended): the point a test waits for
// before it lets them go on, as the signal's handling is lkc's own
// business and shows nowhere else.
const SignalledEnv = "LKC_TEST_EVACUATE_SIGNALLED"

// errSecondSignal is the cause of the abort context's end: what an
// aborted checkpoint says stopped it.
var errSecondSignal = errors.New("a second signal")

// interruptible returns the contexts of an --all command. The first
// SIGINT or SIGTERM ends stop: no more containers start, and those under
// way finish. The second ends abort, its cause errSecondSignal: those
// under way stop at their next safe point, each container left as it was
// (a dump's CRIU stopped, a migration rolled back), where the command has
// one (restore --all has none: a restore stopped half way would leave its
// container half made, so it waits for them still, naming them). The
// signals' defaults then come back, so one more ends lkc at once. release
// ends both contexts and the handling.
func interruptible() (stop, abort context.Context, release func()) {
	c := make(chan os.Signal, 2)
	signal.Notify(c, unix.SIGINT, unix.SIGTERM)
	stop, endStop := context.WithCancel(context.Background())
	abort, endAbort := context.WithCancelCause(context.Background())
	stages := []context.CancelFunc{endStop, func() { endAbort(errSecondSignal) }}
	done := make(chan struct{})
	go func() {
		defer signal.Stop(c)
		for i, end := range stages {
			select {
			case <-c:
			case <-done:
				return
			}
			end()
			if i == len(stages)-1 {
				// The defaults are back before the hook says lkc acted:
				// a signal sent then ends lkc, and is not lost in c.
				signal.Stop(c)
			}
			signalled()
		}
	}()
	return stop, abort, func() {
		close(done)
		signal.Stop(c)
		endStop()
		endAbort(nil)
	}
}

// signalled adds a line to SignalledEnv's file, when it is set.
func signalled() {
	path := os.Getenv(SignalledEnv)
	if path == "" {
		return
	}
	if f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600); err == nil {
		f.WriteString("signalled\n")
		f.Close()
	}
}
