package rulesengine

import (
	"context"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// waitDone waits up to d for the warmer's goroutine to return.
func waitDone(w *warmer, d time.Duration) bool {
	done := make(chan struct{})
	go func() {
		w.done.Wait()
		close(done)
	}()
	select {
	case <-done:
		return true
	case <-time.After(d):
		return false
	}
}

// TestWarmerGivesUpOnFailure: a warming thread that cannot make its cgroup
// ends there; it does not try again at once for as long as the last move
// is recent (a core spinning for warmFor).
func TestWarmerGivesUpOnFailure(t *testing.T) {
	notDir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notDir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	var asked atomic.Int64
	parent := func() string { asked.Add(1); return "/p" }
	w := newWarmer(context.Background(), map[string]string{"freezer": notDir}, parent, t.Logf)
	w.moved()
	if !waitDone(w, 5*time.Second) {
		t.Fatal("the warming thread still runs")
	}
	if n := asked.Load(); n > 1 {
		t.Errorf("the warming thread tried %d times to make its cgroup after a move", n)
	}
	if !w.failed.Load() {
		t.Error("the failure was not noted")
	}
}

// TestWarmerStopsWhileMovesCome: the daemon's stop ends the warming thread
// even while the engine still moves processes (stop comes before the
// services' context ends).
func TestWarmerStopsWhileMovesCome(t *testing.T) {
	mount := t.TempDir()
	dir := filepath.Join(mount, "p", warmName)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	// A regular file stands in for the cgroup's tasks file.
	if err := os.WriteFile(filepath.Join(dir, "tasks"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	w := newWarmer(context.Background(), map[string]string{"freezer": mount}, func() string { return "/p" }, t.Logf)
	ctx, cancel := context.WithCancel(context.Background())
	moving := make(chan struct{})
	go func() {
		defer close(moving)
		for ctx.Err() == nil {
			w.moved()
			time.Sleep(time.Millisecond)
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-moving
	})
	time.Sleep(20 * time.Millisecond)
	stopped := make(chan struct{})
	go func() {
		w.stop()
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		t.Fatal("stop waits for the warming thread while moves come")
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "tasks")); len(b) == 0 {
		t.Error("the warming thread never wrote its tid")
	}
}
