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
		a, err := s.fs.Getattr(r.Node)
		if err != nil {
			return nil, err
		}
		return attrOut(a, cacheValid), nil
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
	return entryOut(a, cacheValid), nil
}

func (s *Server) openFile(r request) ([]byte, error) {
	a, err := s.fs.Getattr(r.Node)
	if err != nil {
		return nil, err
	}
	if a.Mode&syscall.S_IFMT != syscall.S_IFREG {
		return nil, syscall.EISDIR
	}
	return openOut(s.handles.add(r.Node), fopenDirectIO), nil
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
