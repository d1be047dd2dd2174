package fuse

import (
	"sync"
	"sync/atomic"
	"time"
)

// A server's readers take turns: the one holding the turn reads a request,
// answers it and reads the next, while the others sleep as goroutines. So
// one thread at a time waits in a system call for the device: when every
// reader did, their threads held the process's Ps in the call, which the
// runtime's sysmon kept taking back, waking every 20 µs, and each request
// handed the device to another reader, a wake-up more. The holder passes
// the turn to another reader before it waits on something: raise's
// notifications (which wait for a READ's page lock: another reader must
// answer that READ), another reader's lock on the same file, or a
// rendering that took longer than slowRender, so a slow file holds one
// reader, never the connection. push's notifications, which come at every
// changed rendering (passing the turn before each would wake a reader
// each), pass it once they took longer than slowNotify: they wait only
// while a READ of that file is in flight.
type turn struct {
	mu   *sync.Mutex // the server's; locked while a reader holds the turn
	held atomic.Bool // this reader holds it
}

// slowRender is how long a rendering may hold the turn.
const slowRender = 5 * time.Millisecond

// take waits for the turn unless t holds it.
func (t *turn) take() {
	if !t.held.Load() {
		t.mu.Lock()
		t.held.Store(true)
	}
}

// pass lets another reader take the turn. A nil turn (a request handled
// outside a read loop) has none to pass.
func (t *turn) pass() {
	if t != nil && t.held.CompareAndSwap(true, false) {
		t.mu.Unlock()
	}
}

// slowNotify is how long a store of a new version may hold the turn.
const slowNotify = time.Millisecond

// render runs f, passing the turn if it takes longer than slowRender.
func (t *turn) render(f func()) { t.holdFor(slowRender, f) }

// notify runs f, which writes notifications that may wait for a READ's
// page lock, passing the turn if it takes longer than slowNotify.
func (t *turn) notify(f func()) { t.holdFor(slowNotify, f) }

// holdFor runs f, passing the turn if it takes longer than d.
func (t *turn) holdFor(d time.Duration, f func()) {
	if t == nil {
		f()
		return
	}
	slow := time.AfterFunc(d, t.pass)
	f()
	slow.Stop()
}
