package fdstore

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Holder keeps fds under keys for the worker it supervises. Run it with
// Run; it returns when the worker exits after a stop.
type Holder struct {
	// Dir is the daemon's run directory (holder.pid goes there).
	Dir string
	// Ready, when set, is the readiness pipe of `lkc daemon --detach`: the
	// first worker gets it and writes "ok" when it serves.
	Ready *os.File
	// Logf records what the holder does (never nil).
	Logf func(format string, args ...any)

	mu       sync.Mutex
	fds      map[string]int
	worker   *worker // the supervised worker
	old      *worker // during an upgrade: the worker waiting for its successor
	stopping bool
	// started says a starter waits on Ready: until a worker serves, a
	// worker's death ends the holder (the starter reports the error; a
	// failed start leaves nothing running).
	started bool
	served  bool
	exits   chan *worker
	deaths  int // deaths in a row of workers that never served, for the backoff
}

// worker is one worker process as the holder sees it.
type worker struct {
	pid   int
	pidfd int
	conn  *conn
	ready bool
}

// Run supervises workers until a stop. st is what a previous holder
// handed over (nil for a fresh start).
func (h *Holder) Run(st *Resume) error {
	h.fds = map[string]int{}
	h.exits = make(chan *worker, 4)
	h.started = h.Ready != nil
	lock, err := lockDir(h.Dir)
	if err != nil {
		return err
	}
	defer lock.Close() // kept open, and so locked, while the holder runs
	if err := writePid(h.Dir, "holder.pid"); err != nil {
		return err
	}
	if err := h.resume(st); err != nil {
		return err
	}
	if h.worker == nil {
		h.restart(0)
	}
	for w := range h.exits {
		reap(w)
		if h.exited(w) {
			return nil
		}
	}
	return nil
}

// Stop ends the holder the way `lkc daemon stop` does: the worker gets
// SIGTERM (it drains) and the holder exits after it instead of restarting
// it. systemd's stop and a ^C of a foreground `lkc daemon` come here.
func (h *Holder) Stop() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.stopping = true
	if h.worker != nil {
		h.Logf("stopping worker %d", h.worker.pid)
		unix.PidfdSendSignal(h.worker.pidfd, unix.SIGTERM, nil, 0)
	}
}

// exited handles a worker's exit and says whether the holder is done.
func (h *Holder) exited(w *worker) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case w == h.old:
		h.old = nil
		return false
	case w != h.worker:
		return false
	case h.stopping:
		h.Logf("worker %d exited; stopping", w.pid)
		return true
	case h.started && !h.served:
		h.Logf("worker %d exited before it served; giving up the start", w.pid)
		return true
	case h.old != nil && !w.ready:
		// The upgrade's new worker died before it served: the old one
		// goes on.
		h.Logf("new worker %d exited before it was ready; worker %d goes on", w.pid, h.old.pid)
		h.old.conn.send("error the new worker exited before it was ready (see the daemon's log)")
		h.worker, h.old = h.old, nil
		return false
	}
	// Only a worker that dies before it serves is part of a crash loop:
	// one that served is replaced at once however soon it dies, so
	// readers stall no longer across repeated kills than across one.
	if w.ready {
		h.deaths = 0
	} else {
		h.deaths++
	}
	delay := backoff(h.deaths)
	h.Logf("worker %d exited; restarting in %v", w.pid, delay)
	go h.restart(delay)
	return false
}

// backoff is the delay before the next worker after n deaths in a row of
// workers that never served: none after the first, then 0.1, 1 and 5 s.
func backoff(n int) time.Duration {
	delays := []time.Duration{0, 0, 100 * time.Millisecond, time.Second, 5 * time.Second}
	return delays[min(n, len(delays)-1)]
}

// restart starts a new worker after delay, retrying with the backoff
// while the start fails.
func (h *Holder) restart(delay time.Duration) {
	for n := 1; ; n++ {
		time.Sleep(delay)
		w, err := h.spawn()
		if err == nil {
			h.supervise(w)
			return
		}
		h.Logf("starting a worker: %v", err)
		delay = backoff(n + 1)
	}
}

// supervise makes w the worker and serves its requests and its exit.
func (h *Holder) supervise(w *worker) {
	h.mu.Lock()
	h.worker = w
	h.mu.Unlock()
	go h.serve(w)
	go func() {
		waitPidfd(w.pidfd)
		h.exits <- w
	}()
}

// serve answers one worker's requests until its connection closes.
func (h *Holder) serve(w *worker) {
	for {
		msg, fds, err := w.conn.recv()
		if err != nil {
			closeAll(fds)
			return
		}
		ans, extra := h.handle(w, msg, fds)
		if ans != "" {
			w.conn.send(ans, extra...)
		}
	}
}

