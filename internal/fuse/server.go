package fuse

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// Server answers the requests of one FUSE connection for an FS.
type Server struct {
	fs       FS
	versions *versions
	// requests counts the requests read, so tests see which reads reached
	// the server.
	requests atomic.Uint64
	// notify writes a notification on the connection (set by Serve).
	notify func([]byte) error
	// turn is the readers' turn (turn.go).
	turn sync.Mutex
	// pollsStopped: the kernel no longer asks FUSE_POLL, so readers wait
	// in Go's poller (poller.go).
	pollsStopped atomic.Bool
	// probeMu serializes StopPolls; prober is its helper's pid while it
	// runs (0: none).
	probeMu sync.Mutex
	prober  atomic.Int32
	// inval is the connection's Inval (set by INIT, or SetInval).
	inval atomic.Uint32
	// OnInit, when set, is called with the Inval INIT chose before INIT is
	// answered: the caller keeps it for a successor (SetInval).
	OnInit func(Inval)
	// AutoInval asks FUSE_AUTO_INVAL_DATA even of a kernel that offers
	// FUSE_EXPLICIT_INVAL_DATA: for a caller that cannot keep the mode for
	// a successor, which would take the session for one of AUTO.
	AutoInval bool
	// keeper keeps the held files fresh (keep.go); holding: GETATTRs hold
	// files (StartHolding).
	keeper  *keeper
	holding atomic.Bool
	// Readers is the number of goroutines reading the fd; zero means two
	// per CPU. Each reads one request and answers it; one reads at a time
	// and hands the device to another before it waits (turn.go), so a
	// slow Content holds one reader, not the connection.
	Readers int
}

// NewServer returns a server for fs. Until INIT or SetInval says
// otherwise, its connection's Inval is InvalUnknown.
func NewServer(fs FS) *Server {
	return &Server{fs: fs, versions: newVersions()}
}

// Inval is how the kernel drops a regular file's cached pages on a
// connection, as INIT chose it (content.go).
type Inval uint32

const (
	// InvalUnknown: an inherited connection whose INIT is not known. Each
	// new version is pushed behind a barrier, which is right either way.
	InvalUnknown Inval = iota
	// InvalAuto: FUSE_AUTO_INVAL_DATA, the kernel drops the pages when
	// the size or mtime changes.
	InvalAuto
	// InvalExplicit: FUSE_EXPLICIT_INVAL_DATA, only the server does.
	InvalExplicit
)

// Inval returns the connection's Inval.
func (s *Server) Inval() Inval { return Inval(s.inval.Load()) }

// SetInval sets the Inval of a connection whose INIT another server
// answered (a predecessor's, kept with the session).
func (s *Server) SetInval(m Inval) { s.inval.Store(uint32(m)) }

// Serve answers requests on f (a /dev/fuse fd from Mount, or one handed
// over by a predecessor) until the connection ends (unmounted or aborted:
// nil) or ctx is done (ctx's error). f stays open either way: the caller
// owns it, and closing the last fd of a connection aborts every mount of it.
func (s *Server) Serve(ctx context.Context, f *os.File) error {
	c, err := newConn(f)
	if err != nil {
		return err
	}
	defer c.close()
	s.notify = c.write
	kctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if err := s.startKeeper(kctx, c); err != nil {
		return err
	}
	n := s.Readers
	if n <= 0 {
		n = 2 * runtime.NumCPU()
	}
	stop := context.AfterFunc(ctx, c.stop)
	defer stop()
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- s.readLoop(c)
		}()
	}
	wg.Wait()
	close(errs)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	for err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// Resume serves a connection whose previous server died: it first writes
// FUSE_NOTIFY_RESEND, which makes the kernel queue again every request
// that server had read and not answered (their readers otherwise sleep in
// D state until the connection dies), then serves as Serve does. On a
// kernel without the notification (FUSE 7.40, Linux 6.9) it serves all the
// same, new requests are answered, and the error it returns when serving
// ends wraps ErrNoResend.
func (s *Server) Resume(ctx context.Context, f *os.File) error {
	rerr := Resend(f)
	if rerr != nil && !errors.Is(rerr, ErrNoResend) {
		return rerr
	}
	return errors.Join(rerr, s.Serve(ctx, f))
}

// ErrNoResend marks a kernel that does not know FUSE_NOTIFY_RESEND.
var ErrNoResend = errors.New("kernel has no FUSE_NOTIFY_RESEND (Linux 6.9): requests the dead server read stay unanswered")

// Resend writes FUSE_NOTIFY_RESEND on f.
func Resend(f *os.File) error {
	err := notifyOn(f, notification(notifyResend, nil))
	if errors.Is(err, unix.EINVAL) {
		return ErrNoResend // an unknown notification code
	}
	if err != nil {
		return fmt.Errorf("fuse notify resend: %w", err)
	}
	return nil
}

// ForgetName has the kernel drop its cached entry for name in directory
// parent (FUSE_NOTIFY_INVAL_ENTRY) on the connection of f: the next walk
// through the name asks LOOKUP. A name the kernel does not hold is no
// error. A server that lets the kernel keep a name whose node changes
// (the /proc view's slot directories) says so when it changes.
func ForgetName(f *os.File, parent uint64, name string) error {
	err := notifyOn(f, notification(notifyInvalEntry, invalEntryOut(parent, name)))
	if err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("fuse notify inval entry %s: %w", name, err)
	}
	return nil
}

