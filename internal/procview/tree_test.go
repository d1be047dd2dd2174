package procview

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lkc-containers/lkc/internal/fuse"
	"github.com/lkc-containers/lkc/internal/procfs"
)

// served is the entries of a test: slot -> generation; a container for
// every served slot.
type served map[int]uint64

func (s served) slotGen(n int) (uint64, bool) { g, ok := s[n]; return g, ok }
func (s served) slots() []int {
	var out []int
	for n := range s {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}
func (s served) container(n int, gen uint64) (*procfs.Container, bool) {
	if g, ok := s[n]; !ok || g != gen {
		return nil, false
	}
	return &procfs.Container{InitPid: n}, true
}

func newTestTree(t *testing.T, s served, render func(string, *procfs.Container) ([]byte, error)) *tree {
	host := t.TempDir()
	for _, f := range procfs.Files {
		p := filepath.Join(host, f)
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte("host "+f+"\n"), 0o644)
	}
	return &tree{layout: newLayout(procfs.Files), served: s, render: render, host: host}
}

func TestNodeIDRoundTrip(t *testing.T) {
	for _, c := range []struct {
		gen         uint64
		slot, index int
	}{{1, 0, 0}, {7, 3, 12}, {1<<32 - 1, 1<<24 - 1, 255}} {
		id := nodeID(c.gen, c.slot, c.index)
		if id == fuse.RootID {
			t.Errorf("%+v is the root's id", c)
		}
		g, s, i := splitNode(id)
		if g != c.gen || s != c.slot || i != c.index {
			t.Errorf("%+v -> %#x -> %d %d %d", c, id, g, s, i)
		}
	}
}

func TestLayoutHoldsEveryFile(t *testing.T) {
	l := newLayout(procfs.Files)
	if len(l.paths) > 1<<indexBits {
		t.Fatalf("%d nodes per slot do not fit %d bits", len(l.paths), indexBits)
	}
	for _, f := range procfs.Files {
		i, ok := l.index[f]
		if !ok || l.dir[i] {
			t.Errorf("%s: index %d, dir %v", f, i, ok && l.dir[i])
		}
	}
	if i := l.index["sys/devices/system/cpu"]; !l.dir[i] {
		t.Errorf("sys/devices/system/cpu is not a directory")
	}
}

// walk looks a slash-separated path up from the root.
func walk(t *testing.T, tr *tree, p string) (fuse.Attr, error) {
	t.Helper()
	a := fuse.Attr{Ino: fuse.RootID}
	var err error
	for _, name := range strings.Split(p, "/") {
		if a, err = tr.Lookup(a.Ino, name); err != nil {
			return a, err
		}
	}
	return a, nil
}

func TestTreeLookupReaddirContent(t *testing.T) {
	s := served{0: 1, 4: 9}
	render := func(name string, c *procfs.Container) ([]byte, error) {
		return []byte("container " + name + "\n"), nil
	}
	tr := newTestTree(t, s, render)
	ents, err := tr.Readdir(fuse.RootID)
	if err != nil || len(ents) != 2 || ents[0].Name != "0" || ents[1].Name != "4" {
		t.Fatalf("root: %+v, %v", ents, err)
	}
	a, err := walk(t, tr, "4/proc/meminfo")
	if err != nil || a.Mode != syscall.S_IFREG|0o444 {
		t.Fatalf("4/proc/meminfo: %+v, %v", a, err)
	}
	if g, slot, _ := splitNode(a.Ino); g != 9 || slot != 4 {
		t.Errorf("node %#x is not slot 4's of generation 9", a.Ino)
	}
	if c, keep, err := tr.Content(a.Ino); err != nil || string(c) != "container proc/meminfo\n" || !keep {
		t.Errorf("content: %q, %v", c, err)
	}
	if _, err := walk(t, tr, "4/sys/devices/system/cpu/online"); err != nil {
		t.Errorf("cpu/online: %v", err)
	}
	for _, bad := range []string{"5", "04", "x", "4/proc/self", "4/proc/meminfo/x"} {
		if _, err := walk(t, tr, bad); err == nil {
			t.Errorf("%s found", bad)
		}
	}
	dir, _ := walk(t, tr, "4/proc")
	ents, err = tr.Readdir(dir.Ino)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name)
	}
	if err != nil || len(names) != 8 || !slices.Contains(names, "meminfo") || !slices.Contains(names, "vmstat") {
		t.Errorf("4/proc: %q, %v", names, err)
	}
}