// handle runs one request; an empty answer means it was sent already.
func (h *Holder) handle(w *worker, msg string, fds []int) (string, []int) {
	o, arg, _ := strings.Cut(msg, " ")
	if o != "put" {
		closeAll(fds)
	}
	switch o {
	case "put":
		return h.put(arg, fds), nil
	case "drop":
		return h.drop(arg), nil
	case "take":
		h.take(w)
		return "", nil
	case "keys":
		return "ok " + strings.Join(h.keys(), " "), nil
	case "ready":
		return h.ready(w), nil
	case "upgrade":
		return h.upgrade(w, arg), nil
	case "stopping":
		h.mu.Lock()
		defer h.mu.Unlock()
		return "ok " + strconv.FormatBool(h.stopping), nil
	case "stop":
		h.mu.Lock()
		h.stopping = true
		h.mu.Unlock()
		return "ok " + strconv.Itoa(os.Getpid()), nil
	}
	return "error unknown request " + strconv.Quote(o), nil
}

func (h *Holder) put(key string, fds []int) string {
	if err := CheckKey(key); err != nil || len(fds) != 1 {
		closeAll(fds)
		return fmt.Sprintf("error put %q: want a key and one fd, got %d", key, len(fds))
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if old, ok := h.fds[key]; ok {
		unix.Close(old)
	}
	h.fds[key] = fds[0]
	return "ok"
}

func (h *Holder) drop(key string) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if fd, ok := h.fds[key]; ok {
		unix.Close(fd)
		delete(h.fds, key)
	}
	return "ok"
}

func (h *Holder) keys() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	keys := make([]string, 0, len(h.fds))
	for k := range h.fds {
		keys = append(keys, k)
	}
	return keys
}

// take sends every fd, maxFds a message, then "end".
func (h *Holder) take(w *worker) {
	h.mu.Lock()
	keys := make([]string, 0, len(h.fds))
	fds := make([]int, 0, len(h.fds))
	for k, fd := range h.fds {
		keys, fds = append(keys, k), append(fds, fd)
	}
	h.mu.Unlock()
	for len(keys) > 0 {
		n := min(len(keys), maxFds)
		if err := w.conn.send("fds\n"+strings.Join(keys[:n], "\n"), fds[:n]...); err != nil {
			h.Logf("take: %v", err)
			return
		}
		keys, fds = keys[n:], fds[n:]
	}
	w.conn.send("end")
}

// ready records that w serves: the readiness pipe learns it, and an
// upgrade's old worker gets its answer (and exits).
func (h *Holder) ready(w *worker) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	w.ready = true
	h.served = true
	if h.old != nil && w == h.worker {
		h.Logf("worker %d of the new binary serves; worker %d drains", w.pid, h.old.pid)
		h.old.conn.send("ok " + strconv.Itoa(w.pid))
	}
	return "ok"
}

// lockName is the file a holder keeps locked while it runs: one holder
// per directory, or a second would take control.sock from the first,
// which would go on holding its containers' fds with nobody able to
// reach it. Starters that race (lkc daemon in the foreground, a unit,
// an autostart) check control.sock first, but none holds a lock from
// that check until its worker serves.
const lockName = "holder.lock"

// lockDir takes dir's holder lock for the life of this process: the fd
// is close-on-exec, so an upgrade's exec releases it and the new image
// takes it again, and workers never hold it.
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, lockName), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", lockName, err)
	}
	err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
	if err == unix.EWOULDBLOCK {
		f.Close()
		return nil, fmt.Errorf("lkc daemon already runs in %s (another holder has %s)", dir, lockName)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("locking %s: %w", lockName, err)
	}
	return f, nil
}

// WaitHolderGone returns once no holder keeps dir's lock, or fails after
// limit. A starter calls it when no daemon answers: a holder that is
// stopping (lkc daemon stop, SIGTERM) has removed control.sock already but
// runs until its worker has drained, and a holder started meanwhile would
// find the lock taken and give up the start.
func WaitHolderGone(dir string, limit time.Duration) error {
	f, err := os.OpenFile(filepath.Join(dir, lockName), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("opening %s: %w", lockName, err)
	}
	locked := make(chan error, 1)
	go func() {
		defer f.Close()
		err := unix.Flock(int(f.Fd()), unix.LOCK_SH)
		if err == nil {
			unix.Flock(int(f.Fd()), unix.LOCK_UN)
		}
		locked <- err
	}()
	select {
	case err := <-locked:
		if err != nil {
			return fmt.Errorf("locking %s: %w", lockName, err)
		}
		return nil
	case <-time.After(limit):
		// The flock goes on waiting in its goroutine until the caller exits.
		return fmt.Errorf("a holder that does not serve keeps %s in %s after %v", lockName, dir, limit)
	}
}

// writePid records a pid for operators and tests (lkc never trusts it).
func writePid(dir, name string) error {
	p := filepath.Join(dir, name)
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", name, err)
	}
	return os.Rename(tmp, p)
}

// WritePid is writePid for the worker.
func WritePid(dir, name string) error { return writePid(dir, name) }
