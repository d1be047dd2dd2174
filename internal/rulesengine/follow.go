package rulesengine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/procconn"
)

// source is a subscription to the kernel's process events: a
// *procconn.Conn, or a fake whose reads fail when a test says.
type source interface {
	Read(mask uint32) ([]procconn.Event, error)
	Close() error
}

// reopenDelays are the waits before each attempt to subscribe again
// after a read error: about a second in all, then the worker gives up.
var reopenDelays = []time.Duration{0, 100 * time.Millisecond, time.Second}

// maxFailures is how many read errors in a row (no good read between
// them) the follower survives by subscribing again: a socket that fails
// as soon as it is made will not heal by itself.
const maxFailures = 3

// follower reads a subscription's events and keeps it alive. An overrun
// (ENOBUFS) lost events but left the socket working: a rescan covers
// them. Any other read error leaves the socket in a state nobody can
// trust (and a reader that merely stopped would leave the daemon looking
// healthy while no new process is classified), so the follower closes
// it, subscribes again, and then rescans: subscribed first, so a process
// that execs after the scan read /proc still sends its event. When it
// cannot subscribe again, fail ends the worker, whose holder starts
// another (the daemon is crash-only, and a new worker's start scan
// classifies everything).
type follower struct {
	open   func() (source, error)
	handle func([]procconn.Event)
	// lost rescans after lost events; resubscribed says the lost events
	// came from a read error rather than an overrun.
	lost func(resubscribed bool)
	logf func(string, ...any)
	fail func(error)
	// after runs after each good read, with events or none (a timeout),
	// nil for nothing.
	after func()
}

// run follows c until ctx ends (or fail was called); it closes the
// sources it holds.
func (f *follower) run(ctx context.Context, c source) {
	failures := 0
	defer func() { c.Close() }()
	for ctx.Err() == nil {
		evs, err := c.Read(events)
		switch {
		case errors.Is(err, procconn.ErrOverrun):
			f.lost(false)
		case err != nil:
			failures++
			c.Close()
			if c, err = f.resubscribe(ctx, err, failures); err != nil {
				c = nopSource{}
				if ctx.Err() == nil {
					f.fail(err)
				}
				return
			}
			f.lost(true)
		default:
			failures = 0
			if len(evs) > 0 {
				f.handle(evs)
			}
			if f.after != nil {
				f.after()
			}
		}
	}
}

// resubscribe opens a new subscription after read error cause, trying
// each of reopenDelays.
func (f *follower) resubscribe(ctx context.Context, cause error, failures int) (source, error) {
	if failures > maxFailures {
		return nil, fmt.Errorf("rules: %w (%d read errors in a row)", cause, failures)
	}
	f.logf("rules: %v; subscribing again", cause)
	var err error
	for _, d := range reopenDelays {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(d):
		}
		var c source
		if c, err = f.open(); err == nil {
			f.logf("rules: subscribed again; classifying every process (events were lost)")
			return c, nil
		}
		f.logf("rules: subscribing again: %v", err)
	}
	return nil, fmt.Errorf("rules: cannot subscribe again after %v: %w", cause, err)
}

// nopSource stands for a closed subscription.
type nopSource struct{}

func (nopSource) Read(uint32) ([]procconn.Event, error) { return nil, nil }
func (nopSource) Close() error                          { return nil }

// BreakEnv, set to the path of a file in the daemon's environment, makes
// the rules engine's next read of its subscription after that file
// appears fail for real, once (it removes the file): the subscription's
// socket is replaced by /dev/null, so the kernel answers ENOTSOCK and
// the subscription is gone. The integration test of the recovery uses
// it; no kernel event makes a read fail on demand.
const BreakEnv = "LKC_TEST_RULES_READ_ERROR"

// breakable is a connector whose socket a test can break (BreakEnv).
type breakable struct {
	*procconn.Conn
	marker string
}

func (b breakable) Read(mask uint32) ([]procconn.Event, error) {
	if os.Remove(b.marker) == nil {
		null, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err == nil {
			unix.Dup3(null, b.Fd(), unix.O_CLOEXEC)
			unix.Close(null)
		}
	}
	return b.Conn.Read(mask)
}

// openSource subscribes to the engine's events.
func openSource() (source, error) {
	c, err := procconn.Open(events)
	if err != nil {
		return nil, err
	}
	if m := os.Getenv(BreakEnv); m != "" {
		return breakable{c, m}, nil
	}
	return c, nil
}
