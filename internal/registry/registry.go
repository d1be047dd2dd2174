// Package registry is the set of containers the daemon serves: each one's
// lkc root and id, its slot (a small number naming it in the FUSE tree and
// in seccomp metadata) with a generation that changes on every reuse, and
// the features it asked for. It is crash-only: every adopt and release is
// written to <rundir>/slots before it is answered, and Open rebuilds the
// set from those files and the state roots. Its one reason to change is
// which containers the daemon serves.
package registry

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/hostconf"
	"github.com/lkc-containers/lkc/internal/state"
)

// Features is what a container asks of the daemon.
type Features = hostconf.Features

// ErrNotServed is Release's error for a container the daemon does not serve.
var ErrNotServed = errors.New("not served by the daemon")

// Entry is one served container.
type Entry struct {
	Root, ID string
	Slot     int    // names it: <rundir>/proc/<slot>/..., seccomp metadata
	Gen      uint64 // the slot's generation: a reused slot never answers for its old container
	Features Features
}

// LoadState reads the container's current record. The registry itself
// never does: an adopt comes while create writes the record, and what the
// services need of it they read when they need it (the decode of the
// whole config would delay the adopt's answer, which create waits for).
func (e *Entry) LoadState() (*state.State, error) {
	d, err := state.Peek(e.Root, e.ID)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	return d.Load()
}

// Stamp identifies one version of a container's state file: the file is
// only ever replaced whole (a new inode), and each version's size and
// change time are its own.
type Stamp struct {
	ino, size int64
	ctime     unix.Timespec
}

// StateStamp returns the stamp of the container's state file as it is
// now, or false when it has none: a reader that found nothing it needs in
// one version skips decoding it again (a stat against a decode of the
// whole config).
func (e *Entry) StateStamp() (Stamp, bool) {
	var st unix.Stat_t
	if err := unix.Stat(state.FilePath(e.Root, e.ID), &st); err != nil {
		return Stamp{}, false
	}
	return Stamp{ino: int64(st.Ino), size: st.Size, ctime: st.Ctim}, true
}

type key struct{ root, id string }

// Registry is the served set, kept in memory and in <dir>/slots.
type Registry struct {
	dir     string
	mu      sync.Mutex
	slots   []slotFile // by slot number
	entries map[key]*Entry
}

// Open rebuilds the registry of the daemon directory dir: slots whose
// container is gone are freed (generation bumped), the others are served
// again with their records read afresh.
func Open(dir string) (*Registry, error) {
	r := &Registry{dir: dir, entries: map[key]*Entry{}}
	for _, d := range []string{"slots", "roots"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			return nil, fmt.Errorf("registry: %w", err)
		}
	}
	slots, err := readSlots(filepath.Join(dir, "slots"))
	if err != nil {
		return nil, err
	}
	r.slots = slots
	for n := range r.slots {
		if err := r.revive(n); err != nil {
			return nil, err
		}
	}
	return r, r.pruneRoots()
}

// revive serves slot n's container again, or frees the slot when the
// container's directory is gone.
func (r *Registry) revive(n int) error {
	s := &r.slots[n]
	if !s.used() {
		return nil
	}
	if _, err := os.Stat(filepath.Join(s.Root, s.ID)); errors.Is(err, os.ErrNotExist) {
		return r.free(n)
	}
	r.entries[key{s.Root, s.ID}] = &Entry{Root: s.Root, ID: s.ID, Slot: n, Gen: s.Gen, Features: s.Features}
	return nil
}

// Adopt serves a container (again: adopting a served container returns
// its entry, with the features given now).
func (r *Registry) Adopt(root, id string, f Features) (*Entry, error) {
	if !filepath.IsAbs(root) {
		return nil, fmt.Errorf("adopt: root %q is not absolute", root)
	}
	root = filepath.Clean(root) // one entry however a client spells it
	if err := state.CheckID(id); err != nil {
		return nil, fmt.Errorf("adopt: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.addRoot(root); err != nil {
		return nil, err
	}
	n := r.slotOf(root, id)
	s := slotFile{Gen: r.slots[n].Gen, Root: root, ID: id, Features: f}
	if err := writeSlot(r.dir, n, &s); err != nil {
		return nil, err
	}
	r.slots[n] = s
	e := &Entry{Root: root, ID: id, Slot: n, Gen: s.Gen, Features: f}
	r.entries[key{root, id}] = e
	return e, nil
}

// slotOf is the container's slot: its own, else the lowest free one, else
// a new one. Preconditions: r.mu held.
func (r *Registry) slotOf(root, id string) int {
	if e := r.entries[key{root, id}]; e != nil {
		return e.Slot
	}
	for n := range r.slots {
		if !r.slots[n].used() {
			return n
		}
	}
	r.slots = append(r.slots, slotFile{Gen: 1})
	return len(r.slots) - 1
}

// Slots is the number of slots, used and free.
func (r *Registry) Slots() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.slots)
}

// Lookup returns the entry of a served container, nil for one not served.
func (r *Registry) Lookup(root, id string) *Entry {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.entries[key{filepath.Clean(root), id}]
}

// Release stops serving a container and frees its slot.
func (r *Registry) Release(root, id string) (*Entry, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.entries[key{filepath.Clean(root), id}]
	if e == nil {
		return nil, fmt.Errorf("release %s in %s: %w", id, root, ErrNotServed)
	}
	if err := r.free(e.Slot); err != nil {
		return nil, err
	}
	return e, nil
}

// free writes slot n as free with its next generation.
func (r *Registry) free(n int) error {
	s := &r.slots[n]
	next := slotFile{Gen: s.Gen + 1}
	if err := writeSlot(r.dir, n, &next); err != nil {
		return err
	}
	delete(r.entries, key{s.Root, s.ID})
	*s = next
	return nil
}

// Entries lists the served containers by slot.
func (r *Registry) Entries() []*Entry {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*Entry, 0, len(r.entries))
	for _, e := range r.entries {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Slot < out[j].Slot })
	return out
}

// BySlot returns the container behind slot n of generation gen (nil when
// the slot is free or was reused).
func (r *Registry) BySlot(n int, gen uint64) *Entry {
	r.mu.Lock()
	defer r.mu.Unlock()
	if n < 0 || n >= len(r.slots) || !r.slots[n].used() || r.slots[n].Gen != gen {
		return nil
	}
	return r.entries[key{r.slots[n].Root, r.slots[n].ID}]
}

// addRoot links roots/<hash> to root, so that the roots a daemon serves
// are known from the run directory alone.
func (r *Registry) addRoot(root string) error {
	sum := sha256.Sum256([]byte(root))
	link := filepath.Join(r.dir, "roots", hex.EncodeToString(sum[:8]))
	if err := os.Symlink(root, link); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("registering root %s: %w", root, err)
	}
	return nil
}

// pruneRoots removes the links to roots that are gone.
func (r *Registry) pruneRoots() error {
	links, err := os.ReadDir(filepath.Join(r.dir, "roots"))
	if err != nil {
		return fmt.Errorf("registry: %w", err)
	}
	for _, l := range links {
		p := filepath.Join(r.dir, "roots", l.Name())
		if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) {
			os.Remove(p)
		}
	}
	return nil
}
