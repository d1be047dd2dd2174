package fuse

import (
	"fmt"
	"syscall"
)

// cacheValid is how long (seconds) the kernel may keep a lookup or an
// attribute: nodes of this tree change only when a slot is reused, which
// bumps the node id itself.
const cacheValid = 1

// handle answers one request; a nil reply means none is due (FORGET).
func (s *Server) handle(r request) []byte {
	payload, err := s.dispatch(r)
	switch {
	case err == errNoReply:
		return nil
	case err != nil:
		return reply(r.Unique, errno(err), nil)
	}
	return reply(r.Unique, 0, payload)
}

// errNoReply marks requests the kernel expects no answer to.
var errNoReply = fmt.Errorf("no reply")

func (s *Server) dispatch(r request) ([]byte, error) {
	switch r.Opcode {
	case opInit:
		return s.init(r.Body)
	case opLookup:
		return s.lookup(r)
	case opGetattr:
		return s.getattr(r)
	case opOpen:
		return s.openFile(r)
	case opRead:
		return s.read(r)
	case opRelease:
		if len(r.Body) < releaseInSize {
			return nil, syscall.EINVAL
		}
		s.handles.remove(r.Node, ne.Uint64(r.Body))
		return nil, nil
	case opOpendir:
		if _, err := s.fs.Getattr(r.Node); err != nil {
			return nil, err
		}
		return openOut(0, 0), nil
	case opReaddir:
		return s.readdir(r)
	case opReleasedir, opDestroy:
		return nil, nil
	case opStatfs:
		return statfsOut(0), nil
	case opForget, opBatchForget:
		// Node ids are pure functions of the FS's state: no lookup counts.
		return nil, errNoReply
	}
	// ENOSYS also tells the kernel not to ask again (INTERRUPT, FLUSH,
	// ACCESS, GETXATTR, STATX, POLL...).
	return nil, syscall.ENOSYS
}

func (s *Server) lookup(r request) ([]byte, error) {
	name, err := cstring(r.Body)
	if err != nil {
		return nil, syscall.EINVAL
	}
	a, err := s.fs.Lookup(r.Node, name)
	if err != nil {
		return nil, err
	}
	s.sized(&a, r.PID)
	return entryOut(a, cacheValid), nil
}

// getattr answers a regular file's size as the length of a rendering now,
// never cached: stat users (tail seeks from the end) see the real size.
func (s *Server) getattr(r request) ([]byte, error) {
	a, err := s.fs.Getattr(r.Node)
	if err != nil {
		return nil, err
	}
	if a.Mode&syscall.S_IFMT != syscall.S_IFREG {
		valid := uint64(cacheValid)
		if a.Volatile {
			valid = 0
		}
		return attrOut(a, valid), nil
	}
	s.sized(&a, r.PID)
	return attrOut(a, 0), nil
}

// sized sets a regular file's size to the length of a rendering now. The
// kernel takes the size of every answer carrying attributes as the
// inode's, a LOOKUP's too (a walk revalidating an expired name), and that
// size bounds splice and sendfile of files already open on the node: a
// LOOKUP answering 0 between another process's open and its sendfile
// (busybox cat) made it read nothing. Nor may it drop below the content
// an open handle of the node serves: a rendering shorter than the one
// opened (meminfo's numbers change length) cut that file's sendfile short.
// The answer is the longer of the two; a reader of the shorter one reads
// no further than its content (a short read lowers the size again).
func (s *Server) sized(a *Attr, pid uint32) {
	if a.Mode&syscall.S_IFMT != syscall.S_IFREG {
		return
	}
	if c, err := s.fs.Content(a.Ino); err == nil {
		a.Size = uint64(max(len(c), s.handles.longest(a.Ino)))
		s.recent.put(a.Ino, pid, c)
	}
}

// openFile renders the file into a new handle. Reads through read(2) are
// direct (FOPEN_DIRECT_IO) and bounded by nothing but the content; but
// splice and sendfile (busybox cat) read through the page cache, bounded
// by the inode's size, which the kernel may hold from long ago (a bind
// mount is never looked up again; kernels without the fix "fuse: use
// copy_splice_read for FOPEN_DIRECT_IO" read direct files that way). So
// before answering, the server raises that size to this rendering's length
// with FUSE_NOTIFY_STORE of its last byte (the page is dropped again when
// the open completes); a read that comes up short lowers the size again.
func (s *Server) openFile(r request) ([]byte, error) {
	a, err := s.fs.Getattr(r.Node)
	if err != nil {
		return nil, err
	}
	if a.Mode&syscall.S_IFMT != syscall.S_IFREG {
		return nil, syscall.EISDIR
	}
	fh := s.handles.add(r.Node)
	c, err := s.handles.get(r.Node, fh).render(func() ([]byte, error) {
		if c, ok := s.recent.take(r.Node, r.PID); ok {
			return c, nil
		}
		return s.fs.Content(r.Node)
	})
	if err != nil {
		s.handles.remove(r.Node, fh)
		return nil, err
	}
	if s.notify != nil {
		s.notify(notification(notifyStore, storeOut(r.Node, c)))
	}
	return openOut(fh, fopenDirectIO), nil
}

func (s *Server) read(r request) ([]byte, error) {
	in, err := parseReadIn(r.Body)
	if err != nil {
		return nil, syscall.EINVAL
	}
	render := func() ([]byte, error) { return s.fs.Content(r.Node) }
	return s.handles.get(r.Node, in.Fh).read(render, in.Offset, in.Size)
}

// readdir lists entries from index in.Offset on; each entry's off is the
// index of the next one, as the kernel passes it back in the next READDIR.
func (s *Server) readdir(r request) ([]byte, error) {
	in, err := parseReadIn(r.Body)
	if err != nil {
		return nil, syscall.EINVAL
	}
	ents, err := s.fs.Readdir(r.Node)
	if err != nil {
		return nil, err
	}
	all := append([]Dirent{{r.Node, syscall.S_IFDIR, "."}, {r.Node, syscall.S_IFDIR, ".."}}, ents...)
	var out []byte
	for i := in.Offset; i < uint64(len(all)); i++ {
		e := all[i]
		var ok bool
		if out, ok = appendDirent(out, int(in.Size), e.Ino, i+1, e.Type>>12, e.Name); !ok {
			break
		}
	}
	return out, nil
}
