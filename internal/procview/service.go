// Package procview is the daemon's /proc view service: one FUSE mount at
// <rundir>/proc with a directory per slot holding the files of
// procfs.Files, each rendered by procfs for the container behind the slot.
// Its one reason to change is the shape of that tree and which container
// answers for which node; the wire protocol is internal/fuse's and the
// files' content internal/procfs's.
package procview

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/daemonapi"
	"github.com/lkc-containers/lkc/internal/fuse"
	"github.com/lkc-containers/lkc/internal/procfs"
	"github.com/lkc-containers/lkc/internal/registry"
	"github.com/lkc-containers/lkc/internal/service"
)

// storeKey is the holder's key for the /dev/fuse fd.
const storeKey = "fuse"

// sampleEvery is the load average's period (the kernel's LOAD_FREQ).
const sampleEvery = 5 * time.Second

// Service serves the virtual /proc files of every container with
// Features.Proc. Its state (which slot shows which container) is rebuilt
// from the registry at Start; the FUSE connection survives a worker's
// death in the holder.
type Service struct {
	mu    sync.Mutex
	views map[int]*view // by slot
	dir   string        // the mount point, <rundir>/proc
	logf  func(string, ...any)

	// The session: mounted at Start when the holder kept one or a served
	// container needs it, else at the first adopt that asks for a virtual
	// /proc (a daemon without such containers mounts nothing, so its run
	// directory can go).
	ctx     context.Context
	deps    *service.Deps
	mountMu sync.Mutex // guards mounted and root
	mounted bool
	// root is the mount's root (O_PATH): Stop unmounts through it, which
	// also finds the mount after the run directory was moved.
	root *os.File
	// devMajor, devMinor are the session's device: a container's file
	// mounted from another (dead) session needs repair.
	devMajor, devMinor uint32
	// dev is the session's /dev/fuse fd, on which forgetSlot notifies.
	dev *os.File
	// srv is the session's server; stoppingPolls is set while a
	// goroutine has it stop the kernel's FUSE_POLLs (stopPolls).
	srv           *fuse.Server
	stoppingPolls atomic.Bool
	// book is the session's size book (sizes.go), kept by the holder
	// with it; nil when it could not be made.
	book *sizeBook
	// pids is the pid book (pids.go), in the run directory; nil when it
	// could not be made (the counts then start again with each worker).
	pids *pidBook
	// serving counts the session's server, which a worker that exits
	// waits for (Wait).
	serving sync.WaitGroup
}

// view is one served slot.
type view struct {
	// repairing serializes repairs of the container's files (the start's
	// and a reattach's).
	repairing sync.Mutex
	mu        sync.Mutex // guards c and unready
	gen       uint64
	entry     *registry.Entry
	c         *procfs.Container // from the container's state, once it has one
	// unready is the version of the state file that had no init yet:
	// while it stays, resolve does not decode it again (a read of the
	// files, or a sysinfo call, before create records init resolves).
	unready registry.Stamp
	load    procfs.Load
	pids    procfs.PidRecord // the slot's record in the pid book
}

var _ service.Service = (*Service)(nil)

// New returns the service; the worker starts it.
func New() *Service { return &Service{views: map[int]*view{}} }

// Name names the service in `lkc daemon status`.
func (s *Service) Name() string { return "proc" }

// Start takes the FUSE fd from the holder (a predecessor's session) or
// mounts a new session, rebuilds the served slots from the registry,
// serves, and repairs the bind mounts of the served containers that are
// not the session's (all of them with a new session; with an inherited
// one, those a predecessor killed in its repair had not reached).
func (s *Service) Start(ctx context.Context, d *service.Deps) error {
	s.dir, s.logf, s.ctx, s.deps = filepath.Join(d.Dir, "proc"), d.Logf, ctx, d
	var err error
	if s.pids, err = openPidBook(d.Dir); err != nil {
		s.logf("proc: %v", err)
	}
	for _, e := range d.Registry.Entries() {
		s.add(e)
	}
	go s.sample(ctx)
	if f, ok := d.Taken[storeKey]; ok {
		delete(d.Taken, storeKey)
		book, ok := d.Taken[sizesKey]
		delete(d.Taken, sizesKey)
		inval := d.Taken[invalKey]
		delete(d.Taken, invalKey)
		s.mountMu.Lock()
		s.book = s.keepBook(book, !ok)
		s.start(f, inval, true)
		if inval != nil {
			inval.Close()
		}
		s.mountMu.Unlock()
		for n := range d.Registry.Slots() {
			s.forgetSlot(n)
		}
		s.stopPollsAny()
		// A predecessor that mounted this session may have died before
		// its repair was done: the containers it had not reached yet
		// still have a dead session's files. repairOne leaves alone
		// those that have this session's, asking only the kernel.
		go s.repair()
		return nil
	}
	if len(s.slots()) == 0 {
		return nil
	}
	if err := s.ensureMounted(); err != nil {
		return err
	}
	s.stopPollsAny()
	// The served containers' bind mounts are of a session that is gone.
	go s.repair()
	return nil
}

