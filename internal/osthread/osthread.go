// Package osthread runs code on an OS thread of its own that ends with
// it: for work that leaves its thread in a state no other goroutine may
// inherit (a namespace joined, v1 cgroups moved into, an unshared cwd).
package osthread

import (
	"runtime"

	"golang.org/x/sys/unix"
)

// Spare runs fn on a locked thread that is not the process's main thread,
// and waits for it. The thread is never handed back: fn's goroutine
// returns still locked, and Go ends the thread. The main thread is kept
// out because Go cannot end it and parks it instead, in whatever state fn
// left, for good; and the kernel shows the process's cgroups and
// namespaces by its main thread, so the whole process would seem to have
// moved (a container's cgroup would count it, and a kill of that cgroup's
// processes would kill lkc).
func Spare(fn func()) {
	done := make(chan struct{})
	go func() {
		runtime.LockOSThread()
		if unix.Gettid() == unix.Getpid() {
			// Held by this goroutine, the main thread leaves fn to another.
			Spare(fn)
			runtime.UnlockOSThread()
			close(done)
			return
		}
		defer close(done)
		fn()
	}()
	<-done
}
