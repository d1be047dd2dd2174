package fuse

import (
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// handles keeps the rendered content of each open file. A handle is a
// hint, not a must: a READ carrying one this process does not know (opened
// by a killed predecessor) renders the file afresh under it, so nothing of
// an open file lives only in a dead process's memory.
type handles struct {
	next atomic.Uint64
	mu   sync.Mutex
	open map[handleKey]*handle
}

// handleKey names a handle by node too, so that a handle number of a
// predecessor can never select another file's content.
type handleKey struct{ node, fh uint64 }

type handle struct {
	mu      sync.Mutex
	content []byte
	valid   bool
	// fresh: rendered at open and not read yet, so the first read at
	// offset 0 uses it rather than rendering again.
	fresh bool
}

// render fills a new handle at open.
func (hd *handle) render(content func() ([]byte, error)) ([]byte, error) {
	hd.mu.Lock()
	defer hd.mu.Unlock()
	c, err := content()
	if err != nil {
		return nil, err
	}
	hd.content, hd.valid, hd.fresh = c, true, true
	return c, nil
}

// newHandles starts numbering at the boot clock in nanoseconds: a
// successor starts after its predecessor died, and no server opens more
// than one file per nanosecond, so numbers never repeat within a boot.
func newHandles() *handles {
	h := &handles{open: map[handleKey]*handle{}}
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts) // cannot fail for this clock
	h.next.Store(uint64(ts.Nano()))
	return h
}

// add registers an empty handle for node and returns its number.
func (h *handles) add(node uint64) uint64 {
	fh := h.next.Add(1)
	h.mu.Lock()
	h.open[handleKey{node, fh}] = &handle{}
	h.mu.Unlock()
	return fh
}

// get returns the handle, creating it when unknown (opened by a predecessor).
func (h *handles) get(node, fh uint64) *handle {
	h.mu.Lock()
	defer h.mu.Unlock()
	k := handleKey{node, fh}
	hd := h.open[k]
	if hd == nil {
		hd = &handle{}
		h.open[k] = hd
	}
	return hd
}

func (h *handles) remove(node, fh uint64) {
	h.mu.Lock()
	delete(h.open, handleKey{node, fh})
	h.mu.Unlock()
}

// longest returns the length of the longest content node's open handles
// hold: the inode's size must not drop below what one of them serves.
func (h *handles) longest(node uint64) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for k, hd := range h.open {
		if k.node != node {
			continue
		}
		hd.mu.Lock()
		n = max(n, len(hd.content))
		hd.mu.Unlock()
	}
	return n
}

func (h *handles) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.open)
}

// read answers a READ of size bytes at off: offset 0 (or a handle not yet
// rendered) renders, any other offset slices the handle's rendering.
func (hd *handle) read(render func() ([]byte, error), off uint64, size uint32) ([]byte, error) {
	hd.mu.Lock()
	defer hd.mu.Unlock()
	if (off == 0 && !hd.fresh) || !hd.valid {
		c, err := render()
		if err != nil {
			return nil, err
		}
		hd.content, hd.valid = c, true
	}
	hd.fresh = false
	if off >= uint64(len(hd.content)) {
		return nil, nil
	}
	end := off + uint64(size)
	if end > uint64(len(hd.content)) {
		end = uint64(len(hd.content))
	}
	return hd.content[off:end], nil
}
