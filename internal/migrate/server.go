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
	"time"

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
	Log          func(string)  // one line per session event; nil = quiet
	Warn         func(error)   // failures that do not fail a session; nil drops them
	// Verbose makes CRIU log everything (`lkc --debug`) and keeps a
	// committed container's images and CRIU logs in its bundle.
	Verbose bool
}

// pendingSuffix marks a bundle whose migration has not committed: a
// receiver that finds one at start (it was killed mid-session) removes the
// container and the bundle.
const pendingSuffix = ".pending"

// Serve receives migrations on ln, one at a time, until ctx ends. A
// session that fails, whatever the peer did, leaves nothing behind and
// does not stop the receiver.
func Serve(ctx context.Context, ln net.Listener, o ServeOptions) error {
	if o.Timeout == 0 {
		o.Timeout = 60 * time.Second
	}
	if o.Log == nil {
		o.Log = func(string) {}
	}
	if o.Warn == nil {
		o.Warn = func(error) {}
	}
	if err := os.MkdirAll(o.BundleDir, 0o700); err != nil {
		return fmt.Errorf("creating the bundle directory: %w", err)
	}
	if err := Sweep(o.Root, o.BundleDir); err != nil {
		return err
	}
	o.Log("listening on " + ln.Addr().String())
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
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
		r := &receiver{o: o, c: newConn(nc, o.Timeout)}
		done := context.AfterFunc(ctx, func() { nc.Close() })
		if err := r.session(); err != nil {
			o.Log(fmt.Sprintf("migration from %s failed: %v", nc.RemoteAddr(), err))
		}
		done()
		nc.Close()
	}
}

// Sweep removes what sessions killed before their commit left in root and
// bundleDir.
func Sweep(root, bundleDir string) error {
	entries, err := os.ReadDir(bundleDir)
	if err != nil {
		return fmt.Errorf("reading %s: %w", bundleDir, err)
	}
	for _, e := range entries {
		id, ok := strings.CutSuffix(e.Name(), pendingSuffix)
		if !ok || state.CheckID(id) != nil {
			continue
		}
		if err := container.Delete(root, id, true, nil); err != nil {
			return fmt.Errorf("removing the uncommitted container %s: %w", id, err)
		}
		if err := removeImages(filepath.Join(bundleDir, id, "images")); err != nil {
			return fmt.Errorf("removing the images of uncommitted container %s: %w", id, err)
		}
		if err := os.RemoveAll(filepath.Join(bundleDir, id)); err != nil {
			return fmt.Errorf("removing the bundle of uncommitted container %s: %w", id, err)
		}
		if err := os.Remove(filepath.Join(bundleDir, e.Name())); err != nil {
			return fmt.Errorf("removing %s: %w", e.Name(), err)
		}
	}
	return nil
}

// receiver is one session on the target.
type receiver struct {
	o        ServeOptions
	c        *conn
	of       offer
	bundle   string
	pending  string
	restored bool
}

func (r *receiver) session() (err error) {
	if err := r.c.serverHandshake(r.o.Token); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			r.c.sendError(err)
			r.cleanup()
		}
	}()
	if err := r.accept(); err != nil {
		return err
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
	mine, err := HostFacts(r.o.CRIU, "/proc", "/sys/fs/cgroup")
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
	if err := checkSpace(r.o.BundleDir, of.RootfsBytes+of.MemoryBytes); err != nil {
		return nil, err
	}
	return mine, checkInterfaces(of.Veths)
}

// stage creates the bundle, marked pending until the commit.
func (r *receiver) stage() error {
	r.bundle = filepath.Join(r.o.BundleDir, r.of.ID)
	r.pending = r.bundle + pendingSuffix
	if err := os.WriteFile(r.pending, nil, 0o600); err != nil {
		return fmt.Errorf("staging: %w", err)
	}
	if err := os.Mkdir(r.bundle, 0o700); err != nil {
		os.Remove(r.pending)
		r.pending = ""
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

func (r *receiver) commit() error {
	if !r.restored {
		return fmt.Errorf("%w: commit before restore", ErrProtocol)
	}
	if err := os.Remove(r.pending); err != nil {
		return fmt.Errorf("committing: %w", err)
	}
	r.pending = ""
	if !r.o.Verbose {
		if err := removeImages(filepath.Join(r.bundle, "images")); err != nil {
			r.o.Warn(fmt.Errorf("removing the images of %s: %w", r.of.ID, err))
		}
	}
	r.o.Log(fmt.Sprintf("container %s arrived from %s", r.of.ID, r.c.nc.RemoteAddr()))
	return r.c.send(opCommitted, nil)
}

// stageImages makes the bundle's images directory: for a post-copy, a
// link to a directory in shmDir when that is a tmpfs.
func (r *receiver) stageImages() error {
	images := filepath.Join(r.bundle, "images")
	base := ""
	if r.of.Mode == ModePostcopy {
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

// cleanup undoes a session that did not commit.
func (r *receiver) cleanup() {
	if r.pending == "" {
		return
	}
	if r.restored {
		if err := container.Delete(r.o.Root, r.of.ID, true, r.o.Warn); err != nil {
			r.o.Warn(err)
		}
	}
	if err := removeImages(filepath.Join(r.bundle, "images")); err != nil {
		r.o.Warn(err)
	}
	if err := os.RemoveAll(r.bundle); err != nil {
		r.o.Warn(err)
	}
	os.Remove(r.pending)
}

// resources decodes the limits the container had on the source.
func (r *receiver) resources() (*config.Resources, error) {
	var res config.Resources
	if err := json.Unmarshal(r.of.Resources, &res); err != nil {
		return nil, fmt.Errorf("%w: decoding the container's limits: %v", ErrProtocol, err)
	}
	return &res, nil
}
