package rulesengine

import (
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/cgroups"
	"github.com/lkc-containers/lkc/internal/hostconf"
	"github.com/lkc-containers/lkc/internal/rules"
)

func TestDescribeSelf(t *testing.T) {
	p, start, err := describe(&procReader{buf: make([]byte, 8)}, os.Getpid(), needAll) // a buffer that must grow
	if err != nil {
		t.Fatal(err)
	}
	exe, _ := os.Executable()
	if p.Pid != os.Getpid() || p.UID != os.Geteuid() || p.Exe != exe || start == 0 {
		t.Errorf("describe(self) = %+v, start %d; want pid %d uid %d exe %s", p, start, os.Getpid(), os.Geteuid(), exe)
	}
	if len(p.GIDs) == 0 || p.GIDs[0] != os.Getegid() {
		t.Errorf("gids %v, want the effective gid %d first", p.GIDs, os.Getegid())
	}
	if sid, _ := unix.Getsid(0); p.SID != sid || p.PGID != unix.Getpgrp() {
		t.Errorf("sid %d pgid %d, want %d and %d", p.SID, p.PGID, sid, unix.Getpgrp())
	}
	if len(p.Cmdline) == 0 || p.Cmdline[0] != os.Args[0] {
		t.Errorf("cmdline %q, want %q first", p.Cmdline, os.Args[0])
	}
}

// TestNeedsOf checks that an exec costs only the /proc files the rules
// read: status for ids (criteria or templates), cmdline for cmdline=, the
// cgroups for a cgrules ignore rule.
func TestNeedsOf(t *testing.T) {
	for _, c := range []struct {
		text string
		want needs
	}{
		{"exe=/bin/x -> group=a\n", needs{}},
		{"comm=x leader=session -> group=a\n", needs{}},
		{"user=root -> group=a\n", needs{status: true}},
		{"uid=0 -> group=a\n", needs{status: true}},
		{"@root -> group=a\n", needs{status: true}},
		{"exe=/bin/x -> group=a/%u\n", needs{status: true}},
		{"* cpu x/%G\n", needs{status: true}},
		{"cmdline=*--batch* -> group=a\n", needs{cmdline: true}},
		{"* cpuset keep/ ignore\n", needs{cgroups: true}},
		{"exe=/bin/x -> ignore\n", needs{}},
		{"exe=/bin/x -> group=a\ncmdline=*y* -> group=b\n@wheel * w/%p\n* * k/ ignore\n", needAll},
	} {
		rs, err := rules.Parse(strings.NewReader(c.text), "t")
		if err != nil {
			t.Fatalf("%q: %v", c.text, err)
		}
		if got := needsOf(rs); got != c.want {
			t.Errorf("needsOf(%q) = %+v, want %+v", c.text, got, c.want)
		}
	}
}

func TestUnder(t *testing.T) {
	for _, c := range []struct {
		p, dir string
		want   bool
	}{
		{"/a/b", "/", true}, {"/a/b", "/a", true}, {"/a", "/a", true}, {"/ab", "/a", false},
		{"/a", "/a/b", false}, {"/a/b/c", "/a/b/", true},
	} {
		if got := under(c.p, c.dir); got != c.want {
			t.Errorf("under(%q, %q) = %v", c.p, c.dir, got)
		}
	}
}

func inotifyEvent(name string) []byte {
	b := make([]byte, unix.SizeofInotifyEvent)
	padded := (len(name) + 1 + 15) &^ 15
	binary.NativeEndian.PutUint32(b[12:], uint32(padded))
	n := make([]byte, padded)
	copy(n, name)
	return append(b, n...)
}

func TestRelevant(t *testing.T) {
	pats := []string{"/etc/lkc/rules.conf", "/etc/lkc/rules.d/*.conf", "/etc/passwd"}
	if !relevant(append(inotifyEvent("hosts"), inotifyEvent("passwd")...), pats) {
		t.Error("a passwd event is not relevant")
	}
	if !relevant(inotifyEvent("10-web.conf"), pats) {
		t.Error("a rules.d file is not relevant")
	}
	if relevant(inotifyEvent("rules.conf.swp"), pats) {
		t.Error("an editor's swap file is relevant")
	}
}

