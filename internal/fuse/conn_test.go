package fuse

import (
	"context"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestWaitingReadersHoldNoThreads: of the readers waiting for requests
// one waits in a system call (the one holding the turn), the others are
// parked goroutines, not threads blocked in a system call each, and
// stopping the server still ends every one.
func TestWaitingReadersHoldNoThreads(t *testing.T) {
	const readers = 8
	s := NewServer(nil)
	s.Readers = readers
	// The turn's holder, and Go's poller's thread in epoll_pwait.
	if most := waitingWhileIdle(t, s); most > 2 {
		t.Errorf("%d threads blocked in a wait with %d readers serving an idle connection, want at most 2", most, readers)
	}
}

// waitingWhileIdle serves an idle connection with s (a pipe stands for
// /dev/fuse: both wake pollers alike), returns the most threads seen
// blocked in a wait meanwhile, and checks that stopping s ends it.
func waitingWhileIdle(t *testing.T, s *Server) int {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, r) }()
	most := 0
	for range 10 {
		time.Sleep(20 * time.Millisecond)
		most = max(most, threadsWaiting(t))
	}
	cancel()
	waitServe(t, done)
	return most
}

// threadsWaiting counts this process's threads blocked in a system call
// that waits for a file (read, poll, select, epoll): not a futex or a
// sleep, where the runtime parks its idle threads and sysmon, and not the
// thread counting, in its own read.
func threadsWaiting(t *testing.T) int {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	self := strconv.Itoa(unix.Gettid())
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	skip := map[string]bool{"running": true, strconv.Itoa(unix.SYS_FUTEX): true,
		strconv.Itoa(unix.SYS_NANOSLEEP): true, strconv.Itoa(unix.SYS_CLOCK_NANOSLEEP): true}
	n := 0
	for _, task := range tasks {
		if task.Name() == self {
			continue
		}
		b, err := os.ReadFile("/proc/self/task/" + task.Name() + "/syscall")
		if err != nil {
			continue // the thread exited
		}
		if f := strings.Fields(string(b)); len(f) > 0 && !skip[f[0]] && f[0] != "-1" {
			n++
		}
	}
	return n
}
