package fuse

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// TestPolledReadersHoldNoThreads: once the kernel asks no FUSE_POLL, no
// reader waits in a system call of its own, not even the turn's holder:
// only Go's poller's thread waits (a pipe stands for /dev/fuse), and
// stopping the server still ends every reader.
func TestPolledReadersHoldNoThreads(t *testing.T) {
	const readers = 8
	s := NewServer(nil)
	s.Readers = readers
	s.pollsStopped.Store(true)
	if most := waitingWhileIdle(t, s); most > 1 {
		t.Errorf("%d threads blocked in a wait with %d readers in the poller, want at most Go's poller's", most, readers)
	}
}

// TestMountStopPolls: StopPolls has the kernel ask FUSE_POLL once without
// rendering the file it polls (its container may not exist yet), and from
// then on a file of the mount opened with os.Open, which adds it to Go's
// poller, no longer asks the server anything there, so the process's own
// reads of its mount go on while the readers wait in that poller; a
// server taking the connection over finds the polls stopped without a
// request.
func TestMountStopPolls(t *testing.T) {
	dir, f := mountTest(t)
	var renders atomic.Int32
	fs := newTreeFS(map[string]func(int) ([]byte, error){"meminfo": func(int) ([]byte, error) {
		renders.Add(1)
		return []byte("MemTotal: 1 kB\n"), nil
	}})
	file := filepath.Join(dir, "meminfo")
	first := NewServer(fs)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- first.Serve(ctx, f) }()
	if err := first.StopPolls(pollHelper(file)); err != nil {
		t.Fatal(err)
	}
	if !first.PollsStopped() || renders.Load() != 0 {
		t.Errorf("after StopPolls: stopped %v, %d renderings; want stopped, none", first.PollsStopped(), renders.Load())
	}
	readOwnMount(t, file)
	cancel()
	waitServe(t, done)

	second := NewServer(fs)
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	done = make(chan error, 1)
	go func() { done <- second.Resume(ctx, f) }()
	if err := second.StopPolls(pollHelper(file)); err != nil || !second.PollsStopped() {
		t.Errorf("StopPolls of a successor: %v, stopped %v", err, second.PollsStopped())
	}
	readOwnMount(t, file)
	cancel()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, ErrNoResend) {
		t.Errorf("successor's Resume: %v", err)
	}
}

// pollPathEnv names the file the "poll-once" helper (TestMain) polls.
const pollPathEnv = "LKC_FUSE_TEST_POLL"

// pollHelper is StopPolls's helper: this test binary polling path.
func pollHelper(path string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"=poll-once", pollPathEnv+"="+path)
	return cmd
}

// readOwnMount reads path through os.ReadFile, which adds the file to Go's
// poller: with FUSE_POLL still asked, this deadlocks the process (conn.go).
func readOwnMount(t *testing.T, path string) {
	t.Helper()
	got := make(chan error, 1)
	go func() {
		_, err := os.ReadFile(path)
		got <- err
	}()
	select {
	case err := <-got:
		if err != nil {
			t.Fatalf("os.ReadFile of the process's own mount: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("os.ReadFile of the process's own mount still blocked after 10 s")
	}
}

// waitServe waits for Serve's end after its context was cancelled.
func waitServe(t *testing.T, done <-chan error) {
	t.Helper()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Serve after cancel: %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve still running 5 s after its context ended")
	}
}
