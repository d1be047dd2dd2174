package migrate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/checkpoint"
	"github.com/lkc-containers/lkc/internal/container"
	"github.com/lkc-containers/lkc/internal/network"
)

// Options of a migration; the zero value of each policy field picks the
// default written beside it.
type Options struct {
	Root, ID string
	Target   string // host:port of the receiver (`lkc serve`)
	Token    []byte
	CRIU     string // "" finds the default

	SharedStorage bool // the target sees the rootfs at the same path: do not send it
	// Mode is ModePrecopy, ModePostcopy or ModeStopcopy; "" picks pre-copy
	// when the kernel tracks dirty memory and post-copy when it does not.
	Mode           string
	TCPEstablished bool // move established TCP connections

	WorkDir        string        // where the source's images go; "" = a temporary directory
	MaxRounds      int           // pre-copy rounds at most; 0 = 5
	ConvergeBytes  int64         // pre-copy stops once a round sends less; 0 = 8 MiB
	ConvergeRatio  float64       // ... or once a round is not below this share of the last; 0 = 0.8
	BandwidthLimit int64         // bytes per second on the control stream; 0 = unlimited
	Timeout        time.Duration // per network exchange; 0 = 60 s

	// Facts, when set, hands out this host's facts to the migrations of
	// one evacuation, which read them once; nil reads them for this one.
	Facts *FactsCache
	// Turn, when set, is waited for before the freeze, and the release it
	// returns is called once the downtime ends (the target confirmed that
	// it runs the container; the source's copy, frozen, may still serve
	// post-copy pages), or the migration failed (rolled back, or left in
	// doubt): migrate --all bounds how many containers are down at a time,
	// while the others copy their rootfs and memory as they run. An error
	// (the context's end) fails the migration before the freeze.
	Turn func(context.Context) (release func(), err error)

	Progress func(Progress) // nil = quiet
	Warn     func(error)    // failures that do not fail the migration; nil drops them
	// Verbose makes CRIU log everything (`lkc --debug`) and keeps the
	// images directory with its logs instead of removing it.
	Verbose bool
}

func (o *Options) defaults() {
	if o.MaxRounds == 0 {
		o.MaxRounds = 5
	}
	if o.ConvergeBytes == 0 {
		o.ConvergeBytes = 8 << 20
	}
	if o.ConvergeRatio == 0 {
		o.ConvergeRatio = 0.8
	}
	if o.Timeout == 0 {
		o.Timeout = 60 * time.Second
	}
	if o.Progress == nil {
		o.Progress = func(Progress) {}
	}
	if o.Warn == nil {
		o.Warn = func(error) {}
	}
}

// offer is the sender's first message: what moves, and from where.
type offer struct {
	ID             string          `json:"id"`
	Facts          *Facts          `json:"facts"`
	Mode           string          `json:"mode"`
	SharedStorage  bool            `json:"sharedStorage"`
	Rootfs         string          `json:"rootfs"` // the source's path; the target's too with shared storage
	RootfsBytes    int64           `json:"rootfsBytes"`
	MemoryBytes    int64           `json:"memoryBytes"` // images the target must hold
	Config         json.RawMessage `json:"config"`      // the bundle's config.json
	Resources      json.RawMessage `json:"resources"`   // current cgroup limits (after lkc update)
	Veths          []Veth          `json:"veths"`
	TCPEstablished bool            `json:"tcpEstablished"`
	// Probe asks only whether the target would take the container
	// (Probe): it answers accept or an error and stages nothing.
	Probe bool `json:"probe,omitempty"`
	// BatchBytes, in a probe, is what a whole evacuation will store on
	// the target: the space check is made for that instead.
	BatchBytes int64 `json:"batchBytes,omitempty"`
}

// stream announces the file stream that follows and where it goes.
type stream struct {
	Name string `json:"name"` // "rootfs" or "images/<dir>"
}

