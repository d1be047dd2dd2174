package migrate

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/lkc-containers/lkc/internal/checkpoint"
	"github.com/lkc-containers/lkc/internal/container"
	"github.com/lkc-containers/lkc/internal/cr"
)

// precopy sends memory in pre-dump rounds while the container runs, each
// round only what changed since the last, until a round is small enough or
// stops shrinking; then it freezes the container and sends the rest. In
// stop-and-copy mode there are no rounds: everything moves frozen.
func (s *session) precopy() error {
	var prev int64 = -1
	parent := ""
	for round := 1; s.mode == ModePrecopy && round <= s.o.MaxRounds; round++ {
		name := fmt.Sprintf("round-%d", round)
		dir := filepath.Join(s.work, name)
		o := s.checkpointOpts(dir)
		o.PreDump, o.ParentPath = true, relParent(parent)
		if err := o.run(); err != nil {
			return err
		}
		if err := s.sendTree(PhasePrecopy, round, "images/"+name, dir); err != nil {
			return err
		}
		s.sum.Rounds = round
		n, err := treeSize(dir)
		if err != nil {
			return err
		}
		parent = name
		if n < s.o.ConvergeBytes || (prev >= 0 && float64(n) > s.o.ConvergeRatio*float64(prev)) {
			break
		}
		prev = n
	}
	dir := filepath.Join(s.work, "final")
	o := s.checkpointOpts(dir)
	o.ParentPath, o.NetworkIsolated = relParent(parent), s.isolated
	o.Worker = s.prestart(o)
	if err := s.freeze(); err != nil {
		stopWorker(o.Worker)
		return err
	}
	if err := o.run(); err != nil {
		return err
	}
	if err := s.sendTree(PhaseImages, 0, "images/final", dir); err != nil {
		return err
	}
	req := restoreReq{Image: "final", NetworkIsolated: s.isolated}
	if parent != "" {
		req.Parent = parent
	}
	return s.restore(req)
}

func relParent(name string) string {
	if name == "" {
		return ""
	}
	return "../" + name
}

// checkpointOpts are the options every dump of this migration shares. The
// source always stays alive (LeaveRunning, frozen by us in the final dump):
// it is deleted only once the target confirms.
func (s *session) checkpointOpts(dir string) dump {
	return dump{
		CheckpointOpts: cr.CheckpointOpts{
			Root: s.o.Root, ID: s.o.ID, CRIU: s.o.CRIU, ImagePath: dir,
			LeaveRunning: true, TCPEstablished: s.o.TCPEstablished, FileLocks: true,
			ManageCgroupsMode: "soft", Verbose: s.o.Verbose, Abort: s.dumps,
		},
		DumpTuning: cr.DumpTuning{FeaturesChecked: true},
	}
}

// dump is one dump of the migration: runc's options and a migration's.
type dump struct {
	cr.CheckpointOpts
	cr.DumpTuning
}

func (d dump) run() error { return cr.CheckpointTuned(d.CheckpointOpts, d.DumpTuning) }

// prestart starts the final dump's CRIU before the freeze
// (cr.PrestartDump); nil, with a warning, when it cannot, and the
// dump starts CRIU itself.
func (s *session) prestart(o dump) *checkpoint.Worker {
	w, err := cr.PrestartDump(o.CheckpointOpts, o.DumpTuning)
	if err != nil {
		s.o.Warn(fmt.Errorf("starting CRIU ahead of the freeze: %w", err))
		return nil
	}
	return w
}

func stopWorker(w *checkpoint.Worker) {
	if w != nil {
		w.Stop()
	}
}

// freeze stops the source: pause, then take its veth peers off the network
// so its kernel neither answers nor resets the connections that move (CRIU
// unlocks the source's network when its dump ends). The downtime starts
// here.
func (s *session) freeze() error {
	if err := s.takeTurn(); err != nil {
		return err
	}
	s.progress(PhaseFreeze, 0, 0, 0)
	s.frozen = time.Now()
	if err := container.Pause(s.o.Root, s.o.ID); err != nil {
		return err
	}
	s.paused = true
	// Frozen, it can make no cgroup until it resumes.
	s.flat = s.ct.FlatCgroups()
	s.netDown = true
	for _, v := range s.cutOff {
		if err := isolate(v, false); err != nil {
			return err
		}
	}
	return nil
}

