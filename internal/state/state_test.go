package state

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/lkc-containers/lkc/internal/config"
)

// statLine builds a /proc/<pid>/stat line with comm and start time in field 22.
func statLine(comm string, start uint64) []byte {
	fields := []string{"S", "1"} // fields 3 and 4
	for i := 5; i <= 21; i++ {
		fields = append(fields, fmt.Sprint(i))
	}
	fields = append(fields, fmt.Sprint(start))
	for i := 23; i <= 52; i++ {
		fields = append(fields, "0")
	}
	return []byte(fmt.Sprintf("1234 (%s) %s\n", comm, strings.Join(fields, " ")))
}

func TestParseStartTime(t *testing.T) {
	for _, comm := range []string{"sh", "my prog", "a) b (c", ") ) )", "x)", ""} {
		got, err := parseStartTime(statLine(comm, 987654321))
		if err != nil || got != 987654321 {
			t.Errorf("comm %q: got %d, %v; want 987654321", comm, got, err)
		}
	}
	for _, bad := range []string{"", "1234 sh S 1", "1234 (sh) S 1 2 3", "1234 (sh) " + strings.Repeat("x ", 25)} {
		if got, err := parseStartTime([]byte(bad)); err == nil {
			t.Errorf("parseStartTime(%q) = %d, want an error", bad, got)
		}
	}
}

func TestStartTimeAndAliveWithFakeProc(t *testing.T) {
	old := ProcRoot
	ProcRoot = t.TempDir()
	t.Cleanup(func() { ProcRoot = old })
	write := func(pid int, line []byte) {
		dir := filepath.Join(ProcRoot, fmt.Sprint(pid))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "stat"), line, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(10, statLine("init (x)", 500))
	zombie := statLine("z", 600)
	zombie[len("1234 (z) ")] = 'Z'
	write(11, zombie)

	if st, err := StartTime(10); err != nil || st != 500 {
		t.Errorf("StartTime(10) = %d, %v", st, err)
	}
	if _, err := StartTime(99); err == nil {
		t.Error("StartTime of a missing pid succeeded")
	}
	cases := []struct {
		pid   int
		start uint64
		want  bool
	}{{10, 500, true}, {10, 501, false}, {11, 600, false}, {99, 1, false}, {0, 0, false}, {-1, 0, false}}
	for _, c := range cases {
		if got := Alive(c.pid, c.start); got != c.want {
			t.Errorf("Alive(%d, %d) = %v, want %v", c.pid, c.start, got, c.want)
		}
	}
}

func TestKernelThreadWithFakeProc(t *testing.T) {
	old := ProcRoot
	ProcRoot = t.TempDir()
	t.Cleanup(func() { ProcRoot = old })
	for pid, flags := range map[int]string{2: "2129984", 10: "4194560"} { // kthreadd's, a shell's
		line := bytes.Replace(statLine("k) (x", 1), []byte(" 9 "), []byte(" "+flags+" "), 1)
		dir := filepath.Join(ProcRoot, fmt.Sprint(pid))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "stat"), line, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for pid, want := range map[int]bool{2: true, 10: false} {
		if got, err := KernelThread(pid); err != nil || got != want {
			t.Errorf("KernelThread(%d) = %v, %v; want %v", pid, got, err, want)
		}
	}
	if _, err := KernelThread(99); err == nil {
		t.Error("KernelThread of a missing pid succeeded")
	}
}

