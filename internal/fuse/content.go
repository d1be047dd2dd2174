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
// attributes for the file's Fresh and asks GETATTR once they ran out;
// the server renders then, and a rendering that differs from the last
// gets a new stamp, so the kernel (FUSE_AUTO_INVAL_DATA) drops the old
// pages and READs the new version, which the server serves from that one
// rendering. An unchanged rendering keeps its stamp and the kernel its
// pages: such a read reaches the server only for the GETATTR.
//
// The inode's size must never be below the version the server serves, or
// readers stop short. Two GETATTRs in flight at once can end with the
// kernel holding the older one's size (it applies the first answer and
// drops replies older than it); a shorter version then read is fine (a
// short READ lowers the size), a longer one not. So a longer version is
// announced before its reply: FUSE_NOTIFY_INVAL_INODE drops the pages and
// the attributes and makes the kernel drop every reply in flight (the
// reader asks again), and FUSE_NOTIFY_STORE of the version's last byte
// raises the size to it.

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
		v = &version{}
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
		s.tell(a.Ino, a.Size)
		return cur.valid(a.Fresh, now), nil
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
	switch {
	case cur != nil && cur.keep == keepIt && bytes.Equal(c, cur.content):
		next.stamp = cur.stamp
		v.cur.Store(next)
	case cur == nil || len(c) > len(cur.content):
		next.stamp = s.versions.stamp(now)
		t.pass() // raise's notification may wait for a READ
		s.raise(a.Ino, v, next)
	default:
		next.stamp = s.versions.stamp(now)
		v.cur.Store(next)
	}
	a.Size, a.Mtime = uint64(len(c)), next.stamp
	s.tell(a.Ino, a.Size)
	return next.valid(a.Fresh, now), nil
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
func (s *Server) raise(node uint64, v *version, next *rendering) {
	if s.notify != nil {
		s.notify(notification(notifyInvalInode, invalInodeOut(node)))
	}
	v.cur.Store(next)
	s.tell(node, uint64(len(next.content)))
	if s.notify != nil {
		s.notify(notification(notifyStore, storeOut(node, next.content)))
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
