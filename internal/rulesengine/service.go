package rulesengine

import (
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/cgroups"
	"github.com/lkc-containers/lkc/internal/daemonapi"
	"github.com/lkc-containers/lkc/internal/hostconf"
	"github.com/lkc-containers/lkc/internal/procconn"
	"github.com/lkc-containers/lkc/internal/registry"
	"github.com/lkc-containers/lkc/internal/service"
)

// events are the ones the engine acts on: a new program, new ids, a new
// session. No FORK: a child inherits its parent's cgroups, and the sweep
// after a move finds every child forked before it (Engine.sweep).
const events = procconn.Exec | procconn.UID | procconn.GID | procconn.SID

// Service is the rules engine as a daemon service. It keeps nothing it
// cannot rebuild: at start it classifies every process, which covers the
// events lost while no worker ran.
type Service struct {
	eng    *Engine
	logf   func(string, ...any)
	reload chan *hostconf.Conf // to run: rules were reloaded
	conf   *hostconf.Conf
	mu     sync.Mutex
	// proc orders the engine's work on events and its scans, which
	// share the engine's processor state.
	proc sync.Mutex
	// open subscribes to process events (tests give a fake); fail ends
	// the worker when the subscription is lost for good (exit).
	open func() (source, error)
	fail func(error)
}

// New returns the service.
func New() *Service {
	s := &Service{reload: make(chan *hostconf.Conf, 1), open: openSource}
	s.fail = func(err error) { exit(err, s.logf) }
	return s
}

// Name implements service.Service.
func (*Service) Name() string { return "rules" }

// Start loads the rules and, when there are any, subscribes to process
// events, classifies every process and serves. A rules file that does not
// parse, or a kernel without the proc connector here, is logged: the
// other services still run.
func (s *Service) Start(ctx context.Context, d *service.Deps) error {
	s.logf, s.conf = d.Logf, d.Conf
	self := []int{os.Getpid()}
	if d.Store != nil {
		self = append(self, d.Store.HolderPid())
	}
	eng, err := NewEngine(cgroups.DefaultHost, self, d.Logf)
	if err != nil {
		d.Logf("rules: %v (the rules engine is off)", err)
		return nil
	}
	s.eng = eng
	eng.keepWarm(ctx)
	if d.Registry != nil {
		eng.served = func() []string {
			var roots []string
			for _, e := range d.Registry.Entries() {
				roots = append(roots, e.Root)
			}
			return roots
		}
	}
	if err := eng.Load(d.Conf); err != nil {
		d.Logf("rules: %v (no rules until a reload)", err)
	}
	go s.watchFiles(ctx, d.Conf)
	go s.run(ctx)
	go s.reap(ctx)
	return nil
}

// Reload reads the rules again (SIGHUP, `lkc daemon reload`, a file
// change); a file that does not parse keeps the old rules.
func (s *Service) Reload(conf *hostconf.Conf) error {
	if s.eng == nil {
		return nil
	}
	if err := s.eng.Load(conf); err != nil {
		s.logf("rules: %v (keeping the rules loaded before)", err)
		return err
	}
	s.mu.Lock()
	s.conf = conf
	s.mu.Unlock()
	select {
	case s.reload <- conf:
	default: // a rescan is pending already
	}
	return nil
}

// Stop implements the daemon's stop: the warming thread's cgroup goes.
func (s *Service) Stop() {
	if s.eng != nil {
		s.eng.stopWarm()
	}
}

// Explain answers `lkc rules explain`.
func (s *Service) Explain(pid int) (*daemonapi.ExplainReply, error) {
	if s.eng == nil {
		return nil, daemonapi.Errorf(daemonapi.ClassNotSupported, "the rules engine is off (see the daemon's log)")
	}
	return s.eng.Explain(pid)
}

// RulesStatus is the engine's counters for `lkc daemon status`.
func (s *Service) RulesStatus() *daemonapi.Rules {
	if s.eng == nil {
		return nil
	}
	return s.eng.Status()
}

// Adopt implements service.Service: the engine serves host processes,
// not containers.
func (*Service) Adopt(*registry.Entry, *daemonapi.AdoptReply) error { return nil }

// Release implements service.Service.
func (*Service) Release(*registry.Entry) {}

