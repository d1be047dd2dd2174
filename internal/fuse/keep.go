package fuse

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// A file read again only after its Fresh ran out (a top refreshing every
// few seconds) would otherwise ask GETATTR at every read: one round trip
// through /dev/fuse, a few hundred µs even on an idle machine, where the
// kernel's own /proc file costs ten. For a file with a Hold (Attr.Hold),
// a reader's GETATTR (InvalExplicit only) lets the kernel keep the
// attributes for the Hold, and the keeper holds the file fresh itself
// meanwhile: each time
// its version is Fresh old it renders the file again and, when the
// rendering changed, stores it into the page cache over the old pages.
// A rendering of the same length needs nothing more: the store raises no
// size and the kernel's attributes stay true, so reads find the new bytes
// without a request. One of another length goes behind a barrier (push),
// which drops the attributes: the next read asks GETATTR, which holds the
// file again. A rendering that fails or is a stand-in drops them too, and
// the file is no longer held, so the next read gets what GETATTR gives.
// A file nobody asks for again is let go when its Hold ends (plus a
// Fresh: the kernel counts the Hold from a little after the answer).
// Only a regular reader's file is held (regular): its second GETATTR
// within a Hold, or the first after a Hold ended.
//
// What a reader sees is at most Fresh (and keepSlack) old, as without
// Hold. The store goes over pages a reader may be copying without their
// lock: content.go's torn-read window, now at each changed rendering of a
// held file rather than at a miss.

// regular says whether a reader asking at now, whose file's attributes
// were last asked at asked and last held until heldTo, reads it regularly
// enough to be held for hold: it asked within a hold before (but not
// within the file's fresh: that is the same read asking again after a
// barrier), or within half a hold of its last hold's end (the next read
// after a hold ran out). A reader that reads less often (a monitoring
// agent every 15 s) is not held: each hold costs a rendering each bound
// for its whole length, which a read that rare would not repay.
func regular(asked, heldTo time.Time, fresh, hold time.Duration, now time.Time) bool {
	since := now.Sub(asked)
	return !asked.IsZero() && since >= fresh && since < hold || !heldTo.IsZero() && now.Sub(heldTo) < hold/2
}

// keepSlack is how early a held file may be rendered again, so that files
// falling due together are rendered in one wake-up.
const keepSlack = 10 * time.Millisecond

// keeper is the set of held files.
type keeper struct {
	mu   sync.Mutex
	held map[uint64]heldFile
	wake chan struct{} // a file was held while none was
	// notify writes the keeper's notifications on a duplicate of the
	// device that it closes itself once it stopped: a refresh may still
	// be writing when Serve returns and closes its own.
	notify func([]byte) error
}

type heldFile struct {
	fresh time.Duration
	until time.Time // when the kernel's attributes run out, plus a Fresh
}

func newKeeper(notify func([]byte) error) *keeper {
	return &keeper{held: map[uint64]heldFile{}, wake: make(chan struct{}, 1), notify: notify}
}

// hold keeps node fresh until the kernel's attributes, told now for
// until, run out. Called with node's version locked.
func (k *keeper) hold(node uint64, fresh time.Duration, until time.Time) {
	k.mu.Lock()
	h, ok := k.held[node]
	h.fresh = fresh
	if u := until.Add(fresh); u.After(h.until) {
		h.until = u
	}
	k.held[node] = h
	k.mu.Unlock()
	if !ok {
		select {
		case k.wake <- struct{}{}:
		default:
		}
	}
}

func (k *keeper) release(node uint64) {
	k.mu.Lock()
	delete(k.held, node)
	k.mu.Unlock()
}

// due returns the held files whose versions are Fresh old (within
// keepSlack) at now, and when the next one will be (zero: none held). It
// lets go of the files whose hold ended. at gives a file's version time
// (false: it has none).
func (k *keeper) due(now time.Time, at func(node uint64) (time.Time, bool)) (nodes []uint64, next time.Time) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for node, h := range k.held {
		t, ok := at(node)
		if !ok || now.After(h.until) {
			delete(k.held, node)
			continue
		}
		when := t.Add(h.fresh)
		if !when.After(now.Add(keepSlack)) {
			nodes = append(nodes, node)
			when = now.Add(h.fresh)
		}
		if next.IsZero() || when.Before(next) {
			next = when
		}
	}
	return nodes, next
}

