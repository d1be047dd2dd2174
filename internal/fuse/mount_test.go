package fuse

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/lkc-containers/lkc/internal/testutil"
	"golang.org/x/sys/unix"
)

// helperEnv selects a role for the re-executed test binary (TestMain).
const helperEnv = "LKC_FUSE_TEST_HELPER"

func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "stuck-server":
		stuckServer()
		return
	case "poll-once":
		if err := PollOnce(os.Stdin, os.Getenv(pollPathEnv)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	os.Exit(m.Run())
}

// stuckServer serves fd 3 with a file "slow" whose rendering announces
// itself on fd 4 and never returns: the server dies with the READ read and
// unanswered, as a worker killed mid-request does.
func stuckServer() {
	announce := os.NewFile(4, "announce")
	fs := newTreeFS(map[string]func(int) ([]byte, error){
		"slow": func(int) ([]byte, error) {
			announce.Write([]byte{1})
			select {}
		},
	})
	err := NewServer(fs).Serve(context.Background(), os.NewFile(3, "/dev/fuse"))
	fmt.Fprintln(os.Stderr, "stuck server:", err)
	os.Exit(1)
}

// mountTest mounts a fresh connection on a temporary directory; cleanup
// unmounts it and closes the fd, which aborts the connection, so no reader
// is left asleep whatever the test did.
func mountTest(t *testing.T) (dir string, f *os.File) {
	t.Helper()
	testutil.RequiresRoot(t)
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skipf("no /dev/fuse: %v", err)
	}
	dir = t.TempDir()
	f, err := Mount(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := Unmount(dir); err != nil {
			t.Error(err)
		}
		f.Close()
	})
	return dir, f
}

// serve runs s on f until the test ends.
func serve(t *testing.T, f *os.File, s *Server, resume bool) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		var err error
		if resume {
			err = s.Resume(ctx, f)
		} else {
			err = s.Serve(ctx, f)
		}
		if ctx.Err() == nil {
			// Readers of the mount would sleep until the cleanup aborts it.
			t.Errorf("serve ended early: %v", err)
		}
		done <- err
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("serve: %v", err)
		}
	})
}

