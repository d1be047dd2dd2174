package rulesengine

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/osthread"
)

// A write to a v1 cgroup.procs takes the kernel's cgroup_threadgroup_rwsem
// for writing, and percpu_down_write waits for an RCU grace period (9-16
// ms here) unless another writer passed about one grace period before
// (docs/kernel.md). Execs come in bursts, so an engine moving every
// process of a storm still paid the grace period after each gap of 10 ms
// or more: that was its p90-p99 (docs/journal/2026-12-06-rules.md). The
// kernel refuses a pid that does not exist, or a kernel thread, before
// it takes the lock, and a thread moving itself by writing 0 skips it; a
// thread that names itself by its tid takes it, even into the cgroup it
// is in already.
const (
	warmEvery = 4 * time.Millisecond // well inside a grace period
	warmFor   = time.Second          // after the last move
	warmName  = ".warm"              // not a group name (groups.CheckName)
)

// warmer keeps the rwsem passing writers while the engine moves
// processes: one locked thread of the worker writes its own tid to the
// tasks file of a cgroup of its own, beneath the groups' parent in one
// v1 hierarchy, every warmEvery until warmFor after the last move. Then
// its goroutine returns without unlocking, so Go ends the thread and the
// cgroup is empty again. Nil on a host with no v1 hierarchy (cgroup v2
// leaves this to the favordynmods mount option).
type warmer struct {
	mount  string        // the v1 hierarchy's mount point
	parent func() string // the groups' parent, as loaded now
	logf   func(string, ...any)
	last   atomic.Int64 // monotonic() of the last move
	on     atomic.Bool  // a warming thread runs
	ctx    context.Context
	failed atomic.Bool // logged once
	quit   atomic.Bool // stop: no more warming, even while moves come

	mu    sync.Mutex // orders a thread's start before stop's wait; guards made
	done  sync.WaitGroup
	made  []string // the cgroups made, for stop (the groups' parent may change)
	above []string // the directories above them it made (a parent with no group yet)
}

// newWarmer picks the hierarchy: freezer, where a thread sitting in a
// cgroup changes nothing, else the first v1 one by name.
func newWarmer(ctx context.Context, mounts map[string]string, parent func() string, logf func(string, ...any)) *warmer {
	var v1 []string
	for h := range mounts {
		if h != "" {
			v1 = append(v1, h)
		}
	}
	if len(v1) == 0 {
		return nil
	}
	slices.Sort(v1)
	h := v1[0]
	if slices.Contains(v1, "freezer") {
		h = "freezer"
	}
	return &warmer{mount: mounts[h], parent: parent, logf: logf, ctx: ctx}
}

// dir is the warming thread's cgroup; "" before the groups' parent is
// known.
func (w *warmer) dir() string {
	parent := w.parent()
	if parent == "" {
		return ""
	}
	return filepath.Join(w.mount, parent, warmName)
}

// moved notes a move; it starts the warming thread if none runs.
func (w *warmer) moved() {
	if w == nil || w.failed.Load() || w.quit.Load() {
		return
	}
	w.last.Store(int64(monotonic()))
	if !w.on.CompareAndSwap(false, true) {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.quit.Load() { // stop set it before it took mu to wait
		w.on.Store(false)
		return
	}
	w.done.Add(1)
	go w.run()
}

// run warms on a thread of its own (osthread.Spare: never the main
// thread, which Go would park in the cgroup for good), which ends with it.
func (w *warmer) run() {
	defer w.done.Done()
	osthread.Spare(w.loop)
}

func (w *warmer) loop() {
	for {
		gaveUp := !w.warm()
		w.on.Store(false)
		// A move noted between the last look and the store above started
		// no thread: go on for it, unless warming cannot be done (trying
		// again at once would spin until warmFor after the last move).
		if gaveUp || !w.recent() || w.ctx.Err() != nil || !w.on.CompareAndSwap(false, true) {
			return
		}
	}
}

func (w *warmer) recent() bool {
	return !w.quit.Load() && monotonic()-time.Duration(w.last.Load()) < warmFor
}

// warm writes the thread's tid while moves keep coming: at once, then
// only after warmEvery without a move, as while moves come closer the
// engine's own keep the rwsem passing writers (a storm's), and a write of
// the tid would cost about what one of them does, for nothing. It
// reports false when it could not warm at all.
func (w *warmer) warm() bool {
	dir := w.dir()
	if dir == "" {
		return false
	}
	var above []string // the groups' parent and its ancestors this makes
	for d := filepath.Dir(dir); d != w.mount && d != "/"; d = filepath.Dir(d) {
		if _, err := os.Stat(d); !errors.Is(err, os.ErrNotExist) {
			break
		}
		above = append(above, d)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		w.fail(err)
		return false
	}
	w.mu.Lock()
	if !slices.Contains(w.made, dir) {
		w.made = append(w.made, dir)
	}
	w.above = append(w.above, above...)
	w.mu.Unlock()
	fd, err := unix.Open(filepath.Join(dir, "tasks"), unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		w.fail(err)
		return false
	}
	defer unix.Close(fd)
	tid := strconv.AppendInt(nil, int64(unix.Gettid()), 10)
	tick := time.NewTicker(warmEvery)
	defer tick.Stop()
	for first := true; w.recent(); first = false {
		if first || monotonic()-time.Duration(w.last.Load()) >= warmEvery {
			if _, err := unix.Write(fd, tid); err != nil && !errors.Is(err, unix.EINTR) {
				w.fail(&os.PathError{Op: "write", Path: filepath.Join(dir, "tasks"), Err: err})
				return false
			}
		}
		select {
		case <-tick.C:
		case <-w.ctx.Done():
			return true
		}
	}
	return true
}

func (w *warmer) fail(err error) {
	if w.failed.CompareAndSwap(false, true) {
		w.logf("rules: keeping cgroup moves fast: %v (moves after a pause wait for an RCU grace period)", err)
	}
}

// stop ends the warming thread and removes its cgroups (the one under
// the groups' parent now, which a predecessor may have made, and each one
// made under another before a reload), once the kernel let the thread go
// (it exits just after its goroutine). The engine may
// still move processes meanwhile (the daemon stops its services before
// their context ends): the thread ends all the same.
func (w *warmer) stop() {
	if w == nil {
		return
	}
	w.quit.Store(true)
	w.mu.Lock() // a start that saw quit unset has added to done by now
	w.mu.Unlock()
	w.done.Wait()
	w.mu.Lock()
	dirs := append([]string{w.dir()}, w.made...)
	above := w.above
	w.mu.Unlock()
	for _, dir := range dirs {
		removeCgroup(dir)
	}
	// Then the parents it made, deepest first; one that holds groups now
	// stays (rmdir fails: EBUSY).
	slices.SortFunc(above, func(a, b string) int { return len(b) - len(a) })
	for _, d := range above {
		os.Remove(d)
	}
}

// removeCgroup removes empty cgroup dir, waiting a little for a thread
// that just exited to leave it.
func removeCgroup(dir string) {
	for i := 0; dir != "" && i < 100; i++ {
		err := os.Remove(dir)
		if err == nil || errors.Is(err, os.ErrNotExist) || !errors.Is(err, unix.EBUSY) {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
}
