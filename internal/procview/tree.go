package procview

import (
	"os"
	"path"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/fuse"
	"github.com/lkc-containers/lkc/internal/procfs"
)

// layout is the tree under one slot: directories first needed by the
// files of procfs.Files, each at a fixed index (index 0 is the slot's own
// directory). A node id is gen<<32 | slot<<8 | index: a pure function of
// the registry's persisted slots, so a successor worker answers ids the
// kernel cached from its predecessor, and a reused slot (next generation)
// never answers for the lingering mounts of its old container (ESTALE).
//
// Each file is also in the slot's directory itself under its flat name
// (flatName: the same node, a hard link), so that lkc create clones every
// file from one listing of that directory: walking proc/ and
// sys/devices/system/cpu/ costs a LOOKUP round trip to the worker per
// directory.
type layout struct {
	paths []string       // by index; "" is the slot directory
	index map[string]int // path -> index
	dir   []bool         // by index
	flat  []string       // the files' flat names, in the order of files
	flats map[string]int // flat name -> index
}

func newLayout(files []string) *layout {
	l := &layout{paths: []string{""}, index: map[string]int{"": 0}, dir: []bool{true}, flats: map[string]int{}}
	for _, f := range files {
		for d := path.Dir(f); d != "."; d = path.Dir(d) {
			l.add(d, true)
		}
	}
	for _, f := range files {
		l.add(f, false)
	}
	for _, f := range files {
		l.flat = append(l.flat, flatName(f))
		l.flats[flatName(f)] = l.index[f]
	}
	return l
}

// flatName is the name of file f (a path in the slot) in the slot's
// directory itself: proc/meminfo is proc-meminfo.
func flatName(f string) string { return strings.ReplaceAll(f, "/", "-") }

func (l *layout) add(p string, dir bool) {
	if _, ok := l.index[p]; ok {
		return
	}
	l.index[p] = len(l.paths)
	l.paths = append(l.paths, p)
	l.dir = append(l.dir, dir)
}

// children lists the indexes directly under index i.
func (l *layout) children(i int) []int {
	var out []int
	for j, p := range l.paths {
		if j != 0 && parentOf(p) == l.paths[i] {
			out = append(out, j)
		}
	}
	return out
}

func parentOf(p string) string {
	if d := path.Dir(p); d != "." {
		return d
	}
	return ""
}

// Node ids (see layout).
const (
	indexBits = 8
	slotBits  = 24
)

func nodeID(gen uint64, slot, index int) uint64 {
	return gen<<(indexBits+slotBits) | uint64(slot)<<indexBits | uint64(index)
}

func splitNode(id uint64) (gen uint64, slot, index int) {
	return id >> (indexBits + slotBits), int(id>>indexBits) & (1<<slotBits - 1), int(id & (1<<indexBits - 1))
}

// fresh is how old a file's content the kernel may serve from its page
// cache (fuse.Attr.Fresh): the counters behind meminfo lag up to a second
// in the kernel itself (vmstat's per-CPU deltas; v2's memory.stat flushes
// every 2 s), cpuinfo, cpu/online and swaps change with the limits, and the
// load averages every 5 s; uptime and stat are read for their clocks and
// CPU times, to the hundredth of a second.
var fresh = map[string]time.Duration{
	"proc/uptime": 10 * time.Millisecond,
	"proc/stat":   250 * time.Millisecond,
}

// freshDefault is every other file's.
const freshDefault = time.Second

// hold is how long a reader's GETATTR lets the kernel keep a file's
// attributes while the worker keeps the file no older than its fresh in
// the page cache itself (fuse.Attr.Hold): a top refreshing every few
// seconds then reads the cache, at the kernel's own cost, not the worker.
// A file nobody reads for hold is let go. uptime is not held: it is read
// against the kernel's clocks (procps ps's %CPU is a process's CPU time
// over the uptime less its start), so its fresh is one tick of its
// precision and every read after it asks the worker; a held uptime up to
// its fresh old gave a process that had only counted 122% of a CPU.
const hold = 10 * time.Second

// unheld are the files never held.
var unheld = map[string]bool{"proc/uptime": true}

// entries is what the tree needs of the served set.
type entries interface {
	// slotGen is slot n's generation while a container with a virtual
	// /proc is behind it.
	slotGen(n int) (uint64, bool)
	// slots lists such slots.
	slots() []int
	// container is the container behind slot n of generation gen.
	container(n int, gen uint64) (*procfs.Container, bool)
}

// tree is the FUSE tree: the root lists one directory per served slot.
type tree struct {
	layout *layout
	served entries
	render func(name string, c *procfs.Container) ([]byte, error)
	host   string // where the host's own files are read on fallback ("/")
	mtime  time.Time
	// dieAt is the marker file of CloneDieEnv ("": none).
	dieAt string
}

var _ fuse.FS = (*tree)(nil)