func TestMountReadFiles(t *testing.T) {
	dir, f := mountTest(t)
	fs := newTreeFS(map[string]func(int) ([]byte, error){
		"meminfo": static("MemTotal:       65536 kB\n"),
		"big":     generations(300 << 10),
		"gone":    failing(fmt.Errorf("open memory.stat: %w", syscall.ENOENT)),
	})
	fs.fresh = time.Second // big is read in many pieces, one version
	serve(t, f, NewServer(fs), false)

	got, err := readFile(filepath.Join(dir, "meminfo"))
	if err != nil || string(got) != "MemTotal:       65536 kB\n" {
		t.Fatalf("read meminfo: %q, %v", got, err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if strings.Join(names, " ") != "big gone meminfo" {
		t.Errorf("readdir: %q", names)
	}
	st, err := os.Stat(filepath.Join(dir, "meminfo"))
	if err != nil || st.Mode() != 0o444 {
		t.Errorf("stat meminfo: %v, %v", st.Mode(), err)
	}
	// Larger than one READ (128 KiB): one rendering, read whole although
	// its size (0) was not known.
	big, err := readFile(filepath.Join(dir, "big"))
	if err != nil || len(big) < 300<<10 {
		t.Fatalf("read big: %d bytes, %v", len(big), err)
	}
	if first := string(big[:20]); strings.Count(string(big), first) != len(big)/20 {
		t.Errorf("big mixes renderings")
	}
	if _, err := readFile(filepath.Join(dir, "gone")); !errors.Is(err, syscall.ENOENT) {
		t.Errorf("read gone: %v, want ENOENT", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "meminfo"), []byte("x"), 0); !errors.Is(err, syscall.EROFS) {
		t.Errorf("write: %v, want EROFS", err)
	}
	var sfs syscall.Statfs_t
	if err := syscall.Statfs(dir, &sfs); err != nil || sfs.Bsize != 4096 {
		t.Errorf("statfs: %+v, %v", sfs, err)
	}
}

// TestMountRewindRenders: a reader that keeps the file open and reads it
// again from the start (top keeps /proc/stat open) sees a new rendering
// once the file's Fresh ran out.
func TestMountRewindRenders(t *testing.T) {
	dir, f := mountTest(t)
	fs := newTreeFS(map[string]func(int) ([]byte, error){"stat": generations(20)})
	fs.fresh = 50 * time.Millisecond
	serve(t, f, NewServer(fs), false)
	fd, err := unix.Open(filepath.Join(dir, "stat"), unix.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	var seen []string
	for i := 0; i < 3; i++ {
		time.Sleep(max(2*fs.fresh, openKeep) + 50*time.Millisecond)

		b := make([]byte, 64)
		n, err := unix.Pread(fd, b, 0)
		if err != nil {
			t.Fatal(err)
		}
		seen = append(seen, string(b[:n]))
	}
	if seen[0] == seen[1] || seen[1] == seen[2] {
		t.Errorf("reads at offset 0 of one open file did not render afresh: %q", seen)
	}
}

// TestMountSendfile: sendfile (busybox cat) reads through the page cache,
// bounded by the inode's size; content that grew since the size was last
// seen is read whole all the same.
func TestMountSendfile(t *testing.T) {
	dir, f := mountTest(t)
	grow := func(n int) ([]byte, error) { return []byte(strings.Repeat("x", 100*n) + "\n"), nil }
	fs := newTreeFS(map[string]func(int) ([]byte, error){"grow": grow})
	serve(t, f, NewServer(fs), false)
	for i := 0; i < 3; i++ {
		got := sendfile(t, filepath.Join(dir, "grow"))
		if len(got) < 101 || strings.Count(got, "x") != len(got)-1 || got[len(got)-1] != '\n' {
			t.Fatalf("sendfile %d read %d bytes: %q", i, len(got), got)
		}
	}
}

func sendfile(t *testing.T, path string) string {
	t.Helper()
	in, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(in)
	return sendfileFD(t, in)
}

// sendfileFD copies the open file in to a temporary file with sendfile(2)
// until it reports the end, and returns what arrived.
func sendfileFD(t *testing.T, in int) string {
	t.Helper()
	out, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	for {
		n, err := unix.Sendfile(int(out.Fd()), in, nil, 1<<20)
		if err != nil {
			t.Fatalf("sendfile: %v", err)
		}
		if n == 0 {
			break
		}
	}
	b, _ := os.ReadFile(out.Name())
	return string(b)
}

// TestMountSendfileAfterLookup: a LOOKUP that revalidates a file's name
// (its entry expired, another process walks the path) answers the file's
// attributes too, which the kernel takes as the inode's size: a size of 0
// there made a sendfile on a file opened before read nothing (busybox cat
// of a container's meminfo while the host read the same file by path).
func TestMountSendfileAfterLookup(t *testing.T) {
	dir, f := mountTest(t)
	const content = "MemTotal:       65536 kB\nMemFree:        32768 kB\n"
	fs := newTreeFS(map[string]func(int) ([]byte, error){"meminfo": static(content)})
	serve(t, f, NewServer(fs), false)
	path := filepath.Join(dir, "meminfo")
	in, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(in)
	time.Sleep(cacheValid + 100*time.Millisecond) // the name's entry expires
	// O_PATH: the walk revalidates the name (LOOKUP) and asks nothing else.
	p, err := unix.Open(path, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	unix.Close(p)
	if got := sendfileFD(t, in); got != content {
		t.Errorf("sendfile after a lookup read %d bytes: %q, want %q", len(got), got, content)
	}
}

// standInUntilReady renders a stand-in (the host's file, not to be
// cached) until ready is set, then the container's: a container whose
// name was looked up before it could be rendered.
type standInUntilReady struct {
	*treeFS
	ready atomic.Bool
}

const standInHost, standInOwn = "MemTotal:       24683772 kB\n", "MemTotal:          65536 kB\n"

func (s *standInUntilReady) Content(uint64) ([]byte, bool, error) {
	s.renders.Add(1)
	if !s.ready.Load() {
		return []byte(standInHost), false, nil
	}
	return []byte(standInOwn), true, nil
}

// TestMountLookupKeepsNoStandIn: a name looked up while its file could
// only be stood in for (create clones a container's files before its
// state exists) is read as soon as the container can be rendered, within
// the time concurrent readers share a rendering: the read renders the
// file's own content.
func TestMountLookupKeepsNoStandIn(t *testing.T) {
	dir, f := mountTest(t)
	fs := &standInUntilReady{treeFS: newTreeFS(map[string]func(int) ([]byte, error){"meminfo": static("")})}
	fs.fresh = time.Second
	serve(t, f, NewServer(fs), false)
	path := filepath.Join(dir, "meminfo")
	var st unix.Statx_t
	if err := unix.Statx(unix.AT_FDCWD, path, unix.AT_STATX_DONT_SYNC, unix.STATX_TYPE, &st); err != nil {
		t.Fatal(err)
	}
	fs.ready.Store(true)
	got, err := readFile(path)
	if err != nil || string(got) != standInOwn {
		t.Errorf("read after the lookup: %q, %v; want %q", got, err, standInOwn)
	}
	if got := sendfile(t, path); got != standInOwn {
		t.Errorf("sendfile after the lookup: %q, want %q", got, standInOwn)
	}
}

// TestMountLookupRendersNothing: finding a file's name renders nothing
// (create clones a container's 8 files, which its process may never
// read); the first read renders, and reads the whole file.
func TestMountLookupRendersNothing(t *testing.T) {
	dir, f := mountTest(t)
	const content = "MemTotal:       65536 kB\nMemFree:        32768 kB\n"
	fs := newTreeFS(map[string]func(int) ([]byte, error){"meminfo": static(content)})
	fs.fresh = time.Second
	serve(t, f, NewServer(fs), false)
	path := filepath.Join(dir, "meminfo")
	// O_PATH: the walk looks the name up and asks nothing else.
	p, err := unix.Open(path, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	unix.Close(p)
	if n := fs.renders.Load(); n != 0 {
		t.Errorf("the look-up rendered %d times, want 0", n)
	}
	if got := sendfile(t, path); got != content {
		t.Errorf("sendfile after the look-up: %q, want %q", got, content)
	}
	if got, err := readFile(path); err != nil || string(got) != content {
		t.Errorf("read after the look-up: %q, %v; want %q", got, err, content)
	}
}

// TestMountSendfileAfterShorterStat: a stat of a file open elsewhere
// renders it again, and a rendering shorter than the open one's (meminfo's
// numbers change length) must not lower the inode's size below what the
// open file's sendfile serves, or its last bytes are dropped.
func TestMountSendfileAfterShorterStat(t *testing.T) {
	dir, f := mountTest(t)
	shrink := func(n int) ([]byte, error) { return []byte(strings.Repeat("x", 200-n) + "\n"), nil }
	fs := newTreeFS(map[string]func(int) ([]byte, error){"shrink": shrink})
	serve(t, f, NewServer(fs), false)
	path := filepath.Join(dir, "shrink")
	in, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(in)
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil { // renders, shorter
		t.Fatal(err)
	}
	got := sendfileFD(t, in)
	if len(got) < 2 || strings.Count(string(got), "x") != len(got)-1 || got[len(got)-1] != '\n' {
		t.Errorf("sendfile after a shorter stat read %d bytes: %q", len(got), got)
	}
}

func TestMountConcurrentReaders(t *testing.T) {
	dir, f := mountTest(t)
	fs := newTreeFS(map[string]func(int) ([]byte, error){
		"a": static(strings.Repeat("a", 5000)),
		"b": generations(200 << 10),
	})
	// A file changes under readers only once its Fresh ran out (then a
	// reader between two reads of a file larger than its buffer may go on
	// in the new version: content.go).
	fs.fresh = time.Minute
	s := NewServer(fs)
	s.Readers = 4
	serve(t, f, s, false)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				a, err := readFile(filepath.Join(dir, "a"))
				if err != nil || len(a) != 5000 {
					errs <- fmt.Errorf("read a: %d bytes, %v", len(a), err)
					return
				}
				b, err := readFile(filepath.Join(dir, "b"))
				if err != nil || strings.Count(string(b), string(b[:20])) != len(b)/20 {
					errs <- fmt.Errorf("read b: %d bytes, %v (or mixed renderings)", len(b), err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestResumeAfterServerKilled is experiment E1 as a test: a server process
// is SIGKILLed after reading a READ while this process holds the fd; the
// reader sleeps in D state; a successor's Resume makes the kernel resend
// the READ and the reader completes with the successor's content.
func TestResumeAfterServerKilled(t *testing.T) {
	dir, f := mountTest(t)
	if !kernelAtLeast(6, 9) {
		t.Skip("FUSE_NOTIFY_RESEND needs Linux 6.9")
	}
	ar, aw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer ar.Close()
	server := exec.Command(os.Args[0], "-test.run=^$")
	server.Env = append(os.Environ(), helperEnv+"=stuck-server")
	server.ExtraFiles = []*os.File{f, aw}
	server.Stderr = os.Stderr
	if err := server.Start(); err != nil {
		t.Fatal(err)
	}
	aw.Close()
	t.Cleanup(func() { server.Process.Kill(); server.Wait() })

	var out bytes.Buffer
	reader := exec.Command("cat", filepath.Join(dir, "slow"))
	reader.Stdout, reader.Stderr = &out, &out
	if err := reader.Start(); err != nil {
		t.Fatal(err)
	}
	readerDone := make(chan error, 1)
	exited := make(chan struct{})
	go func() { readerDone <- reader.Wait(); close(exited) }()
	// Cleanups run last-in first-out: this one kills the reader before
	// mountTest's closes the fd, which aborts the connection if the reader
	// is still asleep in it.
	t.Cleanup(func() {
		reader.Process.Kill()
		f.Close()
		<-exited
	})

	if _, err := ar.Read(make([]byte, 1)); err != nil {
		t.Fatalf("the server never got the READ: %v", err)
	}
	if err := server.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	server.Wait()
	// A successor that does not send the resend never sees the READ.
	fs := newTreeFS(map[string]func(int) ([]byte, error){"slow": static("resent\n")})
	ctx, cancel := context.WithCancel(context.Background())
	plain := make(chan error, 1)
	go func() { plain <- NewServer(fs).Serve(ctx, f) }()
	select {
	case err := <-readerDone:
		t.Fatalf("the reader ended without a resend: %v, %q", err, out.String())
	case <-time.After(300 * time.Millisecond):
	}
	cancel()
	if err := <-plain; !errors.Is(err, context.Canceled) {
		t.Fatalf("serve without resend: %v", err)
	}
	t.Logf("reader asleep in state %s", procState(reader.Process.Pid))

	start := time.Now()
	serve(t, f, NewServer(fs), true)
	select {
	case err := <-readerDone:
		if err != nil || out.String() != "resent\n" {
			t.Fatalf("reader after resume: %v, %q", err, out.String())
		}
		t.Logf("reader completed %v after Resume", time.Since(start))
	case <-time.After(10 * time.Second):
		t.Fatalf("reader still asleep 10 s after Resume (state %s)", procState(reader.Process.Pid))
	}
}

// TestSuccessorReadsPastToldSize: the kernel holds a file's size from a
// server that is gone (it answered the LOOKUP, not the READ); its
// successor renders a longer version for the READ. The reader gets that
// whole version, not the part of it the old size covers, because the
// successor knows from the FS's SizeBook what the kernel was told. A
// shorter version is read as it is (the short READ lowers the size; with
// the attributes dropped the kernel would not, and pad it with zeros).
func TestSuccessorReadsPastToldSize(t *testing.T) {
	dir, f := mountTest(t)
	book := &memBook{}
	first := &bookFS{newTreeFS(map[string]func(int) ([]byte, error){"stat": static("old 1\n"), "uptime": static("old 1\n")}), book}
	first.fresh = 10 * time.Second // the kernel keeps the size for the test's length
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- NewServer(first).Serve(ctx, f) }()
	st, err := os.Stat(filepath.Join(dir, "stat"))
	if err == nil {
		_, err = os.Stat(filepath.Join(dir, "uptime"))
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("first server: %v", err)
	}
	if err != nil || st.Size() != 6 {
		t.Fatalf("stat under the first server: %v, %v; want size 6", st, err)
	}
	const longer = "new 22\nmore lines\n"
	next := &bookFS{newTreeFS(map[string]func(int) ([]byte, error){"stat": static(longer), "uptime": static("n\n")}), book}
	next.fresh = 10 * time.Second
	serve(t, f, NewServer(next), false)
	got, err := readFile(filepath.Join(dir, "stat"))
	if err != nil || string(got) != longer {
		t.Fatalf("read under the successor: %q, %v; want %q", got, err, longer)
	}
	if got, err := readFile(filepath.Join(dir, "uptime")); err != nil || string(got) != "n\n" {
		t.Fatalf("read of a shorter version under the successor: %q, %v; want %q", got, err, "n\n")
	}
}

// readFile reads path with raw system calls. Not os.ReadFile: Go registers
// a regular file it opens with its poller, and epoll_ctl on a FUSE file
// waits for the server's answer to FUSE_POLL without releasing the
// goroutine's P; with every P so held, the server's goroutines in this
// same process never run. A server reading its own mount is a test's
// situation only, never the daemon's.
func readFile(path string) ([]byte, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	var out []byte
	buf := make([]byte, 7000) // odd-sized: many READs per file
	for {
		n, err := unix.Read(fd, buf)
		if err != nil {
			return out, &os.PathError{Op: "read", Path: path, Err: err}
		}
		if n == 0 {
			return out, nil
		}
		out = append(out, buf[:n]...)
	}
}

// kernelAtLeast reports whether the running kernel is major.minor or newer.
func kernelAtLeast(major, minor int) bool {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return false
	}
	var ma, mi int
	fmt.Sscanf(unix.ByteSliceToString(u.Release[:]), "%d.%d", &ma, &mi)
	return ma > major || ma == major && mi >= minor
}

// procState is the state letter of /proc/<pid>/stat.
func procState(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "gone"
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+3 > len(s) {
		return "?"
	}
	return s[i+2 : i+3]
}

// TestMountOneRenderPerRead: a file whose Fresh is 0 is rendered once per
// open+read+close, although the kernel asks its attributes at the open
// (default_permissions) and again at the read (twice only when the machine
// held the reader between the two for longer than reuseWithin).
func TestMountOneRenderPerRead(t *testing.T) {
	dir, f := mountTest(t)
	fs := newTreeFS(map[string]func(int) ([]byte, error){"meminfo": generations(64)})
	serve(t, f, NewServer(fs), false)
	path := filepath.Join(dir, "meminfo")
	if _, err := readFile(path); err != nil { // looks the name up
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		time.Sleep(2 * reuseWithin)
		before := fs.renders.Load()
		got, err := readFile(path)
		if err != nil {
			t.Fatal(err)
		}
		n := fs.renders.Load() - before
		if n < 1 || n > 2 || !strings.HasPrefix(string(got), fmt.Sprintf("generation %08d\n", before+n)) {
			t.Fatalf("read %d rendered the file %d times and read %q, want once and that rendering", i, n, got[:min(len(got), 20)])
		}
	}
}

// TestMountCachedReads: within a file's Fresh, open+read+close is answered
// from the kernel's page cache without a request to the server; once it
// ran out, the next read asks, sees a new rendering, and reads it whole.
func TestMountCachedReads(t *testing.T) {
	dir, f := mountTest(t)
	fs := newTreeFS(map[string]func(int) ([]byte, error){"meminfo": generations(3000)})
	fs.fresh = 300 * time.Millisecond
	s := NewServer(fs)
	serve(t, f, s, false)
	path := filepath.Join(dir, "meminfo")
	first, err := readFile(path)
	if err != nil {
		t.Fatal(err)
	}
	before := s.requests.Load()
	for i := 0; i < 20; i++ {
		got, err := readFile(path)
		if err != nil || string(got) != string(first) {
			t.Fatalf("cached read %d: %v, %d bytes differ from the first read", i, err, len(got))
		}
	}
	if n := s.requests.Load() - before; n > 2 {
		t.Errorf("20 reads within Fresh sent %d requests, want none (2 allowed for a slow machine's expiry)", n)
	}
	time.Sleep(fs.fresh + 50*time.Millisecond)
	got, err := readFile(path)
	if err != nil || string(got) == string(first) || strings.Count(string(got), string(got[:20])) != len(got)/20 || len(got) < 3000 {
		t.Fatalf("read after Fresh: %v, %d bytes, %q...; want a whole newer rendering", err, len(got), got[:min(len(got), 40)])
	}
}

// lookupCounter counts its tree's look-ups.
type lookupCounter struct {
	*treeFS
	lookups atomic.Int32
}

func (l *lookupCounter) Lookup(parent uint64, name string) (Attr, error) {
	l.lookups.Add(1)
	return l.treeFS.Lookup(parent, name)
}

// TestMountListingInstantiatesNames: one getdents of a directory
// (READDIRPLUS) gives the kernel every name in it with its attributes, so
// the files are then stat'd (and cloned, as lkc create does with a
// container's /proc view) without a LOOKUP each; and a file listed so
// reads whole, its size being a LOOKUP's.
func TestMountListingInstantiatesNames(t *testing.T) {
	dir, f := mountTest(t)
	fs := &lookupCounter{treeFS: newTreeFS(map[string]func(int) ([]byte, error){
		"cpuinfo": static("processor\t: 0\n"), "meminfo": static("MemTotal:       65536 kB\n"), "stat": static("cpu  1 2 3\n"),
	})}
	fs.fresh = time.Second
	serve(t, f, NewServer(fs), false)
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if _, err := unix.Getdents(fd, make([]byte, 4096)); err != nil {
		t.Fatal(err)
	}
	fs.lookups.Store(0) // the listing's own
	for _, name := range fs.names() {
		var st unix.Statx_t
		if err := unix.Statx(fd, name, unix.AT_STATX_DONT_SYNC, unix.STATX_TYPE, &st); err != nil {
			t.Fatal(err)
		}
	}
	if n := fs.lookups.Load(); n != 0 {
		t.Errorf("%d LOOKUPs after the listing, want 0", n)
	}
	if got, err := readFile(filepath.Join(dir, "meminfo")); err != nil || string(got) != "MemTotal:       65536 kB\n" {
		t.Errorf("read meminfo after the listing: %q, %v", got, err)
	}
}

// TestMountMissOneRequest: once a file's Fresh ran out, open+read+close of
// a new version of the same length costs one request, the GETATTR that
// renders it: its bytes are pushed into the page cache before the answer
// (FUSE_NOTIFY_STORE), so no READ follows, and the reader sees that
// version whole.
func TestMountMissOneRequest(t *testing.T) {
	dir, f := mountTest(t)
	fs := newTreeFS(map[string]func(int) ([]byte, error){"meminfo": generations(3000)})
	fs.fresh = 100 * time.Millisecond // the misses end before the name's validity (cacheValid)
	s := NewServer(fs)
	serve(t, f, s, false)
	path := filepath.Join(dir, "meminfo")
	prev, err := readFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if s.Inval() != InvalExplicit {
		t.Skipf("the kernel did not grant FUSE_EXPLICIT_INVAL_DATA (%d)", s.Inval())
	}
	var counts []uint64
	for i := 0; i < 4; i++ {
		time.Sleep(fs.fresh + 30*time.Millisecond)
		before := s.requests.Load()
		got, err := readFile(path)
		counts = append(counts, s.requests.Load()-before)
		if err != nil || string(got) == string(prev) || len(got) != len(prev) || strings.Count(string(got), string(got[:20])) != len(got)/20 {
			t.Fatalf("read %d after Fresh: %v, %d bytes, %q...; want a whole newer rendering", i, err, len(got), got[:min(len(got), 40)])
		}
		prev = got
	}
	// The first miss after the first read may cost more (its version was
	// pushed behind a barrier); the later ones one each.
	for i, n := range counts[1:] {
		if n != 1 {
			t.Errorf("miss %d sent %d requests, want 1 (all: %v)", i+1, n, counts)
		}
	}
}

// TestMountPushedLengths: versions that grow and shrink, each pushed into
// the page cache, read whole and unmixed by open+read+close, by pread of
// a file kept open, and by sendfile.
func TestMountPushedLengths(t *testing.T) {
	dir, f := mountTest(t)
	lengths := []int{3000, 5000, 5000, 900, 900, 6000, 100, 100, 4096, 8192, 8000}
	fs := newTreeFS(map[string]func(int) ([]byte, error){"stat": func(n int) ([]byte, error) {
		return generations(lengths[n%len(lengths)])(n)
	}})
	fs.fresh = 100 * time.Millisecond
	serve(t, f, NewServer(fs), false)
	path := filepath.Join(dir, "stat")
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	whole := func(how string, b []byte) {
		t.Helper()
		if len(b) < 20 || strings.Count(string(b), string(b[:20])) != (len(b)+19)/20 || !strings.HasPrefix(string(b), "generation ") {
			t.Fatalf("%s read %d bytes, not one whole rendering: %q...", how, len(b), b[:min(len(b), 40)])
		}
		n, _ := strconv.Atoi(strings.TrimSpace(string(b[11:20])))
		if want := lengths[n%len(lengths)]; len(b) < want || len(b) > want+20 {
			t.Fatalf("%s read %d bytes of rendering %d, want %d", how, len(b), n, want)
		}
	}
	for i := 0; i < 2*len(lengths); i++ {
		time.Sleep(fs.fresh + 30*time.Millisecond)
		switch i % 3 {
		case 0:
			b, err := readFile(path)
			if err != nil {
				t.Fatal(err)
			}
			whole("open+read", b)
		case 1:
			b := make([]byte, 16<<10)
			n, err := unix.Pread(fd, b, 0)
			if err != nil {
				t.Fatal(err)
			}
			whole("pread", b[:n])
		case 2:
			whole("sendfile", []byte(sendfile(t, path)))
		}
	}
}

// TestMountHeldFileKeptFresh: with Hold, a file read again after its Fresh
// ran out (a regular reader: the second read held it) reads newer
// renderings without a request (the server stores them itself); a
// rendering of another length is read whole, and the file is held again
// after it.
func TestMountHeldFileKeptFresh(t *testing.T) {
	dir, f := mountTest(t)
	var size atomic.Int64
	size.Store(3000)
	fs := newTreeFS(map[string]func(int) ([]byte, error){"stat": func(n int) ([]byte, error) {
		return generations(int(size.Load()))(n)
	}})
	fs.fresh = 100 * time.Millisecond
	fs.hold = time.Minute // beyond the test: no read may have to ask
	s := NewServer(fs)
	s.StartHolding()
	serve(t, f, s, false)
	path := filepath.Join(dir, "stat")
	prev, err := readFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if s.Inval() != InvalExplicit {
		t.Skipf("the kernel did not grant FUSE_EXPLICIT_INVAL_DATA (%d)", s.Inval())
	}
	time.Sleep(fs.fresh + 10*time.Millisecond)
	if prev, err = readFile(path); err != nil { // asks again: held
		t.Fatal(err)
	}
	// newer reads until the file shows a rendering after prev, which must
	// be whole and of length want, and returns it with the requests its
	// reads sent.
	newer := func(prev []byte, want int) ([]byte, uint64) {
		t.Helper()
		before := s.requests.Load()
		for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
			got, err := readFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) == string(prev) {
				continue
			}
			if len(got) < want || len(got) > want+20 || strings.Count(string(got), string(got[:20])) != (len(got)+19)/20 {
				t.Fatalf("read %d bytes, not one whole rendering of %d: %q...", len(got), want, got[:min(len(got), 40)])
			}
			return got, s.requests.Load() - before
		}
		t.Fatalf("the file kept rendering %q... for 10 s", prev[:min(len(prev), 20)])
		return nil, 0
	}
	for i := 0; i < 3; i++ {
		var n uint64
		if prev, n = newer(prev, 3000); n != 0 {
			t.Errorf("newer rendering %d: the reads sent %d requests, want none", i, n)
		}
	}
	size.Store(5000)
	prev, _ = newer(prev, 5000)
	prev, _ = newer(prev, 5000) // its GETATTR held the file again
	if _, n := newer(prev, 5000); n != 0 {
		t.Errorf("after the new length: the reads sent %d requests, want none", n)
	}
}

// TestMountHeldFileLetGo: a file read once is not held (its reader may
// read it rarely); read twice it is, and once its Hold ended with no read,
// the server renders it no more.
func TestMountHeldFileLetGo(t *testing.T) {
	dir, f := mountTest(t)
	fs := newTreeFS(map[string]func(int) ([]byte, error){"uptime": generations(100)})
	fs.fresh = 50 * time.Millisecond
	fs.hold = 200 * time.Millisecond
	s := NewServer(fs)
	s.StartHolding()
	serve(t, f, s, false)
	path := filepath.Join(dir, "uptime")
	if _, err := readFile(path); err != nil {
		t.Fatal(err)
	}
	if s.Inval() != InvalExplicit {
		t.Skipf("the kernel did not grant FUSE_EXPLICIT_INVAL_DATA (%d)", s.Inval())
	}
	time.Sleep(2 * fs.fresh)
	if n := fs.renders.Load(); n > 2 {
		t.Errorf("%d renderings after one read: a file read once was held", n)
	}
	if _, err := readFile(path); err != nil { // a second read within the Hold
		t.Fatal(err)
	}
	last, since := fs.renders.Load(), time.Now()
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if n := fs.renders.Load(); n != last {
			last, since = n, time.Now()
		}
		if time.Since(since) > 10*fs.fresh {
			if last < 3 {
				t.Errorf("%d renderings in all: the file was not held fresh", last)
			}
			return
		}
	}
	t.Fatalf("still rendering 10 s after its last read (%d renderings)", last)
}