// restoreReq asks the receiver to restore from images/<Image>.
type restoreReq struct {
	Image string `json:"image"`
	// Stdio say what the container's fds 0-2 are (nothing for a pipe, a
	// socket or a closed fd), read while it is frozen: a shell caught
	// inside `echo > file` has fd 1 on that file for a moment. The target
	// makes a replacement for those the dump recorded as files from
	// outside.
	Stdio      [3]stdioFile `json:"stdio"`
	Parent     string       `json:"parent,omitempty"`     // images/<dir> of the last pre-copy round
	PageServer string       `json:"pageServer,omitempty"` // post-copy: where the pages are
	// NetworkIsolated says the dump did not lock the network (the source
	// had cut the container off): the target restores it off the network
	// too and puts its veths on their bridges once it runs.
	NetworkIsolated bool `json:"networkIsolated,omitempty"`
	// FlatCgroups says the frozen container had no sub-cgroups: the
	// target's CRIU may start in its cgroups and leave cgroups alone
	// (cr.RestoreTuning).
	FlatCgroups bool `json:"flatCgroups,omitempty"`
}

// session is one migration on the sender's side.
type session struct {
	o       Options
	c       *conn
	ct      *container.Handle // the container, as read when the migration began
	facts   *Facts
	mode    string
	work    string
	start   time.Time
	veths   []Veth // re-created on the target
	cutOff  []Veth // taken off their bridge while the container is frozen
	frozen  time.Time
	endTurn func() // Options.Turn's release; nil outside a turn
	sum     Summary
	paused  bool
	netDown bool
	flat    bool // the frozen container has no sub-cgroups (restoreReq.FlatCgroups)

	// mu orders the hand-over of the container and an abort (the
	// context's end): the fields below say how far it has gone.
	mu sync.Mutex
	// commit says the commit is (being) sent: from then on the target
	// may run the container, and the source's copy is never resumed.
	commit bool
	// running says the target confirmed the commit: it runs the container.
	running   bool
	aborted   bool   // the connection was cut by the context's end
	letFinish string // Summary.LetFinish
	// dumps ends when the migration is aborted: the dump under way stops
	// where CRIU can without harm (cr.CheckpointOpts.Abort).
	dumps    context.Context
	endDumps context.CancelCauseFunc

	// isolated says that taking the veths off the network cuts the frozen
	// container off entirely (its own network namespace, no other links),
	// so CRIU need not lock its network.
	isolated bool
}

// Migrate moves container o.ID to the receiver at o.Target. A failure
// before the commit leaves the container running on the source and
// nothing on the target; a commit the target confirms leads to the source
// copy's deletion, and one it does not is ErrInDoubt (handover.go).
// A post-copy that lkc chose by itself (o.Mode "") and that fails before
// the commit gives way to stop-and-copy: CRIU's lazy page server does not
// work on every kernel (docs/criu.md), and the container is still here.
func Migrate(ctx context.Context, o Options) (*Summary, error) {
	o.defaults()
	sum, err := migrate(ctx, o)
	if err == nil || o.Mode != "" || !errors.Is(err, errPostcopy) || errors.Is(err, ErrInDoubt) || ctx.Err() != nil {
		return sum, err
	}
	o.Warn(fmt.Errorf("%v; moving it stopped instead", err))
	o.Mode = ModeStopcopy
	first := err
	sum, err = migrate(ctx, o)
	if sum != nil {
		sum.Fallback = first.Error()
	}
	return sum, err
}

func migrate(ctx context.Context, o Options) (*Summary, error) {
	s := &session{o: o, start: time.Now()}
	s.sum = Summary{ID: o.ID, Target: o.Target}
	// Paid during the handshake rather than by the dump, in the downtime.
	defer checkpoint.WarmPerfHooks()()
	if err := s.prepare(); err != nil {
		return nil, err
	}
	if o.Verbose {
		defer o.Warn(fmt.Errorf("images and CRIU logs kept in %s", s.work))
	} else {
		defer os.RemoveAll(s.work)
	}
	if err := s.connect(ctx); err != nil {
		return nil, err
	}
	defer s.c.nc.Close()
	s.dumps, s.endDumps = context.WithCancelCause(context.Background())
	defer s.endDumps(nil)
	stop := context.AfterFunc(ctx, func() { s.abort(context.Cause(ctx)) })
	defer stop()
	err := s.run()
	if err != nil {
		s.rollback()
	}
	s.leaveTurn()
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%v)", ctx.Err(), err)
		}
		return nil, fmt.Errorf("migrating %s to %s: %w", o.ID, o.Target, err)
	}
	s.sum.TotalMS = ms(time.Since(s.start))
	s.mu.Lock()
	s.sum.LetFinish = s.letFinish
	s.mu.Unlock()
	s.sum.Bytes += s.c.bytesOut + s.c.bytesIn
	s.progress(PhaseDone, 0, 0, 0)
	return &s.sum, nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func (s *session) progress(phase string, round int, n, total int64) {
	all := s.c.bytesOut + s.c.bytesIn
	s.o.Progress(Progress{Phase: phase, Round: round, Bytes: n, Total: total, All: all, Elapsed: time.Since(s.start)})
}

