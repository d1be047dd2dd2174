package migrate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/checkpoint"
	"github.com/lkc-containers/lkc/internal/config"
	"github.com/lkc-containers/lkc/internal/container"
	"github.com/lkc-containers/lkc/internal/state"
)

// ServeOptions configure a receiver.
type ServeOptions struct {
	Root      string // lkc state root the containers arrive in
	BundleDir string // migrated containers' bundles (and their staging)
	Token     []byte
	CRIU      string
	// CgroupParent, when set, puts arriving containers' cgroups at
	// <CgroupParent>/<id> instead of the path they had on the source.
	CgroupParent string
	Timeout      time.Duration // per network exchange; 0 = 60 s
	// HandshakeTimeout bounds the whole handshake of a connection, which
	// must authenticate by then; 0 = 5 s.
	HandshakeTimeout time.Duration
	// Sessions is how many authenticated sessions run at a time (an
	// evacuation sends several containers at once); 0 is 1.
	Sessions int
	Log      func(string) // one line per session event; nil = quiet
	Warn     func(error)  // failures that do not fail a session; nil drops them
	// Verbose makes CRIU log everything (`lkc --debug`) and keeps a
	// committed container's images and CRIU logs in its bundle.
	Verbose bool
	// Adopt, when set, has this host's daemon serve an arriving container
	// whose config asks for a daemon feature, as cr.RestoreOpts.Adopt:
	// its virtual /proc's bind mounts then map to this host's files.
	Adopt func(root, id string, cfg *config.Config) (release func(), err error)
}

// pendingDir, in the bundle directory, holds a marker named after each
// container whose migration has not committed: a receiver that finds one
// at start (it was killed mid-session) removes the container and its
// bundle. No container id contains '@', so no bundle can be taken for it.
const pendingDir = "@pending"

// ownerMark, in a bundle, says `lkc serve` made it: a receiver that finds
// such a bundle without its container at start removes it. A sender's
// streams land only in the bundle's rootfs and images, never beside them.
const ownerMark = ".lkc-serve"

// Serve receives migrations on ln until ctx ends. Connections are
// handled concurrently: each must authenticate within
// o.HandshakeTimeout, and only so many may be unauthenticated at a time
// (per peer address and in all), so idle or slow peers cannot hold the
// receiver. Authenticated sessions run o.Sessions at a time, each
// holding room for what its offer announced until it ends. A session that
// fails, whatever the peer did, leaves nothing behind and does not stop
// the receiver.
func Serve(ctx context.Context, ln net.Listener, o ServeOptions) error {
	o.defaults()
	if err := os.MkdirAll(filepath.Join(o.BundleDir, pendingDir), 0o700); err != nil {
		return fmt.Errorf("creating the bundle directory: %w", err)
	}
	if err := sweep(o.Root, o.BundleDir); err != nil {
		return err
	}
	o.Log("listening on " + ln.Addr().String())
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	s := &server{o: o, gate: newGate(maxHandshakes, maxHandshakesPerPeer), one: make(chan struct{}, max(1, o.Sessions))}
	defer s.wg.Wait()
	for {
		nc, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("accepting migrations: %w", err)
		}
		peer := peerHost(nc)
		if !s.gate.enter(peer) {
			go turnAway(nc)
			continue
		}
		s.wg.Add(1)
		go s.handle(ctx, nc, peer)
	}
}

// Bounds on connections that have not authenticated yet.
const (
	maxHandshakes        = 64
	maxHandshakesPerPeer = 8
)

func (o *ServeOptions) defaults() {
	if o.Timeout == 0 {
		o.Timeout = 60 * time.Second
	}
	if o.HandshakeTimeout == 0 {
		o.HandshakeTimeout = 5 * time.Second
	}
	if o.Log == nil {
		o.Log = func(string) {}
	}
	if o.Warn == nil {
		o.Warn = func(error) {}
	}
}

// server is the state the connections of one Serve share.
type server struct {
	o    ServeOptions
	gate *gate
	one  chan struct{} // a slot per authenticated session
	room roomBook
	// facts are this host's, read once for the offers of a few seconds
	// (an evacuation's probes and moves) rather than for each.
	facts FactsCache
	wg    sync.WaitGroup
}