func TestLiveTaskWithFakeProc(t *testing.T) {
	old := ProcRoot
	ProcRoot = t.TempDir()
	t.Cleanup(func() { ProcRoot = old })
	zombie := statLine("z", 1)
	zombie[len("1234 (z) ")] = 'Z'
	for path, line := range map[string][]byte{
		"10/stat": zombie, "10/task/10/stat": zombie, "10/task/11/stat": statLine("t", 1), // an exited leader
		"12/stat": statLine("a", 1), "12/task/12/stat": statLine("a", 1), "12/task/13/stat": statLine("b", 1),
		"14/stat": zombie, "14/task/14/stat": zombie, // a zombie
	} {
		p := filepath.Join(ProcRoot, path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, line, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for pid, want := range map[int]string{10: "10/task/11", 12: "12", 14: "14", 99: "99"} {
		if got := LiveTask(pid); got != filepath.Join(ProcRoot, want) {
			t.Errorf("LiveTask(%d) = %s, want %s", pid, got, want)
		}
	}
}

func TestStartTimeOfSelf(t *testing.T) {
	st, err := StartTime(os.Getpid())
	if err != nil || st == 0 {
		t.Fatalf("StartTime(self) = %d, %v", st, err)
	}
	if !Alive(os.Getpid(), st) {
		t.Error("this process is not alive")
	}
}

func TestCheckID(t *testing.T) {
	for _, id := range []string{"a", "ctr-1", "A_b.c+d", "..x", "x.."} {
		if err := CheckID(id); err != nil {
			t.Errorf("CheckID(%q): %v", id, err)
		}
	}
	for _, id := range []string{"", ".", "..", "a/b", "../x", "a b", "a\n", "ü"} {
		if err := CheckID(id); !errors.Is(err, ErrBadID) {
			t.Errorf("CheckID(%q) = %v, want ErrBadID", id, err)
		}
	}
}

// validID is the regexp it replaced, written out.
func TestValidIDIsTheRegexp(t *testing.T) {
	re := regexp.MustCompile(`^[\w+.-]+$`)
	ids := []string{"", "ab", "a b", "x\x00"}
	for c := range 256 {
		ids = append(ids, string([]byte{byte(c)}), "a"+string([]byte{byte(c)})+"b")
	}
	for _, id := range ids {
		if validID(id) != re.MatchString(id) {
			t.Errorf("validID(%q) = %v, the regexp says %v", id, validID(id), re.MatchString(id))
		}
	}
}

func TestLifecycleOnDisk(t *testing.T) {
	root := filepath.Join(t.TempDir(), "state") // made by Create
	d, err := Create(root, "c1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Load(); !errors.Is(err, ErrNotExist) {
		t.Errorf("Load before Save: %v, want ErrNotExist", err)
	}
	want := &State{
		ID: "c1", Bundle: "/b", Rootfs: "/b/rootfs", Created: time.Unix(1700000000, 5).UTC(),
		Owner: "root", InitPid: 42, InitStart: 777,
		CgroupPaths: map[string]string{"memory": "/sys/fs/cgroup/memory/lkc/c1"},
		Config:      &config.Config{ID: "c1", Process: config.Process{Args: []string{"sh"}, Cwd: "/"}},
	}
	first := *want
	first.InitPid, first.InitStart = 0, 0
	if err := d.Save(&first); err != nil {
		t.Fatal(err)
	}
	if err := d.Save(want); err != nil { // over the first: exchanged, not renamed over
		t.Fatal(err)
	}
	if !d.Creating() {
		t.Errorf("a new container is not marked as being created")
	}
	if err := d.Created(); err != nil || d.Creating() {
		t.Errorf("Created: %v; still marked as being created: %v", err, d.Creating())
	}
	d.Close()
	if _, err := Create(root, "c1"); !errors.Is(err, ErrExist) {
		t.Errorf("second Create: %v, want ErrExist", err)
	}

	d, err = Open(root, "c1", false)
	if err != nil {
		t.Fatal(err)
	}
	got, err := d.Load()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Load = %+v, want %+v", got, want)
	}
	if d.Path() != filepath.Join(root, "c1") {
		t.Errorf("Path %q", d.Path())
	}
	entries, _ := os.ReadDir(d.Path())
	if len(entries) != 1 || entries[0].Name() != "state.json" {
		t.Errorf("state dir holds %v, want only state.json", entries)
	}
	d.Close()

	for _, id := range []string{"c2", "c3"} {
		d, err := Create(root, id)
		if err != nil {
			t.Fatal(err)
		}
		d.Close()
	}
	os.WriteFile(filepath.Join(root, "not-a-dir"), nil, 0o644)
	ids, err := List(root)
	sort.Strings(ids)
	if err != nil || !reflect.DeepEqual(ids, []string{"c1", "c2", "c3"}) {
		t.Errorf("List = %v, %v", ids, err)
	}

	d, err = Open(root, "c1", true)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(root, "c1", false); !errors.Is(err, ErrNotExist) {
		t.Errorf("Open after Remove: %v, want ErrNotExist", err)
	}
	if _, err := Open(root, "../x", false); !errors.Is(err, ErrBadID) {
		t.Errorf("Open(../x): %v, want ErrBadID", err)
	}
	if _, err := Create(root, "a/b"); !errors.Is(err, ErrBadID) {
		t.Errorf("Create(a/b): %v, want ErrBadID", err)
	}
	if ids, err := List(filepath.Join(root, "missing")); err != nil || ids != nil {
		t.Errorf("List of a missing root = %v, %v; want nothing", ids, err)
	}
}

// TestOpenWaitsForDelete: a reader blocked on the lock of a container being
// removed must see it gone, not a half-removed directory.
func TestOpenWaitsForDelete(t *testing.T) {
	root := t.TempDir()
	d, err := Create(root, "c")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		r, err := Open(root, "c", false)
		if err == nil {
			r.Close()
		}
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("Open returned while the exclusive lock was held: %v", err)
	default:
	}
	if err := d.Remove(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, ErrNotExist) {
		t.Errorf("Open after a concurrent Remove: %v, want ErrNotExist", err)
	}
}

