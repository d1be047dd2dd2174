package procview

import (
	"fmt"
	"os"
	"sync/atomic"

	"github.com/lkc-containers/lkc/internal/fdstore"
	"github.com/lkc-containers/lkc/internal/fuse"
)

// sizesKey is the holder's key for the size book's memfd.
const sizesKey = "proc-sizes"

// The size book (fuse.SizeBook) keeps, for each file of each slot, the size
// the kernel was last told, in a memfd the holder keeps with the session:
// a worker killed between a GETATTR and the READ that follows leaves the
// kernel holding that size, and its successor, which renders the file anew
// for the READ, must know whether its rendering is longer (docs/procfs.md).
// One word per file: the node's generation (low 32 bits), a mark, the size.
const (
	bookSlots   = 1 << 16 // slots beyond are not booked (their successor reads as before)
	bookIndexes = 32      // files and directories per slot; the layout must fit
	bookSize    = bookSlots * bookIndexes * 8
	bookMark    = 1 << 31
	bookMaxSize = bookMark - 1
)

// sizeBook maps the memfd; the memfd is sparse, so only the pages of slots
// in use cost memory.
type sizeBook struct {
	f   *os.File
	mem []byte
}

// openSizeBook maps f, or a new memfd when f is nil.
func openSizeBook(f *os.File) (*sizeBook, error) {
	f, mem, err := fdstore.MapShared(f, "lkc-proc-sizes", bookSize)
	if err != nil {
		return nil, fmt.Errorf("/proc view's size book: %w", err)
	}
	return &sizeBook{f: f, mem: mem}, nil
}

var _ fuse.SizeBook = (*sizeBook)(nil)

// Told returns the size last told for node, when its record is of node's
// generation.
func (b *sizeBook) Told(node uint64) (uint64, bool) {
	w, gen := b.word(node)
	if w == nil {
		return 0, false
	}
	v := atomic.LoadUint64(w)
	if v&bookMark == 0 || v>>32 != gen {
		return 0, false
	}
	return v & bookMaxSize, true
}

// Tell records size for node; a size beyond the word's bound unbooks it.
func (b *sizeBook) Tell(node, size uint64) {
	w, gen := b.word(node)
	if w == nil {
		return
	}
	if size > bookMaxSize {
		atomic.StoreUint64(w, 0)
		return
	}
	atomic.StoreUint64(w, gen<<32|bookMark|size)
}

// word is node's record and the generation it must carry; nil for a node
// outside the book.
func (b *sizeBook) word(node uint64) (*uint64, uint64) {
	gen, slot, index := splitNode(node)
	if b == nil || slot >= bookSlots || index >= bookIndexes {
		return nil, 0
	}
	return bookWord(b.mem, slot*bookIndexes+index), gen & 0xffffffff
}

// bookedTree is the tree with the session's size book: the server tells
// the book every size it tells the kernel.
type bookedTree struct {
	*tree
	*sizeBook
}