// prepare reads the container's record and this host's facts, and picks
// the memory mode.
func (s *session) prepare() error {
	if err := s.inspect(); err != nil {
		return err
	}
	var err error
	s.work = s.o.WorkDir
	if s.work == "" {
		base := ""
		if s.mode == ModePostcopy {
			base = stagingBase()
		}
		s.work, err = os.MkdirTemp(base, "lkc-migrate-"+s.o.ID+"-")
	} else {
		// Named by mode too: a post-copy that gives way to stop-and-copy
		// under --debug keeps the first attempt's directory.
		s.work = filepath.Join(s.work, "lkc-migrate-"+s.o.ID+"-"+s.mode)
		err = os.Mkdir(s.work, 0o700)
	}
	if err != nil {
		return fmt.Errorf("creating the images directory: %w", err)
	}
	return nil
}

// inspect reads the container's record and this host's facts, and picks
// the memory mode: all of prepare that changes nothing.
func (s *session) inspect() error {
	// Status and record read under one lock: a command that held the
	// container (an update, a delete) has finished, and what it did shows.
	ct, err := container.Inspect(s.o.Root, s.o.ID)
	if err != nil {
		return err
	}
	if st := ct.Status(); st != container.Running {
		return fmt.Errorf("%w: cannot migrate container %s: it is %s", container.ErrWrongState, s.o.ID, st)
	}
	s.ct = ct
	facts := s.o.Facts
	if facts == nil {
		facts = &FactsCache{}
	}
	if s.facts, err = facts.Get(s.o.CRIU); err != nil {
		return err
	}
	if s.facts.CRIU == [3]int{} {
		return fmt.Errorf("cannot migrate: %s", s.facts.CRIUError)
	}
	if s.mode, err = pickMode(s.o.Mode, s.facts); err != nil {
		return err
	}
	s.sum.Mode = s.mode
	veths, only, err := hostVeths(s.ct.Pid())
	if err != nil {
		return err
	}
	// All are cut off while frozen; a container on CNI networks takes none
	// along: its veths are the plugins', the dump keeps its addresses and
	// the target attaches it to its own networks of the same names.
	s.cutOff = veths
	if _, ok := s.ct.Config().Annotations[network.AnnotationNetwork]; !ok {
		s.veths = veths
		s.isolated = only && s.ct.Config().NewNamespace("network")
	}
	return nil
}

// connect dials the receiver and proves the token. A receiver with its
// bound of handshakes under way turns a connection away (the senders of
// one evacuation connect at once): connect tries again, after 10 ms and
// then twice as long each time up to 0.5 s, for up to Options.Timeout.
func (s *session) connect(ctx context.Context) error {
	deadline := time.Now().Add(s.o.Timeout)
	for wait := 10 * time.Millisecond; ; wait = min(2*wait, 500*time.Millisecond) {
		err := s.dial(ctx)
		if !errors.Is(err, errTurnedAway) || time.Now().Add(wait).After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
	}
}

func (s *session) dial(ctx context.Context) error {
	d := net.Dialer{Timeout: s.o.Timeout}
	nc, err := d.DialContext(ctx, "tcp", s.o.Target)
	if err != nil {
		return fmt.Errorf("connecting to the receiver: %w", err)
	}
	s.c = newConn(nc, s.o.Timeout)
	s.progress(PhaseConnect, 0, 0, 0)
	if err := s.c.clientHandshake(s.o.Token); err != nil {
		nc.Close()
		return fmt.Errorf("handshake with %s: %w", s.o.Target, err)
	}
	s.c.limiter = newRateLimiter(s.o.BandwidthLimit)
	return nil
}

func (s *session) run() error {
	if err := s.sendOffer(); err != nil {
		return err
	}
	if !s.o.SharedStorage {
		if err := s.sendTree(PhaseRootfs, 0, "rootfs", s.ct.Rootfs()); err != nil {
			return err
		}
	}
	var err error
	if s.mode != ModePostcopy {
		if err = s.precopy(); err == nil {
			err = s.handOver()
		}
	} else {
		err = s.postcopy()
	}
	if err != nil {
		return err
	}
	s.finish()
	return nil
}