// keepFresh renders the held files again as they fall due, until ctx is
// done, and returns once no refresh runs. Each file is refreshed on a
// goroutine of its own, so that a slow rendering (a cgroup file the kernel
// is slow to give) keeps no other file from its bound; a file whose
// refresh still runs when it falls due again is skipped (refresh's
// TryLock).
func (s *Server) keepFresh(ctx context.Context) {
	k := s.keeper
	var running sync.WaitGroup
	defer running.Wait()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		nodes, next := k.due(time.Now(), s.versions.renderedAt)
		for _, node := range nodes {
			running.Go(func() { s.refresh(node) })
		}
		if !next.IsZero() {
			timer.Reset(max(time.Until(next), keepSlack))
		}
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-k.wake:
			timer.Stop()
		case <-timer.C:
		}
	}
}

// refresh renders held file node again and publishes the rendering. A
// file whose version a GETATTR holds locked (it renders) is left to it.
func (s *Server) refresh(node uint64) {
	now := time.Now()
	v := s.versions.get(node, now)
	if !v.mu.TryLock() {
		return
	}
	defer v.mu.Unlock()
	cur := v.cur.Load()
	if cur == nil {
		s.keeper.release(node)
		return
	}
	c, keepIt, err := s.fs.Content(node)
	if err != nil || !keepIt {
		s.unhold(node, v)
		return
	}
	if s.publish(node, v, cur, &rendering{content: c, keep: true, at: now}, nil, s.keeper.notify) {
		s.keeper.release(node)
	}
}

// unhold drops node's attributes and pages, so that the next read asks
// GETATTR, and lets the file go. Preconditions: v.mu held.
func (s *Server) unhold(node uint64, v *version) {
	s.keeper.release(node)
	s.keeper.notify(notification(notifyInvalInode, invalInodeOut(node)))
	v.toldLo, v.toldHi = 1, 0
}

// StartHolding lets GETATTRs hold files from now on (Attr.Hold); until
// then, and after StopHolding, the kernel keeps attributes for Fresh. A
// server that
// takes a connection over from a predecessor that may still be storing
// versions of the files it held (an upgrade's old worker, which serves
// until it drained) calls it once that one is gone and it had the kernel
// Forget every file: two servers storing over the same pages would mix
// their versions.
func (s *Server) StartHolding() { s.holding.Store(true) }

// StopHolding makes GETATTRs hold no file from now on: a server about to
// end has every file Forgotten after it, so that readers learn of its end
// within a Fresh rather than being served its last versions for a Hold.
func (s *Server) StopHolding() { s.holding.Store(false) }

// Forget has the kernel drop node's pages and attributes on the connection
// of f (FUSE_NOTIFY_INVAL_INODE), so that the next read asks this server:
// a predecessor may have stored versions this one does not know. A node
// the kernel does not hold is no error.
func (s *Server) Forget(f *os.File, node uint64) error {
	if v := s.versions.peek(node); v != nil {
		v.mu.Lock()
		defer v.mu.Unlock()
		v.toldLo, v.toldHi = 1, 0
	}
	err := notifyOn(f, notification(notifyInvalInode, invalInodeOut(node)))
	if err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("fuse notify inval inode %d: %w", node, err)
	}
	return nil
}

// peek returns node's version, nil when it has none.
func (vs *versions) peek(node uint64) *version {
	vs.mu.Lock()
	defer vs.mu.Unlock()
	return vs.nodes[node]
}

// renderedAt is when node's current version was rendered (false: none).
func (vs *versions) renderedAt(node uint64) (time.Time, bool) {
	v := vs.peek(node)
	if v == nil {
		return time.Time{}, false
	}
	if cur := v.cur.Load(); cur != nil {
		return cur.at, true
	}
	return time.Time{}, false
}

// startKeeper starts keepFresh on a duplicate of c's device, which it
// closes when ctx (Serve's, ended when Serve returns) is done.
func (s *Server) startKeeper(ctx context.Context, c *conn) error {
	fd, err := unix.FcntlInt(uintptr(c.fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("dup fuse fd: %w", err)
	}
	s.keeper = newKeeper(func(b []byte) error { return (&conn{fd: fd}).write(b) })
	go func() {
		s.keepFresh(ctx)
		unix.Close(fd)
	}()
	return nil
}