func TestLoadCorruptState(t *testing.T) {
	root := t.TempDir()
	d, err := Create(root, "c")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	os.WriteFile(filepath.Join(d.Path(), "state.json"), []byte("{"), 0o600)
	if _, err := d.Load(); err == nil || errors.Is(err, ErrNotExist) {
		t.Errorf("Load of a corrupt state: %v, want a decoding error", err)
	}
}

// A command that let go of the lock finds out whether the state it saved
// is still the record.
func TestRelockUnchanged(t *testing.T) {
	root := t.TempDir()
	d, err := Create(root, "c1")
	if err != nil {
		t.Fatal(err)
	}
	if d.Unchanged() {
		t.Error("Unchanged before any Save")
	}
	st := &State{ID: "c1", Config: &config.Config{ID: "c1"}}
	if err := d.Save(st); err != nil {
		t.Fatal(err)
	}
	d.Close()
	if err := d.Relock(true); err != nil {
		t.Fatal(err)
	}
	if !d.Unchanged() {
		t.Error("Unchanged = false with nothing changed")
	}
	d.Close()

	other, err := Open(root, "c1", true)
	if err != nil {
		t.Fatal(err)
	}
	st.InitPid = 7
	if err := other.Save(st); err != nil {
		t.Fatal(err)
	}
	other.Close()
	if err := d.Relock(true); err != nil {
		t.Fatal(err)
	}
	if d.Unchanged() {
		t.Error("Unchanged = true after another Save")
	}
	if err := d.Remove(); err != nil {
		t.Fatal(err)
	}
	if err := d.Relock(false); !errors.Is(err, ErrNotExist) {
		t.Errorf("Relock after Remove: %v, want ErrNotExist", err)
	}
}

// TestSalvage checks that a state file cut short anywhere gives back the
// members written whole before the cut, and never a member cut in two.
func TestSalvage(t *testing.T) {
	root := t.TempDir()
	d, err := Create(root, "c1")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	full := &State{
		ID: "c1", Bundle: "/b", Rootfs: "/b/rootfs", Owner: "root", InitPid: 123456, InitStart: 987654,
		CgroupPaths: map[string]string{"memory": "/sys/fs/cgroup/memory/lkc/c1"},
		Config:      &config.Config{ID: "c1", Rootfs: "/b/rootfs", Bundle: "/b"},
	}
	if err := d.Save(full); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(d.Path(), stateFile)
	data, _ := os.ReadFile(path)
	cfgAt := bytes.Index(data, []byte(`"config"`))
	pidAt := bytes.Index(data, []byte(`"initPid"`))
	for cut := 0; cut < len(data); cut++ {
		os.WriteFile(path, data[:cut], 0o600)
		if _, err := d.Load(); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("Load of %d of %d bytes: %v, want ErrCorrupt", cut, len(data), err)
		}
		s := d.Salvage()
		if s.ID != "c1" || (s.InitPid != 0 && s.InitPid != full.InitPid) {
			t.Fatalf("Salvage of %d bytes: id %q pid %d", cut, s.ID, s.InitPid)
		}
		if cut > cfgAt && (s.InitPid != full.InitPid || s.InitStart != full.InitStart ||
			s.CgroupPaths["memory"] != full.CgroupPaths["memory"] || s.Bundle != "/b") {
			t.Fatalf("Salvage of %d bytes (config starts at %d): %+v", cut, cfgAt, s)
		}
		if cut < pidAt && s.InitPid != 0 {
			t.Fatalf("Salvage of %d bytes found a pid before it was written", cut)
		}
	}
}

// TestTryOpenBusy checks that TryOpen does not wait for a holder of the
// lock, and that Peek reads the state without the lock.
func TestTryOpenBusy(t *testing.T) {
	root := t.TempDir()
	d, err := Create(root, "c1")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Save(&State{ID: "c1", InitPid: 7}); err != nil {
		t.Fatal(err)
	}
	for _, exclusive := range []bool{false, true} {
		if _, err := TryOpen(root, "c1", exclusive); !errors.Is(err, ErrBusy) {
			t.Errorf("TryOpen(exclusive %v) of a locked container: %v, want ErrBusy", exclusive, err)
		}
	}
	p, err := Peek(root, "c1")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if s, err := p.Load(); err != nil || s.InitPid != 7 {
		t.Errorf("Peek then Load: %+v, %v", s, err)
	}
	d.Close()
	r, err := TryOpen(root, "c1", true)
	if err != nil {
		t.Fatalf("TryOpen once unlocked: %v", err)
	}
	r.Close()
	if _, err := TryOpen(root, "c2", false); !errors.Is(err, ErrNotExist) {
		t.Errorf("TryOpen of a missing container: %v, want ErrNotExist", err)
	}
}
