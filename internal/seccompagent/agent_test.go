package seccompagent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// memStore keeps dups of the fds it is given, as the daemon's holder does.
type memStore struct {
	mu    sync.Mutex
	files map[string]*os.File
}

func newMemStore(t *testing.T) *memStore {
	s := &memStore{files: map[string]*os.File{}}
	t.Cleanup(func() {
		for _, f := range s.files {
			f.Close()
		}
	})
	return s
}

func (s *memStore) Put(key string, f *os.File) error {
	fd, err := unix.FcntlInt(f.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if old := s.files[key]; old != nil {
		old.Close()
	}
	s.files[key] = os.NewFile(uintptr(fd), key)
	return nil
}

func (s *memStore) Drop(key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.files[key]
	if f == nil {
		return fmt.Errorf("drop %s: not stored", key)
	}
	delete(s.files, key)
	return f.Close()
}

func (s *memStore) keys() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var k []string
	for key := range s.files {
		k = append(k, key)
	}
	sort.Strings(k)
	return k
}

// take hands a successor dups of everything, as fdstore.Take does.
func (s *memStore) take(t *testing.T) map[string]*os.File {
	s.mu.Lock()
	defer s.mu.Unlock()
	held := map[string]*os.File{}
	for key, f := range s.files {
		fd, err := unix.FcntlInt(f.Fd(), unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		held[key] = os.NewFile(uintptr(fd), key)
	}
	return held
}

// fixedResolver answers every container "c<n>" with totalram 64 MiB and
// uptime 42 s, and refuses the container of a message whose ID is
// "unknown" at Sysinfo time.
type fixedResolver struct{}

func (fixedResolver) Bind(m Message) (string, error) {
	if m.ID == "" {
		return "", errors.New("no id")
	}
	return m.ID, nil
}

func (fixedResolver) Sysinfo(name string, out *unix.Sysinfo_t) error {
	if name == "unknown" {
		return errors.New("container unknown gone")
	}
	*out = unix.Sysinfo_t{Uptime: 42, Totalram: 64 << 20, Freeram: 60 << 20, Procs: 3, Unit: 1}
	return nil
}

func startAgent(t *testing.T, cfg Config) (*Agent, func()) {
	t.Helper()
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Serve(ctx) }()
	stop := func() {
		cancel()
		<-done
		a.Close()
	}
	t.Cleanup(func() {
		if ctx.Err() == nil {
			stop()
		}
	})
	return a, stop
}

// sendListener sends fd to the agent in dir as a runtime does.
func sendListener(dir, id string, fd int) error {
	conn, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(conn)
	if err := unix.Connect(conn, &unix.SockaddrUnix{Name: filepath.Join(dir, SocketName)}); err != nil {
		return err
	}
	msg := map[string]any{"ociVersion": "1.2.0", "fds": []string{"seccompFd"}, "pid": unix.Getpid(),
		"metadata": "m", "state": map[string]any{"id": id, "status": "creating", "pid": unix.Getpid()}}
	data, _ := json.Marshal(msg)
	return unix.Sendmsg(conn, data, unix.UnixRights(fd), nil, 0)
}

// filtered runs f on a new thread whose sysinfo goes to the agent in dir
// as container id; the thread dies afterwards, ending its filter.
func filtered(t *testing.T, dir, id string, f func() error) error {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		fd, err := loadSysinfoFilter()
		if err != nil {
			errc <- fmt.Errorf("loading the filter: %w", err)
			return
		}
		err = sendListener(dir, id, fd)
		unix.Close(fd)
		if err != nil {
			errc <- fmt.Errorf("sending the listener: %w", err)
			return
		}
		errc <- f()
	}()
	select {
	case err := <-errc:
		return err
	case <-time.After(20 * time.Second):
		t.Fatal("sysinfo through the agent did not return within 20 s")
		return nil
	}
}