// notifyOn writes notification b on the connection of f.
func notifyOn(f *os.File, b []byte) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	cerr := rc.Control(func(fd uintptr) {
		for {
			if _, err = unix.Write(int(fd), b); err != unix.EINTR {
				break
			}
		}
	})
	return errors.Join(cerr, err)
}

// readLoop reads and answers requests until the connection or stop ends it.
func (s *Server) readLoop(c *conn) error {
	w, err := c.newWaiter()
	if err != nil {
		return err
	}
	defer w.close()
	t := &turn{mu: &s.turn}
	defer t.pass() // the next reader finds the connection's end too
	buf := make([]byte, bufSize)
	faultIn(buf)
	for {
		t.take()
		// On failure, w goes on serving; on success the device has one
		// set fewer to wake.
		if w.epfd >= 0 && s.pollsStopped.Load() && c.usePoller() == nil {
			w.close()
		}
		n, err := c.read(w, buf)
		switch {
		case errors.Is(err, syscall.ENODEV), errors.Is(err, syscall.ECONNABORTED):
			return nil // unmounted or aborted
		case errors.Is(err, errStopped):
			return nil // Serve's ctx is done
		case errors.Is(err, syscall.ENOENT), errors.Is(err, syscall.EINTR):
			continue // the request was interrupted before we read it
		case err != nil:
			return fmt.Errorf("fuse read request: %w", err)
		}
		r, err := parseRequest(buf[:n])
		if err != nil {
			return err
		}
		r.turn = t
		s.requests.Add(1)
		out := s.handle(r)
		if out == nil {
			continue
		}
		// ENOENT: the request was interrupted or aborted meanwhile.
		if err := c.write(out); err != nil && !errors.Is(err, syscall.ENOENT) {
			if errors.Is(err, syscall.ENODEV) {
				return nil
			}
			return fmt.Errorf("fuse reply to request %d (opcode %d): %w", r.Unique, r.Opcode, err)
		}
		if r.Opcode == opPoll { // answered ENOSYS: the kernel asks no more
			s.pollsStopped.Store(true)
		}
	}
}

// faultIn writes to the pages of buf that a request is copied into
// (faultInSize), so that the kernel copies it without faulting a page
// in. A page it must fault in fails the copy once the process has a
// SIGKILL pending (get_user_pages stops at a fatal signal), and a request
// whose copy fails is ended with EIO instead of staying for a
// successor's FUSE_NOTIFY_RESEND: a FUSE_INIT so ended breaks the
// connection for good (every request then fails with ECONNREFUSED),
// which a worker killed just after it mounted a session left to its
// successor (TestProcRepairAfterWorkerKilledInRepair failed so in 4
// runs of 300 before, in none of 600 after).
func faultIn(buf []byte) {
	for i := 0; i < min(len(buf), faultInSize); i += os.Getpagesize() {
		buf[i] = 0
	}
}

// faultInSize holds every request but a FORGET batch (up to the whole
// buffer), whose loss costs nothing: node ids keep no lookup counts.
// Only the pages a request reaches count, not the whole buffer, which
// the readers (2 per CPU) would keep resident.
const faultInSize = 8 << 10

// init answers FUSE_INIT: the lower minor of the two, and of the wanted
// flags those the kernel offers.
func (s *Server) init(b []byte) ([]byte, error) {
	if len(b) < 16 {
		return nil, syscall.EINVAL
	}
	major, minor := ne.Uint32(b[0:]), ne.Uint32(b[4:])
	if major != protoMajor || minor < minKernelMinor {
		return nil, syscall.EPROTO
	}
	offered := uint64(ne.Uint32(b[12:]))
	if len(b) >= 20 && offered&initExt != 0 {
		offered |= uint64(ne.Uint32(b[16:])) << 32
	}
	// READDIRPLUS always, not only when the kernel guesses it pays
	// (FUSE_READDIRPLUS_AUTO): a listing instantiates every name it lists,
	// which a caller that then opens or clones several of them wants.
	//
	// EXPLICIT_INVAL_DATA rather than AUTO_INVAL_DATA (the kernel takes
	// one): the server pushes each new version into the page cache, and
	// with AUTO the kernel would drop those pages at the GETATTR answer's
	// new mtime (content.go).
	flags := offered & (initParallelDirops | initMaxPages | initDoReaddirplus | initExt)
	mode := InvalAuto
	switch {
	case offered&initExplicitInval != 0 && !s.AutoInval:
		flags |= initExplicitInval
		mode = InvalExplicit
	case offered&initAutoInvalData != 0:
		flags |= initAutoInvalData
	default:
		mode = InvalUnknown // neither: the pages stay until a barrier drops them
	}
	s.SetInval(mode)
	if s.OnInit != nil {
		s.OnInit(mode)
	}
	out := make([]byte, initOutSize)
	ne.PutUint32(out[0:], protoMajor)
	ne.PutUint32(out[4:], min(minor, protoMinor))
	ne.PutUint32(out[8:], ne.Uint32(b[8:])) // max_readahead: the kernel's
	ne.PutUint32(out[12:], uint32(flags))
	ne.PutUint16(out[16:], 16) // max_background
	ne.PutUint16(out[18:], 12) // congestion_threshold
	ne.PutUint32(out[20:], maxWrite)
	ne.PutUint32(out[24:], 1) // time_gran
	ne.PutUint16(out[28:], maxPages)
	ne.PutUint32(out[32:], uint32(flags>>32))
	return out, nil
}
