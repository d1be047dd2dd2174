package fuse

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// treeFS is a one-directory FS for tests: each file's content comes from
// its function, called with the number of renderings so far.
type treeFS struct {
	files   map[string]func(n int) ([]byte, error)
	renders atomic.Int64
	fresh   time.Duration // every file's Fresh
	hold    time.Duration // every file's Hold
	standIn bool          // Content's keep is false
}

func newTreeFS(files map[string]func(n int) ([]byte, error)) *treeFS {
	return &treeFS{files: files}
}

// names lists the files in order; file i has node id 100+i, the root 1.
func (t *treeFS) names() []string {
	var ns []string
	for n := range t.files {
		ns = append(ns, n)
	}
	slices.Sort(ns)
	return ns
}

func (t *treeFS) node(name string) (uint64, bool) {
	for i, n := range t.names() {
		if n == name {
			return uint64(100 + i), true
		}
	}
	return 0, false
}

func (t *treeFS) nameOf(node uint64) (string, bool) {
	ns := t.names()
	i := int(node) - 100
	if i < 0 || i >= len(ns) {
		return "", false
	}
	return ns[i], true
}

var testTime = time.Unix(1700000000, 5)

func (t *treeFS) Lookup(parent uint64, name string) (Attr, error) {
	if parent != RootID {
		return Attr{}, syscall.ENOTDIR
	}
	n, ok := t.node(name)
	if !ok {
		return Attr{}, syscall.ENOENT
	}
	return t.Getattr(n)
}

func (t *treeFS) Getattr(node uint64) (Attr, error) {
	if node == RootID {
		return Attr{Ino: RootID, Mode: syscall.S_IFDIR | 0o555, Mtime: testTime}, nil
	}
	if _, ok := t.nameOf(node); !ok {
		return Attr{}, syscall.ESTALE
	}
	return Attr{Ino: node, Mode: syscall.S_IFREG | 0o444, Mtime: testTime, Fresh: t.fresh, Hold: t.hold}, nil
}

func (t *treeFS) Readdir(node uint64) ([]Dirent, error) {
	if node != RootID {
		return nil, syscall.ENOTDIR
	}
	var out []Dirent
	for _, n := range t.names() {
		ino, _ := t.node(n)
		out = append(out, Dirent{Ino: ino, Type: syscall.S_IFREG, Name: n})
	}
	return out, nil
}

func (t *treeFS) Content(node uint64) ([]byte, bool, error) {
	name, ok := t.nameOf(node)
	if !ok {
		return nil, false, syscall.ESTALE
	}
	n := int(t.renders.Add(1))
	c, err := t.files[name](n)
	return c, !t.standIn, err
}

func static(s string) func(int) ([]byte, error) {
	return func(int) ([]byte, error) { return []byte(s), nil }
}

func failing(err error) func(int) ([]byte, error) {
	return func(int) ([]byte, error) { return nil, err }
}

// generations renders size bytes all made of one line naming the rendering,
// so a reader that mixed two renderings is caught.
func generations(size int) func(int) ([]byte, error) {
	return func(n int) ([]byte, error) {
		line := fmt.Sprintf("generation %08d\n", n)
		b := make([]byte, 0, size+len(line))
		for len(b) < size {
			b = append(b, line...)
		}
		return b, nil
	}
}

// bookFS is a treeFS with a SizeBook that outlives its server, as the /proc
// view's does.
type bookFS struct {
	*treeFS
	book *memBook
}

func (b *bookFS) Told(node uint64) (uint64, bool) { return b.book.get(node) }
func (b *bookFS) Tell(node, size uint64)          { b.book.set(node, size) }

type memBook struct {
	mu   sync.Mutex
	told map[uint64]uint64
}

func (m *memBook) get(node uint64) (uint64, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	size, ok := m.told[node]
	return size, ok
}

func (m *memBook) set(node, size uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.told == nil {
		m.told = map[uint64]uint64{}
	}
	m.told[node] = size
}