// handle authenticates one connection within the handshake deadline,
// then waits its turn and runs the session.
func (s *server) handle(ctx context.Context, nc net.Conn, peer string) {
	defer s.wg.Done()
	defer nc.Close()
	done := context.AfterFunc(ctx, func() { nc.Close() })
	defer done()
	r := &receiver{o: s.o, c: newConn(nc, 0), room: &s.room, facts: &s.facts}
	nc.SetDeadline(time.Now().Add(s.o.HandshakeTimeout))
	err := r.c.serverHandshake(s.o.Token)
	s.gate.leave(peer)
	if err != nil {
		s.o.Log(fmt.Sprintf("migration from %s failed: %v", nc.RemoteAddr(), err))
		return
	}
	r.c.timeout = s.o.Timeout
	select {
	case s.one <- struct{}{}:
	case <-ctx.Done():
		return
	}
	defer func() { <-s.one }()
	if err := r.session(); err != nil {
		s.o.Log(fmt.Sprintf("migration from %s failed: %v", nc.RemoteAddr(), err))
	}
}

// peerHost is the address a connection comes from, without its port.
func peerHost(nc net.Conn) string {
	if ta, ok := nc.RemoteAddr().(*net.TCPAddr); ok {
		return ta.IP.String()
	}
	return nc.RemoteAddr().String()
}

// gate counts the connections that have not authenticated yet, per peer
// and in all, and admits a new one only under both bounds.
type gate struct {
	mu          sync.Mutex
	total       int
	max, perMax int
	per         map[string]int
}

func newGate(max, perPeer int) *gate {
	return &gate{max: max, perMax: perPeer, per: map[string]int{}}
}

func (g *gate) enter(peer string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.total >= g.max || g.per[peer] >= g.perMax {
		return false
	}
	g.total++
	g.per[peer]++
	return true
}

func (g *gate) leave(peer string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.total--
	if g.per[peer]--; g.per[peer] == 0 {
		delete(g.per, peer)
	}
}

// sweep removes what sessions killed before their commit left in root and
// bundleDir, and the bundles this receiver made whose container is gone.
func sweep(root, bundleDir string) error {
	entries, err := os.ReadDir(filepath.Join(bundleDir, pendingDir))
	if err != nil {
		return fmt.Errorf("reading the pending migrations: %w", err)
	}
	for _, e := range entries {
		id := e.Name()
		if state.CheckID(id) != nil {
			continue
		}
		if err := container.Delete(root, id, true, nil); err != nil {
			return fmt.Errorf("removing the uncommitted container %s: %w", id, err)
		}
		if err := removeBundle(filepath.Join(bundleDir, id)); err != nil {
			return fmt.Errorf("removing the bundle of uncommitted container %s: %w", id, err)
		}
		if err := os.Remove(filepath.Join(bundleDir, pendingDir, id)); err != nil {
			return fmt.Errorf("removing the pending mark of %s: %w", id, err)
		}
	}
	return sweepOrphans(root, bundleDir)
}

// sweepOrphans removes the bundles made by a receiver whose container no
// longer exists (deleted by an lkc that left its bundle behind).
func sweepOrphans(root, bundleDir string) error {
	entries, err := os.ReadDir(bundleDir)
	if err != nil {
		return fmt.Errorf("reading %s: %w", bundleDir, err)
	}
	for _, e := range entries {
		id := e.Name()
		bundle := filepath.Join(bundleDir, id)
		if state.CheckID(id) != nil || !e.IsDir() {
			continue
		}
		if _, err := os.Lstat(filepath.Join(bundle, ownerMark)); err != nil {
			continue
		}
		if _, err := container.State(root, id); !errors.Is(err, container.ErrNotExist) {
			continue
		}
		if err := removeBundle(bundle); err != nil {
			return fmt.Errorf("removing the bundle of deleted container %s: %w", id, err)
		}
	}
	return nil
}

