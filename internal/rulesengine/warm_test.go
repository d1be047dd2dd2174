package rulesengine

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lkc-containers/lkc/internal/testutil"
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

// TestWarmerRemovesEveryCgroupItMade: the groups' parent changed by a
// reload between two warming threads leaves no cgroup of the first behind
// at the daemon's stop (nor a parent that cannot be removed).
func TestWarmerRemovesEveryCgroupItMade(t *testing.T) {
	testutil.RequiresRoot(t)
	mount := "/sys/fs/cgroup/freezer"
	if own, _ := os.ReadFile("/proc/self/cgroup"); !strings.Contains(string(own), ":freezer:/\n") {
		t.Skip("not in the freezer hierarchy's root cgroup")
	}
	if _, err := os.Stat(filepath.Join(mount, "tasks")); err != nil {
		t.Skip("no v1 freezer hierarchy")
	}
	top := "/lkc-warm-test-" + strconv.Itoa(os.Getpid())
	t.Cleanup(func() { testutil.RemoveCgroupTree(t, filepath.Join(mount, top)) })
	var parent atomic.Value
	parent.Store(top + "/a")
	w := newWarmer(context.Background(), map[string]string{"freezer": mount}, func() string { return parent.Load().(string) }, t.Logf)
	for _, p := range []string{top + "/a", top + "/b"} {
		parent.Store(p)
		w.moved()
		if !waitDone(w, 10*time.Second) {
			t.Fatal("the warming thread still runs 10 s after a move")
		}
		if _, err := os.Stat(filepath.Join(mount, p, warmName)); err != nil {
			t.Fatalf("the warming thread made no cgroup: %v", err)
		}
		// Go ends a thread whose goroutine returns locked, unless it is
		// the main thread, which it wedges for good.
		for end := time.Now().Add(2 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			b, err := os.ReadFile(filepath.Join(mount, p, warmName, "tasks"))
			if err == nil && len(b) == 0 {
				break
			}
			if time.Now().After(end) {
				t.Fatalf("after its warming thread ended, %s/%s holds %q (%v); the process is %d", p, warmName, b, err, os.Getpid())
			}
		}
	}
	if w.failed.Load() {
		t.Fatal("warming failed")
	}
	w.stop()
	for _, p := range []string{"/a", "/b"} {
		if _, err := os.Stat(filepath.Join(mount, top, p, warmName)); !os.IsNotExist(err) {
			t.Errorf("after stop, %s%s/%s is still there (%v)", top, p, warmName, err)
		}
	}
	// The parents did not exist before: the warmer made them, and removes them.
	if _, err := os.Stat(filepath.Join(mount, top)); !os.IsNotExist(err) {
		t.Errorf("after stop, %s, which the warmer made, is still there (%v)", top, err)
	}
}
