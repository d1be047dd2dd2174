package fuse

import (
	"errors"
	"syscall"
	"time"
)

// FS is the tree a server answers for. Node ids are the FS's own: a pure
// function of state that outlives the server process is what lets a
// successor answer ids the kernel cached from its predecessor. Methods are
// called from several goroutines at once. An error that is (or wraps) a
// syscall.Errno is returned to the caller as that errno, any other as EIO.
type FS interface {
	// Lookup finds name in directory parent (ENOENT when absent).
	Lookup(parent uint64, name string) (Attr, error)
	// Getattr describes node (ESTALE for a node that no longer exists).
	Getattr(node uint64) (Attr, error)
	// Readdir lists directory node, without "." and "..".
	Readdir(node uint64) ([]Dirent, error)
	// Content renders regular file node. The server calls it when the
	// kernel asks the file's attributes after its Fresh ran out (or never
	// saw them), and serves every read from that one rendering until the
	// next, so a reader sees one snapshot whatever its buffer. keep false
	// marks a stand-in (the file cannot be rendered for now) that the
	// kernel must not cache beyond the read at hand.
	Content(node uint64) (c []byte, keep bool, err error)
}

// SizeBook is what an FS keeps, outside the server process, of the size
// the kernel was last told for each regular file: a successor server that
// does not know its predecessor's versions reads it to tell whether the
// kernel holds a size below the rendering it serves (content.go, read). An
// FS that implements it gets every size the server tells the kernel.
type SizeBook interface {
	// Told returns the size last told for node; false when none is known.
	Told(node uint64) (uint64, bool)
	// Tell records size as told for node.
	Tell(node, size uint64)
}

// Attr describes one node. Mode includes the type bits (S_IFDIR, S_IFREG).
type Attr struct {
	Ino      uint64
	Mode     uint32
	Size     uint64
	UID, GID uint32
	Mtime    time.Time
	// Fresh is, for a regular file, how old a rendering the kernel may
	// serve from its page cache without asking the server; 0 asks before
	// every open and read.
	Fresh time.Duration
	// Hold is, for a regular file, how long a reader's GETATTR may let
	// the kernel keep its attributes while the server keeps the file no
	// more than Fresh old in the page cache itself (keep.go); 0: only for
	// Fresh, and the next read after it asks.
	Hold time.Duration
}

// Dirent is one directory entry; Type is the S_IFMT bits of its mode.
type Dirent struct {
	Ino  uint64
	Type uint32
	Name string
}

// errno maps an FS error to the errno the caller sees.
func errno(err error) syscall.Errno {
	var e syscall.Errno
	if errors.As(err, &e) && e != 0 {
		return e
	}
	return syscall.EIO
}