// removeBundle removes a bundle this receiver made, with the images it
// may keep elsewhere.
func removeBundle(bundle string) error {
	if err := removeImages(filepath.Join(bundle, "images")); err != nil {
		return err
	}
	return os.RemoveAll(bundle)
}

// roomBook counts the bytes the sessions running at a time have been
// promised on the bundle directory's filesystem, which its free space
// does not show until they are written.
type roomBook struct {
	mu       sync.Mutex
	promised int64
}

// take promises n bytes more when dir has room for them beside what is
// promised already (check says so), and returns what gives them back.
func (b *roomBook) take(n int64, check func(promised int64) error) (func(), error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := check(b.promised); err != nil {
		return nil, err
	}
	b.promised += n
	return func() {
		b.mu.Lock()
		b.promised -= n
		b.mu.Unlock()
	}, nil
}

// receiver is one session on the target.
type receiver struct {
	o         ServeOptions
	room      *roomBook
	unpromise func() // gives back the room the offer took
	facts     *FactsCache
	c         *conn
	of        offer
	bundle    string
	pending   string
	// restored says the restore began: the container is registered, and
	// a failure before the commit must delete it (it has not run: it was
	// restored frozen).
	restored bool
	isolated bool // restoreReq.NetworkIsolated: its veths connect on the commit
	// owned says the commit came and the container runs here: it is this
	// host's, kept whatever comes.
	owned  bool
	tunnel *pageTunnel // a post-copy's, while the session lasts
}

// session runs one authenticated migration.
func (r *receiver) session() (err error) {
	defer func() {
		if r.unpromise != nil {
			r.unpromise()
		}
	}()
	defer func() {
		if r.tunnel != nil {
			r.tunnel.close()
		}
	}()
	defer func() {
		if err != nil {
			r.fail(err)
		}
	}()
	if err := r.accept(); err != nil {
		return err
	}
	if r.of.Probe {
		return nil
	}
	// Paid while the source dumps rather than by the restore.
	defer checkpoint.WarmPerfHooks()()
	r.o.Log(fmt.Sprintf("receiving container %s from %s (%s)", r.of.ID, r.c.nc.RemoteAddr(), r.of.Mode))
	for {
		m, err := r.c.next()
		if err != nil {
			return err
		}
		switch m.Op {
		case "stream":
			err = r.stream(m.Body)
		case opRestore:
			err = r.restore(m.Body)
		case opCommit:
			return r.commit()
		default:
			err = fmt.Errorf("%w: unexpected %q", ErrProtocol, m.Op)
		}
		if err != nil {
			return err
		}
	}
}

// next reads the next control message; an error message from the peer
// becomes a *PeerError.
func (c *conn) next() (message, error) {
	var m message
	typ, data, err := c.readFrame(nil)
	if err != nil {
		return m, err
	}
	if typ != fControl {
		return m, fmt.Errorf("%w: got frame type %d, want a control message", ErrProtocol, typ)
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return m, fmt.Errorf("%w: decoding a control message: %v", ErrProtocol, err)
	}
	if m.Op == opError {
		return m, &PeerError{Msg: m.Error}
	}
	return m, nil
}

// accept checks the offer against this host and prepares the bundle.
func (r *receiver) accept() error {
	if err := r.c.expect(opOffer, &r.of); err != nil {
		return err
	}
	mine, err := r.check()
	if err != nil {
		return err
	}
	if r.of.Probe {
		r.o.Log(fmt.Sprintf("would take container %s from %s (probe)", r.of.ID, r.c.nc.RemoteAddr()))
		return r.c.send(opAccept, mine)
	}
	if err := r.stage(); err != nil {
		return err
	}
	return r.c.send(opAccept, mine)
}