// run subscribes once there are rules and scans, at start and after each
// reload. The subscription's events are read and acted on by follow, on
// one goroutine of its own: handing each event from a reading goroutine
// to a processing one cost two thread wake-ups per exec.
func (s *Service) run(ctx context.Context) {
	subscribed := false
	subscribe := func() {
		if subscribed || !s.eng.HasRules() {
			return
		}
		c, err := s.open()
		if err != nil {
			s.logf("rules: %v (the rules engine follows no events)", err)
			return
		}
		subscribed = true
		go s.follow(ctx, c)
	}
	subscribe()
	if s.eng.HasRules() {
		s.scan()
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.reload:
			subscribe()
			s.scan()
		}
	}
}

// scan classifies every process, between two events.
func (s *Service) scan() {
	s.proc.Lock()
	defer s.proc.Unlock()
	s.eng.Scan()
}

// follow acts on the connector's events until ctx ends; lost events
// cost a scan, and a read error a new subscription (follower).
func (s *Service) follow(ctx context.Context, c source) {
	f := &follower{open: s.open, handle: s.handle, logf: s.logf, fail: s.fail, after: s.idle,
		lost: func(resubscribed bool) {
			s.eng.count(func(st *Stats) {
				if resubscribed {
					st.Resubscribes++
				} else {
					st.Overruns++
				}
			})
			s.scan()
		}}
	f.run(ctx, c)
}

// idle lets the engine close the cgroup files it kept open for moves
// once none came for a while, between two reads of events.
func (s *Service) idle() {
	s.proc.Lock()
	defer s.proc.Unlock()
	s.eng.releaseIdle()
}

// exit ends the worker when the engine cannot follow events any more:
// its holder starts another, whose start scan classifies every process
// (a worker that served on without the engine would look healthy).
func exit(err error, logf func(string, ...any)) {
	logf("%v; the worker exits for its holder to start another", err)
	os.Exit(1)
}

func (s *Service) handle(evs []procconn.Event) {
	s.proc.Lock()
	defer s.proc.Unlock()
	for _, ev := range evs {
		switch {
		case ev.What == procconn.Exec:
			s.eng.Classify(ev.Tgid, time.Duration(ev.Time))
		default:
			s.eng.Classify(ev.Tgid, 0)
		}
	}
}

// watchFiles reloads when a rules file, /etc/passwd or /etc/group
// changes (inotify on their directories: editors and useradd replace
// files by rename). Changes coming together cause one reload.
func (s *Service) watchFiles(ctx context.Context, conf *hostconf.Conf) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		s.logf("rules: inotify: %v (reload with SIGHUP or lkc daemon reload)", err)
		return
	}
	f := os.NewFile(uintptr(fd), "inotify")
	defer f.Close()
	pats := append(append([]string{}, conf.RulesFiles...), "/etc/passwd", "/etc/group")
	if conf.RulesCgrules != "" {
		pats = append(pats, conf.RulesCgrules)
	}
	dirs := map[string]bool{}
	for _, p := range pats {
		if d := filepath.Dir(p); !dirs[d] && !strings.ContainsAny(d, "*?[") {
			dirs[d] = true
			unix.InotifyAddWatch(fd, d, unix.IN_CLOSE_WRITE|unix.IN_MOVED_TO|unix.IN_MOVED_FROM|unix.IN_DELETE|unix.IN_CREATE)
		}
	}
	go func() { <-ctx.Done(); f.Close() }()
	buf := make([]byte, 64<<10)
	for {
		n, err := f.Read(buf)
		if err != nil {
			return
		}
		if !relevant(buf[:n], pats) {
			continue
		}
		time.Sleep(100 * time.Millisecond) // let an editor finish
		f.SetReadDeadline(time.Now())
		for {
			if _, err := f.Read(buf); err != nil {
				break
			}
		}
		f.SetReadDeadline(time.Time{})
		s.mu.Lock()
		c := s.conf
		s.mu.Unlock()
		s.Reload(c)
	}
}

// relevant reports an inotify event naming a file one of pats matches.
func relevant(b []byte, pats []string) bool {
	for len(b) >= unix.SizeofInotifyEvent {
		l := int(binary.NativeEndian.Uint32(b[12:]))
		end := min(len(b), unix.SizeofInotifyEvent+l)
		name := strings.TrimRight(string(b[unix.SizeofInotifyEvent:end]), "\x00")
		for _, p := range pats {
			if ok, _ := filepath.Match(filepath.Base(p), name); ok {
				return true
			}
		}
		b = b[end:]
	}
	return false
}