// TestTreeFlatNames: every file is also in its slot's directory under its
// flat name, as the same node, and a listing of the slot names them all.
func TestTreeFlatNames(t *testing.T) {
	tr := newTestTree(t, served{4: 9}, nil)
	slot, _ := walk(t, tr, "4")
	ents, err := tr.Readdir(slot.Ino)
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]uint64{}
	for _, e := range ents {
		listed[e.Name] = e.Ino
	}
	for _, f := range procfs.Files {
		nested, err := walk(t, tr, "4/"+f)
		if err != nil {
			t.Fatalf("4/%s: %v", f, err)
		}
		flat, err := walk(t, tr, "4/"+flatName(f))
		if err != nil || flat != nested {
			t.Errorf("4/%s: %+v, %v; want %+v", flatName(f), flat, err, nested)
		}
		if listed[flatName(f)] != nested.Ino {
			t.Errorf("listing of 4: %s is %#x, want %#x", flatName(f), listed[flatName(f)], nested.Ino)
		}
	}
	if _, ok := listed["proc"]; !ok || len(listed) != 2+len(procfs.Files) {
		t.Errorf("listing of 4: %v", listed)
	}
	if _, err := walk(t, tr, "4/proc/proc-meminfo"); err == nil {
		t.Errorf("a flat name found below the slot's directory")
	}
}

// TestTreeStaleAfterReuse: a node of a released slot, or of the slot's
// previous generation, answers ESTALE, never another container's file.
func TestTreeStaleAfterReuse(t *testing.T) {
	s := served{2: 1}
	tr := newTestTree(t, s, func(string, *procfs.Container) ([]byte, error) { return []byte("x"), nil })
	a, err := walk(t, tr, "2/proc/stat")
	if err != nil {
		t.Fatal(err)
	}
	s[2] = 2 // released and adopted again by another container
	if _, err := tr.Getattr(a.Ino); !errors.Is(err, syscall.ESTALE) {
		t.Errorf("getattr of the old generation: %v", err)
	}
	if _, _, err := tr.Content(a.Ino); !errors.Is(err, syscall.ESTALE) {
		t.Errorf("content of the old generation: %v", err)
	}
	delete(s, 2)
	if _, err := walk(t, tr, "2"); !errors.Is(err, syscall.ENOENT) {
		t.Errorf("lookup of a free slot: %v", err)
	}
}

// TestTreeFallsBackToHost: a render that fails (cgroup gone) serves the
// host's file.
func TestTreeFallsBackToHost(t *testing.T) {
	s := served{0: 1}
	tr := newTestTree(t, s, func(string, *procfs.Container) ([]byte, error) {
		return nil, errors.New("memory.stat: no such file")
	})
	a, err := walk(t, tr, "0/proc/meminfo")
	if err != nil {
		t.Fatal(err)
	}
	if c, keep, err := tr.Content(a.Ino); err != nil || string(c) != "host proc/meminfo\n" || keep {
		t.Errorf("content: %q, %v", c, err)
	}
}

// TestTreeFilesAreFresh: every file may be served from the kernel's cache
// for a bounded time, finer for uptime and stat; directories carry none.
func TestTreeFilesAreFresh(t *testing.T) {
	tr := newTestTree(t, served{0: 1}, func(string, *procfs.Container) ([]byte, error) { return nil, nil })
	for _, f := range procfs.Files {
		a, err := walk(t, tr, "0/"+f)
		if err != nil {
			t.Fatal(err)
		}
		want := time.Second
		if f == "proc/uptime" || f == "proc/stat" {
			want = 250 * time.Millisecond
		}
		if a.Fresh <= 0 || a.Fresh > want {
			t.Errorf("%s: Fresh %v, want (0, %v]", f, a.Fresh, want)
		}
		if g, err := tr.Getattr(a.Ino); err != nil || g.Fresh != a.Fresh {
			t.Errorf("%s: Getattr's Fresh %v (%v), Lookup's %v", f, g.Fresh, err, a.Fresh)
		}
	}
	if a, err := walk(t, tr, "0/proc"); err != nil || a.Fresh != 0 {
		t.Errorf("directory proc: Fresh %v, %v", a.Fresh, err)
	}
}