func (s *session) sendOffer() error {
	of, err := s.offer()
	if err != nil {
		return err
	}
	return s.propose(of)
}

// offer says what moves: the bundle's config (with the live annotations:
// the net-rate in force), the limits now, the sizes
// the target must hold.
func (s *session) offer() (*offer, error) {
	cfg, err := s.ct.BundleConfig()
	if err != nil {
		return nil, err
	}
	res, err := json.Marshal(s.ct.Config().Cgroup.Resources)
	if err != nil {
		return nil, fmt.Errorf("encoding the container's limits: %w", err)
	}
	of := &offer{ID: s.o.ID, Facts: s.facts, Mode: s.mode, SharedStorage: s.o.SharedStorage,
		Rootfs: s.ct.Rootfs(), Config: cfg, Resources: res, Veths: s.veths, TCPEstablished: s.o.TCPEstablished}
	if !s.o.SharedStorage {
		if of.RootfsBytes, err = treeSize(s.ct.Rootfs()); err != nil {
			return nil, err
		}
	}
	if s.mode != ModePostcopy {
		of.MemoryBytes = s.ct.DumpBytes()
	}
	return of, nil
}

// propose sends the offer and waits for the receiver's answer.
func (s *session) propose(of *offer) error {
	if err := s.c.send(opOffer, of); err != nil {
		return err
	}
	var target Facts
	if err := s.c.expect(opAccept, &target); err != nil {
		return fmt.Errorf("the receiver refused: %w", err)
	}
	return nil
}

// stdioFile is what one of the container's fds 0-2 is, when it is a file
// the target can stand in for: Kind stdioNull (/dev/null) or
// stdioFileKind (a regular file of Mode's permission bits and Size
// bytes).
type stdioFile struct {
	Kind string `json:"kind,omitempty"`
	Mode uint32 `json:"mode,omitempty"`
	Size int64  `json:"size,omitempty"`
}

const (
	stdioNull     = "null"
	stdioFileKind = "file"
)

// stdioFiles says what the container's stdio is.
func stdioFiles(stdio [3]container.StdioFd) [3]stdioFile {
	var out [3]stdioFile
	for i, at := range stdio {
		fd := at.Path()
		p, err := os.Readlink(fd)
		if err != nil || !filepath.IsAbs(p) {
			continue
		}
		var st unix.Stat_t
		if err := unix.Stat(fd, &st); err != nil {
			continue
		}
		switch {
		case p == "/dev/null" && st.Mode&unix.S_IFMT == unix.S_IFCHR:
			out[i].Kind = stdioNull
		case st.Mode&unix.S_IFMT == unix.S_IFREG:
			out[i] = stdioFile{Kind: stdioFileKind, Mode: st.Mode & 0o777, Size: st.Size}
		}
	}
	return out
}

// sendTree streams dir as name and waits until the receiver stored it.
func (s *session) sendTree(phase string, round int, name, dir string) error {
	total, err := treeSize(dir)
	if err != nil {
		return err
	}
	s.progress(phase, round, 0, total)
	if err := s.c.send("stream", stream{Name: name}); err != nil {
		return err
	}
	if err := s.c.sendTree(dir, func(n int64) { s.progress(phase, round, n, total) }); err != nil {
		return err
	}
	if err := s.c.expect(opStored, nil); err != nil {
		return fmt.Errorf("storing %s on the receiver: %w", name, err)
	}
	s.progress(phase, round, total, total)
	return nil
}

// pickMode checks the asked mode against this host, or picks one.
func pickMode(mode string, f *Facts) (string, error) {
	switch mode {
	case "":
		if f.SoftDirty {
			return ModePrecopy, nil
		}
		if f.LazyServe {
			return ModePostcopy, nil
		}
		return ModeStopcopy, nil
	case ModePrecopy:
		if !f.SoftDirty {
			return "", errors.New("cannot pre-copy: this kernel does not track dirty memory (soft-dirty); use post-copy")
		}
	case ModePostcopy:
		if !f.LazyPages {
			return "", errors.New("cannot post-copy: CRIU reports no userfaultfd support here")
		}
		if !f.LazyServe {
			return "", errors.New("cannot post-copy: " + f.LazyServeError)
		}
	case ModeStopcopy:
	default:
		return "", fmt.Errorf("unknown migration mode %q: use precopy, postcopy or stopcopy", mode)
	}
	return mode, nil
}