// TestExplainWithoutActing matches a process the engine never acted on,
// and says so; a file that does not parse keeps the loaded rules.
func TestExplainWithoutActing(t *testing.T) {
	dir := t.TempDir()
	exe, _ := os.Executable()
	file := filepath.Join(dir, "rules.conf")
	os.WriteFile(file, []byte("# test\nexe="+exe+" -> group=tests\n"), 0o600)
	conf := hostconf.Default()
	conf.RulesFiles = []string{file, filepath.Join(dir, "none.d/*.conf")}
	e, err := NewEngine(cgroups.DefaultHost, nil, t.Logf)
	if err != nil {
		t.Skipf("no cgroups here: %v", err)
	}
	if err := e.Load(conf); err != nil {
		t.Fatal(err)
	}
	r, err := e.Explain(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if r.Rule != file+":2: exe="+exe+" -> group=tests" || len(r.Targets) != 1 || r.Targets[0] != "group tests" ||
		!strings.Contains(r.Action, "not acted on") {
		t.Errorf("explain = %+v", r)
	}
	os.WriteFile(file, []byte("exe=x -> frob\n"), 0o600)
	if err := e.Load(conf); err == nil || !strings.Contains(err.Error(), "rules.conf:1") {
		t.Errorf("loading a bad file: %v, want its line", err)
	}
	if !e.HasRules() {
		t.Error("a bad file dropped the loaded rules")
	}
	if _, err := e.Explain(-1); err == nil {
		t.Error("explain of no process succeeded")
	}
}

// TestProcsFilesKeptOpen writes two pids through one descriptor, and
// names the file in the error of a cgroup that does not exist.
func TestProcsFilesKeptOpen(t *testing.T) {
	dir := t.TempDir()
	os.Mkdir(filepath.Join(dir, "a"), 0o755)
	os.WriteFile(filepath.Join(dir, "a", "cgroup.procs"), nil, 0o600)
	f := procsFiles{}
	defer func() {
		for _, fd := range f {
			unix.Close(fd)
		}
	}()
	if err := f.write(dir, "/a", 123); err != nil {
		t.Fatal(err)
	}
	if err := f.write(dir, "/a", 4567); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(filepath.Join(dir, "a", "cgroup.procs")); string(data) != "1234567" || len(f) != 1 {
		t.Errorf("wrote %q through %d descriptors, want \"1234567\" through 1", data, len(f))
	}
	err := f.write(dir, "/gone", 1)
	if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), filepath.Join(dir, "gone", "cgroup.procs")) {
		t.Errorf("writing into a missing cgroup: %v", err)
	}
}

// TestChildren lists the children a thread other than the leader forked
// (the test binary has several threads), and those of a process of one
// thread, which has only its own list read.
func TestChildren(t *testing.T) {
	var cmds []*exec.Cmd
	t.Cleanup(func() {
		for _, c := range cmds {
			c.Process.Kill()
			c.Wait()
		}
	})
	start := func(args ...string) *exec.Cmd {
		c := exec.Command(args[0], args[1:]...)
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, c)
		return c
	}
	done, release := make(chan int), make(chan bool)
	t.Cleanup(func() { close(release) })
	go func() {
		// Another thread than the leader, kept until the end: a thread
		// that exits hands its children to another.
		runtime.LockOSThread()
		done <- start("sleep", "60").Process.Pid
		<-release
	}()
	other := <-done // before the next start: cmds is not shared
	want := []int{start("sleep", "60").Process.Pid, other}
	r := &procReader{}
	if n := r.threads(os.Getpid()); n < 2 {
		t.Fatalf("threads(self) = %d, want more than 1", n)
	}
	got := children(r, os.Getpid(), nil)
	for _, pid := range want {
		if !slices.Contains(got, pid) {
			t.Errorf("children(self) = %v, want %v among them", got, want)
		}
	}
	sh := start("sh", "-c", "sleep 60 & sleep 60 & wait")
	for end := time.Now().Add(5 * time.Second); len(children(r, sh.Process.Pid, nil)) < 2 && time.Now().Before(end); {
		time.Sleep(10 * time.Millisecond)
	}
	if n, c := r.threads(sh.Process.Pid), children(r, sh.Process.Pid, nil); n != 1 || len(c) != 2 {
		t.Errorf("sh: %d threads, children %v; want 1 and two", n, c)
	}
	for _, c := range children(r, sh.Process.Pid, nil) {
		unix.Kill(c, unix.SIGKILL)
	}
	if got := children(r, -1, []int{7}); !slices.Equal(got, []int{7}) {
		t.Errorf("children of no process = %v, want the list unchanged", got)
	}
}

// TestCgroupsOf reads its own cgroups as /proc/self/cgroup lists them.
func TestCgroupsOf(t *testing.T) {
	data, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Skip(err)
	}
	set, err := cgroupsOf(&procReader{buf: make([]byte, 8)}, os.Getpid(), nil)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(set) != len(lines) {
		t.Fatalf("cgroupsOf(self) = %v, want %d hierarchies", set, len(lines))
	}
	for _, l := range lines {
		f := strings.SplitN(l, ":", 3)
		if p, ok := set.get(f[1]); !ok || p != f[2] {
			t.Errorf("hierarchy %q: %q, want %q", f[1], p, f[2])
		}
	}
}