func (r *receiver) check() (*Facts, error) {
	of := &r.of
	if err := state.CheckID(of.ID); err != nil {
		return nil, err
	}
	if of.Facts == nil {
		return nil, fmt.Errorf("%w: the offer carries no host facts", ErrProtocol)
	}
	mine, err := r.facts.Get(r.o.CRIU)
	if err != nil {
		return nil, err
	}
	if err := Compatible(of.Facts, mine); err != nil {
		return nil, err
	}
	if of.Mode == ModePostcopy && !mine.LazyPages {
		return nil, errors.New("incompatible target: no userfaultfd here for post-copy")
	}
	if _, err := container.State(r.o.Root, of.ID); !errors.Is(err, container.ErrNotExist) {
		return nil, fmt.Errorf("container %s already exists on the target", of.ID)
	}
	if of.SharedStorage {
		if fi, err := os.Stat(of.Rootfs); err != nil || !fi.IsDir() {
			return nil, fmt.Errorf("incompatible target: missing rootfs storage: %s is not a directory here (--shared-storage)", of.Rootfs)
		}
	}
	if of.Probe {
		if err := checkSpace(r.o.BundleDir, of.RootfsBytes, of.MemoryBytes); err != nil {
			return nil, err
		}
	} else if err := r.promise(of.RootfsBytes, of.MemoryBytes); err != nil {
		return nil, err
	}
	if of.Probe && of.BatchBytes > 0 {
		if err := checkBatchSpace(r.o.BundleDir, of.BatchBytes); err != nil {
			return nil, err
		}
	}
	return mine, checkInterfaces(of.Veths)
}

// promise checks the bundle directory has room for the offer beside what
// the other sessions were promised, and takes it until the session ends.
func (r *receiver) promise(rootfs, memory int64) error {
	if r.room == nil {
		r.room = &roomBook{}
	}
	give, err := r.room.take(rootfs+memory, func(promised int64) error {
		return checkSpace(r.o.BundleDir, rootfs, memory+promised)
	})
	if err != nil {
		return err
	}
	r.unpromise = give
	return nil
}

