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
	// Content renders regular file node. It is called when a reader reads
	// at offset 0, so a reader that rewinds (top keeps /proc/stat open)
	// sees fresh content, and reads at other offsets are slices of that
	// one rendering, so a reader sees one snapshot whatever its buffer.
	Content(node uint64) ([]byte, error)
}

// Attr describes one node. Mode includes the type bits (S_IFDIR, S_IFREG).
type Attr struct {
	Ino      uint64
	Mode     uint32
	Size     uint64
	UID, GID uint32
	Mtime    time.Time
	// Volatile keeps the kernel from caching the node's name and
	// attributes: a node that comes and goes with no notice to the kernel
	// (a slot released) is gone at once.
	Volatile bool
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