// ensureMounted mounts a new session unless one is served.
func (s *Service) ensureMounted() error {
	s.mountMu.Lock()
	defer s.mountMu.Unlock()
	if s.mounted {
		return nil
	}
	f, err := s.mount(s.deps)
	if err != nil {
		return err
	}
	inval, err := s.newInvalRecord()
	if err != nil {
		s.logf("proc: %v", err)
	}
	s.start(f, inval, false)
	return nil
}

// start serves session f in the background. inval is the session's
// Inval record (inval.go): an inherited session's mode is read from it, a
// new one's INIT writes it. Preconditions: mountMu held.
func (s *Service) start(f *os.File, inval *os.File, inherited bool) {
	t := &tree{layout: newLayout(procfs.Files), served: s, render: procfs.Render, host: "/", mtime: time.Now(), dieAt: os.Getenv(CloneDieEnv)}
	var fs fuse.FS = t
	if s.book != nil && len(t.layout.paths) <= bookIndexes {
		fs = bookedTree{t, s.book}
	}
	s.mounted, s.dev, s.srv = true, f, fuse.NewServer(fs)
	if !inherited {
		s.srv.StartHolding()
	}
	switch {
	case inherited:
		s.srv.SetInval(readInval(inval))
	case inval != nil:
		s.srv.OnInit = func(m fuse.Inval) {
			if _, err := inval.WriteAt([]byte{byte(m)}, 0); err != nil {
				s.logf("proc: recording the session's inval mode: %v", err)
			}
		}
	default:
		// No record: a successor takes the session for one of AUTO.
		s.srv.AutoInval = true
	}
	s.serving.Add(1)
	go s.serve(s.ctx, s.srv, f, inherited, s.deps.Predecessor)
	// Opened once served: nothing in this process may wait on the mount
	// before its server runs.
	root, err := os.OpenFile(s.dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		s.logf("proc: opening %s: %v", s.dir, err)
		return
	}
	s.root = root
	var st unix.Statx_t
	// DONT_SYNC: the attributes the kernel has; the server is not asked.
	if err := unix.Statx(int(root.Fd()), "", unix.AT_EMPTY_PATH|unix.AT_STATX_DONT_SYNC, 0, &st); err != nil {
		s.logf("proc: statx %s: %v", s.dir, err)
		return
	}
	s.devMajor, s.devMinor = st.Dev_major, st.Dev_minor
}

// mount makes a new session on <rundir>/proc, replacing a dead one (both
// daemon processes died: its connection is aborted, abortDead), and gives
// the fd to the holder.
func (s *Service) mount(d *service.Deps) (*os.File, error) {
	if err := abortDead(s.dir, d.Dir); err != nil {
		s.logf("proc: %v", err)
	}
	if err := unix.Unmount(s.dir, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return nil, fmt.Errorf("unmounting the dead %s: %w", s.dir, err)
	}
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating %s: %w", s.dir, err)
	}
	f, err := fuse.Mount(s.dir)
	if err != nil {
		return nil, err
	}
	if err := d.Store.Put(storeKey, f); err != nil {
		fuse.Unmount(s.dir)
		f.Close()
		return nil, fmt.Errorf("depositing the fuse fd: %w", err)
	}
	s.book = s.keepBook(nil, true)
	return f, nil
}

// keepBook maps the session's size book f, or a new one when f is nil,
// which it gives the holder when deposit is set (a new session, or one
// whose book the holder lacks). Without a book the view serves all the
// same; only a read across a worker's death may stop at the old size.
func (s *Service) keepBook(f *os.File, deposit bool) *sizeBook {
	b, err := openSizeBook(f)
	if err != nil {
		s.logf("proc: %v", err)
		return nil
	}
	if deposit {
		if err := s.deps.Store.Put(sizesKey, b.f); err != nil {
			s.logf("proc: depositing the size book: %v", err)
		}
	}
	return b
}

