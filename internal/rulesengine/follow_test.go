package rulesengine

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/procconn"
)

// script is a fake subscription: each Read returns the next step, then
// nothing (a receive timeout) until the test ends.
type script struct {
	name  string
	steps []step
	log   *opLog
}

type step struct {
	evs []procconn.Event
	err error
}

func (s *script) Read(uint32) ([]procconn.Event, error) {
	if len(s.steps) == 0 {
		time.Sleep(time.Millisecond)
		return nil, nil
	}
	st := s.steps[0]
	s.steps = s.steps[1:]
	return st.evs, st.err
}

func (s *script) Close() error {
	s.log.add("close " + s.name)
	return nil
}

// opLog records what the follower did, in order.
type opLog struct {
	mu  sync.Mutex
	ops []string
}

func (l *opLog) add(op string) {
	l.mu.Lock()
	l.ops = append(l.ops, op)
	l.mu.Unlock()
}

func (l *opLog) has(op string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, o := range l.ops {
		if o == op {
			return true
		}
	}
	return false
}

func (l *opLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.ops, ", ")
}

// newFollower is a follower over the given subscriptions, opened in turn
// (then open fails), recording its actions in log.
func newFollower(log *opLog, next []*script) *follower {
	opened := 0
	return &follower{
		open: func() (source, error) {
			if opened == len(next) {
				log.add("open failed")
				return nil, errors.New("proc connector listen: connection refused")
			}
			s := next[opened]
			opened++
			log.add("open " + s.name)
			return s, nil
		},
		handle: func(evs []procconn.Event) {
			for _, ev := range evs {
				log.add(fmt.Sprintf("classify %d", ev.Tgid))
			}
		},
		lost: func(resubscribed bool) { log.add(fmt.Sprintf("scan (resubscribed %v)", resubscribed)) },
		logf: func(f string, a ...any) { log.add("log: " + fmt.Sprintf(f, a...)) },
		fail: func(err error) { log.add("fail: " + err.Error()) },
	}
}

// runUntil runs f over first until log has op, or fails after 5 s.
func runUntil(t *testing.T, f *follower, first *script, log *opLog, op string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { f.run(ctx, first); close(done) }()
	defer func() { cancel(); <-done }()
	for end := time.Now().Add(5 * time.Second); !log.has(op); time.Sleep(time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("never %q; the follower did: %s", op, log)
		}
	}
}

func noDelays(t *testing.T) {
	saved := reopenDelays
	reopenDelays = []time.Duration{0, 0, 0}
	t.Cleanup(func() { reopenDelays = saved })
}

// TestFollowResubscribesAfterReadError: a read error other than an
// overrun closes the subscription, subscribes again, logs it, rescans
// (after the new subscription, so nothing execs unseen in between) and
// goes on classifying the new subscription's events (and closes it at
// its end).
func TestFollowResubscribesAfterReadError(t *testing.T) {
	noDelays(t)
	log := &opLog{}
	first := &script{name: "first", log: log, steps: []step{
		{evs: []procconn.Event{{What: procconn.Exec, Tgid: 100}}},
		{err: fmt.Errorf("proc connector read: %w", unix.ENOTSOCK)},
	}}
	second := &script{name: "second", log: log, steps: []step{{evs: []procconn.Event{{What: procconn.Exec, Tgid: 200}}}}}
	f := newFollower(log, []*script{second})
	runUntil(t, f, first, log, "classify 200")
	want := []string{"classify 100", "close first", "open second", "scan (resubscribed true)", "classify 200", "close second"}
	var got []string
	for _, op := range log.ops {
		if !strings.HasPrefix(op, "log: ") {
			got = append(got, op)
		}
	}
	if strings.Join(got, ", ") != strings.Join(want, ", ") {
		t.Errorf("the follower did %q, want %q", got, want)
	}
	if !strings.Contains(log.String(), "log: rules: proc connector read: socket operation on non-socket; subscribing again") {
		t.Errorf("the read error was not logged: %s", log)
	}
}

// TestFollowOverrunRescansOnly: ENOBUFS lost events on a socket that
// still works: a rescan, no new subscription.
func TestFollowOverrunRescansOnly(t *testing.T) {
	log := &opLog{}
	first := &script{name: "first", log: log, steps: []step{
		{err: procconn.ErrOverrun},
		{evs: []procconn.Event{{What: procconn.Exec, Tgid: 300}}},
	}}
	f := newFollower(log, nil)
	runUntil(t, f, first, log, "classify 300")
	if got, want := log.String(), "scan (resubscribed false), classify 300, close first"; got != want {
		t.Errorf("after an overrun the follower did %q, want %q (the close at its end)", got, want)
	}
}

// TestFollowFailsWhenItCannotSubscribe: no new subscription after every
// attempt ends the worker (fail) instead of serving on blind.
func TestFollowFailsWhenItCannotSubscribe(t *testing.T) {
	noDelays(t)
	log := &opLog{}
	first := &script{name: "first", log: log, steps: []step{{err: fmt.Errorf("proc connector read: %w", unix.EBADF)}}}
	f := newFollower(log, nil)
	runUntil(t, f, first, log, "fail: rules: cannot subscribe again after proc connector read: bad file descriptor: proc connector listen: connection refused")
	if n := strings.Count(log.String(), "open failed"); n != len(reopenDelays) {
		t.Errorf("%d attempts to subscribe, want %d: %s", n, len(reopenDelays), log)
	}
}

// TestFollowFailsOnRepeatedErrors: subscriptions that fail at once, each
// time, end the worker after maxFailures new subscriptions.
func TestFollowFailsOnRepeatedErrors(t *testing.T) {
	noDelays(t)
	log := &opLog{}
	bad := func(name string) *script {
		return &script{name: name, log: log, steps: []step{{err: fmt.Errorf("proc connector read: %w", unix.EIO)}}}
	}
	var next []*script
	for i := 0; i < maxFailures; i++ {
		next = append(next, bad(fmt.Sprint(i)))
	}
	f := newFollower(log, next)
	runUntil(t, f, bad("first"), log, fmt.Sprintf("fail: rules: proc connector read: input/output error (%d read errors in a row)", maxFailures+1))
	if log.has("open failed") {
		t.Errorf("the follower tried a subscription beyond the %d it may: %s", maxFailures, log)
	}
}

// TestReleaseIdle: the kept cgroup.procs files stay open while moves
// come and are closed once none came for idleAfter.
func TestReleaseIdle(t *testing.T) {
	fd, err := unix.Open("/dev/null", unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	e := &Engine{procs: procsFiles{{"/m", "/g"}: fd}, lastMove: monotonic()}
	e.releaseIdle()
	if len(e.procs) != 1 {
		t.Fatalf("a file closed right after a move")
	}
	e.lastMove -= idleAfter
	e.releaseIdle()
	if len(e.procs) != 0 {
		t.Fatalf("files kept %v after a quiet %v", e.procs, idleAfter)
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); !errors.Is(err, unix.EBADF) {
		unix.Close(fd)
		t.Errorf("the file was forgotten, not closed (F_GETFD: %v)", err)
	}
}
