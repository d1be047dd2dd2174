// Package cleanup undoes partial work: an operation that makes several
// things (a state directory, a cgroup, mounts, helper processes) pushes
// what undoes each on one stack as it goes, and a failure runs the stack
// in reverse, so nothing is left half made. Its own package because the
// operations that build a container live in two (container's create, cr's
// restore), and one restore step can add to the stack another package
// started.
package cleanup

import "sync"

// Stack is the clean-up of one operation, in the order the work was done;
// the zero value is empty and ready.
type Stack struct {
	entries []entry
}

type entry struct {
	f func()
	// always marks staging: work needed only while the operation runs,
	// undone when it succeeds too (see Done).
	always bool
}

// Add pushes what undoes one step if the operation fails.
func (s *Stack) Add(f func()) { s.entries = append(s.entries, entry{f: f}) }

// Always pushes what undoes a step the operation needs only while it runs
// (a restore's staging mounts): Run undoes it with the rest, and Done hands
// it back to be undone after a success.
func (s *Stack) Always(f func()) { s.entries = append(s.entries, entry{f: f, always: true}) }

// Run undoes everything, last step first; the operation failed.
func (s *Stack) Run() {
	for i := len(s.entries) - 1; i >= 0; i-- {
		s.entries[i].f()
	}
	s.entries = nil
}

// Done forgets what undoes the operation, which succeeded, and returns what
// undoes its staging (Always), last first, for the caller to run now or
// later.
func (s *Stack) Done() func() {
	var staging []func()
	for i := len(s.entries) - 1; i >= 0; i-- {
		if s.entries[i].always {
			staging = append(staging, s.entries[i].f)
		}
	}
	s.entries = nil
	return func() {
		for _, f := range staging {
			f()
		}
	}
}

// Background runs start on another goroutine, beside the caller's own
// work, and returns what waits for its result (as often as asked). If the
// operation fails, the stack releases a result that succeeded.
func Background[T any](start func() (T, error), release func(T), s *Stack) func() (T, error) {
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1)
	go func() {
		v, err := start()
		ch <- result{v, err}
	}()
	wait := sync.OnceValues(func() (T, error) {
		r := <-ch
		return r.v, r.err
	})
	s.Add(func() {
		if v, err := wait(); err == nil {
			release(v)
		}
	})
	return wait
}
