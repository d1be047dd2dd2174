package fuse

import (
	"bytes"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// A regular file is read through the kernel's page cache: the server
// answers OPEN with ENOSYS, so the kernel sends neither OPEN nor RELEASE
// again and keeps a file's pages across opens (FOPEN_KEEP_CACHE). What
// the kernel caches is one version of the file: a rendering, whose length
// is the inode's size and whose stamp its mtime. The kernel keeps the
// attributes for the file's Fresh and asks GETATTR once they ran out; the
// server renders then. An unchanged rendering keeps its stamp and the
// kernel its pages: such a read reaches the server only for the GETATTR.
// A changed one gets a new stamp, and how its bytes take the old ones'
// place is what INIT chose (Inval):
//
//   - InvalExplicit (FUSE_EXPLICIT_INVAL_DATA; every kernel since 5.2
//     offers it): the kernel drops pages only when told, and asks the
//     attributes at a read only when it reaches the file's end (an open's
//     permission check and a stat ask as before). Before the answer the
//     server pushes the whole version into the page cache
//     (FUSE_NOTIFY_STORE, push), so the reader reads it without a READ:
//     a miss costs one request. The store goes over the old pages when
//     every answer told since the last barrier told the new length: a
//     store inside the size drops no answer in flight, and whichever one
//     the kernel applies tells it that length (and truncates the pages
//     of a longer size it held), this one's with its new mtime keeping
//     the attributes a full Fresh. Otherwise (the first version, a
//     length that changed) a barrier first: FUSE_NOTIFY_INVAL_INODE drops
//     the pages and attributes and makes the kernel drop every answer in
//     flight, this one's too (the reader's next access asks again and
//     gets the same version); the store then puts the version back,
//     raising the size to a longer one; a shorter one's last page, which
//     the kernel marks valid only up to its size, is left to a READ,
//     whose short answer lowers the size.
//   - InvalAuto (FUSE_AUTO_INVAL_DATA): the kernel drops the pages at an
//     answer's new mtime and READs the new version, which the server
//     serves from that one rendering. Two GETATTRs in flight at once can
//     end with the kernel holding the older one's size (it applies the
//     first answer and drops those older than it); a shorter version then
//     read is fine (a short READ lowers the size), a longer one not. So a
//     longer version is announced before its answer (raise):
//     FUSE_NOTIFY_INVAL_INODE, then FUSE_NOTIFY_STORE of its last byte,
//     which raises the size.
//   - InvalUnknown (an inherited session whose INIT is not known): every
//     new version is pushed behind a barrier, which is right either way.
//
// Either way the inode's size is never below the version the server
// serves, or readers would stop short.

// reuseWithin is how recent a rendering a GETATTR takes instead of
// rendering again: concurrent readers of one file whose attributes ran out
// together get one version, and a reader whose GETATTR reply a longer
// version's notification voided asks again and gets the same.
const reuseWithin = 10 * time.Millisecond

// openKeep is the least time a GETATTR of an open file keeps a version: a
// file whose Fresh is 0 asks before every read(2), and a reader going on
// with the next piece of it (a sendfile loop) must get the same version.
const openKeep = 100 * time.Millisecond

// versionsMax bounds the versions kept; past it, those no request took
// for versionsKeep (beyond any file's Fresh) are dropped.
const (
	versionsMax  = 4096
	versionsKeep = time.Minute
)

// rendering is one version of a file.
type rendering struct {
	content []byte
	keep    bool      // false: a stand-in, kept no longer than reuseWithin
	stamp   time.Time // the file's mtime for this version
	at      time.Time // when it was rendered
}

// version is the rendering of one file the kernel was last told of. READs
// load it without a lock: a READ holds its page locked until answered, and
// a notification about the file waits for that lock, so a READ must never
// wait for a GETATTR that is notifying.
type version struct {
	mu  sync.Mutex // serializes GETATTRs' renderings and notifications
	cur atomic.Pointer[rendering]
	// used is when a request last took the version (get), in Unix
	// nanoseconds: eviction spares a version in use, also one whose first
	// rendering is still being made (cur nil), which a READ must find.
	used atomic.Int64
	// toldLo and toldHi bound the sizes told in answers since the last
	// notification that made the kernel drop every answer in flight
	// (push's barrier); toldLo > toldHi: none. Guarded by mu.
	toldLo, toldHi uint64
	// asked is when a reader last asked the attributes, heldTo when the
	// last hold granted ends (keep.go's regular readers). Guarded by mu.
	asked, heldTo time.Time
}

// told records size as told in an answer. Preconditions: v.mu held.
func (v *version) told(size uint64) {
	if v.toldLo > v.toldHi {
		v.toldLo, v.toldHi = size, size
		return
	}
	v.toldLo, v.toldHi = min(v.toldLo, size), max(v.toldHi, size)
}

// onlyTold reports whether every answer told since the last barrier, if
// any, told size. Preconditions: v.mu held.
func (v *version) onlyTold(size uint64) bool {
	return v.toldLo > v.toldHi || v.toldLo == size && v.toldHi == size
}

// versions keeps each regular file's current version.
type versions struct {
	mu        sync.Mutex
	nodes     map[uint64]*version
	lastStamp time.Time
}

func newVersions() *versions { return &versions{nodes: map[uint64]*version{}} }

// get returns node's version, empty when it has none yet.
func (vs *versions) get(node uint64, now time.Time) *version {
	vs.mu.Lock()
	defer vs.mu.Unlock()
	v := vs.nodes[node]
	if v == nil {
		if len(vs.nodes) >= versionsMax {
			vs.evict(now)
		}
		v = &version{toldLo: 1}
		vs.nodes[node] = v
	}
	v.used.Store(now.UnixNano())
	return v
}

// evict drops the versions no request took for versionsKeep. Preconditions:
// vs.mu held.
func (vs *versions) evict(now time.Time) {
	for n, old := range vs.nodes {
		if now.UnixNano()-old.used.Load() > int64(versionsKeep) {
			delete(vs.nodes, n)
		}
	}
}

// stamp returns a time after every stamp handed out: each new version's
// mtime differs from every earlier one's.
func (vs *versions) stamp(now time.Time) time.Time {
	vs.mu.Lock()
	defer vs.mu.Unlock()
	if !now.After(vs.lastStamp) {
		now = vs.lastStamp.Add(time.Nanosecond)
	}
	vs.lastStamp = now
	return now
}

// unrenderedSize is the size a LOOKUP tells of a file never rendered:
// above any rendering (a READ past the content is answered short, which
// lowers the inode's size to it), and not so large that a tool sizing a
// buffer by it fails.
const unrenderedSize = 1 << 30

// asker is what asks for a regular file's attributes.
type asker int

const (
	askLookup asker = iota // a LOOKUP: a path walk that found the name
	askPath                // a GETATTR by path: an open's permission check, stat
	askOpen                // a GETATTR of an open file: a read found the attributes run out, fstat
	askProbe               // a LOOKUP or GETATTR by StopPolls's helper: never renders
)

// current sets a's size and mtime to those of regular file a.Ino's version
// and returns how long the kernel may keep them. A LOOKUP or a GETATTR by
// path (an open's permission check, stat) renders a new version unless the
// last is younger than a.Fresh (or reuseWithin), and the kernel keeps it
// until it is a.Fresh old. StopPolls's helper's look-ups (askProbe) render
// nothing: its file's container may not exist yet, and a stand-in
// rendered then would be served to the container's first read. A
// GETATTR of an open file (askOpen) keeps a
// version younger than twice a.Fresh (and openKeep): a reader in the
// middle of a file larger than its buffer reads on in the version it
// started with, while a reader that rereads from the start (top keeps
// /proc/stat open) still sees one at most that old.
func (s *Server) current(a *Attr, by asker, t *turn) (time.Duration, error) {
	open := by == askOpen
	now := time.Now()
	v := s.versions.get(a.Ino, now)
	if !v.mu.TryLock() {
		t.pass() // its holder may be notifying
		v.mu.Lock()
	}
	defer v.mu.Unlock()
	cur := v.cur.Load()
	keep := max(reuseWithin, a.Fresh)
	if open {
		keep = max(openKeep, 2*a.Fresh)
	}
	if cur != nil && !cur.keep {
		keep = reuseWithin
	}
	if cur != nil && (now.Sub(cur.at) < keep || by == askProbe) {
		a.Size, a.Mtime = uint64(len(cur.content)), cur.stamp
		v.told(a.Size)
		s.tell(a.Ino, a.Size)
		return s.validity(a, v, by, cur, now), nil
	}
	if (by == askLookup || by == askProbe) && cur == nil {
		// A name found for the first time (create clones a container's
		// files before it can be rendered, and its process may never read
		// them) is not rendered for its size: a zero validity is stored as
		// expired, so the first reader's stat or open (the permission
		// check) asks GETATTR, which renders. What the kernel takes
		// meanwhile is a size above any rendering: a read that asks no
		// attributes (one inside that size, or a sendfile) gets a short
		// READ, which lowers it.
		a.Size, a.Mtime = unrenderedSize, s.versions.stamp(now)
		v.told(a.Size)
		s.tell(a.Ino, a.Size)
		return 0, nil
	}
	var c []byte
	var keepIt bool
	var err error
	t.render(func() { c, keepIt, err = s.fs.Content(a.Ino) })
	if err != nil {
		return 0, err
	}
	next := &rendering{content: c, keep: keepIt, at: now}
	s.publish(a.Ino, v, cur, next, t, s.notify)
	a.Size, a.Mtime = uint64(len(c)), next.stamp
	v.told(a.Size)
	s.tell(a.Ino, a.Size)
	return s.validity(a, v, by, next, now), nil
}

// publish makes next, rendered after cur (nil: none), node's version, the
// way the connection's Inval wants (the top of this file), and stamps it.
// It reports whether the kernel was made to drop the file's attributes
// (a barrier, or raise's). notify writes the notifications (nil: none).
// Preconditions: v.mu held.
func (s *Server) publish(node uint64, v *version, cur, next *rendering, t *turn, notify func([]byte) error) (dropped bool) {
	mode := s.Inval()
	switch {
	case cur != nil && cur.keep == next.keep && bytes.Equal(next.content, cur.content):
		next.stamp = cur.stamp
		v.cur.Store(next)
		return false
	case mode == InvalAuto && (cur == nil || len(next.content) > len(cur.content)):
		next.stamp = s.versions.stamp(next.at)
		t.pass() // raise's notification may wait for a READ
		s.raise(node, v, next, notify)
		return true
	case mode == InvalAuto:
		next.stamp = s.versions.stamp(next.at)
		v.cur.Store(next)
		return false
	default:
		next.stamp = s.versions.stamp(next.at)
		inPlace := mode == InvalExplicit && cur != nil && v.onlyTold(uint64(len(next.content)))
		t.notify(func() { s.push(node, v, next, inPlace, notify) })
		return !inPlace
	}
}

// validity is how long the kernel may keep a's attributes, which tell
// version r of v: until r is Fresh old, or, for a regular reader of a
// file the server holds fresh itself (keep.go), the file's Hold.
// Preconditions: v.mu held.
func (s *Server) validity(a *Attr, v *version, by asker, r *rendering, now time.Time) time.Duration {
	if by != askPath && by != askOpen {
		return r.valid(a.Fresh, now)
	}
	asked := v.asked
	v.asked = now
	if a.Hold > 0 && a.Fresh > 0 && r.keep && regular(asked, v.heldTo, a.Fresh, a.Hold, now) && s.holding.Load() && s.Inval() == InvalExplicit {
		v.heldTo = now.Add(a.Hold)
		s.keeper.hold(a.Ino, a.Fresh, v.heldTo)
		return a.Hold
	}
	return r.valid(a.Fresh, now)
}

// tell records size as the one the kernel is told for node, before it is
// (the reply or the STORE that raises it), in the FS's SizeBook if it keeps
// one: a successor that reads it errs towards the size the kernel holds.
func (s *Server) tell(node, size uint64) {
	if b, ok := s.fs.(SizeBook); ok {
		b.Tell(node, size)
	}
}

// valid is how much longer the kernel may keep r's attributes: until r is
// fresh old, none for a stand-in, and at least reuseWithin for a version
// kept past its fresh (a reader in the middle of it).
func (r *rendering) valid(fresh time.Duration, now time.Time) time.Duration {
	if !r.keep {
		return 0
	}
	if v := fresh - now.Sub(r.at); v > 0 {
		return v
	}
	return min(reuseWithin, fresh)
}

// raise makes next, longer than any version the kernel may hold, v's
// version: the kernel drops the file's pages and attributes (and every
// GETATTR reply in flight), then its size is raised to next's length.
// Notification errors are ENOENT (the kernel does not hold the node:
// nothing to drop) or the connection's end, which the readers see.
func (s *Server) raise(node uint64, v *version, next *rendering, notify func([]byte) error) {
	if notify != nil {
		notify(notification(notifyInvalInode, invalInodeOut(node)))
	}
	v.cur.Store(next)
	s.tell(node, uint64(len(next.content)))
	if notify != nil {
		notify(notification(notifyStore, storeOut(node, next.content)))
	}
}

// push makes next v's version with all its bytes in the kernel's page
// cache (InvalExplicit, InvalUnknown: see the top of this file). inPlace
// stores over the old pages; otherwise the barrier comes first. Errors
// are as raise's.
func (s *Server) push(node uint64, v *version, next *rendering, inPlace bool, notify func([]byte) error) {
	if !inPlace {
		if notify != nil {
			notify(notification(notifyInvalInode, invalInodeOut(node)))
		}
		v.toldLo, v.toldHi = 1, 0
	}
	v.cur.Store(next)
	s.tell(node, uint64(len(next.content)))
	if notify != nil && len(next.content) > 0 {
		notify(notification(notifyStore, storeAllOut(node, next.content)))
	}
}

// read answers a READ from the file's version. A file without one (its
// GETATTR was answered by a predecessor that died before the READ) is
// rendered now; the kernel holds the size the predecessor told, and reads
// no further than it. When the rendering is longer than that size (the
// FS's SizeBook says), its attributes are dropped before the answer: the
// reader's next read(2) asks GETATTR, which tells this rendering's size
// and stamp, and reads on in it. A shorter rendering needs nothing: the
// short READ lowers the size. (Dropping the attributes then would keep the
// kernel from lowering it: the READ's attribute version is older.)
func (s *Server) read(r request) ([]byte, error) {
	in, err := parseReadIn(r.Body)
	if err != nil {
		return nil, syscall.EINVAL
	}
	now := time.Now()
	v := s.versions.get(r.Node, now)
	cur := v.cur.Load()
	if cur == nil {
		r.turn.pass()
		c, keep, err := s.fs.Content(r.Node)
		if err != nil {
			return nil, err
		}
		cur = &rendering{content: c, keep: keep, stamp: s.versions.stamp(now), at: now}
		if !v.cur.CompareAndSwap(nil, cur) {
			cur = v.cur.Load()
		} else {
			s.outgrown(r.Node, uint64(len(c)))
		}
	}
	if in.Offset >= uint64(len(cur.content)) {
		return nil, nil
	}
	end := min(in.Offset+uint64(in.Size), uint64(len(cur.content)))
	return cur.content[in.Offset:end], nil
}

// outgrown drops node's attributes when size is more than the kernel was
// last told (read), and records size: the kernel learns it from this READ
// (a short one lowers the size to it) or from the GETATTR that follows. A
// node the SizeBook does not know keeps its attributes.
func (s *Server) outgrown(node, size uint64) {
	b, ok := s.fs.(SizeBook)
	if !ok {
		return
	}
	if told, ok := b.Told(node); ok && size > told && s.notify != nil {
		s.notify(notification(notifyInvalInode, invalAttrsOut(node)))
	}
	b.Tell(node, size)
}
