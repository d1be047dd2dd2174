package fuse

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"syscall"
	"time"
)

var ne = binary.NativeEndian

// request is one decoded fuse_in_header and the body that follows it.
type request struct {
	Len    uint32
	Opcode uint32
	Unique uint64
	Node   uint64
	UID    uint32
	GID    uint32
	PID    uint32
	Body   []byte
	// turn is the reading reader's, which it passes before it waits (nil
	// outside a read loop).
	turn *turn
}

// parseRequest decodes one request read from /dev/fuse. The body excludes
// any extension area (total_extlen, in units of 8 bytes) at its end.
func parseRequest(b []byte) (request, error) {
	if len(b) < inHeaderSize {
		return request{}, fmt.Errorf("fuse request of %d bytes: shorter than its header", len(b))
	}
	r := request{
		Len:    ne.Uint32(b[0:]),
		Opcode: ne.Uint32(b[4:]),
		Unique: ne.Uint64(b[8:]),
		Node:   ne.Uint64(b[16:]),
		UID:    ne.Uint32(b[24:]),
		GID:    ne.Uint32(b[28:]),
		PID:    ne.Uint32(b[32:]),
	}
	ext := int(ne.Uint16(b[36:])) * 8
	if int(r.Len) != len(b) || inHeaderSize+ext > len(b) {
		return request{}, fmt.Errorf("fuse request %d (opcode %d): length %d, read %d, extensions %d", r.Unique, r.Opcode, r.Len, len(b), ext)
	}
	r.Body = b[inHeaderSize : len(b)-ext]
	return r, nil
}

// encodeRequest is parseRequest's inverse, for tests and fakes.
func encodeRequest(r request) []byte {
	b := make([]byte, inHeaderSize+len(r.Body))
	ne.PutUint32(b[0:], uint32(len(b)))
	ne.PutUint32(b[4:], r.Opcode)
	ne.PutUint64(b[8:], r.Unique)
	ne.PutUint64(b[16:], r.Node)
	ne.PutUint32(b[24:], r.UID)
	ne.PutUint32(b[28:], r.GID)
	ne.PutUint32(b[32:], r.PID)
	copy(b[inHeaderSize:], r.Body)
	return b
}

// reply builds fuse_out_header + payload for unique; errno 0 is success.
func reply(unique uint64, errno syscall.Errno, payload []byte) []byte {
	if errno != 0 {
		payload = nil
	}
	b := make([]byte, outHeaderSize+len(payload))
	ne.PutUint32(b[0:], uint32(len(b)))
	ne.PutUint32(b[4:], uint32(-int32(errno)))
	ne.PutUint64(b[8:], unique)
	copy(b[outHeaderSize:], payload)
	return b
}

// notification builds a server-initiated message: unique 0, the code in
// the error field.
func notification(code int32, payload []byte) []byte {
	b := reply(0, 0, payload)
	ne.PutUint32(b[4:], uint32(code))
	return b
}

// cstring returns the NUL-terminated name at the start of b.
func cstring(b []byte) (string, error) {
	i := bytes.IndexByte(b, 0)
	if i < 0 {
		return "", fmt.Errorf("fuse name: no NUL terminator")
	}
	return string(b[:i]), nil
}

// putAttr encodes a into a fuse_attr at b[0:attrSize].
func putAttr(b []byte, a Attr) {
	ne.PutUint64(b[0:], a.Ino)
	ne.PutUint64(b[8:], a.Size)
	ne.PutUint64(b[16:], (a.Size+511)/512)
	sec := uint64(a.Mtime.Unix())
	nsec := uint32(a.Mtime.Nanosecond())
	for i := 0; i < 3; i++ { // atime, mtime, ctime
		ne.PutUint64(b[24+8*i:], sec)
		ne.PutUint32(b[48+4*i:], nsec)
	}
	ne.PutUint32(b[60:], a.Mode)
	nlink := uint32(1)
	if a.Mode&syscall.S_IFMT == syscall.S_IFDIR {
		nlink = 2
	}
	ne.PutUint32(b[64:], nlink)
	ne.PutUint32(b[68:], a.UID)
	ne.PutUint32(b[72:], a.GID)
	ne.PutUint32(b[76:], 0)    // rdev
	ne.PutUint32(b[80:], 4096) // blksize
	ne.PutUint32(b[84:], 0)    // flags
}

// entryOut encodes a fuse_entry_out for a looked-up node whose name the
// kernel may keep for entry and its attributes for attr.
func entryOut(a Attr, entry, attr time.Duration) []byte {
	b := make([]byte, entryOutSize)
	ne.PutUint64(b[0:], a.Ino)
	ne.PutUint64(b[8:], 0) // generation: node ids are never reused within one
	putValid(b[16:], b[32:], entry)
	putValid(b[24:], b[36:], attr)
	putAttr(b[40:], a)
	return b
}