func TestSysinfoAnswered(t *testing.T) {
	dir := t.TempDir()
	store := newMemStore(t)
	startAgent(t, Config{Dir: dir, Resolver: fixedResolver{}, Store: store})
	fi, err := os.Stat(filepath.Join(dir, SocketName))
	if err != nil || fi.Mode().Perm() != 0o600 || fi.Mode()&os.ModeSocket == 0 {
		t.Fatalf("agent socket: %v %v, want a socket with mode 0600", fi, err)
	}
	var si unix.Sysinfo_t
	err = filtered(t, dir, "c1", func() error { return sysinfo(&si) })
	if err != nil || si.Totalram != 64<<20 || si.Uptime != 42 || si.Procs != 3 {
		t.Fatalf("sysinfo through the agent: %v, totalram %d uptime %d procs %d; want 64 MiB, 42, 3",
			err, si.Totalram, si.Uptime, si.Procs)
	}
}

func TestSysinfoUnknownContainerGetsHostValues(t *testing.T) {
	dir := t.TempDir()
	startAgent(t, Config{Dir: dir, Resolver: fixedResolver{}, Store: newMemStore(t)})
	var host, si unix.Sysinfo_t
	if err := unix.Sysinfo(&host); err != nil {
		t.Fatal(err)
	}
	if err := filtered(t, dir, "unknown", func() error { return sysinfo(&si) }); err != nil {
		t.Fatal(err)
	}
	if si.Totalram != host.Totalram || si.Totalram == 64<<20 {
		t.Fatalf("sysinfo of an unknown container: totalram %d, want the host's %d", si.Totalram, host.Totalram)
	}
}

func TestSysinfoBadBufferIsEFAULT(t *testing.T) {
	dir := t.TempDir()
	startAgent(t, Config{Dir: dir, Resolver: fixedResolver{}, Store: newMemStore(t)})
	err := filtered(t, dir, "c1", func() error { return sysinfoAt(8) })
	if !errors.Is(err, unix.EFAULT) {
		t.Fatalf("sysinfo(8) through the agent: %v, want EFAULT as from the kernel", err)
	}
}