func (t *tree) attr(id uint64, dir bool) fuse.Attr {
	mode := uint32(syscall.S_IFREG | 0o444)
	if dir {
		mode = syscall.S_IFDIR | 0o555
	}
	return fuse.Attr{Ino: id, Mode: mode, Mtime: t.mtime}
}

func (t *tree) Lookup(parent uint64, name string) (fuse.Attr, error) {
	if parent == fuse.RootID {
		n, err := strconv.Atoi(name)
		if err != nil || strconv.Itoa(n) != name {
			return fuse.Attr{}, syscall.ENOENT
		}
		gen, ok := t.served.slotGen(n)
		if !ok {
			return fuse.Attr{}, syscall.ENOENT
		}
		// The kernel keeps the name like any other: the service has it
		// drop the name when the slot is released (forgetSlot).
		return t.attr(nodeID(gen, n, 0), true), nil
	}
	gen, slot, i, err := t.live(parent)
	if err != nil {
		return fuse.Attr{}, err
	}
	p := name
	if t.layout.paths[i] != "" {
		p = t.layout.paths[i] + "/" + name
	}
	j, ok := t.layout.index[p]
	if !ok && i == 0 {
		j, ok = t.layout.flats[name]
	}
	if !ok || strings.Contains(name, "/") {
		return fuse.Attr{}, syscall.ENOENT
	}
	if p == cloneDieDir && t.dieAt != "" && os.Remove(t.dieAt) == nil {
		unix.Kill(os.Getpid(), unix.SIGKILL)
	}
	return t.fileAttr(nodeID(gen, slot, j), j), nil
}

// fileAttr describes the node at index i of a slot.
func (t *tree) fileAttr(id uint64, i int) fuse.Attr {
	a := t.attr(id, t.layout.dir[i])
	if !t.layout.dir[i] {
		a.Fresh = freshDefault
		if f, ok := fresh[t.layout.paths[i]]; ok {
			a.Fresh = f
		}
		if !unheld[t.layout.paths[i]] {
			a.Hold = hold
		}
	}
	return a
}

// live decodes a node of a slot that still serves its generation.
func (t *tree) live(id uint64) (gen uint64, slot, index int, err error) {
	gen, slot, index = splitNode(id)
	cur, ok := t.served.slotGen(slot)
	if !ok || cur != gen || index >= len(t.layout.paths) {
		return 0, 0, 0, syscall.ESTALE
	}
	return gen, slot, index, nil
}

func (t *tree) Getattr(id uint64) (fuse.Attr, error) {
	if id == fuse.RootID {
		return t.attr(id, true), nil
	}
	_, _, i, err := t.live(id)
	if err != nil {
		return fuse.Attr{}, err
	}
	return t.fileAttr(id, i), nil
}

func (t *tree) Readdir(id uint64) ([]fuse.Dirent, error) {
	var out []fuse.Dirent
	if id == fuse.RootID {
		for _, n := range t.served.slots() {
			if gen, ok := t.served.slotGen(n); ok {
				out = append(out, fuse.Dirent{Ino: nodeID(gen, n, 0), Type: syscall.S_IFDIR, Name: strconv.Itoa(n)})
			}
		}
		return out, nil
	}
	gen, slot, i, err := t.live(id)
	if err != nil {
		return nil, err
	}
	if !t.layout.dir[i] {
		return nil, syscall.ENOTDIR
	}
	for _, j := range t.layout.children(i) {
		typ := uint32(syscall.S_IFREG)
		if t.layout.dir[j] {
			typ = syscall.S_IFDIR
		}
		out = append(out, fuse.Dirent{Ino: nodeID(gen, slot, j), Type: typ, Name: path.Base(t.layout.paths[j])})
	}
	if i == 0 {
		for _, name := range t.layout.flat {
			out = append(out, fuse.Dirent{Ino: nodeID(gen, slot, t.layout.flats[name]), Type: syscall.S_IFREG, Name: name})
		}
	}
	return out, nil
}

// Content renders a file for its container. When rendering fails (the
// container's cgroup went away mid-read, a v1 controller is missing, the
// container is still being created) the reader gets the host's own file:
// the kernel's format and real values, as if the container had no virtual
// /proc, rather than an error a tool such as free or top cannot handle.
// The host's file is a stand-in the kernel does not cache: the next read
// renders again (a container being restored is served as soon as it is
// adopted). Only a node of a released slot (a lingering mount after
// delete, or a reused slot) is an error: ESTALE.
func (t *tree) Content(id uint64) ([]byte, bool, error) {
	gen, slot, i, err := t.live(id)
	if err != nil {
		return nil, false, err
	}
	if t.layout.dir[i] {
		return nil, false, syscall.EISDIR
	}
	name := t.layout.paths[i]
	if c, ok := t.served.container(slot, gen); ok {
		if b, err := t.render(name, c); err == nil {
			return b, true, nil
		}
	}
	b, err := os.ReadFile(path.Join(t.host, name))
	return b, false, err
}
