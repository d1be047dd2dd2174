package container

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/cgroups"
	"github.com/lkc-containers/lkc/internal/state"
)

// Event is one line of `lkc events`, shaped as runc's: type "stats" with
// cgroups.Stats as data, type "oom" without data, or one of the daemon's
// OOM policy events (oom-held, policy-kill, ..., docs/oom.md).
type Event struct {
	Type string `json:"type"`
	ID   string `json:"id"`
	Data any    `json:"data,omitempty"`
}

// oomGrace is how long a stream ending because init exited still waits for
// an OOM notification in flight: a kill is often what ends the container.
const oomGrace = 100 * time.Millisecond

// Stats returns a stats event of a container that is not stopped.
func Stats(root, id string) (*Event, error) {
	c, err := load(root, id, false)
	if err != nil {
		return nil, err
	}
	defer c.close()
	if s := c.status(); s == Stopped {
		return nil, wrongState(id, "read stats of", s)
	}
	return statsEvent(id, c.cgroup())
}

func statsEvent(id string, cg cgroups.Manager) (*Event, error) {
	s, err := cg.Stats()
	if err != nil {
		return nil, fmt.Errorf("container %s: %w", id, err)
	}
	return &Event{Type: "stats", ID: id, Data: s}, nil
}

// Events calls emit with a stats event every interval and an oom event
// each time the kernel OOM-kills in the container, until its init exits
// (then it returns nil), ctx ends, or emit fails. It holds no lock while it
// streams, so the container can be killed and deleted meanwhile.
func Events(ctx context.Context, root, id string, interval time.Duration, emit func(*Event) error) error {
	if interval <= 0 {
		return fmt.Errorf("events interval %v: must be positive", interval)
	}
	c, err := load(root, id, false)
	if err != nil {
		return err
	}
	st, status, cg := c.st, c.status(), c.cgroup()
	c.close()
	if status == Stopped {
		return wrongState(id, "watch events of", status)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	exited, err := initExit(ctx, st)
	if err != nil {
		return err
	}
	ooms, err := cg.OOMEvents(ctx)
	if errors.Is(err, cgroups.ErrNotSupported) {
		ooms = nil // no memory controller: stats only
	} else if err != nil {
		return fmt.Errorf("container %s: %w", id, err)
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	plog := newPolicyLog(root, id)
	ptick := time.NewTicker(policyTick)
	defer ptick.Stop()
	oom := &Event{Type: "oom", ID: id}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-exited:
			return drainOOM(ooms, oom, emit)
		case _, ok := <-ooms:
			if !ok {
				ooms = nil // cgroup removed; init's exit ends the stream
				continue
			}
			if err := emit(oom); err != nil {
				return err
			}
		case <-ptick.C:
			for _, ev := range plog.next() {
				if err := emit(ev); err != nil {
					return err
				}
			}
		case <-tick.C:
			ev, err := statsEvent(id, cg)
			if err != nil {
				if !state.Alive(st.InitPid, st.InitStart) {
					return nil
				}
				return err
			}
			if err := emit(ev); err != nil {
				return err
			}
		}
	}
}

// drainOOM reports OOM kills that arrive within oomGrace after init exited.
func drainOOM(ooms <-chan struct{}, oom *Event, emit func(*Event) error) error {
	if ooms == nil {
		return nil
	}
	grace := time.NewTimer(oomGrace)
	defer grace.Stop()
	for {
		select {
		case _, ok := <-ooms:
			if !ok {
				return nil
			}
			if err := emit(oom); err != nil {
				return err
			}
		case <-grace.C:
			return nil
		}
	}
}

// initExit returns a channel closed when the container's init exits. It
// waits on a pidfd through the runtime poller, so no goroutine sleeps.
func initExit(ctx context.Context, st *state.State) (<-chan struct{}, error) {
	done := make(chan struct{})
	fd, err := unix.PidfdOpen(st.InitPid, unix.PIDFD_NONBLOCK)
	if err == unix.ESRCH || (err == nil && !state.Alive(st.InitPid, st.InitStart)) {
		if err == nil {
			unix.Close(fd)
		}
		close(done)
		return done, nil
	}
	if err != nil {
		return nil, fmt.Errorf("container %s: opening init: %w", st.ID, err)
	}
	f := os.NewFile(uintptr(fd), "pidfd")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("container %s: watching init: %w", st.ID, err)
	}
	stop := context.AfterFunc(ctx, func() { f.Close() })
	go func() {
		defer close(done)
		defer stop()
		defer f.Close()
		// A pidfd turns readable when the process exits.
		rc.Read(func(fd uintptr) bool {
			p := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
			for {
				n, err := unix.Poll(p, 0)
				if err != unix.EINTR {
					return err != nil || n > 0
				}
			}
		})
	}()
	return done, nil
}