func TestListenerKeptAndDroppedOnHangup(t *testing.T) {
	dir := t.TempDir()
	store := newMemStore(t)
	startAgent(t, Config{Dir: dir, Resolver: fixedResolver{}, Store: store})
	var keys []string
	err := filtered(t, dir, "c7", func() error {
		var si unix.Sysinfo_t
		err := sysinfo(&si)
		keys = store.keys()
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := "[journal seccomp.sock seccomp/c7/0]"; fmt.Sprint(keys) != want {
		t.Fatalf("stored while the filter lives: %v, want %s", keys, want)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(store.keys()) != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("stored after the filtered thread exited: %v, want the listener dropped", store.keys())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestInFlightAnsweredBySuccessor receives a notification the way a
// worker does, records it and stops answering (its death); a successor
// given the stored fds answers it.
func TestInFlightAnsweredBySuccessor(t *testing.T) {
	dir := t.TempDir()
	store := newMemStore(t)
	a, err := New(Config{Dir: dir, Resolver: fixedResolver{}, Store: store})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Serve(ctx) }()

	var si unix.Sysinfo_t
	result, gate := make(chan error, 1), make(chan struct{})
	go func() {
		result <- filtered(t, dir, "c2", func() error {
			<-gate
			return sysinfo(&si)
		})
	}()
	l := waitListener(t, store, "seccomp/c2/0")
	cancel()
	<-done
	close(gate)
	var n notif
	if err := recv(int(l.Fd()), &n); err != nil {
		t.Fatal(err)
	}
	a.jr.record(0, &n)
	a.Close()

	b, err := New(Config{Dir: dir, Resolver: fixedResolver{}, Store: store, Held: store.take(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := <-result; err != nil || si.Totalram != 64<<20 {
		t.Fatalf("sysinfo in flight across the agent's end: %v, totalram %d, want 64 MiB", err, si.Totalram)
	}
	if _, marked := b.jr.inFlight(0); marked {
		t.Fatal("the successor left the answered notification marked in the journal")
	}
}

func waitListener(t *testing.T, s *memStore, key string) *os.File {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		s.mu.Lock()
		f := s.files[key]
		s.mu.Unlock()
		if f != nil {
			return f
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("listener %s never stored (have %v)", key, s.keys())
	return nil
}

func TestParseKey(t *testing.T) {
	for key, want := range map[string]bool{
		"seccomp/3/0": true, "seccomp/a/b/7": true, "journal": false, "seccomp/x": false,
		"seccomp//1": false, "seccomp/x/-1": false, "seccomp/x/4096": false, "seccomp/x/y": false,
	} {
		if _, _, ok := parseKey(key); ok != want {
			t.Errorf("parseKey(%q) ok = %v, want %v", key, ok, want)
		}
	}
}

func TestParseMessageRefusals(t *testing.T) {
	for _, c := range []struct {
		data string
		fds  []int
	}{
		{`{"fds":["seccompFd"]}`, nil},
		{`{"fds":["other"]}`, []int{5}},
		{`not json`, []int{5}},
	} {
		if _, _, err := parseMessage([]byte(c.data), c.fds); err == nil {
			t.Errorf("parseMessage(%s, %v) accepted", c.data, c.fds)
		}
	}
	m, fd, err := parseMessage([]byte(`{"fds":["a","seccompFd"],"pid":9,"metadata":"x","state":{"id":"c"}}`), []int{4, 5})
	if err != nil || fd != 5 || m.Pid != 9 || m.ID != "c" || m.Metadata != "x" {
		t.Errorf("parseMessage: %+v fd %d %v", m, fd, err)
	}
}

// TestNoListenerLeftIsENOSYS: once the agent and the Store have both
// closed a listener (the worker and the holder both dead), the kernel
// answers the filter's sysinfo with ENOSYS (E2): no hang, no host values.
func TestNoListenerLeftIsENOSYS(t *testing.T) {
	dir := t.TempDir()
	store := newMemStore(t)
	a, err := New(Config{Dir: dir, Resolver: fixedResolver{}, Store: store})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Serve(ctx) }()
	gate := make(chan struct{})
	result := make(chan error, 1)
	go func() {
		result <- filtered(t, dir, "c3", func() error {
			<-gate
			var si unix.Sysinfo_t
			return sysinfo(&si)
		})
	}()
	waitListener(t, store, "seccomp/c3/0")
	cancel()
	<-done
	a.Close()
	store.Drop("seccomp/c3/0")
	close(gate)
	if err := <-result; !errors.Is(err, unix.ENOSYS) {
		t.Fatalf("sysinfo with no listener left: %v, want ENOSYS", err)
	}
}

func TestShortJournalRefused(t *testing.T) {
	fd, err := unix.MemfdCreate("short", unix.MFD_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fd), "short")
	if err := f.Truncate(slotSize); err != nil {
		t.Fatal(err)
	}
	_, err = New(Config{Dir: t.TempDir(), Resolver: fixedResolver{}, Store: newMemStore(t),
		Held: map[string]*os.File{"journal": f}})
	if err == nil {
		t.Fatal("a journal shorter than the agent's was mapped: its slots would fault")
	}
}

// TestBadMessagesKeepServing: a runtime that hangs up without a message,
// one that sends junk and one whose fd is not named seccompFd cost the
// agent nothing: the fds they sent are closed, it serves the next one.
func TestBadMessagesKeepServing(t *testing.T) {
	dir := t.TempDir()
	var mu sync.Mutex
	var logged []string
	logf := func(f string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		logged = append(logged, fmt.Sprintf(f, args...))
	}
	startAgent(t, Config{Dir: dir, Resolver: fixedResolver{}, Store: newMemStore(t), Logf: logf})
	send := func(data []byte, fd int) {
		conn, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Close(conn)
		if err := unix.Connect(conn, &unix.SockaddrUnix{Name: filepath.Join(dir, SocketName)}); err != nil {
			t.Fatal(err)
		}
		if data != nil {
			var oob []byte
			if fd >= 0 {
				oob = unix.UnixRights(fd)
			}
			if err := unix.Sendmsg(conn, data, oob, nil, 0); err != nil {
				t.Fatal(err)
			}
		}
	}
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(p[0])
	send(nil, -1)
	send([]byte("junk"), -1)
	send([]byte(`{"fds":["other"],"state":{"id":"x"}}`), p[1])
	unix.Close(p[1])
	var si unix.Sysinfo_t
	if err := filtered(t, dir, "c9", func() error { return sysinfo(&si) }); err != nil || si.Totalram != 64<<20 {
		t.Fatalf("sysinfo after bad messages: %v, totalram %d", err, si.Totalram)
	}
	// The agent closed its copy of the pipe's write end: the read end sees EOF.
	if n, err := unix.Read(p[0], make([]byte, 1)); n != 0 || err != nil {
		t.Errorf("read of the pipe the agent was sent: %d, %v; want EOF (the agent closed it)", n, err)
	}
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(logged)
	}
	for deadline := time.Now().Add(5 * time.Second); count() < 2 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if len(logged) != 2 {
		t.Errorf("logged %q, want one line each for the junk and the unnamed fd", logged)
	}
}

// TestServeKeepsNoThreadInEpollWait: a serving agent waits through Go's
// poller, so no thread of the process sits in epoll_wait on the agent's own
// set. Such a thread keeps its P, and when it is the one that last polled,
// the process's other sockets (the daemon's control connections) wait for
// the runtime's 10 ms sysmon poll.
func TestServeKeepsNoThreadInEpollWait(t *testing.T) {
	a, _ := startAgent(t, Config{Dir: t.TempDir(), Resolver: fixedResolver{}, Store: newMemStore(t)})
	for range 20 {
		time.Sleep(10 * time.Millisecond)
		if tid, ok := threadInEpollWait(t, a.ep); ok {
			t.Fatalf("thread %s blocks in epoll_pwait on the agent's set (fd %d)", tid, a.ep)
		}
	}
}

// epollWaits are the numbers of the syscalls that wait in an epoll set
// (epoll_wait is amd64's only: epollwait_amd64_test.go).
var epollWaits = map[string]bool{strconv.Itoa(unix.SYS_EPOLL_PWAIT): true}

// threadInEpollWait finds a thread of this process blocked in epoll_wait or
// epoll_pwait on set ep, from /proc/self/task/*/syscall.
func threadInEpollWait(t *testing.T, ep int) (string, bool) {
	t.Helper()
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range tasks {
		b, err := os.ReadFile("/proc/self/task/" + task.Name() + "/syscall")
		if err != nil {
			continue // the thread exited
		}
		f := strings.Fields(string(b))
		if len(f) < 2 || !epollWaits[f[0]] {
			continue
		}
		if fd, err := strconv.ParseUint(f[1], 0, 64); err == nil && int(fd) == ep {
			return task.Name(), true
		}
	}
	return "", false
}

// TestMessageInPieces: a runtime's message arrives on the stream in
// pieces (its state carries the container's annotations, which may be
// large): the agent waits for the rest and then serves the listener.
func TestMessageInPieces(t *testing.T) {
	dir := t.TempDir()
	startAgent(t, Config{Dir: dir, Resolver: fixedResolver{}, Store: newMemStore(t)})
	send := func(fd int) error {
		conn, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(conn)
		if err := unix.Connect(conn, &unix.SockaddrUnix{Name: filepath.Join(dir, SocketName)}); err != nil {
			return err
		}
		msg := map[string]any{"ociVersion": "1.2.0", "fds": []string{"seccompFd"}, "pid": unix.Getpid(),
			"state": map[string]any{"id": "c1", "status": "creating", "pid": unix.Getpid(),
				"annotations": map[string]string{"big": strings.Repeat("x", 200<<10)}}}
		data, _ := json.Marshal(msg)
		if err := unix.Sendmsg(conn, data[:1000], unix.UnixRights(fd), nil, 0); err != nil {
			return err
		}
		time.Sleep(50 * time.Millisecond)
		_, err = unix.Write(conn, data[1000:])
		return err
	}
	var si unix.Sysinfo_t
	errc := make(chan error, 1)
	go func() {
		fd, err := loadSysinfoFilter()
		if err != nil {
			errc <- fmt.Errorf("loading the filter: %w", err)
			return
		}
		err = send(fd)
		unix.Close(fd)
		if err == nil {
			err = sysinfo(&si)
		}
		errc <- err
	}()
	select {
	case err := <-errc:
		if err != nil || si.Totalram != 64<<20 {
			t.Fatalf("sysinfo after a message in pieces: %v, totalram %d; want 64 MiB", err, si.Totalram)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("sysinfo through the agent did not return within 20 s")
	}
}
