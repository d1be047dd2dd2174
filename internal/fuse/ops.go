package fuse

import (
	"fmt"
	"syscall"
	"time"
)

// cacheValid is how long the kernel may keep a name, or a directory's
// attributes: nodes of this tree change only when a slot is reused, which
// bumps the node id itself.
const cacheValid = time.Second

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
		return nil, nil
	case opOpendir:
		if _, err := s.fs.Getattr(r.Node); err != nil {
			return nil, err
		}
		return openOut(0, 0), nil
	case opReaddir:
		return s.readdir(r)
	case opReaddirplus:
		return s.readdirplus(r)
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
	return s.lookupEntry(r, name)
}

// lookupEntry is the fuse_entry_out of name in directory r.Node.
func (s *Server) lookupEntry(r request, name string) ([]byte, error) {
	a, err := s.fs.Lookup(r.Node, name)
	if err != nil {
		return nil, err
	}
	valid, err := s.attrValid(&a, s.probed(r, askLookup), r.turn)
	if err != nil {
		return nil, err
	}
	return entryOut(a, cacheValid, valid), nil
}

func (s *Server) getattr(r request) ([]byte, error) {
	a, err := s.fs.Getattr(r.Node)
	if err != nil {
		return nil, err
	}
	// fuse_getattr_in: getattr_flags (FUSE_GETATTR_FH: of an open file).
	by := askPath
	if len(r.Body) >= 4 && ne.Uint32(r.Body)&getattrFH != 0 {
		by = askOpen
	}
	valid, err := s.attrValid(&a, s.probed(r, by), r.turn)
	if err != nil {
		return nil, err
	}
	return attrOut(a, valid), nil
}

// attrValid returns how long the kernel may keep a's attributes. Every
// answer with a regular file's attributes carries its current version's
// size and mtime (content.go): the kernel takes them from a LOOKUP's
// answer too, and a size below the content cuts reads short.
func (s *Server) attrValid(a *Attr, by asker, t *turn) (time.Duration, error) {
	if a.Mode&syscall.S_IFMT == syscall.S_IFREG {
		return s.current(a, by, t)
	}
	return cacheValid, nil
}

// openFile answers ENOSYS for a regular file: the kernel then opens files
// of this connection without asking (no OPEN, no RELEASE) and keeps their
// pages across opens, which content.go keeps right.
func (s *Server) openFile(r request) ([]byte, error) {
	a, err := s.fs.Getattr(r.Node)
	if err != nil {
		return nil, err
	}
	if a.Mode&syscall.S_IFMT != syscall.S_IFREG {
		return nil, syscall.EISDIR
	}
	return nil, syscall.ENOSYS
}

// readdir lists entries from index in.Offset on; each entry's off is the
// index of the next one, as the kernel passes it back in the next READDIR.
func (s *Server) readdir(r request) ([]byte, error) {
	return s.list(r, func(out []byte, max int, e Dirent, off uint64) ([]byte, bool) {
		return appendDirent(out, max, e.Ino, off, e.Type>>12, e.Name)
	})
}

// readdirplus is readdir with each entry's LOOKUP answer in front of it:
// the kernel instantiates every name listed, so a caller that lists a
// directory and then opens (or clones) its files asks one request for all
// of them instead of a LOOKUP each. A regular file's attributes are those
// a LOOKUP gets (its current version's size, content.go). An entry whose
// look-up fails, and "." and "..", carry node id 0: the kernel lists them
// without instantiating anything. An entry that will not fit is not
// looked up: the size its look-up tells would go into the size book
// without reaching the kernel.
func (s *Server) readdirplus(r request) ([]byte, error) {
	return s.list(r, func(out []byte, max int, e Dirent, off uint64) ([]byte, bool) {
		if !direntplusFits(out, max, e.Name) {
			return out, false
		}
		var entry []byte
		if e.Name != "." && e.Name != ".." {
			entry, _ = s.lookupEntry(r, e.Name)
		}
		return appendDirentplus(out, max, entry, e.Ino, off, e.Type>>12, e.Name)
	})
}

// list encodes directory r.Node's entries from index in.Offset on, with
// "." and ".." first, by add, until one does not fit.
func (s *Server) list(r request, add func(out []byte, max int, e Dirent, off uint64) ([]byte, bool)) ([]byte, error) {
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
		var ok bool
		if out, ok = add(out, int(in.Size), all[i], i+1); !ok {
			break
		}
	}
	return out, nil
}