// attrOut encodes a fuse_attr_out the kernel may keep for valid.
func attrOut(a Attr, valid time.Duration) []byte {
	b := make([]byte, attrOutSize)
	putValid(b[0:], b[8:], valid)
	putAttr(b[16:], a)
	return b
}

// putValid encodes a cache timeout as its seconds and nanoseconds fields.
func putValid(sec, nsec []byte, d time.Duration) {
	ne.PutUint64(sec, uint64(d/time.Second))
	ne.PutUint32(nsec, uint32(d%time.Second))
}

// invalInodeOut encodes a fuse_notify_inval_inode_out that drops node's
// attributes and every page of it (offset 0, length 0: to the end).
func invalInodeOut(node uint64) []byte {
	b := make([]byte, invalInodeSize)
	ne.PutUint64(b[0:], node)
	return b
}

// invalAttrsOut encodes a fuse_notify_inval_inode_out that drops only
// node's attributes (a negative offset): no page is touched, so it never
// waits for a READ in flight.
func invalAttrsOut(node uint64) []byte {
	b := invalInodeOut(node)
	ne.PutUint64(b[8:], ^uint64(0)) // offset -1
	return b
}

// invalEntryOut encodes a fuse_notify_inval_entry_out and its name.
func invalEntryOut(parent uint64, name string) []byte {
	b := make([]byte, 16, 16+len(name)+1)
	ne.PutUint64(b[0:], parent)
	ne.PutUint32(b[8:], uint32(len(name)))
	return append(append(b, name...), 0)
}

// openOut encodes a fuse_open_out.
func openOut(fh uint64, flags uint32) []byte {
	b := make([]byte, openOutSize)
	ne.PutUint64(b[0:], fh)
	ne.PutUint32(b[8:], flags)
	return b
}

// readIn is the part of fuse_read_in this package uses.
type readIn struct {
	Fh     uint64
	Offset uint64
	Size   uint32
}

func parseReadIn(b []byte) (readIn, error) {
	if len(b) < readInSize {
		return readIn{}, fmt.Errorf("fuse read_in of %d bytes", len(b))
	}
	return readIn{Fh: ne.Uint64(b[0:]), Offset: ne.Uint64(b[8:]), Size: ne.Uint32(b[16:])}, nil
}

// statfsOut encodes a fuse_statfs_out for a tree of few small files.
func statfsOut(files uint64) []byte {
	b := make([]byte, statfsOutSize)
	ne.PutUint64(b[24:], files)
	ne.PutUint32(b[40:], 4096) // bsize
	ne.PutUint32(b[44:], 255)  // namelen
	ne.PutUint32(b[48:], 4096) // frsize
	return b
}

// appendDirent appends one fuse_dirent (8-byte aligned) and reports false
// when it would not fit in max bytes.
func appendDirent(b []byte, max int, ino, off uint64, typ uint32, name string) ([]byte, bool) {
	n := (direntBaseSize + len(name) + 7) &^ 7
	if len(b)+n > max {
		return b, false
	}
	e := make([]byte, n)
	ne.PutUint64(e[0:], ino)
	ne.PutUint64(e[8:], off)
	ne.PutUint32(e[16:], uint32(len(name)))
	ne.PutUint32(e[20:], typ)
	copy(e[direntBaseSize:], name)
	return append(b, e...), true
}

// appendDirentplus appends one fuse_direntplus: entry (a fuse_entry_out;
// nil for none, node id 0) and the fuse_dirent, 8-byte aligned; false when
// it would not fit in max bytes.
func appendDirentplus(b []byte, max int, entry []byte, ino, off uint64, typ uint32, name string) ([]byte, bool) {
	if !direntplusFits(b, max, name) {
		return b, false
	}
	if entry == nil {
		entry = make([]byte, entryOutSize)
	}
	b = append(b, entry...)
	return appendDirent(b, max, ino, off, typ, name)
}

// direntplusFits reports whether name's READDIRPLUS entry fits after b
// in a reply of max bytes.
func direntplusFits(b []byte, max int, name string) bool {
	return len(b)+entryOutSize+(direntBaseSize+len(name)+7)&^7 <= max
}

// storeOut encodes a fuse_notify_store_out of content's last byte at its
// offset: the kernel raises the inode's size to len(content) when smaller.
// (A store of no data changes no size.)
func storeOut(node uint64, content []byte) []byte {
	b := make([]byte, 24, 25)
	ne.PutUint64(b[0:], node)
	if len(content) == 0 {
		return b
	}
	ne.PutUint64(b[8:], uint64(len(content)-1))
	ne.PutUint32(b[16:], 1)
	return append(b, content[len(content)-1])
}

// storeAllOut encodes a fuse_notify_store_out of all of content at offset 0.
func storeAllOut(node uint64, content []byte) []byte {
	b := make([]byte, 24, 24+len(content))
	ne.PutUint64(b[0:], node)
	ne.PutUint32(b[16:], uint32(len(content)))
	return append(b, content...)
}