// serve answers FUSE requests until ctx ends. An inherited session may
// hold requests a dead predecessor read and never answered: Resume has the
// kernel send them again. During an upgrade the predecessor still answers
// what it read, so the resend waits until it has exited. Without the
// resend (kernels before 6.9) new requests are served all the same.
func (s *Service) serve(ctx context.Context, srv *fuse.Server, f *os.File, inherited bool, pred int) {
	defer s.serving.Done()
	defer f.Close()
	var err error
	switch {
	case !inherited:
		err = srv.Serve(ctx, f)
	case pred != 0:
		go s.takeOverAfter(pred, srv, f)
		err = srv.Serve(ctx, f)
	default:
		go s.takeOver(srv, f)
		err = srv.Serve(ctx, f)
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		s.logf("proc: serving %s: %v", s.dir, err)
	}
}

// takeOverAfter takes the session over once process pid has exited.
func (s *Service) takeOverAfter(pid int, srv *fuse.Server, f *os.File) {
	if fd, err := unix.PidfdOpen(pid, 0); err == nil {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		for {
			if _, err := unix.Poll(fds, -1); err != unix.EINTR {
				break
			}
		}
		unix.Close(fd)
	}
	s.takeOver(srv, f)
}

// takeOver finishes taking over an inherited session whose predecessor is
// gone: FUSE_NOTIFY_RESEND queues again what it had read and not
// answered; the kernel drops every served file's pages and attributes,
// which the predecessor may have kept fresh itself (fuse.Server.Hold) in
// versions this server does not know; then this one holds files.
func (s *Service) takeOver(srv *fuse.Server, f *os.File) {
	if err := fuse.Resend(f); err != nil {
		s.logf("proc: %v", err)
	}
	s.forgetFiles(srv, f)
	srv.StartHolding()
}

// forgetFiles has the kernel drop the pages and attributes of every file
// served (fuse.Server.Forget), so that each one's next read asks srv.
func (s *Service) forgetFiles(srv *fuse.Server, f *os.File) {
	l := newLayout(procfs.Files)
	for _, n := range s.slots() {
		gen, ok := s.slotGen(n)
		if !ok {
			continue
		}
		for j, dir := range l.dir {
			if dir {
				continue
			}
			if err := srv.Forget(f, nodeID(gen, n, j)); err != nil {
				s.logf("proc: %v", err)
				return
			}
		}
	}
}

// Wait returns once the session's server, its ctx done, has answered
// every request it read: a worker that exited before would leave those
// readers asleep until a successor's FUSE_NOTIFY_RESEND, which kernels
// before 6.9 lack (an upgrade's old worker, a SIGTERM).
func (s *Service) Wait() { s.serving.Wait() }

// Stop unmounts the tree when the daemon stops for good (not on an
// upgrade or a crash, when the session lives on in the holder): with no
// daemon it would only answer ENOTCONN. Containers' bind mounts of its
// files stay, as dead as they would be with the mount, until the next
// daemon's start replaces them (repair).
func (s *Service) Stop() {
	s.mountMu.Lock()
	defer s.mountMu.Unlock()
	if !s.mounted {
		return
	}
	// Readers learn of the end within a fresh, not a hold (the kernel
	// serves its cached pages until the attributes run out).
	s.srv.StopHolding()
	s.forgetFiles(s.srv, s.dev)
	target := s.dir
	if s.root != nil {
		target = fmt.Sprintf("/proc/self/fd/%d", s.root.Fd())
		defer s.root.Close()
	}
	if err := fuse.Unmount(target); err != nil {
		s.logf("proc: %v", err)
	}
	s.mounted, s.root, s.dev, s.srv = false, nil, nil, nil
}

// Adopt serves e's /proc view when it asks for one.
func (s *Service) Adopt(e *registry.Entry, reply *daemonapi.AdoptReply) error {
	if !e.Features.Proc {
		return nil
	}
	if err := s.ensureMounted(); err != nil {
		return err
	}
	s.add(e)
	s.stopPolls(e.Slot)
	reply.ProcDir = filepath.Join(s.dir, strconv.Itoa(e.Slot))
	reply.Files = procfs.Files
	for _, f := range procfs.Files {
		reply.Flat = append(reply.Flat, flatName(f))
	}
	reply.Features.Proc = true
	return nil
}