// takeTurn waits for Options.Turn, unless the migration is aborted first;
// Summary.WaitMS says how long.
func (s *session) takeTurn() error {
	if s.o.Turn == nil {
		return nil
	}
	t := time.Now()
	release, err := s.o.Turn(s.dumps)
	if err != nil {
		return fmt.Errorf("waiting for a turn to freeze: %w", err)
	}
	s.endTurn = release
	s.sum.WaitMS = ms(time.Since(t))
	return nil
}

// leaveTurn gives the turn back (Options.Turn), once: when the downtime
// ends, or at a failed migration's end.
func (s *session) leaveTurn() {
	if s.endTurn != nil {
		s.endTurn()
		s.endTurn = nil
	}
}

// errPostcopy marks a post-copy that failed before the target committed:
// the source still runs, so another mode may be tried.
var errPostcopy = errors.New("post-copy failed")

// postcopy freezes the container at once, dumps everything but its
// memory, lets the target restore, and serves the memory to the target's
// lazy-pages daemon as the restored processes touch it.
func (s *session) postcopy() error {
	local := s.c.nc.LocalAddr().(*net.TCPAddr)
	remote := s.c.nc.RemoteAddr().(*net.TCPAddr)
	dir := filepath.Join(s.work, "final")
	inNetns := func() bool { return cr.CriuInNetns(dir) }
	proxy, err := newPageProxy(local.IP.String(), remote.IP, s.ct.Pid(), inNetns, s.c.pages)
	if err != nil {
		return err
	}
	defer proxy.close()
	rd, wr, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("creating the dump status pipe: %w", err)
	}
	defer rd.Close()
	o := s.checkpointOpts(dir)
	o.LazyPages, o.PageServer, o.StatusFD = true, proxy.backend, wr
	o.NetworkIsolated = s.isolated
	o.Worker = s.prestart(o)
	if err := s.freeze(); err != nil {
		stopWorker(o.Worker)
		wr.Close()
		return err
	}
	dumped := make(chan error, 1)
	go func() {
		dumped <- o.run()
		wr.Close()
	}()
	err = s.lazyRestore(rd, dir, proxy)
	if err != nil {
		proxy.abort()
		derr := <-dumped
		if derr == nil {
			return err
		}
		if errors.Is(err, errDumpEnded) {
			return derr
		}
		// The page server's own failure is often the cause of the
		// target's (a restore whose pages never come).
		return fmt.Errorf("%w: %w; the source's page server: %v", errPostcopy, err, derr)
	}
	// The target's lazy-pages daemon may fetch pages while its copy is
	// frozen; once it runs, it faults the rest in.
	if err := s.handOver(); err != nil {
		if !errors.Is(err, ErrInDoubt) {
			proxy.abort()
		}
		<-dumped
		return err
	}
	s.progress(PhasePostcopy, 0, proxy.bytes.Load(), 0)
	if err := <-dumped; err != nil {
		// The target runs a copy whose memory may not all have come; the
		// source's is whole but behind it.
		return s.inDoubt("the target runs it, but serving its memory failed", err)
	}
	s.sum.PageBytes = proxy.bytes.Load()
	s.sum.Bytes += s.sum.PageBytes
	return nil
}

var errDumpEnded = errors.New("the dump ended before its images were ready")

// lazyRestore waits until CRIU's images without memory are ready, sends
// them and has the target restore against the page proxy.
func (s *session) lazyRestore(status *os.File, dir string, proxy *pageProxy) error {
	b := make([]byte, 1)
	if n, _ := status.Read(b); n != 1 {
		return errDumpEnded
	}
	if err := s.sendTree(PhaseImages, 0, "images/final", dir); err != nil {
		return err
	}
	return s.restore(restoreReq{Image: "final", PageServer: proxy.Addr(), NetworkIsolated: s.isolated})
}

// restore asks the target to restore the container, frozen, and waits
// until it has: the commit lets it run there.
func (s *session) restore(req restoreReq) error {
	s.progress(PhaseRestore, 0, 0, 0)
	req.Stdio, req.FlatCgroups = stdioFiles(s.ct.StdioFds()), s.flat
	if err := s.c.send(opRestore, req); err != nil {
		return err
	}
	if err := s.c.expectSlow(opRestored, nil, 10*s.o.Timeout); err != nil {
		return fmt.Errorf("restoring on the target: %w", err)
	}
	return nil
}

// expectSlow is expect with a longer deadline, for a step that takes time
// on the peer (a restore).
func (c *conn) expectSlow(op string, body any, d time.Duration) error {
	saved := c.timeout
	c.timeout = d
	defer func() { c.timeout = saved }()
	return c.expect(op, body)
}