// stage creates the bundle, marked pending until the commit.
func (r *receiver) stage() error {
	r.bundle = filepath.Join(r.o.BundleDir, r.of.ID)
	pending := filepath.Join(r.o.BundleDir, pendingDir, r.of.ID)
	f, err := os.OpenFile(pending, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return fmt.Errorf("container %s is already arriving on the target", r.of.ID)
	}
	if err != nil {
		return fmt.Errorf("staging: %w", err)
	}
	f.Close()
	if err := os.Mkdir(r.bundle, 0o700); err != nil {
		os.Remove(pending)
		return fmt.Errorf("staging: %w", err)
	}
	r.pending = pending
	if err := os.WriteFile(filepath.Join(r.bundle, ownerMark), nil, 0o600); err != nil {
		return fmt.Errorf("staging: %w", err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(r.of.Config, &cfg); err != nil {
		return fmt.Errorf("decoding the container's config: %w", err)
	}
	root, ok := cfg["root"].(map[string]any)
	if !ok {
		return errors.New("the container's config has no root")
	}
	root["path"] = "rootfs"
	if r.of.SharedStorage {
		root["path"] = r.of.Rootfs
	}
	if r.o.CgroupParent != "" {
		linux, ok := cfg["linux"].(map[string]any)
		if !ok {
			return errors.New("the container's config has no linux section")
		}
		linux["cgroupsPath"] = filepath.Join(r.o.CgroupParent, r.of.ID)
	}
	data, err := json.MarshalIndent(cfg, "", "\t")
	if err != nil {
		return fmt.Errorf("encoding the container's config: %w", err)
	}
	if err := r.stageImages(); err != nil {
		return fmt.Errorf("staging: %w", err)
	}
	return os.WriteFile(filepath.Join(r.bundle, "config.json"), data, 0o600)
}

func (r *receiver) stream(body json.RawMessage) error {
	var s stream
	if err := json.Unmarshal(body, &s); err != nil {
		return fmt.Errorf("%w: decoding a stream header: %v", ErrProtocol, err)
	}
	img, isImg := strings.CutPrefix(s.Name, "images/")
	valid := s.Name == "rootfs" && !r.of.SharedStorage || isImg && filepath.IsLocal(img) && !strings.Contains(img, "/")
	if !valid {
		return fmt.Errorf("%w: stream %q", ErrProtocol, s.Name)
	}
	if _, err := r.c.recvTree(filepath.Join(r.bundle, s.Name), nil); err != nil {
		return err
	}
	return r.c.send(opStored, nil)
}

// commit lets the restored container run: it is this host's from now on.
// A post-copy's session lasts until the lazy-pages daemon has fetched all
// of its memory.
func (r *receiver) commit() error {
	if !r.restored || r.owned {
		return fmt.Errorf("%w: commit before restore", ErrProtocol)
	}
	if err := r.run(); err != nil {
		return err
	}
	if err := r.own(); err != nil {
		return err
	}
	r.keep(fmt.Sprintf("container %s arrived from %s", r.of.ID, r.c.nc.RemoteAddr()))
	if die := os.Getenv(CommitDieEnv); die != "" && os.Remove(die) == nil {
		unix.Kill(os.Getpid(), unix.SIGKILL)
	}
	if err := r.c.send(opCommitted, nil); err != nil {
		return err
	}
	if r.tunnel != nil {
		r.tunnel.drain()
	}
	return nil
}

// CommitDieEnv, set to the path of a file in lkc serve's environment,
// makes it SIGKILL itself once it has committed a migration and before
// it confirms the commit, if it can remove that file: the receiver dying
// at the worst moment, which the integration test of an unconfirmed
// commit needs, once.
const CommitDieEnv = "LKC_TEST_SERVE_COMMIT_DIE"

// stageImages makes the bundle's images directory: for a post-copy, a
// link to a directory in shmDir when that is a tmpfs. Images kept with
// --debug stay in the bundle itself, which goes with the container.
func (r *receiver) stageImages() error {
	images := filepath.Join(r.bundle, "images")
	base := ""
	if r.of.Mode == ModePostcopy && !r.o.Verbose {
		base = stagingBase()
	}
	if base == "" {
		return os.Mkdir(images, 0o700)
	}
	dir, err := os.MkdirTemp(base, "lkc-images-"+r.of.ID+"-")
	if err != nil {
		return err
	}
	if err := os.Symlink(dir, images); err != nil {
		os.Remove(dir)
		return err
	}
	return nil
}

// own makes the restored container this host's once it runs: its
// pending mark goes, so neither the end of the session nor a receiver
// restarted after a kill removes it.
func (r *receiver) own() error {
	if err := os.Remove(r.pending); err != nil {
		return fmt.Errorf("committing: %w", err)
	}
	r.pending, r.owned = "", true
	return nil
}

// keep ends a session whose container this host owns: its images go
// (unless --debug keeps them) and the log says so, in line.
func (r *receiver) keep(line string) {
	if !r.o.Verbose {
		if err := removeImages(filepath.Join(r.bundle, "images")); err != nil {
			r.o.Warn(fmt.Errorf("removing the images of %s: %w", r.of.ID, err))
		}
	}
	r.o.Log(line)
}

// fail ends a session that failed with err. A container this host owns
// (it runs here since the commit) stays. Anything else is undone, a
// restored copy, which never ran, deleted, and err goes to the sender,
// which resumes its own.
func (r *receiver) fail(err error) {
	if r.owned {
		r.keep(fmt.Sprintf("container %s runs here, its sender gone after the commit (%v): kept", r.of.ID, err))
		return
	}
	if cerr := r.cleanup(); cerr != nil {
		r.o.Warn(fmt.Errorf("%w: its frozen copy stays until lkc serve restarts", cerr))
	}
	r.c.sendError(err)
}

// cleanup undoes a session that did not commit; the error says the
// restored container could not be deleted.
func (r *receiver) cleanup() error {
	if r.pending == "" {
		return nil
	}
	if r.restored {
		if err := container.Delete(r.o.Root, r.of.ID, true, r.o.Warn); err != nil {
			return err
		}
	}
	if err := removeBundle(r.bundle); err != nil {
		r.o.Warn(err)
	}
	os.Remove(r.pending)
	return nil
}

// resources decodes the limits the container had on the source.
func (r *receiver) resources() (*config.Resources, error) {
	var res config.Resources
	if err := json.Unmarshal(r.of.Resources, &res); err != nil {
		return nil, fmt.Errorf("%w: decoding the container's limits: %v", ErrProtocol, err)
	}
	return &res, nil
}