// Release stops serving e: its nodes answer ESTALE from now on, and its
// slot's name is gone from the mount at once.
func (s *Service) Release(e *registry.Entry) {
	s.mu.Lock()
	if v := s.views[e.Slot]; v != nil && v.gen == e.Gen {
		delete(s.views, e.Slot)
	}
	s.mu.Unlock()
	s.forgetSlot(e.Slot)
}

// forgetSlot has the kernel drop the cached name of slot n's directory:
// a walk through it then asks LOOKUP, which finds the slot's current
// generation or none. The kernel keeps the names a second, like every
// name of the tree, so that binding a container's files walks its slot
// once; a slot's node changes only when the slot is released or reused,
// which the worker says here: at each release, and at start for every
// slot (a predecessor may have died between a release and this, and
// slots whose container is gone were freed since).
func (s *Service) forgetSlot(n int) {
	s.mountMu.Lock()
	dev := s.dev
	s.mountMu.Unlock()
	if dev == nil {
		return
	}
	if err := fuse.ForgetName(dev, fuse.RootID, strconv.Itoa(n)); err != nil {
		s.logf("proc: %v", err)
	}
}

// stopPolls has the kernel stop asking FUSE_POLL on the session, so that
// the server's readers wait in Go's poller and hold no P while the worker
// is idle (internal/fuse's poller.go): once per server, from a goroutine,
// by a helper process (PollArgs) that polls a file of slot n, since the
// root holds no regular file. The next adopt tries again if it failed
// (the slot was released meanwhile).
func (s *Service) stopPolls(n int) {
	s.mountMu.Lock()
	srv := s.srv
	s.mountMu.Unlock()
	if srv == nil || srv.PollsStopped() || !s.stoppingPolls.CompareAndSwap(false, true) {
		return
	}
	cmd := exec.Command("/proc/self/exe", PollArgs[0], PollArgs[1], filepath.Join(s.dir, strconv.Itoa(n), procfs.Files[0]))
	cmd.Args[0] = "lkc"
	go func() {
		defer s.stoppingPolls.Store(false)
		if err := srv.StopPolls(cmd); err != nil {
			s.logf("proc: %v", err)
		}
	}()
}

// stopPollsAny runs stopPolls on a served slot, if there is one.
func (s *Service) stopPollsAny() {
	if slots := s.slots(); len(slots) > 0 {
		s.stopPolls(slots[0])
	}
}

func (s *Service) add(e *registry.Entry) {
	if !e.Features.Proc {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.views[e.Slot] = &view{gen: e.Gen, entry: e, pids: s.pids.record(e.Slot, e.Gen)}
}

func (s *Service) slotGen(n int) (uint64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := s.views[n]
	if v == nil {
		return 0, false
	}
	return v.gen, true
}

func (s *Service) slots() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]int, 0, len(s.views))
	for n := range s.views {
		out = append(out, n)
	}
	return out
}

// container is the container behind slot n of generation gen, read from
// its state the first time (adopt comes before create writes the state).
// Container is the container behind slot n of generation gen, with the
// load averages this service samples (the seccomp agent's sysinfo).
func (s *Service) Container(n int, gen uint64) (*procfs.Container, bool) { return s.container(n, gen) }

func (s *Service) container(n int, gen uint64) (*procfs.Container, bool) {
	s.mu.Lock()
	v := s.views[n]
	s.mu.Unlock()
	if v == nil || v.gen != gen {
		return nil, false
	}
	return v.resolve()
}

// loadState reads a served container's state (tests count the reads).
var loadState = (*registry.Entry).LoadState

func (v *view) resolve() (*procfs.Container, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.c != nil {
		return v.c, true
	}
	stamp, stamped := v.entry.StateStamp()
	if stamped && stamp == v.unready {
		return nil, false
	}
	st, err := loadState(v.entry)
	if err != nil || st.InitPid == 0 {
		if stamped {
			v.unready = stamp
		}
		return nil, false
	}
	c, err := procfs.ContainerFromState(st)
	if err != nil {
		return nil, false
	}
	c.Load = &v.load
	c.Pids = v.pids
	v.c = c
	return c, true
}

// sample folds every served container's task counts into its load
// average, from one timer for all.
func (s *Service) sample(ctx context.Context) {
	t := time.NewTicker(sampleEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			for _, n := range s.slots() {
				gen, _ := s.slotGen(n)
				if c, ok := s.container(n, gen); ok {
					c.Load.Sample(c, now)
				}
			}
		}
	}
}
